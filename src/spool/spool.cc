// Write path, group commit, quota policies and cursors. Recovery is in recovery.cc,
// reading in reader.cc.
#include "spool/spool.h"

#include <algorithm>
#include <chrono>

#include "base/crc32c.h"
#include "env/env.h"

namespace gapless::spool {
namespace {

// Room kept free under the quota for LOSS records, so a full spool can always say what
// it dropped.
constexpr uint64_t kLossReserve = 16 * 1024;
// Worst-case bytes a segment roll adds: header plus a frontier of 64 hashes.
constexpr uint64_t kSegmentOverhead = kSegmentHeaderSize + kFrameHeaderSize + 64 * 32;
// Pending (unsynced) bytes above which Append syncs itself, bounding memory.
constexpr uint64_t kMaxPendingBytes = 4ull << 20;
// Minimum spacing of LOSS records during one kDropNewest episode.
constexpr int64_t kDropNewestLossIntervalNs = 1'000'000'000;
constexpr uint64_t kLossRecordMax = kFrameHeaderSize + 256 + kSegmentOverhead;

}  // namespace

std::string_view FullPolicyName(FullPolicy p) {
  switch (p) {
    case FullPolicy::kBlock:
      return "block";
    case FullPolicy::kDropOldest:
      return "drop_oldest";
    case FullPolicy::kDropNewest:
      return "drop_newest";
  }
  return "unknown";
}

StatusOr<FullPolicy> ParseFullPolicy(std::string_view name) {
  for (FullPolicy p : {FullPolicy::kBlock, FullPolicy::kDropOldest, FullPolicy::kDropNewest}) {
    if (name == FullPolicyName(p)) return p;
  }
  return InvalidArgumentError("unknown spool full policy \"" + std::string(name) +
                              "\"; expected block, drop_oldest or drop_newest");
}

Spool::Spool(env::Env* env, std::string dir, const Options& options)
    : env_(env), dir_(std::move(dir)), options_(options) {}

Spool::~Spool() { (void)Close(); }

StatusOr<std::unique_ptr<Spool>> Spool::Open(env::Env* env, const std::string& dir,
                                             const Options& options, RecoveryReport* report) {
  if (options.segment_bytes < 4096) {
    return InvalidArgumentError("spool segment_bytes must be at least 4096");
  }
  if (options.quota_bytes < 4 * options.segment_bytes) {
    return InvalidArgumentError("spool quota_bytes (" + std::to_string(options.quota_bytes) +
                                ") must be at least 4 × segment_bytes (" +
                                std::to_string(options.segment_bytes) + ")");
  }
  if (options.max_record_bytes == 0 || options.max_record_bytes > kMaxFramePayload ||
      options.max_record_bytes + kSegmentOverhead > options.segment_bytes) {
    return InvalidArgumentError("spool max_record_bytes must be between 1 and " +
                                std::to_string(kMaxFramePayload) + " and fit in a segment");
  }
  RETURN_IF_ERROR(env->CreateDir(dir));
  std::unique_ptr<Spool> spool(new Spool(env, dir, options));
  ASSIGN_OR_RETURN(spool->lock_, env->LockFile(env::JoinPath(dir, "LOCK")));
  RecoveryReport local;
  RETURN_IF_ERROR(spool->Recover(report != nullptr ? report : &local));
  if (options.sync_interval_ms > 0)
    spool->flusher_ = std::thread([s = spool.get()] { s->FlusherLoop(); });
  return spool;
}

Status Spool::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return Status::Ok();
    if (sticky_.ok()) {
      FlushDropEpisodeLocked(/*force=*/true);
      if (records_since_frontier_ > 0) AppendFrontierLocked();
    }
    stop_flusher_ = true;
  }
  flusher_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  Status s = Sync();
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  room_cv_.notify_all();
  if (active_file_) {
    Status c = active_file_->Close();
    if (s.ok()) s = c;
    active_file_.reset();
  }
  lock_.reset();  // another process may open the directory now
  return s;
}

namespace {

Status PositionTooLarge() {
  return InvalidArgumentError(
      "spool position key must be 1-" + std::to_string(kMaxPositionKeyBytes) +
      " bytes and its value at most " + std::to_string(kMaxPositionValueBytes));
}

}  // namespace

