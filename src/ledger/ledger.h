// Ledger: the collector's account of what it should have and what it has, in SQLite
// (data_dir/ledger.db, WAL, docs/formats/ledger.md): per stream the agent's head and the
// stored point, gaps (open and closed), declared losses, agent checkpoints and how they
// compared, the alerts firing, and per-source record counts per minute.
//
// The monitors write it (Write, one transaction a second); `gapless status` reads it
// while the collector runs (Read, through WAL, without blocking the writer). It is
// derived state: the stores and the alert journal are the truth. A lost ledger costs the
// per-source history behind the volume baselines and the status table's "last seen",
// nothing else; a ledger that cannot be opened is an error at start, one that fails a
// write is logged and retried with the next (cumulative) delta.
//
// Thread-safe: one mutex around the connection.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"

struct sqlite3;

namespace gapless::ledger {

struct StreamRow {
  std::string agent, epoch;
  int64_t first_seen_ns = 0;
  int64_t last_heartbeat_ns = 0;  // 0: never
  int64_t agent_wall_ns = 0;      // the agent's clock in its last heartbeat
  uint64_t head = 0;              // the agent's spool head (heartbeats)
  uint64_t stored = 0;            // the collector's durable point
  int64_t stored_moved_ns = 0;
  uint64_t spool_bytes = 0, spool_quota = 0;
};

struct GapRow {
  std::string agent, epoch;
  uint64_t first = 0, last = 0;
  int64_t opened_ns = 0;
  int64_t closed_ns = 0;  // 0: open
};

struct LossRow {
  std::string agent, epoch;
  uint64_t first = 0, last = 0;
  std::string reason;
  int64_t at_ns = 0;
};

struct CheckpointRow {
  std::string agent, epoch;
  uint64_t size = 0;
  int64_t at_ns = 0;
  bool valid = false;
  std::string detail;  // why not, when not
};

struct AlertRow {
  std::string name, subject, severity, summary;
  int64_t started_ns = 0;
};

struct CountRow {
  std::string agent, source;
  int64_t minute = 0;  // unix time / 60 s
  uint64_t count = 0;  // the minute's total (not an increment)
};

// An output's account for one stream (output/output.h), as of updated_ns.
struct OutputRow {
  std::string output, agent, epoch;
  std::string type;
  bool confirmed = true;     // false: "sent, unconfirmed" (syslog)
  uint64_t signed_size = 0;  // what the destination should have
  uint64_t delivered = 0;    // the cursor
  uint64_t retried = 0, rejected = 0;
  int64_t lag_ms = 0;  // age of the oldest record not yet confirmed
  bool stalled = false;
  int64_t updated_ns = 0;
};

// What changed; Write upserts each row by its key. With replace_alerts the alerts table
// becomes exactly `alerts`.
struct Delta {
  std::vector<StreamRow> streams;
  std::vector<GapRow> gaps;
  std::vector<LossRow> losses;
  std::vector<CheckpointRow> checkpoints;
  bool replace_alerts = false;
  std::vector<AlertRow> alerts;
  std::vector<CountRow> counts;
  int64_t forget_counts_before = 0;  // minutes; 0: keep all
  std::vector<OutputRow> outputs;
};

struct Contents {
  std::vector<StreamRow> streams;          // by agent, epoch
  std::vector<GapRow> gaps;                // by agent, epoch, first
  std::vector<LossRow> losses;             // by agent, epoch, first
  std::vector<CheckpointRow> checkpoints;  // the newest per stream
  std::vector<AlertRow> alerts;            // by name, subject
  std::vector<CountRow> counts;            // minutes >= counts_since, by agent, source, minute
  std::vector<OutputRow> outputs;          // by output, agent, epoch
};

class Ledger {
 public:
  // Creates the file (mode 0600) and its tables if missing, unless read_only.
  static StatusOr<std::unique_ptr<Ledger>> Open(const std::string& path, bool read_only = false);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  Status Write(const Delta& d);
  StatusOr<Contents> Read(int64_t counts_since_minute) const;

 private:
  Ledger() = default;
  Status Exec(const std::string& sql) const;  // mu_ held

  mutable std::mutex mu_;
  sqlite3* db_ = nullptr;  // GUARDED_BY(mu_)
  std::string path_;
};

}  // namespace gapless::ledger
