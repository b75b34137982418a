#include "alert/alert.h"

#include <openssl/hmac.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <functional>
#include <thread>

#include "base/json_text.h"
#include "base/log.h"
#include "base/sha256.h"
#include "http/client.h"
#include "identity/identity.h"

namespace gapless::alert {
namespace {

std::string Rfc3339(int64_t ns) {
  const std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%03lldZ",
                static_cast<long long>((ns % 1'000'000'000) / 1'000'000));
  return std::string(buf) + frac;
}

std::string HmacHex(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return HexEncode(out, len);
}

std::string EvidenceObject(const AlertEvent& e) {
  std::string j = "{";
  for (size_t i = 0; i < e.evidence.size(); ++i) {
    j +=
        (i ? ", " : "") + JsonString(e.evidence[i].first) + ": " + JsonString(e.evidence[i].second);
  }
  return j + "}";
}

// Prometheus Alertmanager API v2: POST /api/v2/alerts, a JSON array of alerts. A firing
// alert is re-posted (Output's repeat) with endsAt ahead, as Prometheus does, so
// Alertmanager does not resolve it on its own.
std::string AlertmanagerBody(const std::vector<AlertEvent>& events, int64_t now_ns) {
  std::string j = "[";
  for (size_t i = 0; i < events.size(); ++i) {
    const AlertEvent& e = events[i];
    j += i ? ", " : "";
    j += "{\"labels\": {\"alertname\": " + JsonString(e.name) +
         ", \"subject\": " + JsonString(e.subject) + ", \"severity\": " + JsonString(e.severity) +
         ", \"source\": \"gapless\"}";
    j += ", \"annotations\": {\"summary\": " + JsonString(e.summary);
    for (const auto& [k, v] : e.evidence) j += ", " + JsonString(k) + ": " + JsonString(v);
    j += "}, \"startsAt\": " + JsonString(Rfc3339(e.started_ns));
    const int64_t ends = e.firing ? now_ns + 5 * 60 * 1'000'000'000LL : e.at_ns;
    j += ", \"endsAt\": " + JsonString(Rfc3339(ends)) + "}";
  }
  return j + "]";
}

}  // namespace

std::string FormatEvent(const AlertEvent& e) {
  return "{\"id\": " + std::to_string(e.id) + ", \"name\": " + JsonString(e.name) +
         ", \"subject\": " + JsonString(e.subject) + ", \"severity\": " + JsonString(e.severity) +
         ", \"state\": " + JsonString(e.firing ? "firing" : "resolved") +
         ", \"summary\": " + JsonString(e.summary) + ", \"evidence\": " + EvidenceObject(e) +
         ", \"started\": " + JsonString(Rfc3339(e.started_ns)) +
         ", \"started_ns\": " + std::to_string(e.started_ns) +
         ", \"at\": " + JsonString(Rfc3339(e.at_ns)) + ", \"at_ns\": " + std::to_string(e.at_ns) +
         "}";
}

StatusOr<AlertEvent> ParseEvent(std::string_view line) {
  namespace od = simdjson::ondemand;
  od::parser parser;
  simdjson::padded_string padded(line);
  od::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) {
    return InvalidArgumentError("not a JSON object");
  }
  AlertEvent e;
  std::string_view sv;
  auto str = [&](const char* key, std::string* out) -> Status {
    if (doc[key].get_string().get(sv) != simdjson::SUCCESS) {
      return InvalidArgumentError(std::string("missing \"") + key + "\"");
    }
    *out = std::string(sv);
    return Status::Ok();
  };
  if (doc["id"].get_uint64().get(e.id) != simdjson::SUCCESS) {
    return InvalidArgumentError("missing \"id\"");
  }
  RETURN_IF_ERROR(str("name", &e.name));
  RETURN_IF_ERROR(str("subject", &e.subject));
  RETURN_IF_ERROR(str("severity", &e.severity));
  std::string state;
  RETURN_IF_ERROR(str("state", &state));
  if (state != "firing" && state != "resolved") return InvalidArgumentError("bad \"state\"");
  e.firing = state == "firing";
  RETURN_IF_ERROR(str("summary", &e.summary));
  od::object evidence;
  if (doc["evidence"].get_object().get(evidence) != simdjson::SUCCESS) {
    return InvalidArgumentError("missing \"evidence\"");
  }
  for (auto field : evidence) {
    std::string_view k;
    if (field.unescaped_key().get(k) != simdjson::SUCCESS ||
        field.value().get_string().get(sv) != simdjson::SUCCESS) {
      return InvalidArgumentError("evidence values must be strings");
    }
    e.evidence.emplace_back(std::string(k), std::string(sv));
  }
  if (doc["started_ns"].get_int64().get(e.started_ns) != simdjson::SUCCESS ||
      doc["at_ns"].get_int64().get(e.at_ns) != simdjson::SUCCESS) {
    return InvalidArgumentError("missing \"started_ns\" or \"at_ns\"");
  }
  return e;
}

// One receiver: delivers the journal's events in order from its cursor, retrying each
// until the receiver takes it (2xx). The cursor (a byte offset into the journal) is kept
// in <journal>.<hash of url>.cursor, written atomically after each delivery.
class Output {
 public:
  enum class Kind { kWebhook, kAlertmanager };
  Output(env::Env* env, const AlertOptions& o, Kind kind, WebhookOptions w, std::string secret,
         Alerts* alerts)
      : env_(env),
        options_(o),
        kind_(kind),
        target_(std::move(w)),
        secret_(std::move(secret)),
        alerts_(alerts),
        cursor_path_(o.journal + "." + HexEncode(Sha256::Digest(target_.url)).substr(0, 16) +
                     ".cursor") {
    if (auto text = env::ReadFileToString(env_, cursor_path_); text.ok()) {
      offset_ = std::strtoull(text->c_str(), nullptr, 10);
    }
    // A journal shorter than the cursor was replaced (rotated): deliver the new one whole.
    if (auto size = env_->GetFileSize(o.journal); size.ok() && *size < offset_) {
      LogWarning("alerts: " + o.journal + " is shorter than the cursor of " + target_.url +
                 ": a new journal; delivering it from the start");
      offset_ = 0;
    }
    stats_.url = target_.url;
    thread_ = std::thread([this] { Loop(); });
  }
  ~Output() { Stop(); }
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    fresh_ = true;
    cv_.notify_one();
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }
  OutputStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  // The next complete journal line at or after offset_, or "" if there is none.
  std::string NextLine(uint64_t* end) {
    auto size = env_->GetFileSize(options_.journal);
    if (!size.ok() || *size <= offset_) return "";
    auto file = env_->NewRandomAccessFile(options_.journal);
    if (!file.ok()) return "";
    std::string buf(static_cast<size_t>(std::min<uint64_t>(*size - offset_, 1 << 20)), '\0');
    auto n = (*file)->Read(offset_, buf.size(), buf.data());
    if (!n.ok()) return "";
    buf.resize(*n);
    const size_t eol = buf.find('\n');
    if (eol == std::string::npos) return "";
    *end = offset_ + eol + 1;
    return buf.substr(0, eol);
  }

