// Agent: the spool, the ingest path and the inputs of one host, wired together.
//
// Threads: the caller's (Start, Reload, Stop), the input thread running the io_context
// (every input handler), Ingest's committer and room-watcher threads, one thread per
// destination's Sender (each owns its connection), and the watchdog. Inputs are started
// and stopped only on the input thread (Reload posts there and waits). The watchdog reads
// only atomics (the spool's lock-free durable size, each sender's stats) and its own
// list, guarded by its own mutex which no sender ever takes.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_alerts.h"
#include "alert/alert.h"
#include "alert/disk_space.h"
#include "base/mutex.h"
#include "base/status.h"
#include "config/agent_config.h"
#include "http/server.h"
#include "ingest/ingest.h"
#include "input/input.h"
#include "metrics/metrics.h"
#include "spool/spool.h"
#include "transport/heartbeat.h"
#include "transport/sender.h"

namespace gapless::agent {

struct DestinationStatus {
  std::string name;
  bool required = true;
  transport::SenderStats stats;
  uint64_t watchdog_restarts = 0;
};

struct InputStatus {
  std::string name;
  uint16_t port = 0;
  input::Stats stats;
};

class Agent {
 public:
  // Opens (recovering) the spool in cfg.data_dir/spool and starts every input. Fails,
  // with nothing left running, if any input cannot start.
  static StatusOr<std::unique_ptr<Agent>> Start(const config::AgentConfig& cfg,
                                                spool::RecoveryReport* report = nullptr);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Applies the inputs and destinations of a new configuration: inputs whose settings are
  // unchanged keep running untouched (their connections and buffers too); removed or
  // changed ones stop; new ones start. A changed destination's sender is reconfigured at
  // once: its connection is cancelled and what was not acknowledged is sent again to the
  // new endpoint. Spool and agent settings need a restart: a change there is reported in
  // the returned error and otherwise ignored.
  Status Reload(const config::AgentConfig& cfg);

  // Stops the inputs (recording anything they held as an input_stopped loss), makes
  // everything appended durable, closes the spool. Idempotent.
  void Stop();

  // Snapshot of every input, taken on the input thread. Call it from any other thread
  // (it waits for the input thread, so calling it from an input handler would deadlock).
  std::vector<InputStatus> Inputs() const;
  std::vector<DestinationStatus> Destinations() const;
  spool::Spool* spool() const { return spool_.get(); }
  // The Prometheus text of /metrics and the verdict of /health (agent_metrics.cc,
  // docs/metrics.md); served on cfg.metrics_listen when set. Health reads only atomics
  // and the watchdog's list, never the spool's or a sender's lock; call it from one
  // thread (it remembers when the spool last refused a write).
  std::string MetricsText() const;
  metrics::Health CheckHealth();
  // The metrics endpoint's port; 0 when it is off.
  uint16_t metrics_port() const { return metrics_ ? metrics_->port() : 0; }
  const config::AgentConfig& config() const { return cfg_; }
  // The agent's alerts (agent_alerts.h): journal cfg.alerts.journal.
  alert::Alerts* alerts() const { return alerts_.get(); }

 private:
  struct Running;
  Agent() = default;
  // Runs fn on the input thread and waits for it.
  void OnInputThread(const std::function<void()>& fn) const;
  Status StartInput(const config::InputConfig& in);
  Status StartSender(const transport::DestinationOptions& d);
  void WatchdogLoop();
  // The alert thread: heals a spool with a sticky write error (HealSpool), then observes
  // the spool, the inputs and the destinations, once a second.
  void AlertLoop();
  // What a restart would do for the spool, without the restart: Ingest::Heal with a
  // backoff of 1 s doubling to kHealMaxBackoffMs, so once space returns the inputs go on
  // within seconds; logs the failure once, a changed heal error, and the recovery.
  struct SpoolHealing {
    int64_t failing_since_ns = 0;  // 0: the spool writes
    int64_t next_attempt_ns = 0;
    int64_t backoff_ms = 1000;
    uint64_t attempts = 0;
    std::string last_error;
  };
  static constexpr int64_t kHealMaxBackoffMs = 5000;
  void HealSpool(SpoolHealing* h);
  AgentObservation Observe() const;
  void ForgetRemovedDestinations(const std::vector<transport::DestinationOptions>& kept);
  void ReloadDestinations(const std::vector<transport::DestinationOptions>& next,
                          std::string* problems);

  struct Watched {
    std::shared_ptr<transport::Sender> sender;
    transport::DestinationOptions options;
    uint64_t restarts = 0;
    int64_t last_restart_ns = 0;
    // Its own connection to the same collector (transport/heartbeat.h); null when
    // heartbeats are off.
    std::shared_ptr<transport::Heartbeater> heartbeat;
  };
  // The heartbeat's snapshot: atomics, and the watchdog's lock for the list (no sender
  // ever takes it).
  wire::Heartbeat HeartbeatSnapshot() const;
  // Watchdog thread, outside its lock: signs the spool's durable tree (a C2SP checkpoint
  // over "gapless/agent/<id>/<epoch>") when it grew and the last one is a heartbeat
  // interval old; heartbeats carry the latest.
  // force: sign now if the tree grew, whatever the interval (at Stop).
  void MaybeSignCheckpoint(bool force = false);
  StatusOr<std::shared_ptr<transport::Heartbeater>> StartHeartbeat(
      const transport::DestinationOptions& d);

  config::AgentConfig cfg_;
  env::Clock* clock_ = nullptr;  // every time the agent reads comes from here (its Env's)
  std::unique_ptr<env::Env> env_holder_;
  std::unique_ptr<spool::Spool> spool_;
  std::unique_ptr<ingest::Ingest> ingest_;
  std::unique_ptr<Running> running_;  // io_context, work guard, inputs
  std::thread input_thread_;
  transport::AgentIdentity identity_;
  mutable Mutex watch_mu_;  // the watchdog's own lock; no sender takes it
  CondVar watch_cv_;
  std::vector<Watched> senders_ GUARDED_BY(watch_mu_);
  bool stop_watchdog_ GUARDED_BY(watch_mu_) = false;
  std::thread watchdog_;
  bool stopped_ = false;
  // The latest signed checkpoint; this mutex is only ever held to copy the string.
  mutable Mutex checkpoint_mu_;
  std::string latest_checkpoint_ GUARDED_BY(checkpoint_mu_);
  uint64_t checkpoint_size_ = 0;      // watchdog thread
  int64_t checkpoint_signed_ns_ = 0;  // watchdog thread
  metrics::RecentIncrease refusals_;  // CheckHealth's thread
  std::unique_ptr<http::Server> metrics_;
  std::unique_ptr<alert::Alerts> alerts_;
  std::unique_ptr<AgentAlerts> alert_rules_;           // the alert thread only
  std::unique_ptr<alert::DiskSpaceWatch> disk_watch_;  // the alert thread only
  Mutex alert_mu_;
  CondVar alert_cv_;
  bool stop_alerts_ GUARDED_BY(alert_mu_) = false;
  std::thread alert_thread_;
};

}  // namespace gapless::agent
