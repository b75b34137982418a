// journald input through sd-journal (libsystemd).
//
// sd_journal handles are not thread-safe and their calls block, so one reader thread owns
// the handle for the input's whole life. It reads entries in order, appends each as one
// event whose raw bytes are the entry in the journal export format, and keeps the cursor
// of every appended entry with its seq. Each entry is appended with its cursor as the
// input's spool position (written behind it at the group commit), so after kill -9 the input
// resumes just after the last entry the spool holds: no duplicates, no gaps. The cursor
// is also saved (atomically, in state_dir) once the spool says the entry is durable: the
// fallback for a spool without positions (new, or written by an older version), where
// entries durable but not yet covered by the saved cursor are read again.
// A full spool (block policy) makes the thread wait for room; it never skips an entry.
// Stop joins the reader thread, which notices within ~200 ms (sd_journal_wait timeout).
#include <systemd/sd-journal.h>

#include <atomic>
#include <cctype>
#include <cstring>
#include <deque>
#include <thread>

#include "base/log.h"
#include "env/env.h"
#include "input/input.h"
#include "input/syslog_sink.h"

namespace gapless::input {
namespace {

constexpr uint64_t kWaitUsec = 200'000;        // sd_journal_wait, so Stop is seen quickly
constexpr int64_t kSaveEveryNs = 200'000'000;  // cursor saves at most this often

// Appends one "FIELD=value" journal datum in the export format: "FIELD=value\n", or, for
// values with newlines or control bytes, "FIELD\n" + 64-bit little-endian length + value
// + "\n". Returns the field name and value as offsets into *raw.
struct Datum {
  size_t key_at, key_len, value_at, value_len;
};
Datum AppendExport(std::string_view datum, std::string* raw) {
  const size_t eq = datum.find('=');
  const std::string_view key = datum.substr(0, eq == std::string_view::npos ? datum.size() : eq);
  const std::string_view value = eq == std::string_view::npos ? "" : datum.substr(eq + 1);
  bool binary = false;
  for (const char c : value) binary = binary || (static_cast<unsigned char>(c) < 0x20 && c != '\t');
  Datum d{raw->size(), key.size(), 0, value.size()};
  raw->append(key);
  if (binary) {
    raw->push_back('\n');
    uint64_t n = value.size();
    for (int i = 0; i < 8; ++i, n >>= 8) raw->push_back(static_cast<char>(n & 0xff));
  } else {
    raw->push_back('=');
  }
  d.value_at = raw->size();
  raw->append(value);
  raw->push_back('\n');
  return d;
}

class JournaldInput final : public Input {
 public:
  JournaldInput(const Context& ctx, const JournaldOptions& options) : ctx_(ctx), options_(options) {
    name_ = options.name.empty()
                ? (options.directory.empty() ? "journald" : "journald:" + options.directory)
                : options.name;
    std::string safe;
    for (char c : name_) safe += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    state_path_ = env::JoinPath(ctx.state_dir, safe + ".cursor");
  }
  ~JournaldInput() override { Stop(); }

  const std::string& name() const override { return name_; }
  uint16_t port() const override { return 0; }
  Stats stats() const override { return counters_.Snapshot(); }

  Status Start() override {
    int r = options_.directory.empty()
                ? sd_journal_open(&journal_, SD_JOURNAL_LOCAL_ONLY)
                : sd_journal_open_directory(&journal_, options_.directory.c_str(), 0);
    if (r < 0) {
      return UnavailableError(name_ + ": cannot open the journal" +
                              (options_.directory.empty() ? "" : " in " + options_.directory) +
                              ": " + std::strerror(-r));
    }
    for (const std::string& m : options_.matches) {
      r = sd_journal_add_match(journal_, m.data(), m.size());
      if (r < 0) {
        sd_journal_close(journal_);
        journal_ = nullptr;
        return InvalidArgumentError(name_ + ": bad match \"" + m + "\": " + std::strerror(-r));
      }
    }
    RETURN_IF_ERROR(Position());
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  void Stop() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (journal_ != nullptr) {
      sd_journal_close(journal_);
      journal_ = nullptr;
    }
  }