StatusOr<AppendResult> Spool::Append(std::string_view payload, const PositionUpdate* position) {
  if (payload.size() > options_.max_record_bytes) {
    return InvalidArgumentError("record of " + std::to_string(payload.size()) +
                                " bytes exceeds max_record_bytes " +
                                std::to_string(options_.max_record_bytes));
  }
  if (position != nullptr &&
      (position->key.empty() || position->key.size() > kMaxPositionKeyBytes ||
       position->value.size() > kMaxPositionValueBytes)) {
    return PositionTooLarge();
  }
  // The expensive per-record work happens before taking the lock.
  const uint32_t crc = crc32c::Value(payload);
  const Hash256 leaf = RecordLeafHash(FrameType::kData, payload);

  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return FailedPreconditionError("spool is closed");
  if (!sticky_.ok()) return sticky_;
  const uint64_t need = kFrameHeaderSize + payload.size() + kSegmentOverhead;
  std::vector<std::string> to_remove;
  if (FullLocked(need, /*for_loss=*/false)) {
    if (options_.full_policy == FullPolicy::kBlock) {
      ++counters_.full_refusals;
      return ResourceExhaustedError("spool full: " + std::to_string(bytes_used_) + " of " +
                                    std::to_string(options_.quota_bytes) +
                                    " bytes used (policy block): wait for destinations to "
                                    "acknowledge");
    }
    if (options_.full_policy == FullPolicy::kDropOldest) {
      to_remove = DetachSegmentsBelowLocked(next_seq_, need);
    }
    if (FullLocked(need, /*for_loss=*/false)) {
      // kDropNewest, or kDropOldest with nothing durable left to drop.
      ++drop_.records;
      drop_.bytes += payload.size();
      const int64_t now = env_->clock()->NowNanos();
      if (drop_.first_ns == 0) drop_.first_ns = now;
      drop_.last_ns = now;
      ++counters_.dropped_records;
      counters_.dropped_bytes += payload.size();
      FlushDropEpisodeLocked(/*force=*/false);
      if (position != nullptr) (void)SetPositionLocked(position->key, position->value);
      lock.unlock();
      if (!to_remove.empty()) RETURN_IF_ERROR(SyncThenRemove(to_remove));
      return AppendResult{0, /*dropped=*/true};
    }
  }
  FlushDropEpisodeLocked(/*force=*/true);  // room is back: write earlier drops down first
  const uint64_t seq = AppendFrameLocked(FrameType::kData, payload, crc, leaf);
  if (position != nullptr) (void)SetPositionLocked(position->key, position->value);  // checked
  const bool must_sync = pending_bytes_ > kMaxPendingBytes;
  lock.unlock();
  if (!to_remove.empty()) {
    RETURN_IF_ERROR(SyncThenRemove(to_remove));
  } else if (must_sync) {
    RETURN_IF_ERROR(Sync());
  }
  return AppendResult{seq, false};
}

StatusOr<uint64_t> Spool::AppendLoss(const LossRecord& loss) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return FailedPreconditionError("spool is closed");
  if (!sticky_.ok()) return sticky_;
  if (FullLocked(kLossRecordMax, /*for_loss=*/true)) {
    return ResourceExhaustedError("spool full: even the reserve for loss records is used");
  }
  AppendLossLocked(loss);
  return next_seq_ - 1;
}

bool Spool::FullLocked(uint64_t need, bool for_loss) const {
  const uint64_t limit = options_.quota_bytes - (for_loss ? 0 : kLossReserve);
  return bytes_used_ + need > limit;
}

uint64_t Spool::AppendFrameLocked(FrameType type, std::string_view payload, uint32_t crc,
                                  const Hash256& leaf) {
  const uint64_t frame = kFrameHeaderSize + payload.size();
  if (segments_.back().bytes + frame > options_.segment_bytes &&
      next_seq_ > segments_.back().base) {
    StartSegmentLocked(next_seq_);
  }
  if (pending_.empty()) pending_.push_back(NewChunkLocked(false, segments_.back().base));
  AppendFrame(&pending_.back().bytes, type, next_seq_, payload, crc);
  segments_.back().bytes += frame;
  bytes_used_ += frame;
  pending_bytes_ += frame;
  if (merkle_known_) range_.Append(leaf);
  ++records_since_frontier_;
  return next_seq_++;
}

void Spool::AppendLossLocked(const LossRecord& loss) {
  const std::string payload = loss.Encode();
  AppendFrameLocked(FrameType::kLoss, payload, crc32c::Value(payload),
                    RecordLeafHash(FrameType::kLoss, payload));
  ++counters_.loss_records;
}

