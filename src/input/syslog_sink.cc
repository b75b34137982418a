#include "input/syslog_sink.h"

#include "base/log.h"

namespace gapless::input {

Stats Counters::Snapshot() const {
  Stats s;
  s.messages = messages.load(std::memory_order_relaxed);
  s.bytes = bytes.load(std::memory_order_relaxed);
  s.parse_errors = parse_errors.load(std::memory_order_relaxed);
  s.truncated = truncated.load(std::memory_order_relaxed);
  s.framing_errors = framing_errors.load(std::memory_order_relaxed);
  s.connections = connections.load(std::memory_order_relaxed);
  s.paused = paused.load(std::memory_order_relaxed);
  s.kernel_drops = kernel_drops.load(std::memory_order_relaxed);
  s.lost_at_stop = lost_at_stop.load(std::memory_order_relaxed);
  s.files = files.load(std::memory_order_relaxed);
  s.rotations = rotations.load(std::memory_order_relaxed);
  s.lost_bytes = lost_bytes.load(std::memory_order_relaxed);
  s.acked = acked.load(std::memory_order_relaxed);
  return s;
}

Status SyslogSink::Store(std::string_view bytes, uint16_t flags, int64_t observed_ns,
                         uint64_t* seq_end) {
  syslog::ParseSyslog(bytes, observed_ns, &event_, &storage_);
  event_.flags |= flags;
  event_.source = *source_;
  event_.peer = peer_;
  event_.observed_unix_ns = observed_ns;
  StatusOr<spool::AppendResult> r = ingest_->Append(event_);
  storage_.Clear();
  if (!r.ok()) return r.status();
  if (seq_end != nullptr && !r->dropped) *seq_end = r->seq + 1;
  counters_->messages.fetch_add(1, std::memory_order_relaxed);
  counters_->bytes.fetch_add(bytes.size(), std::memory_order_relaxed);
  if (event_.has(event::kParseError))
    counters_->parse_errors.fetch_add(1, std::memory_order_relaxed);
  if (event_.has(event::kTruncated)) counters_->truncated.fetch_add(1, std::memory_order_relaxed);
  if (event_.has(event::kFramingError)) {
    counters_->framing_errors.fetch_add(1, std::memory_order_relaxed);
  }
  return Status::Ok();
}

void RecordUnstoredAtStop(ingest::Ingest* ingest, const std::string& source, uint64_t count,
                          uint64_t bytes, int64_t first_ns, int64_t last_ns, Counters* counters) {
  if (count == 0) return;
  spool::LossRecord loss;
  loss.reason = spool::LossReason::kInputStopped;
  loss.record_count = count;
  loss.bytes = bytes;
  loss.time_from_unix_ns = first_ns;
  loss.time_to_unix_ns = last_ns;
  loss.detail = source + ": stopped while the spool was full";
  counters->lost_at_stop.fetch_add(count, std::memory_order_relaxed);
  StatusOr<uint64_t> r = ingest->AppendLoss(loss);
  if (!r.ok()) {
    LogError(
        source + ": " + std::to_string(count) +
        " messages could not be stored and their loss record failed too: " + r.status().ToString());
  }
}

}  // namespace gapless::input