 private:
  // Seeks to just after the saved cursor, or to the head / tail on a first start.
  Status Position() {
    // The spool's position is never behind the state file's cursor: it is written with
    // each entry, the state file only once entries are durable.
    auto saved = env::ReadFileToString(env::Env::Posix(), state_path_);
    bool in_spool_used = false;
    if (auto in_spool = ctx_.ingest->spool()->Position(PositionKey())) {
      saved = *in_spool;
      in_spool_used = true;
      LogInfo(name_ + ": resuming after the spool's position (the last stored entry)");
    }
    if (saved.ok() && !saved->empty()) {
      std::string cursor = *saved;
      while (!cursor.empty() && cursor.back() == '\n') cursor.pop_back();
      if (sd_journal_seek_cursor(journal_, cursor.c_str()) >= 0 && sd_journal_next(journal_) > 0) {
        if (sd_journal_test_cursor(journal_, cursor.c_str()) > 0) {  // stored
          // A commit cut short by a crash can leave entries in the spool without the
          // position frame that would follow them: they are the next entries, in order.
          const uint64_t uncovered = in_spool_used ? UncoveredEntries() : 0;
          for (uint64_t i = 0; i < uncovered && sd_journal_next(journal_) > 0; ++i) {
          }
          if (uncovered > 0) {
            LogInfo(name_ + ": " + std::to_string(uncovered) +
                    " entries after the spool's position are stored already; skipped");
          }
          return Status::Ok();
        }
        LogWarning(name_ +
                   ": the entry of the saved cursor is gone (journal vacuumed or "
                   "rotated while the agent was down?); reading from the next one");
        sd_journal_previous(journal_);  // so that Run's first next() returns this entry
        return Status::Ok();
      }
      sd_journal_seek_cursor(journal_, cursor.c_str());  // nothing after it yet
      return Status::Ok();
    }
    if (options_.start_at == StartAt::kEnd) {
      sd_journal_seek_tail(journal_);
      sd_journal_previous(journal_);
    } else {
      sd_journal_seek_head(journal_);
    }
    return Status::Ok();
  }

  void Run() {
    while (!stop_) {
      const int r = sd_journal_next(journal_);
      if (r < 0) {
        LogError(name_ + ": reading the journal failed: " + std::strerror(-r));
        sd_journal_wait(journal_, kWaitUsec);
        continue;
      }
      if (r == 0) {
        SaveDurableCursor(/*force=*/true);
        sd_journal_wait(journal_, kWaitUsec);
        continue;
      }
      if (!StoreEntry()) break;  // stopping while the spool was full or failed
      SaveDurableCursor(false);
    }
    SaveDurableCursor(true);
  }

  // Appends the current entry, waiting for room as long as the spool is full.
  bool StoreEntry() {
    BuildEvent();
    std::string cursor;
    if (char* c = nullptr; sd_journal_get_cursor(journal_, &c) >= 0) {
      cursor = c;
      std::free(c);
    }
    const std::string key = PositionKey();
    // The cursor goes with the entry: the spool's position is always its last entry's.
    // (A cursor too long for a position, or none, leaves the state file as the fallback.)
    const bool with_position = !cursor.empty() && cursor.size() <= spool::kMaxPositionValueBytes;
    const spool::PositionUpdate position{key, cursor};
    for (;;) {
      StatusOr<spool::AppendResult> r =
          ctx_.ingest->Append(event_, with_position ? &position : nullptr);
      if (r.ok()) {
        if (!cursor.empty() && !r->dropped) pending_.push_back({r->seq + 1, cursor});
        counters_.messages.fetch_add(1, std::memory_order_relaxed);
        counters_.bytes.fetch_add(event_.raw.size(), std::memory_order_relaxed);
        if (event_.has(event::kTruncated)) counters_.truncated.fetch_add(1);
        return true;
      }
      if (r.status().code() != StatusCode::kResourceExhausted && !failed_) {
        LogError(name_ + ": cannot store journal entries: " + r.status().ToString() +
                 "; reading stops (nothing is skipped)");
        failed_ = true;
      }
      if (r.status().code() == StatusCode::kResourceExhausted) {
        counters_.paused.fetch_add(1, std::memory_order_relaxed);
        while (!stop_ && !ctx_.ingest->spool()->WaitForRoom(event_.raw.size() + 4096, 200)) {
        }
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a failed spool
      }
      if (stop_) return false;  // not stored: the saved cursor is before it; read again later
    }
  }