  uint64_t PendingBytes() {
    auto size = env_->GetFileSize(options_.journal);
    return size.ok() && *size > offset_ ? *size - offset_ : 0;
  }

  bool Send(const std::string& body) {
    http::Request req;
    req.url = target_.url;
    req.content_type = "application/json";
    req.body = body;
    if (!secret_.empty()) {
      const std::string ts = std::to_string(env_->clock()->NowNanos() / 1'000'000'000);
      req.headers.emplace_back("X-Gapless-Timestamp", ts);
      req.headers.emplace_back("X-Gapless-Signature",
                               "sha256=" + HmacHex(secret_, ts + "." + body));
    }
    http::ClientOptions co;
    co.timeout_ms = target_.timeout_ms;
    co.ca_file = target_.ca_file;
    auto res = http::Send(req, co);
    const bool ok = res.ok() && res->status >= 200 && res->status < 300;
    if (!ok) {
      const std::string why =
          res.ok() ? "HTTP " + std::to_string(res->status) : res.status().message();
      if (why != last_error_) LogWarning("alerts: " + target_.url + ": " + why + "; retrying");
      last_error_ = why;
    } else if (!last_error_.empty()) {
      LogInfo("alerts: " + target_.url + " takes alerts again");
      last_error_.clear();
    }
    return ok;
  }

  // The first event held in memory (the journal could not take it) not delivered yet.
  std::string NextUnjournaled(uint64_t* id) {
    for (auto& [event_id, line] : alerts_->Unjournaled()) {
      if (event_id > last_id_) {
        *id = event_id;
        return line;
      }
    }
    return "";
  }

  uint64_t UnjournaledPendingBytes() {
    uint64_t n = 0;
    for (const auto& [event_id, line] : alerts_->Unjournaled()) {
      if (event_id > last_id_) n += line.size() + 1;
    }
    return n;
  }

  void Loop() {
    int64_t backoff = options_.retry_initial_ms;
    int64_t last_repeat = 0;
    for (;;) {
      uint64_t end = 0;
      std::string line = NextLine(&end);
      uint64_t memory_id = 0;  // nonzero: the line is held in memory, not in the journal
      if (line.empty()) {
        alerts_->RetryJournal();  // the journal may take the held events now
        line = NextLine(&end);
        if (line.empty()) line = NextUnjournaled(&memory_id);
      }
      bool delivered = false;
      if (!line.empty()) {
        auto event = ParseEvent(line);
        std::string body;
        if (!event.ok()) {
          LogError("alerts: journal line at offset " + std::to_string(offset_) +
                   " is damaged, skipped: " + event.status().message());
        } else if (memory_id == 0 && event->id <= last_id_) {
          // delivered from memory before the journal could take it: not sent again
        } else if (kind_ == Kind::kWebhook) {
          body = line;
        } else {
          body = AlertmanagerBody({*event}, env_->clock()->NowNanos());
        }
        if (body.empty() || Send(body)) {
          if (event.ok()) last_id_ = std::max(last_id_, event->id);
          if (memory_id == 0) {
            offset_ = end;
            (void)env::WriteFileAtomically(env_, cursor_path_, std::to_string(offset_) + "\n");
          }
          delivered = true;
          backoff = options_.retry_initial_ms;
          std::lock_guard<std::mutex> lock(mu_);
          if (!body.empty()) ++stats_.delivered;
        } else {
          std::lock_guard<std::mutex> lock(mu_);
          ++stats_.failures;
        }
      }
      // Alertmanager forgets a firing alert not re-posted within its resolve_timeout.
      const int64_t now = env_->clock()->MonotonicNanos();
      if (kind_ == Kind::kAlertmanager &&
          (last_repeat == 0 || now - last_repeat > options_.repeat_ms * 1'000'000)) {
        auto firing = alerts_->Firing();
        if (!options_.watchdog.empty()) firing.push_back(Watchdog());
        if (firing.empty() || Send(AlertmanagerBody(firing, env_->clock()->NowNanos()))) {
          last_repeat = now;
        }
      }
      const uint64_t pending = PendingBytes() + UnjournaledPendingBytes();
      std::unique_lock<std::mutex> lock(mu_);
      stats_.pending_bytes = pending;
      if (stop_) return;
      if (delivered) continue;
      const bool more = !line.empty();  // a failed send: wait out the backoff
      cv_.wait_for(lock, std::chrono::milliseconds(more ? backoff : 1000),
                   [&] { return stop_ || (!more && fresh_); });
      fresh_ = false;
      if (more) backoff = std::min(backoff * 2, options_.retry_max_ms);
    }
  }

  AlertEvent Watchdog() const {
    AlertEvent w;
    w.name = "watchdog";
    w.subject = options_.watchdog;
    w.severity = "none";
    w.summary = "always firing while the alerting of " + options_.watchdog +
                " works; route it to a dead man's switch, which pages when it stops arriving";
    w.started_ns = started_ns_;
    return w;
  }

  env::Env* const env_;
  const int64_t started_ns_ = env_->clock()->NowNanos();
  const AlertOptions options_;
  const Kind kind_;
  const WebhookOptions target_;
  const std::string secret_;
  Alerts* const alerts_;
  const std::string cursor_path_;
  uint64_t offset_ = 0;     // thread only
  uint64_t last_id_ = 0;    // thread only: the highest event id delivered (or skipped)
  std::string last_error_;  // thread only
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool fresh_ = false;  // GUARDED_BY(mu_)
  bool stop_ = false;   // GUARDED_BY(mu_)
  OutputStats stats_;   // GUARDED_BY(mu_)
};

StatusOr<std::unique_ptr<Alerts>> Alerts::Open(env::Env* env, const AlertOptions& o) {
  if (o.journal.empty()) return InvalidArgumentError("alerts: a journal file is required");
  std::unique_ptr<Alerts> a(new Alerts);
  a->env_ = env;
  a->clock_ = o.clock != nullptr ? o.clock : env->clock();
  a->options_ = o;
  // Replay the journal: ids continue, and what was firing still is. A torn last line (a
  // crash while appending) is cut.
  if (env->FileExists(o.journal)) {
    ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env, o.journal));
    size_t at = 0;
    while (at < text.size()) {
      const size_t eol = text.find('\n', at);
      if (eol == std::string::npos) {
        LogWarning("alerts: cutting a torn last line of " + o.journal);
        RETURN_IF_ERROR(env->TruncateFile(o.journal, at));
        break;
      }
      auto e = ParseEvent(std::string_view(text).substr(at, eol - at));
      at = eol + 1;
      if (!e.ok()) continue;  // damaged; reported by the outputs when they reach it
      a->next_id_ = std::max(a->next_id_, e->id + 1);
      const auto key = std::make_pair(e->name, e->subject);
      if (e->firing) {
        a->firing_[key] = *e;
      } else {
        a->firing_.erase(key);
      }
    }
  }
  ASSIGN_OR_RETURN(a->journal_, env->NewAppendableFile(o.journal));
  a->journal_good_ = a->journal_->Size();
  Alerts* raw = a.get();
  for (const WebhookOptions& w : o.webhooks) {
    if (auto url = http::ParseUrl(w.url); !url.ok()) {
      return InvalidArgumentError("alerts: webhook " + w.url + ": " + url.status().message());
    }
    std::string secret;
    if (!w.secret_file.empty()) {
      ASSIGN_OR_RETURN(secret, identity::ReadSecretFile(w.secret_file));
      while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
      if (secret.empty()) return InvalidArgumentError("alerts: " + w.secret_file + " is empty");
    }
    a->outputs_.push_back(std::make_unique<Output>(env, o, Output::Kind::kWebhook, w, secret, raw));
  }
  for (const std::string& base : o.alertmanagers) {
    WebhookOptions w;
    w.url = base + (base.ends_with("/") ? "" : "/") + "api/v2/alerts";
    if (auto url = http::ParseUrl(w.url); !url.ok()) {
      return InvalidArgumentError("alerts: alertmanager " + base + ": " + url.status().message());
    }
    a->outputs_.push_back(
        std::make_unique<Output>(env, o, Output::Kind::kAlertmanager, w, "", raw));
  }
  return a;
}

