#include "collector/collector_metrics.h"

#include <chrono>

namespace gapless::collector {
namespace {

constexpr int64_t kWindowNs = 60'000'000'000;

double D(uint64_t v) { return static_cast<double>(v); }

}  // namespace

std::string MetricsText(const Collector& c, const monitor::Monitors* monitors,
                        const alert::Alerts* alerts) {
  metrics::Exposition e;
  const CollectorStats s = c.stats();
  e.Counter("gapless_collector_connections_total", "Connections accepted.", D(s.connections));
  e.Counter("gapless_collector_connections_refused_total",
            "Connections closed at accept: over max_connections or max_connections_per_address.",
            D(s.connections_refused));
  e.Counter("gapless_collector_authenticated_total", "Connections whose agent proved its key.",
            D(s.authenticated));
  e.Counter("gapless_collector_batches_total", "Batches stored.", D(s.batches));
  e.Counter("gapless_collector_records_total", "Records stored (new ones only).", D(s.records));
  e.Counter("gapless_collector_duplicates_total", "Re-sent records already stored.",
            D(s.duplicates));
  e.Counter("gapless_collector_equivocations_total",
            "Re-sent seqs with other bytes than stored (kept as evidence).", D(s.equivocations));
  e.Counter("gapless_collector_enrolled_total", "Agents enrolled with a token.", D(s.enrolled));
  e.Gauge("gapless_collector_open_streams", "Stream stores open now (max_open_streams).",
          D(s.open_streams));
  e.Counter("gapless_collector_streams_closed_total",
            "Idle streams signed and closed to stay within max_open_streams.", D(s.streams_closed));
  e.Counter("gapless_collector_epochs_refused_total",
            "Hellos refused past max_new_epochs_per_agent (epoch_storm).", D(s.epochs_refused));
  e.Counter("gapless_collector_heartbeats_total", "Heartbeats received.", D(s.heartbeats));
  e.Counter("gapless_collector_agent_checkpoints_total",
            "Agent checkpoints compared with the store.", D(s.agent_checkpoints_verified),
            {{"result", "verified"}});
  e.Counter("gapless_collector_agent_checkpoints_total",
            "Agent checkpoints compared with the store.", D(s.agent_checkpoints_invalid),
            {{"result", "invalid"}});
  for (size_t code = 1; code < s.rejected.size(); ++code) {
    const std::string_view name = wire::ErrorCodeName(static_cast<wire::ErrorCode>(code));
    if (name.empty() || name == "unknown") continue;
    e.Counter("gapless_collector_rejected_total", "Connections closed with an error frame.",
              D(s.rejected[code]), {{"code", std::string(name)}});
  }
  e.Counter("gapless_collector_witness_cosigned_total", "Checkpoints cosigned by witnesses.",
            D(s.witnessing.cosigned));
  e.Counter("gapless_collector_witness_refused_total", "Witness answers of another history.",
            D(s.witnessing.refused));
  e.Counter("gapless_collector_witness_failed_total", "Witness requests that failed.",
            D(s.witnessing.failed));
  e.Counter("gapless_collector_archives_total", "Rolling archives written and verified.",
            D(s.archiving.archives));
  e.Counter("gapless_collector_archive_failures_total", "Rolling-archive rounds with an error.",
            D(s.archiving.failed));
  // Samples of one name together (metrics.h): one loop per name.
  for (const output::OutputStats& o : s.outputs) {
    e.Counter("gapless_output_delivered_total",
              "Records the downstream confirmed (for syslog: sent, unconfirmed).", D(o.delivered),
              {{"output", o.name}, {"type", o.type}, {"confirmed", o.confirmed ? "yes" : "no"}});
  }
  for (const output::OutputStats& o : s.outputs) {
    e.Counter("gapless_output_failures_total", "Downstream calls that failed (retried).",
              D(o.failures), {{"output", o.name}});
  }
  auto each_stream = [&](const char* name, const char* help, bool counter, auto value) {
    for (const output::OutputStats& o : s.outputs) {
      for (const output::StreamAccount& a : o.streams) {
        const metrics::Labels l = {{"output", o.name}, {"agent", a.agent}, {"epoch", a.epoch}};
        if (counter) {
          e.Counter(name, help, value(a), l);
        } else {
          e.Gauge(name, help, value(a), l);
        }
      }
    }
  };
  using A = output::StreamAccount;
  each_stream("gapless_output_delivered_seq", "Every seq below it is confirmed (or rejected).",
              false, [](const A& a) { return D(a.delivered); });
  each_stream(
      "gapless_output_lag_records", "Signed records not yet confirmed.", false,
      [](const A& a) { return D(a.signed_size > a.delivered ? a.signed_size - a.delivered : 0); });
  each_stream("gapless_output_lag_seconds", "Age of the oldest record not yet confirmed.", false,
              [](const A& a) { return a.lag_seconds; });
  each_stream("gapless_output_retried_total", "Records sent again.", true,
              [](const A& a) { return D(a.retried); });
  each_stream("gapless_output_rejected_total", "Records the downstream refused for good.", true,
              [](const A& a) { return D(a.rejected); });
  each_stream("gapless_output_unreadable_total", "Records damaged in the store, not delivered.",
              true, [](const A& a) { return D(a.unreadable); });
  each_stream("gapless_output_stalled", "1 while output_stalled fires.", false,
              [](const A& a) { return a.stalled ? 1.0 : 0.0; });
  if (monitors != nullptr) {
    const auto streams = monitors->Streams();
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    auto each = [&](const char* name, const char* help, auto value) {
      for (const ledger::StreamRow& r : streams) {
        e.Gauge(name, help, value(r), {{"agent", r.agent}, {"epoch", r.epoch}});
      }
    };
    each("gapless_stream_agent_head_seq", "The agent's spool head, from its heartbeats.",
         [](const ledger::StreamRow& r) { return D(r.head); });
    each("gapless_stream_stored_seq", "One past the last record stored durably.",
         [](const ledger::StreamRow& r) { return D(r.stored); });
    each("gapless_stream_lag_records", "Records the agent holds that the collector does not.",
         [](const ledger::StreamRow& r) { return D(r.head > r.stored ? r.head - r.stored : 0); });
    each("gapless_stream_seconds_since_heartbeat", "Seconds since the last heartbeat (-1: none).",
         [&](const ledger::StreamRow& r) {
           return r.last_heartbeat_ns == 0 ? -1.0 : D((now - r.last_heartbeat_ns) / 1'000'000'000);
         });
    each("gapless_stream_agent_spool_bytes", "The agent's spool use, from its heartbeats.",
         [](const ledger::StreamRow& r) { return D(r.spool_bytes); });
    each("gapless_stream_agent_spool_quota_bytes", "The agent's spool quota.",
         [](const ledger::StreamRow& r) { return D(r.spool_quota); });
  }
  if (alerts != nullptr) {
    const std::vector<alert::AlertEvent> now_firing = alerts->Firing();
    std::map<std::pair<std::string, std::string>, int> firing;
    for (const alert::AlertEvent& a : now_firing) ++firing[{a.name, a.severity}];
    e.Gauge("gapless_alerts_firing_total", "Alerts firing now, all names.", D(now_firing.size()));
    for (const auto& [k, n] : firing) {
      e.Gauge("gapless_alerts_firing", "Alerts firing now, by name and severity.", n,
              {{"name", k.first}, {"severity", k.second}});
    }
    const auto outputs = alerts->output_stats();
    for (const auto& o : outputs) {
      e.Counter("gapless_alert_deliveries_total", "Alert events an output's receiver took.",
                D(o.delivered), {{"url", o.url}});
    }
    for (const auto& o : outputs) {
      e.Counter("gapless_alert_delivery_failures_total", "Failed delivery attempts (retried).",
                D(o.failures), {{"url", o.url}});
    }
    for (const auto& o : outputs) {
      e.Gauge("gapless_alert_pending_bytes", "Journal bytes an output has not delivered yet.",
              D(o.pending_bytes), {{"url", o.url}});
    }
  }
  return e.text();
}

metrics::Health HealthCheck::Check(const Collector& c, const monitor::Monitors* monitors,
                                   const alert::Alerts* alerts, int64_t now) {
  metrics::Health h;
  const CollectorStats s = c.stats();
  for (const auto& [stream, error] : s.failing_stores) {
    h.problems.push_back("the store of " + stream + " cannot write (" + error +
                         "): its records are not acknowledged; it is reopened by itself once "
                         "the disk takes writes again (free space under the data directory)");
  }
  if (alerts != nullptr && alerts->journal_failing()) {
    h.problems.push_back(
        "the alert journal cannot be written (disk full?): alerts are delivered "
        "from memory and journaled once it can");
  }
  if (monitors != nullptr && monitors->ledger_failing()) {
    h.problems.push_back("the ledger cannot be written (see the log)");
  }
  for (const output::OutputStats& o : s.outputs) {
    for (const output::StreamAccount& a : o.streams) {
      if (o.required && a.stalled) {
        h.problems.push_back("required output " + o.name + " is stalled on " + a.agent + "/" +
                             a.epoch + " (" + std::to_string(a.signed_size - a.delivered) +
                             " records waiting)" +
                             (o.last_error.empty() ? "" : ": " + o.last_error));
      }
    }
  }
  if (alerts != nullptr) {
    for (const auto& o : alerts->output_stats()) {
      if (output_failures_[o.url].Check(o.failures, now, kWindowNs) && o.pending_bytes > 0) {
        h.problems.push_back("alerts are not reaching " + o.url + " (failed within 60 s, " +
                             std::to_string(o.pending_bytes) + " journal bytes pending)");
      }
    }
  }
  return h;
}

}  // namespace gapless::collector
