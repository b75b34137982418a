// Alerts: how gapless tells people that something is wrong, through the channels they
// already watch. docs/alerts.md is the contract.
//
// An alert is identified by (name, subject) — e.g. ("archive_failed", "/mnt/offsite") —
// and is either firing or resolved. Fire on an alert already firing with the same
// summary is a repeat and says nothing new; with another summary it is an update.
// Every firing, update and resolution is one line in the journal: an append-only,
// synced JSON-lines file (one object per line, docs/alerts.md). The journal is the
// truth: on Open the firing set is rebuilt from it, and every other output (webhooks,
// Alertmanager) delivers from it with its own cursor file, retrying with backoff until
// the receiver takes each event — so an event is never lost while a receiver is down,
// also across restarts. Every event is also written to the process log.
//
// When the journal cannot be written (the disk is full: issue 21), an event is kept in
// memory (at most kMaxUnjournaled, the oldest dropped first and counted) and the outputs
// deliver it from there after the journal's end, so a full disk is never silent; it is
// appended to the journal, in id order, once a write succeeds (retried each second), and
// the outputs skip the lines they already delivered from memory. A partly written line is
// cut back first, so the journal never holds a torn line between two whole ones. Events
// only in memory are lost with the process (it logged them), and their ids may be used
// again after a restart.
//
// Thread-safe: Fire/Resolve/Firing from any thread (one mutex, held across the journal
// append and its sync: alerts are rare). Each output has its own delivery thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "env/env.h"

namespace gapless::alert {

struct AlertEvent {
  uint64_t id = 0;  // position in the journal, from 1
  std::string name;
  std::string subject;
  std::string severity = "critical";  // "critical" | "warning"
  bool firing = true;                 // false: resolved
  std::string summary;
  std::vector<std::pair<std::string, std::string>> evidence;  // ranges, counts, thresholds
  int64_t started_ns = 0;                                     // when the alert began firing
  int64_t at_ns = 0;                                          // when this event happened
};

// One JSON object, no newline. Parse accepts exactly what Format writes (and ignores
// members it does not know); kInvalidArgument otherwise.
std::string FormatEvent(const AlertEvent& e);
StatusOr<AlertEvent> ParseEvent(std::string_view line);

struct WebhookOptions {
  std::string url;
  // A file (mode 0600) holding the HMAC-SHA256 key; empty: requests are not signed.
  std::string secret_file;
  std::string ca_file;
  int64_t timeout_ms = 10000;
};

struct AlertOptions {
  std::string journal;  // the JSON-lines alert file; required
  std::vector<WebhookOptions> webhooks;
  std::vector<std::string> alertmanagers;  // base URLs: events go to <url>/api/v2/alerts
  // A dead man's switch (the Prometheus "Watchdog" convention): when set, every
  // Alertmanager also gets an always-firing alert "watchdog" with this subject, posted at
  // start and again every repeat_ms, so a system outside sees the alerting path die. It is
  // not an event: never in the journal, never sent to webhooks.
  std::string watchdog;
  // How often Alertmanager gets the firing alerts again (it resolves what it is not told).
  int64_t repeat_ms = 60000;
  int64_t retry_initial_ms = 500;
  int64_t retry_max_ms = 60000;
  env::Clock* clock = nullptr;  // times of events; null: the env's
};

struct OutputStats {
  std::string url;
  uint64_t delivered = 0;      // events the receiver took (2xx)
  uint64_t failures = 0;       // attempts that failed (each retried)
  uint64_t pending_bytes = 0;  // of the journal, not yet delivered
};

class Output;

class Alerts {
 public:
  static StatusOr<std::unique_ptr<Alerts>> Open(env::Env* env, const AlertOptions& o);
  ~Alerts();
  Alerts(const Alerts&) = delete;
  Alerts& operator=(const Alerts&) = delete;

  void Fire(const std::string& name, const std::string& subject, const std::string& severity,
            const std::string& summary,
            std::vector<std::pair<std::string, std::string>> evidence = {});
  // Resolves a firing alert; nothing if it is not firing.
  void Resolve(const std::string& name, const std::string& subject, const std::string& summary);
  std::vector<AlertEvent> Firing() const;
  std::vector<OutputStats> output_stats() const;
  // Whether events are waiting in memory because the journal cannot be written (/health);
  // lock-free.
  bool journal_failing() const;
  // Events not in the journal yet, (id, line), oldest first; for the outputs.
  std::vector<std::pair<uint64_t, std::string>> Unjournaled() const;
  // Appends the unjournaled events if the journal takes writes again (the outputs call
  // it each second).
  void RetryJournal();
  static constexpr size_t kMaxUnjournaled = 10000;
  // Stops the delivery threads (what is undelivered stays in the journal). Idempotent.
  void Stop();

 private:
  Alerts() = default;
  void Append(AlertEvent e);  // mu_ held
  // Writes the unjournaled events, then nothing else; false at the first failure (the
  // journal is cut back to its last whole line).
  bool FlushUnjournaledLocked();

  env::Env* env_ = nullptr;
  env::Clock* clock_ = nullptr;
  AlertOptions options_;
  mutable std::mutex mu_;
  std::unique_ptr<env::WritableFile> journal_;  // GUARDED_BY(mu_)
  uint64_t journal_good_ = 0;                   // bytes of whole lines; GUARDED_BY(mu_)
  std::deque<std::pair<uint64_t, std::string>> unjournaled_;  // GUARDED_BY(mu_)
  uint64_t unjournaled_dropped_ = 0;                          // GUARDED_BY(mu_)
  // Events wait in memory because a journal write failed; written under mu_, read
  // without it (/health must not wait behind a slow disk's sync).
  std::atomic<bool> journal_failing_{false};
  uint64_t next_id_ = 1;                                              // GUARDED_BY(mu_)
  std::map<std::pair<std::string, std::string>, AlertEvent> firing_;  // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<Output>> outputs_;
};

}  // namespace gapless::alert
