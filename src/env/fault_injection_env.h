// FaultInjectionEnv: an in-memory filesystem that models what a power loss keeps.
//
// The model (deliberately the harshest a POSIX filesystem may legally be):
//   - a file's bytes survive a power loss only up to its last successful Sync();
//   - a directory entry (creation, removal, rename) survives only after SyncDir() of its
//     parent; a file whose entry was never synced vanishes with its data;
//   - directories themselves are durable as soon as they are created.
// SimulatePowerLoss() applies the model; every handle opened before it fails afterwards,
// as if its process had died.
//
// Injected faults: failing Sync/SyncDir (EIO), a disk capacity after which Append writes
// what fits and fails with ENOSPC (kResourceExhausted), a slow Sync.
//
// Thread contract: all methods are safe from any thread (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>

#include "env/env.h"
#include "env/fake_clock.h"

namespace gapless::env {

class FaultInjectionEnv final : public Env {
 public:
  explicit FaultInjectionEnv(uint64_t seed = 1);
  ~FaultInjectionEnv() override;

  // --- Faults ---
  void SimulatePowerLoss();
  // A kill -9: handles opened before fail, locks are released, but every written byte
  // stays (the page cache outlives the process).
  void SimulateProcessCrash();
  void SetSyncFailure(bool fail);
  // Total bytes all files may hold; ~0 for unlimited.
  void SetCapacity(uint64_t bytes);
  // Each file Sync takes this long (outside the env's lock), as a slow disk's fsync does:
  // it widens the window between a write and its durability, so a test's power loss
  // lands in it. A power loss during the wait fails the Sync.
  void SetSyncDelay(int64_t ms);

  // --- Inspection and tampering, for tests ---
  uint64_t sync_count() const;
  uint64_t UsedBytes() const;
  // Contents as the current (not durable) view sees them; empty if missing.
  std::string Contents(const std::string& path) const;
  // Replaces the contents and marks them durable, for corruption tests.
  void SetDurableContents(const std::string& path, std::string data);

  FakeClock* fake_clock() { return &clock_; }

  // --- Env ---
  StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  bool FileExists(const std::string& path) override;
  StatusOr<uint64_t> GetFileSize(const std::string& path) override;
  StatusOr<std::vector<std::string>> GetChildren(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status TruncateFile(const std::string& path, uint64_t size) override;
  Status SyncDir(const std::string& dir) override;
  StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;
  Clock* clock() override { return &clock_; }
  void RandomBytes(void* out, size_t n) override;

  struct Node {
    std::string data;    // what reads see now
    std::string synced;  // what survives a power loss
  };

 private:
  friend class MemWritableFile;
  friend class MemRandomAccessFile;
  friend class MemFileLock;

  StatusOr<std::unique_ptr<WritableFile>> Open(const std::string& path, bool truncate);
  Status AppendToNode(Node* node, std::string_view data, uint64_t generation);
  Status SyncNode(Node* node, uint64_t generation);
  uint64_t UsedBytesLocked() const;

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Node>> live_;     // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<Node>> durable_;  // GUARDED_BY(mu_)
  std::set<std::string> dirs_;                            // GUARDED_BY(mu_)
  std::set<std::string> locks_;                           // GUARDED_BY(mu_)
  uint64_t generation_ = 0;           // bumped by each power loss; GUARDED_BY(mu_)
  bool fail_sync_ = false;            // GUARDED_BY(mu_)
  uint64_t capacity_ = ~uint64_t{0};  // GUARDED_BY(mu_)
  int64_t sync_delay_ms_ = 0;         // GUARDED_BY(mu_)
  uint64_t sync_count_ = 0;           // GUARDED_BY(mu_)
  std::mt19937_64 rng_;               // GUARDED_BY(mu_)
  FakeClock clock_;
};

}  // namespace gapless::env
