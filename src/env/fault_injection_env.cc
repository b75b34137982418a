#include "env/fault_injection_env.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

namespace gapless::env {

using Node = FaultInjectionEnv::Node;

namespace {
Status DeadHandle(const std::string& path) {
  return UnavailableError("handle of " + path + " opened before a simulated power loss");
}
}  // namespace

class MemWritableFile final : public WritableFile {
 public:
  MemWritableFile(FaultInjectionEnv* env, std::string path, std::shared_ptr<Node> node,
                  uint64_t generation)
      : env_(env), path_(std::move(path)), node_(std::move(node)), generation_(generation) {}

  Status Append(std::string_view data) override {
    return env_->AppendToNode(node_.get(), data, generation_).WithContext("write " + path_);
  }
  Status Sync() override { return env_->SyncNode(node_.get(), generation_).WithContext(path_); }
  Status Close() override { return Status::Ok(); }
  uint64_t Size() const override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    return node_->data.size();
  }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;
  const std::shared_ptr<Node> node_;
  const uint64_t generation_;
};

class MemRandomAccessFile final : public RandomAccessFile {
 public:
  MemRandomAccessFile(FaultInjectionEnv* env, std::string path, std::shared_ptr<Node> node,
                      uint64_t generation)
      : env_(env), path_(std::move(path)), node_(std::move(node)), generation_(generation) {}

  StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    if (generation_ != env_->generation_) return DeadHandle(path_);
    const std::string& d = node_->data;
    if (offset >= d.size()) return size_t{0};
    size_t len = std::min<uint64_t>(n, d.size() - offset);
    std::copy_n(d.data() + offset, len, scratch);
    return len;
  }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;
  const std::shared_ptr<Node> node_;
  const uint64_t generation_;
};

class MemFileLock final : public FileLock {
 public:
  MemFileLock(FaultInjectionEnv* env, std::string path, uint64_t generation)
      : env_(env), path_(std::move(path)), generation_(generation) {}
  ~MemFileLock() override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    if (generation_ == env_->generation_) env_->locks_.erase(path_);
  }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;
  const uint64_t generation_;
};

FaultInjectionEnv::FaultInjectionEnv(uint64_t seed) : rng_(seed) {}
FaultInjectionEnv::~FaultInjectionEnv() = default;

void FaultInjectionEnv::SimulatePowerLoss() {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  locks_.clear();
  live_ = durable_;
  for (auto& [path, node] : live_) node->data = node->synced;
}

void FaultInjectionEnv::SimulateProcessCrash() {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  locks_.clear();
}

void FaultInjectionEnv::SetSyncFailure(bool fail) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_sync_ = fail;
}

void FaultInjectionEnv::SetCapacity(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  capacity_ = bytes;
}

void FaultInjectionEnv::SetSyncDelay(int64_t ms) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_delay_ms_ = ms;
}

uint64_t FaultInjectionEnv::sync_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sync_count_;
}

uint64_t FaultInjectionEnv::UsedBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return UsedBytesLocked();
}

uint64_t FaultInjectionEnv::UsedBytesLocked() const {
  uint64_t used = 0;
  for (const auto& [path, node] : live_) used += node->data.size();
  return used;
}

std::string FaultInjectionEnv::Contents(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(path);
  return it == live_.end() ? std::string() : it->second->data;
}

void FaultInjectionEnv::SetDurableContents(const std::string& path, std::string data) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& node = live_[path];
  if (!node) node = std::make_shared<Node>();
  node->data = data;
  node->synced = std::move(data);
  durable_[path] = node;
}

Status FaultInjectionEnv::AppendToNode(Node* node, std::string_view data, uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  if (generation != generation_) return UnavailableError("handle from before a power loss");
  uint64_t used = UsedBytesLocked();
  uint64_t room = used >= capacity_ ? 0 : capacity_ - used;
  if (data.size() > room) {
    node->data.append(data.substr(0, room));  // a real disk may accept a prefix, too
    return ErrnoToStatus(ENOSPC, "append", "(fault injection)");
  }
  node->data.append(data);
  return Status::Ok();
}

