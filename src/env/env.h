// Env: the one door to the outside world — files, fsync, directories, clock, randomness.
//
// Every gapless component that touches the disk or the time does it through an Env, so
// tests can swap in FaultInjectionEnv (power loss, failing fsync, a full disk) and a
// FakeClock. Paths are plain strings; directories are separated by '/'.
//
// Thread contract: an Env and its Clock are safe to use from any thread. A WritableFile
// belongs to one thread at a time. A RandomAccessFile may be read from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace gapless::env {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends at the end. On error some prefix of `data` may have been written.
  virtual Status Append(std::string_view data) = 0;
  // Makes every byte appended so far durable (fdatasync). Only after Sync returned OK may
  // a caller treat those bytes as surviving a power loss.
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
  // Size of the file as this handle sees it (existing bytes plus appended ones).
  virtual uint64_t Size() const = 0;
};

class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to n bytes at offset into scratch; returns the count, short only at EOF.
  virtual StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) const = 0;
};

// Held while a directory is in use by one process; released on destruction.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, nanoseconds since the Unix epoch.
  virtual int64_t NowNanos() const = 0;
  // Monotonic time for intervals and deadlines.
  virtual int64_t MonotonicNanos() const = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX environment; never destroyed.
  static Env* Posix();

  // Creates the file, truncating it if it exists.
  virtual StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Opens the file for appending at its current end, creating it if missing.
  virtual StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) = 0;
  virtual StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;

  virtual bool FileExists(const std::string& path) = 0;
  virtual StatusOr<uint64_t> GetFileSize(const std::string& path) = 0;
  // Names (not paths) of the entries in dir, files and subdirectories, in no particular
  // order. Fails for a path that is not a directory (that is how callers tell one).
  virtual StatusOr<std::vector<std::string>> GetChildren(const std::string& dir) = 0;
  // Creates dir and missing parents; OK if it exists.
  virtual Status CreateDir(const std::string& dir) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Atomically replaces `to`. Durable only after SyncDir of the parent directory.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Shrinks the file; durable after a Sync on a handle of that file.
  virtual Status TruncateFile(const std::string& path, uint64_t size) = 0;
  // Makes creations, removals and renames of entries in dir durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Takes an exclusive lock; fails with kFailedPrecondition if another holder exists.
  virtual StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;

  virtual Clock* clock() = 0;
  virtual void RandomBytes(void* out, size_t n) = 0;
};

// Helpers built only on the interface above.

StatusOr<std::string> ReadFileToString(Env* env, const std::string& path);

// Writes data to path so that after any crash the file holds either its old contents or
// exactly `data`: write a temporary, sync it, rename over path, sync the directory.
Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data);

std::string JoinPath(std::string_view dir, std::string_view name);
std::string DirName(std::string_view path);

}  // namespace gapless::env
