// Witnessing: submits each stream's newest signed checkpoint to the configured witnesses
// (C2SP tlog-witness add-checkpoint, with a consistency proof from the size the witness
// last cosigned) and keeps the cosignatures that verify, appended with the note to the
// stream's dir/witnessed (docs/formats/witness.md).
//
// A witness that refuses is a finding, not noise: 409 with a size larger than the
// collector ever signed, 409 on an equal size or 422 mean the witness saw another
// history of this stream (a fork or a rollback of the store), and are logged as errors.
// Unreachable witnesses are retried every retry_ms; only the newest checkpoint of a
// stream is kept, so a long outage costs one request per stream, not a backlog.
//
// Threads: Offer from any thread (the collector's committer); one own thread does all
// network and file work, so a slow witness never delays a commit or an ack.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "alert/alert.h"
#include "base/mutex.h"
#include "base/periodic.h"
#include "base/status.h"
#include "checkpoint/note.h"
#include "env/env.h"

namespace gapless::collector {

struct WitnessTarget {
  std::string url;      // http(s)://host[:port]/prefix/add-checkpoint
  std::string key;      // the witness's cosigner key (type 0x04)
  std::string ca_file;  // for https; empty: the system's CAs
  int64_t timeout_ms = 10000;
};

struct WitnessingStats {
  uint64_t cosigned = 0;  // checkpoints cosigned, summed over witnesses
  uint64_t refused = 0;   // answers that say the witness saw another history
  uint64_t failed = 0;    // unreachable, errors, cosignatures that do not verify
};

class Witnessing {
 public:
  // kInvalidArgument naming the bad URL or key.
  // alerts (may be null, else must outlive this): witness_refused (critical, per
  // origin) and witness_failing (warning, per witness), resolved by the next cosignature.
  static StatusOr<std::unique_ptr<Witnessing>> Start(env::Env* env,
                                                     const std::vector<WitnessTarget>& targets,
                                                     int64_t retry_ms = 2000,
                                                     alert::Alerts* alerts = nullptr);
  ~Witnessing();
  Witnessing(const Witnessing&) = delete;
  Witnessing& operator=(const Witnessing&) = delete;

  // The newest signed checkpoint note of the stream stored in dir.
  void Offer(const std::string& dir, std::string note);
  // Tries what is pending once more, then stops the thread. Idempotent.
  void Stop();
  WitnessingStats stats() const;

 private:
  struct Target {
    WitnessTarget config;
    checkpoint::Verifier key;
    std::map<std::string, uint64_t> cosigned_size;  // by origin; thread only
    std::string last_report;                        // thread only
  };
  struct Pending {
    std::string note;
    std::string origin;
    uint64_t size = 0;
    std::vector<bool> done;  // per target
  };
  Witnessing() = default;
  // Worker thread: one attempt at every pending note (every retry interval, at an offer,
  // and once more at Stop).
  void Pass();
  // Thread only: one attempt of one target; true once it is done with this note.
  bool Submit(Target& t, const std::string& dir, const Pending& p, std::string* lines);
  // Thread only: logs what happened with a target, once until something else happens.
  void Report(Target& t, bool error, const std::string& what);
  // Thread only: raises or resolves the alerts (no-op without alerts).
  void Refused(Target& t, const Pending& p, const std::string& what);
  void Failing(Target& t, const std::string& what);
  void Cosigned(Target& t, const Pending& p);

  env::Env* env_ = nullptr;
  alert::Alerts* alerts_ = nullptr;
  std::vector<Target> targets_;
  int64_t retry_ms_ = 2000;
  std::set<std::string> repaired_;  // thread only: dirs whose witnessed file was checked

  Mutex mu_;
  std::map<std::string, Pending> pending_ GUARDED_BY(mu_);  // by dir
  std::atomic<uint64_t> cosigned_{0}, refused_{0}, failed_{0};
  std::unique_ptr<PeriodicWorker> worker_;  // last: stopped before the rest goes
};

}  // namespace gapless::collector