void Spool::StartSegmentLocked(uint64_t base) {
  const int64_t now = env_->clock()->NowNanos();
  segments_.push_back(SegmentInfo{base, kSegmentHeaderSize, now});
  pending_.push_back(NewChunkLocked(true, base));
  pending_.back().bytes += EncodeSegmentHeader(SegmentHeader{epoch_, base, now});
  bytes_used_ += kSegmentHeaderSize;
  pending_bytes_ += kSegmentHeaderSize;
  AppendFrontierLocked();
  // Every input's latest position again, so the active segment always holds them all.
  for (const auto& [key, value] : positions_) AppendPositionLocked(key, value);
  changed_positions_.clear();
}

Status Spool::SetPosition(std::string_view key, std::string_view value) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return FailedPreconditionError("spool is closed");
  if (!sticky_.ok()) return sticky_;
  return SetPositionLocked(key, value);
}

Status Spool::SetPositionLocked(std::string_view key, std::string_view value) {
  if (key.empty() || key.size() > kMaxPositionKeyBytes || value.size() > kMaxPositionValueBytes) {
    return PositionTooLarge();
  }
  auto it = positions_.find(key);
  if (it == positions_.end()) it = positions_.emplace(std::string(key), std::string()).first;
  it->second.assign(value);
  if (changed_positions_.find(key) == changed_positions_.end()) changed_positions_.emplace(key);
  return Status::Ok();
}

void Spool::AppendChangedPositionsLocked() {
  for (const std::string& key : changed_positions_) {
    auto it = positions_.find(key);
    if (it != positions_.end()) AppendPositionLocked(it->first, it->second);
  }
  changed_positions_.clear();
}

void Spool::AppendPositionLocked(const std::string& key, std::string_view value) {
  const std::string payload = EncodePosition(key, value);
  if (pending_.empty()) pending_.push_back(NewChunkLocked(false, segments_.back().base));
  AppendFrame(&pending_.back().bytes, FrameType::kPosition, next_seq_, payload,
              crc32c::Value(payload));
  const uint64_t frame = kFrameHeaderSize + payload.size();
  segments_.back().bytes += frame;
  bytes_used_ += frame;
  pending_bytes_ += frame;
}

std::optional<std::string> Spool::Position(std::string_view key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = positions_.find(key);
  if (it == positions_.end()) return std::nullopt;
  return it->second;
}

void Spool::ForgetPosition(std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = positions_.find(key);
  if (it != positions_.end()) positions_.erase(it);
  auto c = changed_positions_.find(key);
  if (c != changed_positions_.end()) changed_positions_.erase(c);
}

void Spool::AppendFrontierLocked() {
  if (!merkle_known_) return;
  std::string payload;
  for (const Hash256& h : range_.hashes()) {
    payload.append(reinterpret_cast<const char*>(h.data()), h.size());
  }
  if (pending_.empty()) pending_.push_back(NewChunkLocked(false, segments_.back().base));
  AppendFrame(&pending_.back().bytes, FrameType::kFrontier, next_seq_, payload,
              crc32c::Value(payload));
  const uint64_t frame = kFrameHeaderSize + payload.size();
  segments_.back().bytes += frame;
  bytes_used_ += frame;
  pending_bytes_ += frame;
  records_since_frontier_ = 0;
}

Spool::Chunk Spool::NewChunkLocked(bool new_segment, uint64_t base) {
  Chunk c{new_segment, base, std::move(spare_buffer_)};
  c.bytes.clear();  // keeps the capacity: a steady batch size never reallocates
  spare_buffer_ = std::string();
  return c;
}

void Spool::FlushDropEpisodeLocked(bool force) {
  if (drop_.records == 0) return;
  const int64_t now = env_->clock()->NowNanos();
  if (!force && drop_.last_loss_ns != 0 && now - drop_.last_loss_ns < kDropNewestLossIntervalNs) {
    return;
  }
  if (FullLocked(kLossRecordMax, /*for_loss=*/true)) return;  // reserve used up: keep counting
  LossRecord loss;
  loss.reason = LossReason::kSpoolFullDropNewest;
  loss.record_count = drop_.records;
  loss.bytes = drop_.bytes;
  loss.time_from_unix_ns = drop_.first_ns;
  loss.time_to_unix_ns = drop_.last_ns;
  loss.detail = "spool quota " + std::to_string(options_.quota_bytes) + " bytes reached";
  AppendLossLocked(loss);
  drop_ = DropEpisode{};
  drop_.last_loss_ns = now;
}