Status FaultInjectionEnv::SyncNode(Node* node, uint64_t generation) {
  int64_t delay_ms = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    delay_ms = sync_delay_ms_;
  }
  if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  std::lock_guard<std::mutex> lock(mu_);
  if (generation != generation_) return UnavailableError("handle from before a power loss");
  if (fail_sync_) return ErrnoToStatus(EIO, "fdatasync", "(fault injection)");
  ++sync_count_;
  node->synced = node->data;
  return Status::Ok();
}

StatusOr<std::unique_ptr<WritableFile>> FaultInjectionEnv::Open(const std::string& path,
                                                                bool truncate) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dirs_.count(DirName(path)) == 0) return NotFoundError("no directory for " + path);
  auto& node = live_[path];
  if (!node) node = std::make_shared<Node>();
  if (truncate) node->data.clear();
  return std::unique_ptr<WritableFile>(new MemWritableFile(this, path, node, generation_));
}

StatusOr<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(
    const std::string& path) {
  return Open(path, /*truncate=*/true);
}

StatusOr<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewAppendableFile(
    const std::string& path) {
  return Open(path, /*truncate=*/false);
}

StatusOr<std::unique_ptr<RandomAccessFile>> FaultInjectionEnv::NewRandomAccessFile(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(path);
  if (it == live_.end()) return NotFoundError("open " + path + ": no such file");
  return std::unique_ptr<RandomAccessFile>(
      new MemRandomAccessFile(this, path, it->second, generation_));
}

bool FaultInjectionEnv::FileExists(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.count(path) > 0 || dirs_.count(path) > 0;
}

StatusOr<uint64_t> FaultInjectionEnv::GetFileSize(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(path);
  if (it == live_.end()) return NotFoundError("stat " + path + ": no such file");
  return static_cast<uint64_t>(it->second->data.size());
}

StatusOr<std::vector<std::string>> FaultInjectionEnv::GetChildren(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dirs_.count(dir) == 0) return NotFoundError("list " + dir + ": no such directory");
  std::vector<std::string> names;
  for (const auto& [path, node] : live_) {
    if (DirName(path) == dir) names.push_back(path.substr(dir.size() + 1));
  }
  for (const std::string& d : dirs_) {  // subdirectories are entries too, as in POSIX
    if (DirName(d) == dir && d != dir) names.push_back(d.substr(dir.size() + 1));
  }
  return names;
}

Status FaultInjectionEnv::CreateDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  for (std::string d = dir; d != "." && d != "/" && !d.empty(); d = DirName(d)) dirs_.insert(d);
  return Status::Ok();
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (live_.erase(path) == 0) return NotFoundError("unlink " + path + ": no such file");
  return Status::Ok();
}

Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(from);
  if (it == live_.end()) return NotFoundError("rename " + from + ": no such file");
  live_[to] = it->second;
  live_.erase(from);
  return Status::Ok();
}

Status FaultInjectionEnv::TruncateFile(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(path);
  if (it == live_.end()) return NotFoundError("truncate " + path + ": no such file");
  it->second->data.resize(size);
  return Status::Ok();
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fail_sync_) return ErrnoToStatus(EIO, "fsync directory", dir);
  ++sync_count_;
  for (auto it = durable_.begin(); it != durable_.end();) {
    it = DirName(it->first) == dir ? durable_.erase(it) : std::next(it);
  }
  for (const auto& [path, node] : live_) {
    if (DirName(path) == dir) durable_[path] = node;
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<FileLock>> FaultInjectionEnv::LockFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!locks_.insert(path).second) {
    return FailedPreconditionError(path + " is locked by another process");
  }
  return std::unique_ptr<FileLock>(new MemFileLock(this, path, generation_));
}

void FaultInjectionEnv::RandomBytes(void* out, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  auto* p = static_cast<uint8_t*>(out);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng_());
}

}  // namespace gapless::env
