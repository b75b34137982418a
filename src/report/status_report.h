// The reports `gapless status --json`, `gapless gaps --json` and `gapless outputs --json`
// print, as values and as their JSON documents — one code path for the CLI and the
// console's /api/ (docs/console.md). Each reads the store and the ledger, never writes.
//
// Thread contract: pure functions of what they read; the ledger is thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "ledger/ledger.h"

namespace gapless::report {

constexpr int64_t kSecond = 1'000'000'000;

struct StreamStatus {
  std::string agent, epoch;
  int64_t last_heartbeat_ns = 0;  // 0: never
  uint64_t head = 0, stored = 0, lag = 0;
  uint64_t spool_bytes = 0, spool_quota = 0;
  int open_gaps = 0;
  uint64_t declared_losses = 0;  // LOSS ranges the agent declared (the records they cover)
  int alerts = 0;                // firing with this stream (or under it) as subject
};

struct SourceStatus {
  std::string agent, source;
  uint64_t last_10_min = 0, last_60_min = 0;
};

struct OutputStatus {
  std::string name, type, delivery;  // delivery: "confirmed" | "sent, unconfirmed"
  uint64_t confirmed = 0, waiting = 0, refused = 0;
};

struct StatusReport {
  int64_t now_ns = 0;
  std::vector<StreamStatus> streams;  // by agent, epoch
  std::vector<SourceStatus> sources;  // by agent, source
  std::vector<OutputStatus> outputs;
  std::vector<ledger::AlertRow> alerts;  // firing
  std::vector<std::string> warnings;     // parts that could not be read (outputs)
  // 0 nothing firing and no open gap, 1 otherwise (`gapless status`'s exit status).
  int exit_status() const;
};

// The ledger's state at now_ns (its last hour of counts) and the outputs' state on disk.
StatusOr<StatusReport> ReadStatus(const ledger::Ledger& ledger, const std::string& data_dir,
                                  int64_t now_ns);
// As ReadStatus, from the ledger contents already read (counts since an hour before now).
StatusReport MakeStatus(const ledger::Contents& c, const std::string& data_dir, int64_t now_ns);
// The document of `gapless status --json` (docs/alerts.md#status), with a newline.
std::string StatusJson(const StatusReport& r);

// The stream "<agent>/<epoch>" an alert's subject names (its first two parts: the stream
// itself or something under it, "<agent>/<epoch>/<first seq>"); empty for a subject of one
// part (an agent). A source's subject "<agent>/<source>" names no stream that exists.
std::string StreamOfSubject(const std::string& subject);

int64_t WallNowNanos();

}  // namespace gapless::report
