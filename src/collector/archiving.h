// Archiving: the rolling archive destination. Every interval it exports, per stream,
// the records signed since the last archive into one sealed archive (archive/archive.h)
// in a directory — typically a mounted off-site volume — verifies each archive it wrote
// against the collector's key before it counts, and says loudly when it cannot.
//
//   <dir>/<agent>/<epoch>/<from, 20 digits>-<to, 20 digits>.gapless-archive
//
// Progress is the directory itself: a stream's next archive starts where its newest
// verified archive ends, so after any failure or restart the next one covers the whole
// rest, with no gap and no overlap. The directory must exist (a missing mount point is
// an error, never silently written on the local disk); the per-stream folders are made.
// An archive is written as *.unverified and gets its name only once it verified (a crash
// in between leaves nothing that counts); one that fails is renamed *.failed (evidence)
// and the range is tried again next round.
//
// Threads: its own thread; reads the store files as `gapless export` does.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "alert/alert.h"
#include "base/mutex.h"
#include "base/periodic.h"
#include "base/status.h"

namespace gapless::collector {

struct ArchiveDestination {
  std::string dir;                      // empty: no archiving
  int64_t interval_ms = 3'600'000;      // one round per interval (and one at Stop)
  uint64_t min_records = 1;             // a stream with fewer new signed records waits
  std::vector<std::string> recipients;  // gapless-x25519:...; encrypt to them
  std::string identity;                 // with recipients: one recipient's identity file,
                                        // so each archive can be verified after writing
};

struct ArchivingStats {
  uint64_t archives = 0;  // written and verified
  uint64_t records = 0;
  uint64_t failed = 0;  // rounds with an error (unwritable dir, failed verification, ...)
  std::string last_error;
};

class Archiving {
 public:
  // kInvalidArgument naming a bad recipient or identity.
  // signing_key: the collector's key file (empty: data_dir/collector.key), which seals
  // the archives; verifier_key: its verifier key, which checks them.
  // alerts (may be null, else must outlive this): archive_failed (critical, subject the
  // directory) while rounds fail, resolved by the next round without an error.
  static StatusOr<std::unique_ptr<Archiving>> Start(const std::string& data_dir,
                                                    const std::string& signing_key,
                                                    const std::string& verifier_key,
                                                    const ArchiveDestination& dest,
                                                    alert::Alerts* alerts = nullptr);
  ~Archiving();
  Archiving(const Archiving&) = delete;
  Archiving& operator=(const Archiving&) = delete;

  // Runs one round now (and waits for it). For tests and for Stop.
  void RunOnce();
  void Stop();  // one last round, then the thread ends. Idempotent.
  ArchivingStats stats() const;

  // Tests: called with each archive's path after it is written, before it is verified.
  std::function<void(const std::string&)> after_write_for_test;

 private:
  Archiving() = default;
  void Round(bool final);  // holds round_mu_; final: min_records does not apply
  // One stream's next archive; an error says what failed.
  Status ArchiveStream(const std::string& agent, const std::string& epoch,
                       const std::string& stream_dir, bool final, uint64_t* records);

  alert::Alerts* alerts_ = nullptr;
  std::string data_dir_;
  std::string signing_key_;
  std::string verifier_key_;
  ArchiveDestination dest_;
  Mutex round_mu_;  // one round at a time (the worker's, or RunOnce's)

  mutable Mutex mu_;
  ArchivingStats stats_ GUARDED_BY(mu_);
  std::unique_ptr<PeriodicWorker> worker_;  // last: stopped before the rest goes
};

}  // namespace gapless::collector
