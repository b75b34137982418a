// The agent's own alerts (docs/alerts.md, "Agent alerts"): what only the agent can see —
// its spool full, its inputs blocked, a destination it cannot reach, a spool that refuses
// writes — raised through the same alert module, journal and receivers as the
// collector's, so that somebody hears of it while the collector is down.
//
// Rules (thresholds in config::AgentAlertRules):
//   spool_full               the spool refused an append (full_policy block) or dropped
//                            records (drop_oldest / drop_newest); resolves once it did
//                            neither for spool_full_clear_s
//   inputs_blocked           inputs have waited for room in the spool for inputs_blocked_s
//   destination_unreachable  a destination has had no connection for
//                            destination_unreachable_s (critical when required)
//   spool_write_failed       the spool has a sticky write error: it refuses every append
//                            until the agent's heal (Agent::HealSpool) succeeds
// Subjects: the agent id; "<agent>/<destination>" for destination_unreachable.
//
// Pure logic over observations; the agent observes once a second (its alert thread).
// Every rule re-evaluates each observation, so an alert left firing in the journal by an
// earlier run resolves once its condition is gone. Not thread-safe: one caller.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "alert/alert.h"
#include "config/agent_config.h"

namespace gapless::agent {

struct AgentObservation {
  int64_t mono_ns = 0;
  std::string spool_dir;
  std::string full_policy;
  uint64_t spool_bytes = 0, spool_quota = 0;
  uint64_t refused_full = 0;     // appends refused by a full spool, since start
  uint64_t dropped_records = 0;  // by the full policy, since the spool was made
  uint64_t inputs_waiting = 0;   // inputs waiting for room now
  std::string spool_error;       // the sticky error; empty: none
  uint64_t durable = 0;          // the spool's durable size
  struct Destination {
    std::string name, address;
    bool required = true;
    bool connected = false;
    uint64_t connect_failures = 0;
    uint64_t acked_next = 0;
  };
  std::vector<Destination> destinations;
};

class AgentAlerts {
 public:
  AgentAlerts(alert::Alerts* alerts, std::string agent_id, config::AgentAlertRules rules);
  void Observe(const AgentObservation& o);

 private:
  void Spool(const AgentObservation& o);
  void Destinations(const AgentObservation& o);

  alert::Alerts* const alerts_;
  const std::string agent_;
  const config::AgentAlertRules rules_;
  bool first_ = true;
  uint64_t refused_ = 0, dropped_ = 0;  // as of the last observation
  int64_t last_full_ns_ = 0;            // 0: not full since start
  int64_t blocked_since_ns_ = 0;        // 0: not blocked
  int64_t started_ns_ = 0;
  std::map<std::string, int64_t> last_connected_ns_;  // per destination
};

}  // namespace gapless::agent