Alerts::~Alerts() { Stop(); }

void Alerts::Stop() {
  for (auto& out : outputs_) out->Stop();
}

void Alerts::Append(AlertEvent e) {
  e.id = next_id_++;
  (e.firing ? static_cast<void (*)(std::string_view)>(&LogError)
            : &LogInfo)("ALERT " + std::string(e.firing ? "FIRING " : "RESOLVED ") + e.name + " [" +
                        e.subject + "]: " + e.summary);
  const bool was_failing = !unjournaled_.empty();
  unjournaled_.emplace_back(e.id, FormatEvent(e));
  if (unjournaled_.size() > kMaxUnjournaled) {
    unjournaled_.pop_front();
    ++unjournaled_dropped_;
  }
  if (!FlushUnjournaledLocked() && !was_failing) {
    LogError("alerts: the alert journal " + options_.journal +
             " cannot be written; alerts are delivered from memory and journaled once it can");
  }
  for (auto& out : outputs_) out->Notify();
}

bool Alerts::FlushUnjournaledLocked() {
  while (!unjournaled_.empty()) {
    Status s =
        journal_ != nullptr ? Status::Ok() : env_->TruncateFile(options_.journal, journal_good_);
    if (s.ok() && journal_ == nullptr) {
      auto f = env_->NewAppendableFile(options_.journal);
      s = f.status();
      if (f.ok()) journal_ = std::move(*f);
    }
    if (s.ok()) s = journal_->Append(unjournaled_.front().second + "\n");
    if (s.ok()) s = journal_->Sync();
    if (!s.ok()) {
      journal_.reset();  // cut back to journal_good_ before the next try
      (void)env_->TruncateFile(options_.journal, journal_good_);
      journal_failing_.store(true, std::memory_order_release);
      return false;
    }
    journal_good_ = journal_->Size();
    unjournaled_.pop_front();
    if (unjournaled_.empty() && journal_failing_.load(std::memory_order_relaxed)) {
      journal_failing_.store(false, std::memory_order_release);
      LogInfo("alerts: the alert journal " + options_.journal + " is written again" +
              (unjournaled_dropped_ > 0 ? "; " + std::to_string(unjournaled_dropped_) +
                                              " events held in memory meanwhile were dropped "
                                              "(more than " +
                                              std::to_string(kMaxUnjournaled) + ")"
                                        : std::string()));
      unjournaled_dropped_ = 0;
    }
  }
  return true;
}

