#include "collector/witnessing.h"

#include <chrono>

#include "base/log.h"
#include "checkpoint/checkpoint.h"
#include "env/env.h"
#include "http/client.h"
#include "merkle/proof.h"
#include "store/hash_levels.h"
#include "store/layout.h"
#include "store/stream_store.h"
#include "witness/protocol.h"

namespace gapless::collector {
namespace {

// The cosignature lines in a witness's answer that verify on the note by its key.
std::string VerifiedLines(const std::string& note, std::string_view body,
                          const checkpoint::Verifier& key) {
  std::string kept;
  while (!body.empty()) {
    const size_t eol = body.find('\n');
    const std::string_view line =
        body.substr(0, eol == std::string_view::npos ? body.size() : eol + 1);
    body.remove_prefix(line.size());
    if (line.empty() || line.back() != '\n') break;
    auto parsed = checkpoint::ParseNote(note + std::string(line));
    if (parsed.ok() && checkpoint::VerifyCosignature(*parsed, key).ok()) kept += line;
  }
  return kept;
}

}  // namespace

StatusOr<std::unique_ptr<Witnessing>> Witnessing::Start(env::Env* env,
                                                        const std::vector<WitnessTarget>& targets,
                                                        int64_t retry_ms, alert::Alerts* alerts) {
  std::unique_ptr<Witnessing> w(new Witnessing);
  w->env_ = env;
  w->alerts_ = alerts;
  w->retry_ms_ = retry_ms;
  for (const WitnessTarget& t : targets) {
    if (auto url = http::ParseUrl(t.url); !url.ok()) {
      return InvalidArgumentError("witness url \"" + t.url + "\": " + url.status().message());
    }
    auto key = checkpoint::ParseCosignerKey(t.key);
    if (!key.ok()) {
      return InvalidArgumentError("witness " + t.url + " key: " + key.status().message());
    }
    w->targets_.push_back(Target{t, *key, {}, {}});
  }
  w->worker_ = std::make_unique<PeriodicWorker>(
      PeriodicWorker::Options{.interval_ms = retry_ms, .final_round = true},
      [raw = w.get()](bool) { raw->Pass(); });
  return w;
}

Witnessing::~Witnessing() { Stop(); }

void Witnessing::Offer(const std::string& dir, std::string note) {
  auto parsed = checkpoint::ParseNote(note);
  auto cp = parsed.ok() ? checkpoint::ParseCheckpoint(parsed->text) : parsed.status();
  if (!cp.ok()) return;  // the collector signed it; cannot happen
  {
    MutexLock lock(&mu_);
    Pending& p = pending_[dir];
    p.note = std::move(note);
    p.origin = cp->origin;
    p.size = cp->size;
    p.done.assign(targets_.size(), false);
  }
  worker_->Wake();
}

void Witnessing::Stop() {
  if (worker_ != nullptr) worker_->Stop();
}

WitnessingStats Witnessing::stats() const {
  return {cosigned_.load(), refused_.load(), failed_.load()};
}

void Witnessing::Pass() {
  {
    std::map<std::string, Pending> work;
    {
      MutexLock lock(&mu_);
      work = pending_;
    }
    // A target that failed once in a pass is not asked again in it: a witness that is
    // down costs one timeout per pass, not one per stream (also at Stop).
    std::vector<bool> failing(targets_.size(), false);
    for (auto& [dir, p] : work) {
      std::string lines;
      bool all_done = true;
      for (size_t i = 0; i < targets_.size(); ++i) {
        if (!p.done[i] && !failing[i]) {
          p.done[i] = Submit(targets_[i], dir, p, &lines);
          failing[i] = !p.done[i];
        }
        all_done = all_done && p.done[i];
      }
      if (!lines.empty()) {
        const std::string path =
            store::StreamFiles(dir).Notes(store::StreamFiles::NoteLog::kWitnessed);
        const bool first = repaired_.insert(dir).second;
        if (Status s = store::AppendNoteFrame(env_, path, p.note + lines, first); !s.ok()) {
          LogError("witnessing: cannot keep the cosignatures in " + path + ": " + s.ToString());
        }
      }
      MutexLock lock(&mu_);
      auto it = pending_.find(dir);
      if (it == pending_.end() || it->second.note != p.note) continue;  // a newer one came
      if (all_done) {
        pending_.erase(it);
      } else {
        it->second.done = p.done;
      }
    }
  }
}

void Witnessing::Report(Target& t, bool error, const std::string& what) {
  if (what == t.last_report) return;  // said once, until something else happens
  t.last_report = what;
  if (error) {
    LogError("witnessing: " + t.config.url + ": " + what);
  } else {
    LogInfo("witnessing: " + t.config.url + ": " + what);
  }
}

// The alerts change before the counters, so whoever sees a counter move sees the alert.
void Witnessing::Refused(Target& t, const Pending& p, const std::string& what) {
  Report(t, true, what);
  if (alerts_ != nullptr) {
    alerts_->Fire("witness_refused", p.origin + " @ " + t.config.url, "critical", what,
                  {{"witness", t.config.url}, {"size", std::to_string(p.size)}});
  }
  ++refused_;
}

void Witnessing::Failing(Target& t, const std::string& what) {
  Report(t, true, what);
  if (alerts_ != nullptr) {
    alerts_->Fire("witness_failing", t.config.url, "warning", what, {{"witness", t.config.url}});
  }
  ++failed_;
}

void Witnessing::Cosigned(Target& t, const Pending& p) {
  Report(t, false, "cosigning");
  if (alerts_ != nullptr) {
    alerts_->Resolve("witness_failing", t.config.url, "the witness cosigns again");
    alerts_->Resolve("witness_refused", p.origin + " @ " + t.config.url,
                     t.config.url + " cosigned size " + std::to_string(p.size));
  }
  ++cosigned_;
}

bool Witnessing::Submit(Target& t, const std::string& dir, const Pending& p, std::string* lines) {
  uint64_t old = t.cosigned_size[p.origin];
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (old > p.size) {
      Refused(t, p,
              "the witness cosigned size " + std::to_string(old) + " of " + p.origin +
                  ", more than the collector's newest signed size " + std::to_string(p.size) +
                  ": the store was rolled back, or someone else signs this stream");
      return true;
    }
    witness::AddCheckpointRequest req;
    req.old_size = old;
    req.checkpoint = p.note;
    if (old > 0 && old < p.size) {
      auto source = store::StoredHashSource::Open(env_, dir);
      auto proof = source.ok() ? merkle::ConsistencyProof(**source, old, p.size) : source.status();
      if (!proof.ok()) {
        Failing(t, "cannot build the consistency proof of " + p.origin + ": " +
                       proof.status().ToString());
        return false;
      }
      req.proof = std::move(*proof);
    }
    http::Request request;
    request.url = t.config.url;
    request.body = witness::FormatAddCheckpoint(req);
    http::ClientOptions options;
    options.timeout_ms = t.config.timeout_ms;
    options.ca_file = t.config.ca_file;
    auto res = http::Send(request, options);
    if (!res.ok()) {
      Failing(t, "unreachable, will retry: " + res.status().message());
      return false;
    }
    std::string_view body = res->body;
    while (!body.empty() && body.back() == '\n') body.remove_suffix(1);
    if (res->status == 200) {
      const std::string kept = VerifiedLines(p.note, res->body, t.key);
      if (kept.empty()) {
        Failing(t, "answered without a cosignature by " + t.key.name +
                       " that verifies: is its key configured right?");
        return false;
      }
      *lines += kept;
      t.cosigned_size[p.origin] = p.size;
      Cosigned(t, p);
      return true;
    }
    if (res->status == 409 && res->content_type.rfind("text/x.tlog.size", 0) == 0) {
      uint64_t theirs = 0;
      bool digits = !body.empty() && body.size() <= 20;
      for (char c : body) {
        digits = digits && c >= '0' && c <= '9';
        if (digits) theirs = theirs * 10 + static_cast<uint64_t>(c - '0');
      }
      if (digits && theirs != old) {  // it knows another size: ask again from there
        old = theirs;
        t.cosigned_size[p.origin] = theirs;
        continue;
      }
    }
    if (res->status == 409 || res->status == 422) {
      Refused(t, p,
              "refused " + p.origin + " size " + std::to_string(p.size) + " (HTTP " +
                  std::to_string(res->status) + ": " + std::string(body) +
                  "): the witness saw another history of this stream");
      return true;
    }
    Failing(t, "HTTP " + std::to_string(res->status) + " for " + p.origin + ": " +
                   std::string(body) +
                   (res->status == 404 || res->status == 403
                        ? " (the witness must trust this collector's key for its origins)"
                        : ""));
    return res->status == 404 || res->status == 403;
  }
  return false;
}

}  // namespace gapless::collector
