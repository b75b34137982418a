// Auditing: the collector checks its own store as an auditor would (verify/verify.h), on
// its own thread, every interval: each record against its leaf, the roots against the
// signed checkpoints, the signatures, missing seqs against the agents' declarations. A
// stream that fails raises `store_tampered` (critical, subject "<agent>/<epoch>", the
// first problems as evidence) — a record changed on the collector's disk after it was
// stored is found within one interval, not only when someone runs `gapless verify`.
// The alert resolves when the stream verifies again.
//
// Verification runs beside the collector's writes: it reads the checkpoints, then the
// leaves, then the records, and everything beyond the newest signed checkpoint that is
// still being written counts as a note, not a problem. A stream found tampered is
// verified a second time before the alert, so a write caught mid-way cannot raise it.
//
// Threads: its own; reads the store files only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "alert/alert.h"
#include "base/mutex.h"
#include "base/periodic.h"
#include "base/status.h"
#include "store/layout.h"

namespace gapless::verify {
struct Options;
}

namespace gapless::collector {

struct AuditingStats {
  uint64_t rounds = 0;
  uint64_t streams_verified = 0;  // stream checks that passed (clean or incomplete)
  uint64_t streams_tampered = 0;  // stream checks that failed twice in a row
};

class Auditing {
 public:
  // verifier_key: the collector's ("<name>+<id>+<key>"). interval_ms > 0. alerts may be
  // null, else must outlive this.
  static StatusOr<std::unique_ptr<Auditing>> Start(const std::string& data_dir,
                                                   const std::string& verifier_key,
                                                   int64_t interval_ms, alert::Alerts* alerts);
  ~Auditing();
  Auditing(const Auditing&) = delete;
  Auditing& operator=(const Auditing&) = delete;

  void RunOnce();  // one round now (waits for it)
  void Stop();     // idempotent; no round at Stop
  AuditingStats stats() const;

 private:
  Auditing() = default;
  enum class Outcome { kPassed, kTampered, kUnreadable };
  // Verifies one stream (twice before calling it tampered) and fires or resolves its alert.
  Outcome AuditStream(const store::StreamRef& stream, const verify::Options& o);

  std::string data_dir_;
  std::string verifier_key_;
  int64_t interval_ms_ = 0;
  alert::Alerts* alerts_ = nullptr;
  Mutex round_mu_;  // one round at a time (the worker's, or RunOnce's)
  mutable Mutex mu_;
  AuditingStats stats_ GUARDED_BY(mu_);
  std::unique_ptr<PeriodicWorker> worker_;  // last: stopped before the rest goes
};

}  // namespace gapless::collector