std::vector<std::string> Spool::DetachSegmentsBelowLocked(uint64_t seq, uint64_t need) {
  // A segment may go once the next one starts at or below `seq` and it is durable, so the
  // leader never writes to a detached file. With need > 0 this is kDropOldest: drop only
  // while still full, and write a LOSS record for what was lost.
  std::vector<std::string> names;
  while (segments_.size() >= 2 && segments_[1].base <= seq && segments_[1].base <= durable_size_ &&
         (need == 0 || FullLocked(need, false))) {
    const SegmentInfo gone = segments_.front();
    segments_.pop_front();
    bytes_used_ -= gone.bytes;
    names.push_back(SegmentFileName(gone.base));
    if (need > 0) AppendDropOldestLossLocked(gone, segments_.front());
  }
  if (!names.empty()) room_cv_.notify_all();
  return names;
}

void Spool::AppendDropOldestLossLocked(const SegmentInfo& gone, const SegmentInfo& next) {
  // The range is cumulative from the slowest required cursor: earlier LOSS records may
  // sit in segments dropped since, and a consumer that is behind must still find one
  // record that names everything it will never get.
  uint64_t first = gone.base;
  bool have_required = false;
  uint64_t min_required = UINT64_MAX;
  for (const auto& [name, c] : cursors_) {
    if (c.required) {
      have_required = true;
      min_required = std::min(min_required, c.next_seq);
    }
  }
  if (have_required) first = std::min(min_required, next.base - 1);
  LossRecord loss;
  loss.reason = LossReason::kSpoolFullDropOldest;
  loss.has_seq_range = true;
  loss.first_seq = first;
  loss.last_seq = next.base - 1;
  loss.record_count = loss.last_seq - loss.first_seq + 1;
  loss.bytes = gone.bytes;
  loss.time_from_unix_ns = gone.created_unix_ns;
  loss.time_to_unix_ns = next.created_unix_ns;
  loss.detail = "segment " + SegmentFileName(gone.base) + " dropped; quota " +
                std::to_string(options_.quota_bytes) + " bytes";
  AppendLossLocked(loss);
  counters_.dropped_records += next.base - std::max(gone.base, first);
  counters_.dropped_bytes += gone.bytes;
}

Status Spool::SyncThenRemove(const std::vector<std::string>& names) {
  // The LOSS records naming the dropped records must be durable before the records go.
  RETURN_IF_ERROR(Sync());
  return RemoveFiles(names);
}

Status Spool::RemoveFiles(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    Status s = env_->RemoveFile(env::JoinPath(dir_, name));
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  }
  return names.empty() ? Status::Ok() : env_->SyncDir(dir_);
}

Status Spool::Sync() {
  uint64_t target;
  {
    std::lock_guard<std::mutex> lock(mu_);
    target = next_seq_;
  }
  return SyncTo(target, /*flush_all=*/true);
}

Status Spool::WaitDurable(uint64_t seq) { return SyncTo(seq + 1, /*flush_all=*/false); }

Status Spool::SyncTo(uint64_t target_size, bool flush_all) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (!sticky_.ok()) return sticky_;
    if (durable_size_ >= target_size &&
        (!flush_all || (pending_.empty() && changed_positions_.empty()))) {
      return Status::Ok();
    }
    if (!syncing_) break;
    durable_cv_.wait(lock);  // another thread leads; its fsync may cover us
  }
  if (target_size > next_seq_) {
    return InvalidArgumentError("seq " + std::to_string(target_size - 1) +
                                " has not been appended");
  }
  syncing_ = true;  // this thread is now the leader and owns active_file_
  if (records_since_frontier_ >= options_.frontier_interval_records) AppendFrontierLocked();
  AppendChangedPositionsLocked();  // behind every record this commit writes
  std::vector<Chunk> chunks = std::move(pending_);
  pending_.clear();
  pending_bytes_ = 0;
  const uint64_t new_size = next_seq_;
  const merkle::CompactRange snapshot = range_;
  const SegmentInfo tail = segments_.back();  // its file's length once the chunks are written
  lock.unlock();

  Status s = WriteChunks(chunks);

  lock.lock();
  syncing_ = false;
  durable_cv_.notify_all();
  if (!s.ok()) {
    // Nothing of this commit counts: its bytes go back in front of what was appended
    // since, and Heal writes them again over the durable tail.
    for (const Chunk& c : chunks) pending_bytes_ += c.bytes.size();  // with those since
    chunks.insert(chunks.end(), std::make_move_iterator(pending_.begin()),
                  std::make_move_iterator(pending_.end()));
    pending_ = std::move(chunks);
    sticky_ = FailedPreconditionError(
        "spool write failed; appends are refused until the spool heals (it writes the "
        "unsynced records again once the disk takes them): " +
        s.ToString());
    failed_atomic_.store(true, std::memory_order_release);
    ++counters_.write_failures;
    room_cv_.notify_all();
    return sticky_;
  }
  if (!chunks.empty() && chunks.back().bytes.capacity() > spare_buffer_.capacity() &&
      chunks.back().bytes.capacity() <= kMaxPendingBytes * 2) {
    spare_buffer_ = std::move(chunks.back().bytes);
  }
  durable_tail_ = tail;
  has_durable_tail_ = true;
  durable_size_ = new_size;
  durable_size_atomic_.store(new_size, std::memory_order_release);
  bytes_used_atomic_.store(bytes_used_, std::memory_order_relaxed);
  dropped_atomic_.store(counters_.dropped_records, std::memory_order_relaxed);
  durable_range_ = snapshot;
  ++counters_.syncs;
  return Status::Ok();
}

