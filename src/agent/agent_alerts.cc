#include "agent/agent_alerts.h"

namespace gapless::agent {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

std::string Secs(int64_t ns) { return std::to_string(ns / kSecond) + " s"; }

}  // namespace

AgentAlerts::AgentAlerts(alert::Alerts* alerts, std::string agent_id, config::AgentAlertRules rules)
    : alerts_(alerts), agent_(std::move(agent_id)), rules_(rules) {}

void AgentAlerts::Observe(const AgentObservation& o) {
  if (first_) {
    first_ = false;
    started_ns_ = o.mono_ns;
    refused_ = o.refused_full;
    dropped_ = o.dropped_records;
  }
  Spool(o);
  Destinations(o);
}

void AgentAlerts::Spool(const AgentObservation& o) {
  const bool refused = o.refused_full > refused_;
  const bool dropped = o.dropped_records > dropped_;
  refused_ = o.refused_full;
  dropped_ = o.dropped_records;
  // Inputs also wait while the spool cannot write: that is spool_write_failed, not a full
  // spool nor blocked inputs (one cause, one alert).
  const bool waiting = o.inputs_waiting > 0 && o.spool_error.empty();
  const bool full_now = refused || dropped || waiting;
  if (full_now) last_full_ns_ = o.mono_ns;
  const std::vector<std::pair<std::string, std::string>> spool_evidence = {
      {"spool", o.spool_dir},
      {"bytes_used", std::to_string(o.spool_bytes)},
      {"quota_bytes", std::to_string(o.spool_quota)},
      {"full_policy", o.full_policy},
      {"refused_appends", std::to_string(o.refused_full)},
      {"dropped_records", std::to_string(o.dropped_records)},
      {"inputs_waiting", std::to_string(o.inputs_waiting)}};
  if (full_now) {
    alerts_->Fire("spool_full", agent_, "critical",
                  o.full_policy == "block"
                      ? "the spool is full: appends are refused and inputs wait (full_policy "
                        "block); a destination is not taking records, or the quota is too small"
                      : "the spool is full: records are dropped by full_policy " + o.full_policy +
                            ", each drop in a LOSS record",
                  spool_evidence);
  } else if (last_full_ns_ == 0 ||
             o.mono_ns - last_full_ns_ >= rules_.spool_full_clear_s * kSecond) {
    alerts_->Resolve("spool_full", agent_,
                     "the spool refused and dropped nothing for " +
                         std::to_string(rules_.spool_full_clear_s) + " s");
  }
  // Inputs retry as soon as there is room and may be refused again: a refusal since the
  // last observation counts as still blocked.
  const bool blocked = waiting || refused;
  if (!blocked) {
    blocked_since_ns_ = 0;
    alerts_->Resolve("inputs_blocked", agent_, "the inputs take records again");
  } else {
    if (blocked_since_ns_ == 0) blocked_since_ns_ = o.mono_ns;
    if (o.mono_ns - blocked_since_ns_ >= rules_.inputs_blocked_s * kSecond) {
      auto evidence = spool_evidence;
      evidence.emplace_back("blocked_for_s",
                            std::to_string((o.mono_ns - blocked_since_ns_) / kSecond));
      alerts_->Fire("inputs_blocked", agent_, "critical",
                    "inputs have waited for room in the full spool for more than " +
                        Secs(rules_.inputs_blocked_s * kSecond) +
                        ": senders of syslog, RELP and HTTP are held back, files and the "
                        "journal are read no further",
                    std::move(evidence));
    }
  }
  if (!o.spool_error.empty()) {
    alerts_->Fire("spool_write_failed", agent_, "critical",
                  "the spool cannot write, so inputs wait and nothing new is stored (the agent "
                  "heals it by itself once the disk takes writes again): " +
                      o.spool_error,
                  {{"spool", o.spool_dir}, {"error", o.spool_error}});
  } else {
    alerts_->Resolve("spool_write_failed", agent_, "the spool writes again");
  }
}

void AgentAlerts::Destinations(const AgentObservation& o) {
  std::map<std::string, int64_t> seen;
  for (const AgentObservation::Destination& d : o.destinations) {
    const std::string subject = agent_ + "/" + d.name;
    auto it = last_connected_ns_.find(d.name);
    int64_t last = it != last_connected_ns_.end() ? it->second : o.mono_ns;
    if (d.connected) last = o.mono_ns;
    seen[d.name] = last;
    if (d.connected) {
      alerts_->Resolve("destination_unreachable", subject, "connected to " + d.address + " again");
      continue;
    }
    const int64_t down = o.mono_ns - last;
    if (down < rules_.destination_unreachable_s * kSecond) continue;
    alerts_->Fire("destination_unreachable", subject, d.required ? "critical" : "warning",
                  "no connection to destination " + d.name + " (" + d.address + ") for more than " +
                      Secs(rules_.destination_unreachable_s * kSecond) +
                      "; records wait in the spool for it",
                  {{"destination", d.name},
                   {"address", d.address},
                   {"connect_failures", std::to_string(d.connect_failures)},
                   {"unacknowledged",
                    std::to_string(o.durable > d.acked_next ? o.durable - d.acked_next : 0)},
                   {"threshold_s", std::to_string(rules_.destination_unreachable_s)}});
  }
  for (const auto& [name, at] : last_connected_ns_) {
    if (seen.count(name) == 0) {
      alerts_->Resolve("destination_unreachable", agent_ + "/" + name,
                       "destination " + name + " is no longer configured");
    }
  }
  last_connected_ns_ = std::move(seen);
}

}  // namespace gapless::agent
