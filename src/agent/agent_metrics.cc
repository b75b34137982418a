// The agent's /metrics and /health (docs/metrics.md).
#include "agent/agent.h"

#include <chrono>

namespace gapless::agent {
namespace {

constexpr int64_t kRefusalWindowNs = 60'000'000'000;

}  // namespace

std::string Agent::MetricsText() const {
  metrics::Exposition e;
  const spool::Stats s = spool_->stats();
  const metrics::Labels agent{{"agent", cfg_.id}};
  e.Gauge("gapless_agent_spool_next_seq", "One past the newest record appended to the spool.",
          static_cast<double>(s.next_seq), agent);
  e.Gauge("gapless_agent_spool_durable_records", "Records of the spool made durable (fsync).",
          static_cast<double>(s.durable_size), agent);
  e.Gauge("gapless_agent_spool_bytes", "Bytes the spool's segments use.",
          static_cast<double>(s.bytes_used), agent);
  e.Gauge("gapless_agent_spool_quota_bytes", "The spool's quota.",
          static_cast<double>(s.quota_bytes), agent);
  e.Gauge("gapless_agent_spool_segments", "Segment files in the spool.",
          static_cast<double>(s.segments), agent);
  e.Counter("gapless_agent_spool_dropped_records_total",
            "Records dropped by the full policy (each in a LOSS record).",
            static_cast<double>(s.dropped_records), agent);
  e.Counter("gapless_agent_spool_loss_records_total", "LOSS records written.",
            static_cast<double>(s.loss_records), agent);
  e.Counter("gapless_agent_spool_full_refusals_total",
            "Appends refused because the spool was full (policy block; inputs wait).",
            static_cast<double>(s.full_refusals), agent);
  const std::vector<InputStatus> inputs = Inputs();
  for (const InputStatus& in : inputs) {
    const metrics::Labels l{{"agent", cfg_.id}, {"input", in.name}};
    e.Counter("gapless_agent_input_messages_total", "Messages an input stored.",
              static_cast<double>(in.stats.messages), l);
  }
  for (const InputStatus& in : inputs) {
    const metrics::Labels l{{"agent", cfg_.id}, {"input", in.name}};
    e.Counter("gapless_agent_input_parse_errors_total", "Messages stored raw, flagged unparsed.",
              static_cast<double>(in.stats.parse_errors), l);
  }
  const std::vector<DestinationStatus> dests = Destinations();
  const int64_t now = clock_->MonotonicNanos();
  auto each = [&](const char* name, const char* help, bool counter, auto value) {
    for (const DestinationStatus& d : dests) {
      const metrics::Labels l{{"agent", cfg_.id}, {"destination", d.name}};
      if (counter) {
        e.Counter(name, help, static_cast<double>(value(d)), l);
      } else {
        e.Gauge(name, help, static_cast<double>(value(d)), l);
      }
    }
  };
  each("gapless_agent_destination_acked_seq", "Every seq below it is durable at the destination.",
       false, [](const DestinationStatus& d) { return d.stats.acked_next; });
  each("gapless_agent_destination_backlog_records", "Durable records not yet acknowledged.", false,
       [&](const DestinationStatus& d) {
         return s.durable_size > d.stats.acked_next ? s.durable_size - d.stats.acked_next : 0;
       });
  each("gapless_agent_destination_connected", "1 while the sender has a connection.", false,
       [](const DestinationStatus& d) { return d.stats.connected ? 1 : 0; });
  each("gapless_agent_destination_seconds_since_progress",
       "Seconds since the acknowledged seq last moved.", false, [&](const DestinationStatus& d) {
         return (now - d.stats.last_progress_mono_ns) / 1'000'000'000;
       });
  each("gapless_agent_destination_connect_failures_total", "Connections that failed.", true,
       [](const DestinationStatus& d) { return d.stats.connect_failures; });
  each("gapless_agent_destination_rejections_total", "Error frames from the destination.", true,
       [](const DestinationStatus& d) { return d.stats.rejections; });
  each("gapless_agent_destination_watchdog_restarts_total",
       "Times the watchdog restarted a stalled sender.", true,
       [](const DestinationStatus& d) { return d.watchdog_restarts; });
  return e.text();
}

metrics::Health Agent::CheckHealth() {
  metrics::Health h;
  const int64_t now = clock_->MonotonicNanos();
  if (Status e = spool_->sticky_error(); !e.ok()) {
    h.problems.push_back("the spool cannot write (" + e.message() +
                         "): inputs wait and nothing new is stored; it heals itself once the "
                         "disk takes writes again (free space under " +
                         env::JoinPath(cfg_.data_dir, "spool") + ")");
  }
  if (alerts_ != nullptr && alerts_->journal_failing()) {
    h.problems.push_back(
        "the alert journal cannot be written (disk full?): alerts are delivered "
        "from memory and journaled once it can");
  }
  const uint64_t refused = ingest_ ? ingest_->stats().refused_full : 0;
  if (refusals_.Check(refused, now, kRefusalWindowNs)) {
    h.problems.push_back(
        "the spool is full and refused writes within the last 60 s (full_policy block: inputs "
        "wait); a destination is not taking records fast enough, or the quota is too small");
  }
  const uint64_t durable = spool_->durable_size_lock_free();
  for (const DestinationStatus& d : Destinations()) {
    if (!d.required || durable <= d.stats.acked_next) continue;
    const int64_t idle = now - d.stats.last_progress_mono_ns;
    if (idle <= cfg_.watchdog_stall_ms * 1'000'000) continue;
    h.problems.push_back("destination " + d.name +
                         " is stalled: " + std::to_string(durable - d.stats.acked_next) +
                         " records unacknowledged, none acknowledged for " +
                         std::to_string(idle / 1'000'000'000) + " s");
  }
  return h;
}

}  // namespace gapless::agent