Status Spool::WriteChunks(const std::vector<Chunk>& chunks) {
  for (const Chunk& chunk : chunks) {
    const std::string path = env::JoinPath(dir_, SegmentFileName(chunk.base));
    if (chunk.new_segment) {
      if (active_file_) {  // seal the previous segment: durable before the next begins
        RETURN_IF_ERROR(active_file_->Sync());
        RETURN_IF_ERROR(active_file_->Close());
        active_file_.reset();
      }
      ASSIGN_OR_RETURN(active_file_, env_->NewWritableFile(path));
      RETURN_IF_ERROR(env_->SyncDir(dir_));
    } else if (!active_file_) {
      ASSIGN_OR_RETURN(active_file_, env_->NewAppendableFile(path));
    }
    RETURN_IF_ERROR(active_file_->Append(chunk.bytes));
  }
  if (active_file_) RETURN_IF_ERROR(active_file_->Sync());
  return Status::Ok();
}

Status Spool::Heal() {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return FailedPreconditionError("spool is closed");
  if (sticky_.ok()) return Status::Ok();
  while (syncing_) durable_cv_.wait(lock);
  syncing_ = true;  // the leader role: nobody else touches the files meanwhile
  const bool has_tail = has_durable_tail_;
  const SegmentInfo tail = durable_tail_;
  std::vector<uint64_t> created;  // segments the failed commits began: none is durable
  for (const Chunk& c : pending_) {
    if (c.new_segment) created.push_back(c.base);
  }
  lock.unlock();

  // What a restart's recovery would do, without trusting anything written after the last
  // successful sync: after a failed fsync the page cache may hold bytes that never reached
  // the disk, so they are cut, and rewritten from memory by the next commit.
  active_file_.reset();
  Status s;
  if (has_tail) {
    const std::string path = env::JoinPath(dir_, SegmentFileName(tail.base));
    if (env_->FileExists(path)) s = env_->TruncateFile(path, tail.bytes);
  }
  for (uint64_t base : created) {
    if (!s.ok()) break;
    if (has_tail && base == tail.base) continue;
    s = env_->RemoveFile(env::JoinPath(dir_, SegmentFileName(base)));
    if (s.code() == StatusCode::kNotFound) s = Status::Ok();
  }
  if (s.ok()) s = env_->SyncDir(dir_);

  lock.lock();
  syncing_ = false;
  durable_cv_.notify_all();
  if (!s.ok()) return s.WithContext("spool heal");
  sticky_ = Status::Ok();
  failed_atomic_.store(false, std::memory_order_release);
  lock.unlock();
  Status synced = Sync();  // the records of the failed commits, then whatever followed
  lock.lock();
  if (synced.ok()) ++counters_.heals;
  room_cv_.notify_all();
  return synced;
}

bool Spool::WaitForRoom(size_t payload_bytes, int64_t timeout_ms) {
  const uint64_t need = kFrameHeaderSize + payload_bytes + kSegmentOverhead;
  std::unique_lock<std::mutex> lock(mu_);
  // A sticky error is waited out like a full spool: Heal() notifies once it is cleared.
  return room_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return (!FullLocked(need, false) && sticky_.ok()) || closed_; }) &&
         sticky_.ok() && !FullLocked(need, false);
}