  void BuildEvent() {
    raw_.clear();
    data_.clear();
    const void* p = nullptr;
    size_t n = 0;
    SD_JOURNAL_FOREACH_DATA(journal_, p, n) {
      data_.push_back(AppendExport(std::string_view(static_cast<const char*>(p), n), &raw_));
    }
    event_ = event::Event();
    event_.format = event::Format::kJournal;
    event_.source = name_;
    event_.observed_unix_ns = ctx_.clock->NowNanos();
    uint64_t usec = 0;
    if (sd_journal_get_realtime_usec(journal_, &usec) >= 0) {
      event_.event_unix_ns = static_cast<int64_t>(usec) * 1000;
      event_.flags |= event::kEventTime;
    }
    std::string_view raw = raw_;
    if (raw.size() > options_.max_message_bytes) {
      raw = raw.substr(0, options_.max_message_bytes);
      event_.flags |= event::kTruncated;
    }
    event_.raw = raw;
    for (const Datum& d : data_) {
      if (d.value_at + d.value_len > raw.size()) break;  // cut off by truncation
      const std::string_view key(raw.data() + d.key_at, d.key_len);
      const std::string_view value(raw.data() + d.value_at, d.value_len);
      if (key == "MESSAGE") {
        event_.message = value;
      } else if (key == "_HOSTNAME") {
        event_.host = value;
      } else if (key == "SYSLOG_IDENTIFIER" || (key == "_COMM" && event_.app.empty())) {
        event_.app = value;
      } else if (key == "_PID" || (key == "SYSLOG_PID" && event_.procid.empty())) {
        event_.procid = value;
      } else if (key == "PRIORITY" && value.size() == 1 && value[0] >= '0' && value[0] <= '7') {
        event_.severity = static_cast<uint8_t>(value[0] - '0');
      } else if (key == "SYSLOG_FACILITY" && !value.empty() && value.size() <= 2) {
        const int f = std::atoi(std::string(value).c_str());
        if (f >= 0 && f <= 23) event_.facility = static_cast<uint8_t>(f);
      } else {
        event_.fields.push_back({key, value});
      }
    }
  }

  // Saves the cursor of the newest durable entry (at most every 200 ms unless forced).
  void SaveDurableCursor(bool force) {
    const int64_t now = ctx_.clock->NowNanos();
    if (pending_.empty() || (!force && now - last_save_ns_ < kSaveEveryNs)) return;
    const uint64_t durable = ctx_.ingest->spool()->durable_size();
    std::string cursor;
    while (!pending_.empty() && pending_.front().seq_end <= durable) {
      cursor = std::move(pending_.front().cursor);
      pending_.pop_front();
    }
    if (cursor.empty()) return;
    last_save_ns_ = now;
    const Status s = env::WriteFileAtomically(env::Env::Posix(), state_path_, cursor + "\n");
    if (!s.ok()) LogError(name_ + ": cannot save the journal cursor: " + s.ToString());
  }

  struct Pending {
    uint64_t seq_end;
    std::string cursor;
  };

  // The records of this input stored after the last position frame recovery found.
  uint64_t UncoveredEntries() const {
    spool::Spool* spool = ctx_.ingest->spool();
    const std::optional<uint64_t> from = spool->recovered_position_seq();
    if (!from) return 0;
    auto reader = spool->NewReader(std::max(*from, spool->oldest_seq()));
    if (!reader.ok()) return 0;
    uint64_t n = 0;
    spool::Record r;
    for (;;) {
      StatusOr<bool> more = (*reader)->Next(&r);
      if (!more.ok() || !*more) break;
      event::Event e;
      if (r.type == spool::FrameType::kData && event::DecodeEvent(r.payload, &e).ok() &&
          e.source == name_) {
        ++n;
      }
    }
    return n;
  }

  std::string PositionKey() const {
    return "journald " + name_.substr(0, spool::kMaxPositionKeyBytes - 9);
  }

  const Context ctx_;
  const JournaldOptions options_;
  std::string name_;
  std::string state_path_;
  sd_journal* journal_ = nullptr;  // the reader thread's (Start/Stop: before/after it runs)
  std::thread thread_;
  std::atomic<bool> stop_{false};
  Counters counters_;
  // Reader thread only:
  std::deque<Pending> pending_;  // appended entries not yet known durable, in seq order
  int64_t last_save_ns_ = 0;
  bool failed_ = false;
  std::string raw_;
  std::vector<Datum> data_;
  event::Event event_;
};

}  // namespace

std::unique_ptr<Input> NewJournaldInput(const Context& ctx, const JournaldOptions& options) {
  return std::make_unique<JournaldInput>(ctx, options);
}

}  // namespace gapless::input