void Alerts::RetryJournal() {
  std::lock_guard<std::mutex> lock(mu_);
  if (unjournaled_.empty()) return;
  if (FlushUnjournaledLocked()) {
    for (auto& out : outputs_) out->Notify();
  }
}

bool Alerts::journal_failing() const { return journal_failing_.load(std::memory_order_acquire); }

std::vector<std::pair<uint64_t, std::string>> Alerts::Unjournaled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {unjournaled_.begin(), unjournaled_.end()};
}

void Alerts::Fire(const std::string& name, const std::string& subject, const std::string& severity,
                  const std::string& summary,
                  std::vector<std::pair<std::string, std::string>> evidence) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_->NowNanos();
  auto it = firing_.find({name, subject});
  if (it != firing_.end() && it->second.summary == summary) return;  // a repeat
  AlertEvent e;
  e.name = name;
  e.subject = subject;
  e.severity = severity;
  e.summary = summary;
  e.evidence = std::move(evidence);
  e.started_ns = it != firing_.end() ? it->second.started_ns : now;
  e.at_ns = now;
  firing_[{name, subject}] = e;
  Append(std::move(e));
}

void Alerts::Resolve(const std::string& name, const std::string& subject,
                     const std::string& summary) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = firing_.find({name, subject});
  if (it == firing_.end()) return;
  AlertEvent e = it->second;
  firing_.erase(it);
  e.firing = false;
  e.summary = summary;
  e.at_ns = clock_->NowNanos();
  Append(std::move(e));
}

std::vector<AlertEvent> Alerts::Firing() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AlertEvent> out;
  for (const auto& [key, e] : firing_) out.push_back(e);
  return out;
}

std::vector<OutputStats> Alerts::output_stats() const {
  std::vector<OutputStats> out;
  for (const auto& o : outputs_) out.push_back(o->stats());
  return out;
}

}  // namespace gapless::alert