void Spool::FlusherLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_flusher_) {
    flusher_cv_.wait_for(lock, std::chrono::milliseconds(options_.sync_interval_ms));
    if (stop_flusher_) break;
    lock.unlock();
    (void)Sync();  // a failure is sticky and reported to every later caller
    lock.lock();
  }
}

uint64_t Spool::durable_size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return durable_size_;
}

Status Spool::sticky_error() const {
  if (!failed_atomic_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  return sticky_;
}

uint64_t Spool::next_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_seq_;
}

uint64_t Spool::oldest_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return segments_.front().base;
}

Stats Spool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = counters_;
  s.next_seq = next_seq_;
  s.durable_size = durable_size_;
  s.oldest_seq = segments_.front().base;
  s.bytes_used = bytes_used_;
  s.quota_bytes = options_.quota_bytes;
  s.segments = segments_.size();
  return s;
}

StatusOr<Checkpoint> Spool::DurableCheckpoint() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!merkle_known_) {
    return FailedPreconditionError(
        "the spool's Merkle state was lost to corruption during recovery; a new epoch is "
        "needed to sign checkpoints again");
  }
  return Checkpoint{durable_size_, durable_range_.Root()};
}

// --- Cursors ---

Status Spool::AddCursor(const std::string& name, bool required) {
  if (name.empty() || name.size() > 255) {
    return InvalidArgumentError("cursor name must be 1 to 255 bytes");
  }
  std::unique_lock<std::mutex> lock(mu_);
  auto [it, inserted] = cursors_.try_emplace(name, CursorState{name, 0, required});
  if (inserted) it->second.next_seq = segments_.front().base;
  it->second.required = required;
  ++cursors_version_;
  return PersistCursorsLocked(lock);
}

StatusOr<uint64_t> Spool::CursorPosition(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cursors_.find(name);
  if (it == cursors_.end()) return NotFoundError("no cursor named \"" + name + "\"");
  return it->second.next_seq;
}

Status Spool::AdvanceCursor(const std::string& name, uint64_t next_seq) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = cursors_.find(name);
  if (it == cursors_.end()) return NotFoundError("no cursor named \"" + name + "\"");
  if (next_seq > durable_size_) {
    return InvalidArgumentError("cursor \"" + name + "\" cannot pass the durable size " +
                                std::to_string(durable_size_));
  }
  if (next_seq <= it->second.next_seq) return Status::Ok();
  it->second.next_seq = next_seq;
  ++cursors_version_;
  RETURN_IF_ERROR(PersistCursorsLocked(lock));
  return ReleaseConsumedLocked(lock);
}

Status Spool::RemoveCursor(const std::string& name) {
  std::unique_lock<std::mutex> lock(mu_);
  if (cursors_.erase(name) == 0) return NotFoundError("no cursor named \"" + name + "\"");
  ++cursors_version_;
  RETURN_IF_ERROR(PersistCursorsLocked(lock));
  return ReleaseConsumedLocked(lock);
}

std::vector<std::string> Spool::CursorNames() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, c] : cursors_) names.push_back(name);
  return names;
}

Status Spool::ReleaseConsumedLocked(std::unique_lock<std::mutex>& lock) {
  uint64_t min_required = UINT64_MAX;
  for (const auto& [n, c] : cursors_) {
    if (c.required) min_required = std::min(min_required, c.next_seq);
  }
  if (min_required == UINT64_MAX) return Status::Ok();  // nobody required: keep everything
  std::vector<std::string> names = DetachSegmentsBelowLocked(min_required, /*need=*/0);
  lock.unlock();
  return RemoveFiles(names);
}

Status Spool::PersistCursorsLocked(std::unique_lock<std::mutex>& lock) {
  std::vector<CursorState> all;
  for (const auto& [name, c] : cursors_) all.push_back(c);
  const std::string bytes = EncodeCursors(all);
  const uint64_t version = cursors_version_;
  lock.unlock();
  Status s;
  {
    std::lock_guard<std::mutex> io(cursor_io_mu_);
    if (version > cursors_written_version_) {  // never let an older snapshot win
      s = env::WriteFileAtomically(env_, env::JoinPath(dir_, "CURSORS"), bytes);
      if (s.ok()) cursors_written_version_ = version;
    }
  }
  lock.lock();
  return s;
}

}  // namespace gapless::spool
