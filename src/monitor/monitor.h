// Monitors: the collector-side rules that turn what it hears from agents (heartbeats) and
// what it stores into alerts, so that "alive but not delivering" — the 2024 signature —
// is known within a minute. Pure logic over observations and a clock; the caller feeds
// observations and calls Tick() every second or so.
//
// Rules (defaults; each threshold a MonitorOptions knob):
//   agent_silent      no heartbeat from a stream's agent for 60 s
//   delivery_stalled  the agent's spool head is ahead of what the collector stored, and
//                     the stored point has not moved for 60 s
//   clock_skew        the agent's wall clock differs from the collector's by > 30 s
//   gap_open          a missing range not filled within 60 s
//   declared_loss     the agent declared records lost (a LOSS record); fires at once,
//                     resolves after declared_loss_hold_s (1 h) — it is an event to see
// Each alert's subject is "<agent>/<epoch>"; gap_open's is "<agent>/<epoch>/<first>".
//
// Status: the rules and their tests are built; heartbeats (their only source for the
// first three rules) are not sent by agents yet (issue 5).
//
// Thread-safe: one mutex; alerts are raised outside it.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "alert/alert.h"
#include "env/env.h"

namespace gapless::monitor {

struct MonitorOptions {
  int64_t agent_silent_s = 60;
  int64_t delivery_stalled_s = 60;
  int64_t clock_skew_s = 30;
  int64_t gap_open_s = 60;
  int64_t declared_loss_hold_s = 3600;
};

struct Heartbeat {
  std::string agent;
  std::string epoch;
  int64_t agent_wall_ns = 0;  // the agent's clock when it sent the heartbeat
  uint64_t head_seq = 0;      // one past the spool's newest durable record
  uint64_t spool_bytes = 0;
  uint64_t spool_quota = 0;
};

class Monitors {
 public:
  Monitors(alert::Alerts* alerts, env::Clock* clock, MonitorOptions options = {});

  void OnHeartbeat(const Heartbeat& hb);
  // The collector's durable point of a stream moved (or was first seen).
  void OnStored(const std::string& agent, const std::string& epoch, uint64_t stored_next);
  // Seqs [first, last] are missing (opened) or were filled / declared (closed).
  void OnGapOpened(const std::string& agent, const std::string& epoch, uint64_t first,
                   uint64_t last);
  void OnGapClosed(const std::string& agent, const std::string& epoch, uint64_t first);
  void OnDeclaredLoss(const std::string& agent, const std::string& epoch, uint64_t first,
                      uint64_t last, const std::string& reason);
  // Evaluates the time-based rules.
  void Tick();

 private:
  struct Stream {
    int64_t last_heartbeat_ns = 0;  // collector clock; 0: never
    uint64_t head = 0;
    uint64_t stored = 0;
    int64_t stored_moved_ns = 0;  // when `stored` last changed (or was first seen)
    std::map<uint64_t, std::pair<uint64_t, int64_t>> gaps;  // first -> (last, opened_ns)
    std::map<uint64_t, int64_t> losses;                     // first -> fired_ns
  };
  struct Change {
    bool fire = false;
    std::string name, subject, severity, summary;
    std::vector<std::pair<std::string, std::string>> evidence;
  };
  Stream& At(const std::string& agent, const std::string& epoch);  // mu_ held
  void Apply(const std::vector<Change>& changes);                  // mu_ not held

  alert::Alerts* const alerts_;
  env::Clock* const clock_;
  const MonitorOptions options_;
  std::mutex mu_;
  std::map<std::string, Stream> streams_;  // GUARDED_BY(mu_), by "<agent>/<epoch>"
};

}  // namespace gapless::monitor
