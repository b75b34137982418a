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
//   epoch_reset       an agent started a new epoch while its old one still had records
//                     the collector never stored (the old spool was lost)
//   destination_stalled  another destination of the agent (heartbeats carry each one's
//                     acked seq) is behind the agent's head and has not moved for 60 s
//                     (delivery_stalled_s): one collector of two is stuck or gone
// Per source (records counted by the minute the agent read them, volume.h):
//   volume_drop       the last 10 minutes hold under 20% of the source's baseline, and
//                     so few records would be implausible even at 40% of it (volume.h);
//                     resolves at 40%
//   source_silent     nothing at all from the source for 300 s, or for the shortest of
//                     10, 20, 40, 60 minutes in which silence is implausible at 40% of
//                     its baseline (a quiet source needs longer to be judged silent)
//   ingestion_lag     in a minute, even the freshest record of the source arrived more
//                     than 300 s after its event time (its read time without one)
//   future_timestamps records whose event time is more than 60 s ahead of the collector
// Subjects: "<agent>/<epoch>"; gap_open's and declared_loss's add "/<first>",
// destination_stalled's "/<destination>"; per
// source "<agent>/<source>". Per-source rules are evaluated once a minute.
//
// With a ledger (ledger.h), Tick writes what changed since the last write — streams,
// gaps, declared losses, agent checkpoints, the firing alerts, per-source minute counts
// — in one transaction, and Load seeds the monitors from it at start.
//
// Thread-safe: one mutex; alerts are raised and the ledger written outside it. Tick and
// Load from one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "alert/alert.h"
#include "env/env.h"
#include "ledger/ledger.h"
#include "monitor/volume.h"

namespace gapless::monitor {

struct MonitorOptions {
  int64_t agent_silent_s = 60;
  int64_t delivery_stalled_s = 60;
  int64_t clock_skew_s = 30;
  int64_t gap_open_s = 60;
  int64_t declared_loss_hold_s = 3600;
  int64_t volume_window_minutes = 10;
  double volume_drop_ratio = 0.2;
  int64_t source_silent_s = 300;
  int64_t ingestion_lag_s = 300;
  int64_t future_timestamps_s = 60;
  BaselineOptions baseline;
};

// One record of a batch, as the collector decoded it.
struct RecordSeen {
  std::string_view source;
  int64_t observed_ns = 0;  // the agent's clock when it read the record
  int64_t event_ns = 0;     // from the message; 0: none
};

struct Heartbeat {
  std::string agent;
  std::string epoch;
  int64_t agent_wall_ns = 0;  // the agent's clock when it sent the heartbeat
  uint64_t head_seq = 0;      // one past the spool's newest durable record
  uint64_t spool_bytes = 0;
  uint64_t spool_quota = 0;
  // Each destination's acked seq as the agent knows it, and which one is this collector.
  std::vector<std::pair<std::string, uint64_t>> destinations;
  std::string to;
};

class Monitors {
 public:
  // `ledger` may be null; not owned, must outlive the monitors.
  Monitors(alert::Alerts* alerts, env::Clock* clock, MonitorOptions options = {},
           ledger::Ledger* ledger = nullptr);

  // Seeds per-source history (the last 8 days), streams and open gaps from the ledger.
  // A stream's agent gets a fresh silence clock: a restart is not a missed heartbeat,
  // but an agent that does not come back is reported after agent_silent_s.
  Status Load();

  void OnHeartbeat(const Heartbeat& hb);
  // The collector's durable point of a stream moved (or was first seen).
  void OnStored(const std::string& agent, const std::string& epoch, uint64_t stored_next);
  // Seqs [first, last] are missing; OnStored closes the gap once the stored point passes it.
  void OnGapOpened(const std::string& agent, const std::string& epoch, uint64_t first,
                   uint64_t last);
  void OnDeclaredLoss(const std::string& agent, const std::string& epoch, uint64_t first,
                      uint64_t last, const std::string& reason);
  // New DATA records of a stream arrived (after they were appended).
  void OnRecords(const std::string& agent, const std::vector<RecordSeen>& records);
  // An agent checkpoint of a stream was compared with the store (size 0: unreadable).
  void OnAgentCheckpoint(const std::string& agent, const std::string& epoch, uint64_t size,
                         bool valid, const std::string& detail);
  // Evaluates the time-based rules, then writes the ledger.
  void Tick();
  // What the monitors know of each stream now (as the ledger's rows).
  std::vector<ledger::StreamRow> Streams() const;
  // The last ledger write failed.
  bool ledger_failing() const { return ledger_failing_.load(std::memory_order_relaxed); }

 private:
  struct Stream {
    int64_t first_seen_ns = 0;
    int64_t last_heartbeat_ns = 0;  // collector clock; 0: never
    int64_t agent_wall_ns = 0;
    uint64_t spool_bytes = 0, spool_quota = 0;
    uint64_t head = 0;
    uint64_t stored = 0;
    int64_t stored_moved_ns = 0;  // when `stored` last changed (or was first seen)
    std::map<uint64_t, std::pair<uint64_t, int64_t>> gaps;  // first -> (last, opened_ns)
    std::map<uint64_t, int64_t> losses;                     // first -> fired_ns
    // The agent's other destinations: name -> (acked seq, when it last moved).
    std::map<std::string, std::pair<uint64_t, int64_t>> others;
  };
  struct Source {
    SourceHistory history;
    uint64_t minute_records = 0;            // arrived in the current minute
    int64_t minute_min_lag_ns = INT64_MAX;  // the freshest record's lag, this minute
    uint64_t minute_future = 0;             // records too far ahead, this minute
    int64_t minute_max_ahead_ns = 0;
    bool silent = false, dropping = false, lagging = false, future = false;  // firing
  };
  struct Change {
    bool fire = false;
    std::string name, subject, severity, summary;
    std::vector<std::pair<std::string, std::string>> evidence;
  };
  // mu_ held; marks the stream for the ledger.
  Stream& At(const std::string& agent, const std::string& epoch);
  // mu_ held, each of them.
  void WriteLedger();
  static ledger::StreamRow Row(const std::string& key, const Stream& s);
  void LedgerGap(const std::string& stream, uint64_t first, uint64_t last, int64_t opened_ns,
                 int64_t closed_ns);
  std::optional<Change> NoteEpoch(const std::string& agent, const std::string& epoch);
  void Moved(const std::string& subject, Stream* s, uint64_t stored_next,
             std::vector<Change>* changes);
  void EvaluateSources(int64_t minute, std::vector<Change>* changes);
  void Apply(const std::vector<Change>& changes);  // mu_ not held

  alert::Alerts* const alerts_;
  env::Clock* const clock_;
  const MonitorOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Stream> streams_;      // GUARDED_BY(mu_), by "<agent>/<epoch>"
  std::map<std::string, std::string> epochs_;  // GUARDED_BY(mu_), agent -> newest epoch
  std::map<std::string, Source> sources_;      // GUARDED_BY(mu_), by "<agent>/<source>"
  int64_t evaluated_minute_ = 0;               // GUARDED_BY(mu_)
  ledger::Ledger* const ledger_;
  // What the ledger has not yet taken. GUARDED_BY(mu_)
  std::set<std::string> dirty_streams_;
  std::set<std::pair<std::string, int64_t>> dirty_minutes_;  // (agent/source, minute)
  ledger::Delta unwritten_;                                  // rows of a failed write too
  std::atomic<bool> ledger_failing_{false};                  // written by the Tick thread
};

}  // namespace gapless::monitor
