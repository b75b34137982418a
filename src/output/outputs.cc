#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "base/json_text.h"
#include "base/log.h"
#include "base/mutex.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "event/event.h"
#include "identity/identity.h"
#include "output/output.h"
#include "output/shape.h"
#include "output/sink.h"
#include "store/layout.h"
#include "store/reader.h"
#include "store/stream_store.h"

namespace gapless::output {
namespace {

constexpr std::string_view kCursorMagic = "gapless-output-cursor 1\n";
constexpr std::string_view kDescriptionMagic = "gapless-output 1\n";

// Whether streams globs (none: every stream) take an agent's stream.
bool Selects(const std::vector<std::string>& globs, const std::string& agent) {
  if (globs.empty()) return true;
  for (const std::string& glob : globs) {
    if (::fnmatch(glob.c_str(), agent.c_str(), 0) == 0) return true;
  }
  return false;
}

// The next seq to deliver, from a cursor file; 0 if there is none yet.
StatusOr<uint64_t> ReadCursor(env::Env* env, const std::string& path) {
  if (!env->FileExists(path)) return uint64_t{0};
  auto text = env::ReadFileToString(env, path);
  uint64_t next = 0;
  bool ok = text.ok() && text->size() > kCursorMagic.size() &&
            std::string_view(*text).substr(0, kCursorMagic.size()) == kCursorMagic &&
            text->back() == '\n';
  if (ok) {
    const char* b = text->data() + kCursorMagic.size();
    const char* e = text->data() + text->size() - 1;
    auto [end, err] = std::from_chars(b, e, next);
    ok = err == std::errc() && end == e;
  }
  if (!ok) return DataLossError("the cursor " + path + " cannot be read");
  return next;
}

// One stream as one output sees it. Output thread only.
struct StreamState {
  std::string agent, epoch, dir;
  uint64_t cursor = 0;
  bool cursor_loaded = false;
  uint64_t cursor_saved = 0;
  int64_t cursor_saved_ns = 0;
  std::unique_ptr<store::StreamReader> reader;
  uint64_t read_to = 0;  // the reader's position: every seq below it was read
  // The batch in flight: read, not yet confirmed.
  std::vector<Item> items;
  std::vector<ItemResult::State> states;
  std::vector<int64_t> observed_ns;
  int64_t last_progress_ns = 0;  // monotonic: when the cursor last moved or caught up
  bool stalled = false;
  StreamAccount account;
};

}  // namespace

struct Outputs::Impl {
  env::Env* env = nullptr;
  std::string data_dir;
  alert::Alerts* alerts = nullptr;

  struct Signed {
    std::string agent, epoch, dir;
    uint64_t size = 0;
  };
  mutable Mutex mu;
  CondVar cv;
  std::map<std::string, Signed> signed_sizes GUARDED_BY(mu);  // by dir
  uint64_t generation GUARDED_BY(mu) = 0;                     // bumped by every Signed()
  bool stopping GUARDED_BY(mu) = false;

  class Output;
  std::vector<std::unique_ptr<Output>> outputs;
};

class Outputs::Impl::Output {
 public:
  Output(Impl* impl, OutputOptions o, std::unique_ptr<Sink> sink)
      : impl_(impl), o_(std::move(o)), sink_(std::move(sink)), rng_(std::random_device{}()) {
    stats_.name = o_.name;
    stats_.type = o_.type;
    stats_.confirmed = sink_->confirmed();
    stats_.required = o_.required;
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Interrupt() { sink_->Interrupt(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  OutputStats stats() const {
    MutexLock lock(&stats_mu_);
    return stats_;
  }

 private:
  bool Wanted(const std::string& agent) const { return Selects(o_.streams, agent); }

  void Run() {
    const store::Layout layout(impl_->data_dir);
    int64_t backoff_ms = 0;
    uint64_t seen_generation = 0;
    for (;;) {
      std::map<std::string, Impl::Signed> snapshot;
      {
        MutexLock lock(&impl_->mu);
        if (impl_->stopping) break;
        snapshot = impl_->signed_sizes;
        seen_generation = impl_->generation;
      }
      bool worked = false, failed = false;
      for (const auto& [dir, s] : snapshot) {
        if (!Wanted(s.agent)) continue;
        StreamState& st = streams_[dir];
        if (st.dir.empty()) {
          st.agent = s.agent;
          st.epoch = s.epoch;
          st.dir = dir;
          st.account.agent = s.agent;
          st.account.epoch = s.epoch;
          st.last_progress_ns = Now();
        }
        st.account.signed_size = s.size;
        if (!st.cursor_loaded) LoadCursor(layout, &st);
        if (st.cursor >= s.size && st.items.empty()) continue;
        Status r = Step(layout, s.size, &st);
        if (!r.ok()) {
          failed = true;
          MutexLock lock(&stats_mu_);
          ++stats_.failures;
          if (stats_.last_error != r.message() || stats_.failures % 100 == 1) {
            LogWarning("output " + o_.name + ": " + r.message() + " (sent again; nothing lost)");
          }
          stats_.last_error = r.message();
          break;  // the downstream failed: back off before any stream tries again
        }
        worked = true;
      }
      CheckStalls();
      Publish();
      if (failed) {
        backoff_ms = backoff_ms == 0 ? o_.retry_min_ms : std::min(backoff_ms * 2, o_.retry_max_ms);
        const int64_t jittered =
            backoff_ms / 2 + static_cast<int64_t>(rng_() % (backoff_ms / 2 + 1));
        SleepUnlessStopping(jittered, /*after=*/0);
        continue;
      }
      backoff_ms = 0;
      if (!worked) {
        SaveCursors(layout, /*force=*/true);
        SleepUnlessStopping(1000, seen_generation);  // woken by Signed() or Stop()
      }
    }
    SaveCursors(layout, /*force=*/true);
    Publish();
  }

  // Waits ms of real time (the env's clock may be a test's), or until stopping, or
  // (after != 0) until a Signed() after generation `after`.
  void SleepUnlessStopping(int64_t ms, uint64_t after) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    MutexLock lock(&impl_->mu);
    while (!impl_->stopping && (after == 0 || impl_->generation == after)) {
      const int64_t left = std::chrono::duration_cast<std::chrono::milliseconds>(
                               until - std::chrono::steady_clock::now())
                               .count();
      if (left <= 0) return;
      impl_->cv.WaitFor(&impl_->mu, left);
    }
  }

  int64_t Now() const { return impl_->env->clock()->MonotonicNanos(); }

  void LoadCursor(const store::Layout& layout, StreamState* st) {
    st->cursor_loaded = true;
    const std::string path = layout.OutputCursor(o_.name, st->agent, st->epoch);
    auto next = ReadCursor(impl_->env, path);
    if (!next.ok()) {
      // Starting again from 0 sends duplicates, never loses a record.
      LogError("output " + o_.name + ": " + next.status().message() +
               "; delivering that stream again from seq 0 (duplicates, nothing lost)");
      return;
    }
    st->cursor = st->cursor_saved = *next;
    st->read_to = *next;
  }

  void SaveCursors(const store::Layout& layout, bool force) {
    for (auto& [dir, st] : streams_) SaveCursor(layout, &st, force);
  }

  void SaveCursor(const store::Layout& layout, StreamState* st, bool force) {
    if (st->cursor == st->cursor_saved) return;
    if (!force && Now() - st->cursor_saved_ns < o_.cursor_save_ms * 1'000'000) return;
    env::Env* e = impl_->env;
    const std::string agent_dir = layout.OutputAgentDir(o_.name, st->agent);
    Status s = e->CreateDir(env::DirName(agent_dir));
    if (s.ok()) s = e->CreateDir(agent_dir);
    if (s.ok()) {
      s = env::WriteFileAtomically(e, layout.OutputCursor(o_.name, st->agent, st->epoch),
                                   std::string(kCursorMagic) + std::to_string(st->cursor) + "\n");
    }
    if (!s.ok()) {
      LogError("output " + o_.name + ": cannot save the cursor of " + st->agent + "/" + st->epoch +
               ": " + s.ToString() + " (after a restart, more is sent twice)");
      return;
    }
    st->cursor_saved = st->cursor;
    st->cursor_saved_ns = Now();
  }

  // Reads the next batch if none is in flight, sends what is not yet confirmed, and
  // moves the cursor over the confirmed (or rejected) prefix. An error: nothing moved.
  Status Step(const store::Layout& layout, uint64_t signed_size, StreamState* st) {
    if (st->items.empty()) RETURN_IF_ERROR(ReadBatch(signed_size, st));
    if (st->items.empty()) {
      // Only unreadable records were left below the signed size.
      st->cursor = std::max(st->cursor, st->read_to);
      st->last_progress_ns = Now();
      return Status::Ok();
    }
    std::vector<const Item*> send;
    std::vector<size_t> index;
    for (size_t i = 0; i < st->items.size(); ++i) {
      if (st->states[i] != ItemResult::State::kRetry) continue;
      send.push_back(&st->items[i]);
      index.push_back(i);
    }
    std::vector<ItemResult> results;
    RETURN_IF_ERROR(sink_->Send(send, &results));
    if (results.size() != send.size()) {
      return InternalError("output " + o_.name + ": the sink answered " +
                           std::to_string(results.size()) + " of " + std::to_string(send.size()));
    }
    uint64_t delivered = 0, retry = 0;
    std::string retry_reason;
    std::vector<std::pair<const Item*, std::string>> rejected;
    for (size_t k = 0; k < results.size(); ++k) {
      st->states[index[k]] = results[k].state;
      switch (results[k].state) {
        case ItemResult::State::kDelivered:
          ++delivered;
          break;
        case ItemResult::State::kRetry:
          ++retry;
          retry_reason = results[k].reason;
          break;
        case ItemResult::State::kRejected:
          rejected.emplace_back(send[k], results[k].reason);
          break;
      }
    }
    if (!rejected.empty()) RETURN_IF_ERROR(Reject(layout, st, rejected));
    {
      MutexLock lock(&stats_mu_);
      stats_.delivered += delivered;
    }
    st->account.retried += retry;
    st->account.rejected += rejected.size();
    if (retry > 0) {
      return UnavailableError(std::to_string(retry) + " of " + std::to_string(send.size()) +
                              " records of " + st->agent + "/" + st->epoch +
                              " were not accepted yet: " + retry_reason);
    }
    st->cursor = st->read_to;  // the whole batch is confirmed or accounted as rejected
    st->items.clear();
    st->states.clear();
    st->observed_ns.clear();
    st->last_progress_ns = Now();
    SaveCursor(layout, st, /*force=*/false);
    return Status::Ok();
  }

  // The downstream refused these for good: written down (synced) before the cursor may
  // pass them, and alerted. The records stay in the store.
  Status Reject(const store::Layout& layout, StreamState* st,
                const std::vector<std::pair<const Item*, std::string>>& rejected) {
    env::Env* fs = impl_->env;
    const std::string agent_dir = layout.OutputAgentDir(o_.name, st->agent);
    RETURN_IF_ERROR(fs->CreateDir(env::DirName(agent_dir)));
    RETURN_IF_ERROR(fs->CreateDir(agent_dir));
    const std::string path = layout.OutputRejected(o_.name, st->agent, st->epoch);
    ASSIGN_OR_RETURN(auto file, fs->NewAppendableFile(path));
    std::string lines, seqs;
    for (const auto& [item, reason] : rejected) {
      lines += "{\"seq\":" + std::to_string(item->seq) + ",\"id\":" + JsonString(item->id) +
               ",\"time\":" + JsonString(event::FormatUnixNanos(fs->clock()->NowNanos())) +
               ",\"reason\":" + JsonString(reason) + "}\n";
      if (seqs.size() < 200) seqs += (seqs.empty() ? "" : ",") + std::to_string(item->seq);
    }
    RETURN_IF_ERROR(file->Append(lines));
    RETURN_IF_ERROR(file->Sync());
    RETURN_IF_ERROR(file->Close());
    RETURN_IF_ERROR(fs->SyncDir(agent_dir));
    LogError("output " + o_.name + ": " + std::to_string(rejected.size()) + " records of " +
             st->agent + "/" + st->epoch + " refused for good (seqs " + seqs +
             "): " + rejected.front().second + "; written down in " + path);
    if (impl_->alerts != nullptr) {
      impl_->alerts->Fire("output_rejected", o_.name + "/" + st->agent + "/" + st->epoch,
                          "critical",
                          std::to_string(rejected.size()) +
                              " records refused by the downstream: " + rejected.front().second,
                          {{"output", o_.name}, {"seqs", seqs}, {"account", path}});
    }
    return Status::Ok();
  }

  Status ReadBatch(uint64_t signed_size, StreamState* st) {
    if (st->reader == nullptr) {
      ASSIGN_OR_RETURN(st->reader, store::StreamReader::Open(impl_->env, st->dir, st->cursor));
      st->read_to = st->cursor;
    }
    st->reader->set_limit(signed_size);
    while (st->items.size() < o_.batch_records) {
      ASSIGN_OR_RETURN(store::StreamReader::Entry e, st->reader->Next());
      if (e.kind == store::StreamReader::Kind::kEnd) {
        // Records below the signed size that the reader did not return are unreadable.
        if (st->read_to < signed_size && st->reader->unfinished_bytes() == 0 &&
            !st->reader->creating_segment()) {
          st->account.unreadable += signed_size - st->read_to;
          st->read_to = signed_size;
        }
        break;
      }
      if (e.kind != store::StreamReader::Kind::kRecord) {
        LogError("output " + o_.name + ": " + st->agent + "/" + st->epoch +
                 ": damaged store bytes in " + std::string(e.segment) + " at " +
                 std::to_string(e.offset) +
                 " are not delivered (gapless verify says which records)");
        continue;
      }
      if (e.seq > st->read_to) st->account.unreadable += e.seq - st->read_to;
      const Provenance p{st->agent, st->epoch, e.seq, e.Leaf()};
      Formatted f = FormatRecord(o_.shape, p, e.type, e.payload);
      st->items.push_back(Item{e.seq, IdempotencyKey(p), std::move(f.body)});
      st->states.push_back(ItemResult::State::kRetry);
      st->observed_ns.push_back(f.observed_unix_ns);
      st->read_to = e.seq + 1;
    }
    return Status::Ok();
  }

  void CheckStalls() {
    const int64_t now = Now();
    for (auto& [dir, st] : streams_) {
      const bool waiting = st.cursor < st.account.signed_size || !st.items.empty();
      if (!waiting) st.last_progress_ns = now;
      const bool stalled = waiting && now - st.last_progress_ns > o_.stall_after_ms * 1'000'000;
      if (stalled == st.stalled) continue;
      st.stalled = stalled;
      const std::string subject = o_.name + "/" + st.agent + "/" + st.epoch;
      if (stalled) {
        std::string why;
        {
          MutexLock lock(&stats_mu_);
          why = stats_.last_error;
        }
        LogError("output " + o_.name + ": no progress on " + st.agent + "/" + st.epoch + " for " +
                 std::to_string(o_.stall_after_ms / 1000) + " s with " +
                 std::to_string(st.account.signed_size - st.cursor) + " records waiting" +
                 (why.empty() ? "" : ": " + why));
      }
      if (impl_->alerts == nullptr) continue;
      if (stalled) {
        MutexLock lock(&stats_mu_);
        impl_->alerts->Fire(
            "output_stalled", subject, o_.required ? "critical" : "warning",
            "output " + o_.name + " has delivered nothing of " + st.agent + "/" + st.epoch +
                " for " + std::to_string(o_.stall_after_ms / 1000) + " s while records wait" +
                (stats_.last_error.empty() ? "" : ": " + stats_.last_error),
            {{"output", o_.name},
             {"waiting_records", std::to_string(st.account.signed_size - st.cursor)},
             {"delivered_up_to", std::to_string(st.cursor)}});
      } else {
        impl_->alerts->Resolve("output_stalled", subject, "output " + o_.name + " delivers again");
      }
    }
  }

  void Publish() {
    const int64_t wall = impl_->env->clock()->NowNanos();
    std::vector<StreamAccount> accounts;
    for (auto& [dir, st] : streams_) {
      StreamAccount a = st.account;
      a.delivered = st.cursor;
      a.stalled = st.stalled;
      int64_t oldest = 0;
      for (size_t i = 0; i < st.items.size(); ++i) {
        if (st.states[i] == ItemResult::State::kRetry && st.observed_ns[i] != 0) {
          oldest = oldest == 0 ? st.observed_ns[i] : std::min(oldest, st.observed_ns[i]);
        }
      }
      a.lag_seconds =
          oldest == 0 ? 0 : std::max<double>(0, static_cast<double>(wall - oldest) / 1e9);
      accounts.push_back(std::move(a));
    }
    MutexLock lock(&stats_mu_);
    stats_.streams = std::move(accounts);
  }

  Impl* const impl_;
  const OutputOptions o_;
  std::unique_ptr<Sink> sink_;
  std::mt19937_64 rng_;
  std::map<std::string, StreamState> streams_;  // output thread only
  std::thread thread_;
  mutable Mutex stats_mu_;
  OutputStats stats_ GUARDED_BY(stats_mu_);
};

namespace {
std::string LowerCase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

bool ValidOutputName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

StatusOr<Shape> ParseShape(const std::string& name) {
  if (name == "json") return Shape::kJson;
  if (name == "raw") return Shape::kRaw;
  if (name == "rfc5424") return Shape::kRfc5424;
  if (name == "ecs") return Shape::kEcs;
  if (name == "ocsf") return Shape::kOcsf;
  return InvalidArgumentError("shape \"" + name + "\" is not one of json, raw, rfc5424, ecs, ocsf");
}

std::string_view ShapeName(Shape shape) {
  switch (shape) {
    case Shape::kJson:
      return "json";
    case Shape::kRaw:
      return "raw";
    case Shape::kRfc5424:
      return "rfc5424";
    case Shape::kEcs:
      return "ecs";
    case Shape::kOcsf:
      return "ocsf";
  }
  return "?";
}

// "host:port" or several, comma-separated.
bool ValidHostPorts(std::string_view list) {
  for (;;) {
    const size_t comma = list.find(',');
    const std::string_view one = list.substr(0, comma);
    const size_t colon = one.rfind(':');
    uint32_t port = 0;
    if (colon == std::string_view::npos || colon == 0) return false;
    auto [end, err] = std::from_chars(one.data() + colon + 1, one.data() + one.size(), port);
    if (err != std::errc() || end != one.data() + one.size() || port == 0 || port > 65535) {
      return false;
    }
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

bool ShapeFitsType(Shape shape, const std::string& type) {
  // A file and Elasticsearch hold one JSON object per record.
  return (type != "file" && type != "elasticsearch") || IsJsonShape(shape);
}

Status ValidateOutput(const OutputOptions& o) {
  const std::string where = "output \"" + o.name + "\": ";
  if (!ValidOutputName(o.name)) {
    return InvalidArgumentError("output name \"" + o.name +
                                "\" must be 1-64 letters, digits, '-' or '_' (it names files)");
  }
  if (o.type == "file") {
    if (o.path.empty() || o.path.front() != '/') {
      return InvalidArgumentError(where + "a file output needs path: an absolute file name");
    }
    if (o.max_file_bytes < 4096)
      return InvalidArgumentError(where + "max_file_size is below 4 KiB");
  } else if (o.type == "relp" || o.type == "syslog") {
    if (o.cert_file.empty() != o.key_file.empty() || (!o.cert_file.empty() && !o.tls)) {
      return InvalidArgumentError(where + "cert_file and key_file go together, with tls = true");
    }
    if (o.address.find(',') != std::string::npos || !ValidHostPorts(o.address)) {
      return InvalidArgumentError(where + "a " + o.type + " output needs address = \"host:port\"");
    }
  } else if (o.type == "elasticsearch") {
    if (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0) {
      return InvalidArgumentError(where +
                                  "an elasticsearch output needs url = \"https://host:9200\"");
    }
    if (o.index.empty() || o.index.find_first_of(" ,*?\"<>|\\/#:") != std::string::npos ||
        o.index != LowerCase(o.index) || o.index[0] == '-' || o.index[0] == '_' ||
        o.index[0] == '+') {
      return InvalidArgumentError(where +
                                  "an elasticsearch output needs index: a lower-case index or data "
                                  "stream name, without spaces or any of , * ? \" < > | \\ / # :");
    }
  } else if (o.type == "nats") {
    if (o.url.rfind("nats://", 0) != 0 && o.url.rfind("tls://", 0) != 0) {
      return InvalidArgumentError(where +
                                  "a nats output needs url = \"nats://host:4222\" (or "
                                  "tls://host:4222; several, comma-separated)");
    }
    if (o.subject.empty() || o.subject.find_first_of(" \t\r\n*>") != std::string::npos ||
        o.subject.front() == '.' || o.subject.back() == '.' ||
        o.subject.find("..") != std::string::npos) {
      return InvalidArgumentError(where +
                                  "a nats output needs subject: dot-separated tokens, without "
                                  "spaces or the wildcards * and > (e.g. \"logs.gapless\")");
    }
  } else if (o.type == "splunk_hec") {
    if (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0) {
      return InvalidArgumentError(where +
                                  "a splunk_hec output needs url = \"https://splunk:8088\" (the "
                                  "HEC base: /services/collector/event is added)");
    }
    if (o.token_file.empty()) {
      return InvalidArgumentError(where +
                                  "a splunk_hec output needs token_file: a file (mode 0600) "
                                  "holding a HEC token that has indexer acknowledgement on");
    }
    if (o.sourcetype.empty()) return InvalidArgumentError(where + "sourcetype is empty");
    if (o.ack_poll_ms < 1 || o.ack_timeout_ms < o.ack_poll_ms) {
      return InvalidArgumentError(where + "ack_poll_ms must be >= 1 and <= ack_timeout_ms");
    }
  } else if (o.type == "kafka") {
    if (!ValidHostPorts(o.address)) {
      return InvalidArgumentError(where +
                                  "a kafka output needs address = \"broker1:9092,broker2:9092\" "
                                  "(the bootstrap brokers)");
    }
    if (o.topic.empty() || o.topic.size() > 249 ||
        o.topic.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            std::string::npos ||
        o.topic == "." || o.topic == "..") {
      return InvalidArgumentError(where +
                                  "a kafka output needs topic: 1-249 of letters, digits, '.', '_', "
                                  "'-'");
    }
  } else {
    return InvalidArgumentError(
        where + "type \"" + o.type +
        "\" is not one of file, relp, syslog, elasticsearch, nats, splunk_hec, kafka");
  }
  if (!ShapeFitsType(o.shape, o.type)) {
    return InvalidArgumentError(
        where + "a " + o.type +
        " output takes one JSON object per record: shape must be json, ecs or ocsf");
  }
  if (o.batch_records == 0 || o.batch_records > 100'000) {
    return InvalidArgumentError(where + "batch_records must be 1..100000");
  }
  if (o.retry_min_ms < 1 || o.retry_max_ms < o.retry_min_ms) {
    return InvalidArgumentError(where + "retry_min_ms must be >= 1 and <= retry_max_ms");
  }
  for (const std::string& glob : o.streams) {
    if (glob.empty()) return InvalidArgumentError(where + "an empty streams glob matches nothing");
  }
  return Status::Ok();
}

StatusOr<std::string> ReadSecretFile(const std::string& output, const std::string& what,
                                     const std::string& path) {
  auto text = identity::ReadSecretFile(path);
  // A mode or owner refusal names the file and the fix already.
  if (text.status().code() == StatusCode::kFailedPrecondition) return text.status();
  if (!text.ok()) {
    return Status(text.status().code(), "output " + output + ": cannot read " + what + " " + path +
                                            ": " + text.status().message());
  }
  std::string key = *text;
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) {
    key.pop_back();
  }
  if (key.empty()) {
    return InvalidArgumentError("output " + output + ": " + what + " " + path + " is empty");
  }
  return key;
}

Status CheckOutputFiles(const OutputOptions& o) {
  const std::string where = "output \"" + o.name + "\": ";
  for (const auto& [what, path] :
       {std::pair<const char*, const std::string*>{"api_key_file", &o.api_key_file},
        {"token_file", &o.token_file}}) {
    if (!path->empty()) {
      auto secret = ReadSecretFile(o.name, what, *path);
      if (!secret.ok()) return Status(secret.status().code(), where + secret.status().message());
    }
  }
  if (!o.key_file.empty()) {
    if (Status s = identity::CheckOwnerOnly(o.key_file); !s.ok()) {
      return Status(s.code(), where + "key_file: " + s.message());
    }
  }
  for (const auto& [what, path] :
       {std::pair<const char*, const std::string*>{"ca_file", &o.ca_file},
        {"cert_file", &o.cert_file}}) {
    if (!path->empty() && ::access(path->c_str(), R_OK) != 0) {
      return NotFoundError(where + what + " " + *path + " cannot be read: " + std::strerror(errno));
    }
  }
  if (o.type == "file") {
    const std::string dir = env::DirName(o.path);
    if (!env::Env::Posix()->GetChildren(dir).ok()) {
      return NotFoundError(where + "the directory " + dir + " of path does not exist");
    }
  }
  return Status::Ok();
}

StatusOr<uint64_t> LastSignedSize(env::Env* env, const std::string& stream_dir) {
  std::string last;
  RETURN_IF_ERROR(store::ForEachCheckpoint(env, stream_dir, [&](std::string_view n) { last = n; }));
  if (last.empty()) return uint64_t{0};
  ASSIGN_OR_RETURN(checkpoint::Note note, checkpoint::ParseNote(last));
  ASSIGN_OR_RETURN(checkpoint::Checkpoint cp, checkpoint::ParseCheckpoint(note.text));
  return cp.size;
}

// The sink of a validated output's type.
StatusOr<std::unique_ptr<Sink>> NewSink(env::Env* env, const OutputOptions& o) {
  if (o.type == "file") return NewFileSink(env, o);
  if (o.type == "relp") return NewRelpSink(o);
  if (o.type == "syslog") return NewSyslogSink(o);
  if (o.type == "nats") return NewNatsSink(o);
  if (o.type == "splunk_hec") return NewSplunkHecSink(o);
  if (o.type == "kafka") return NewKafkaSink(o);
  return NewElasticsearchSink(o);
}

StatusOr<std::unique_ptr<Outputs>> Outputs::Start(env::Env* env, const std::string& data_dir,
                                                  const std::vector<OutputOptions>& outputs,
                                                  alert::Alerts* alerts, SinkFactory factory) {
  std::unique_ptr<Outputs> out(new Outputs);
  out->impl_ = std::make_unique<Impl>();
  Impl* impl = out->impl_.get();
  impl->env = env;
  impl->data_dir = data_dir;
  impl->alerts = alerts;
  std::set<std::string> names;
  for (const OutputOptions& o : outputs) {
    RETURN_IF_ERROR(ValidateOutput(o));
    if (!names.insert(o.name).second) {
      return InvalidArgumentError("two outputs are named \"" + o.name + "\"");
    }
  }
  RETURN_IF_ERROR(env->CreateDir(store::Layout(data_dir).OutputsDir()));
  // Each output's folder at once, so that `gapless outputs` lists an output that never
  // confirmed anything (down from the start, refusing us) with everything waiting.
  for (const OutputOptions& o : outputs) {
    const store::Layout layout(data_dir);
    RETURN_IF_ERROR(env->CreateDir(layout.OutputDir(o.name)));
    std::string text(kDescriptionMagic);
    text += "type " + o.type + "\nconfirmed " + (o.type == "syslog" ? "no" : "yes") + "\n";
    for (const std::string& glob : o.streams) text += "stream " + glob + "\n";
    RETURN_IF_ERROR(env::WriteFileAtomically(env, layout.OutputDescription(o.name), text));
  }
  // What is stored and signed already: delivered from each cursor on.
  auto streams = store::Layout(data_dir).ListStreams(env);
  if (!streams.ok() && streams.status().code() != StatusCode::kNotFound) return streams.status();
  if (streams.ok()) {
    MutexLock lock(&impl->mu);
    for (const store::StreamRef& s : *streams) {
      ASSIGN_OR_RETURN(uint64_t size, LastSignedSize(env, s.dir));
      impl->signed_sizes[s.dir] = Impl::Signed{s.agent, s.epoch, s.dir, size};
    }
  }
  for (const OutputOptions& o : outputs) {
    StatusOr<std::unique_ptr<Sink>> sink = factory != nullptr ? factory(o) : NewSink(env, o);
    if (!sink.ok()) return sink.status();
    impl->outputs.push_back(std::make_unique<Impl::Output>(impl, o, std::move(*sink)));
  }
  for (auto& o : impl->outputs) o->Start();
  return out;
}

Outputs::~Outputs() { Stop(); }

void Outputs::Signed(const std::string& agent, const std::string& epoch_hex, const std::string& dir,
                     uint64_t size) {
  {
    MutexLock lock(&impl_->mu);
    Impl::Signed& s = impl_->signed_sizes[dir];
    s = Impl::Signed{agent, epoch_hex, dir, std::max(s.size, size)};
    ++impl_->generation;
  }
  impl_->cv.SignalAll();
}

void Outputs::Stop() {
  if (impl_ == nullptr) return;
  {
    MutexLock lock(&impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.SignalAll();
  for (auto& o : impl_->outputs) o->Interrupt();
  for (auto& o : impl_->outputs) o->Join();
}

std::vector<OutputStats> Outputs::stats() const {
  std::vector<OutputStats> out;
  for (const auto& o : impl_->outputs) out.push_back(o->stats());
  return out;
}

StatusOr<std::vector<OutputReport>> ReadReport(env::Env* env, const std::string& data_dir) {
  const store::Layout layout(data_dir);
  std::vector<OutputReport> out;
  auto names = env->GetChildren(layout.OutputsDir());
  if (!names.ok()) return out;  // no outputs/ yet: no output ever ran here
  ASSIGN_OR_RETURN(std::vector<store::StreamRef> streams, layout.ListStreams(env));
  std::sort(names->begin(), names->end());
  for (const std::string& name : *names) {
    if (!ValidOutputName(name)) continue;
    OutputReport r;
    r.name = name;
    std::vector<std::string> globs;
    const std::string description = layout.OutputDescription(name);
    if (env->FileExists(description)) {
      ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env, description));
      if (std::string_view(text).substr(0, kDescriptionMagic.size()) != kDescriptionMagic) {
        return DataLossError("the output description " + description + " cannot be read");
      }
      size_t pos = kDescriptionMagic.size();
      while (pos < text.size()) {
        const size_t nl = text.find('\n', pos);
        const std::string line = text.substr(pos, nl - pos);
        pos = nl == std::string::npos ? text.size() : nl + 1;
        if (line.rfind("type ", 0) == 0) r.type = line.substr(5);
        if (line == "confirmed no") r.confirmed = false;
        if (line.rfind("stream ", 0) == 0) globs.push_back(line.substr(7));
      }
    }
    for (const store::StreamRef& s : streams) {
      ReportRow row;
      row.agent = s.agent;
      row.epoch = s.epoch;
      row.selected = Selects(globs, s.agent);
      ASSIGN_OR_RETURN(row.signed_size, LastSignedSize(env, s.dir));
      const std::string cursor = layout.OutputCursor(name, s.agent, s.epoch);
      row.has_cursor = env->FileExists(cursor);
      auto next = ReadCursor(env, cursor);
      if (!next.ok()) {
        row.problem = next.status().message();
      } else {
        row.delivered = *next;
      }
      const std::string rejected = layout.OutputRejected(name, s.agent, s.epoch);
      if (env->FileExists(rejected)) {
        ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env, rejected));
        row.rejected = static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n'));
      }
      r.streams.push_back(std::move(row));
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace gapless::output
