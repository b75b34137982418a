// Spool: the agent's crash-safe, append-only, segmented local log.
//
// What it promises (each is tested in spool_test.cc and tests/):
//   - Records get dense seqs from 0 that are never reused, not even after a crash or
//     after corruption hides how many records a damaged region held.
//   - A record is durable only after the fsync covering it returned; durable_size() and
//     WaitDurable() say exactly which records those are. Many appends share one fsync
//     (group commit): one caller writes and syncs everything pending while the others
//     wait, and appends go on meanwhile into a fresh in-memory batch.
//   - Recovery on Open truncates a torn tail silently (the writer died mid-record),
//     skips only the bytes that fail their checksums, keeps every good record around
//     them, reports the damage, and appends a LOSS record for it. It never crashes on
//     file contents and never asks anyone to delete a file.
//   - Nothing is dropped silently. When the quota is reached, kBlock (the default)
//     refuses the append with kResourceExhausted and the caller waits (WaitForRoom);
//     kDropOldest / kDropNewest drop, and a LOSS record in the stream itself accounts
//     for exactly what was dropped.
//   - A failed write or fsync is sticky: every later append fails, and a write that may
//     not have happened is never acknowledged, until Heal() cuts the files back to what
//     the last successful sync covered and writes the unsynced records again from memory
//     (a full disk is survived without a restart; docs/guarantees.md).
//   - The Merkle root (RFC 9162) is known for every durable size, from O(log n) state.
//
// Thread contract: every public method may be called from any thread. One mutex guards
// the in-memory state and is never held across file I/O; the segment file being written
// belongs to whichever thread currently holds the sync "leader" role (syncing_), and
// cursor-file writes are serialised by their own mutex.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"
#include "env/env.h"
#include "merkle/merkle.h"
#include "spool/cursor_file.h"
#include "spool/loss_record.h"
#include "spool/spool_format.h"

namespace gapless::spool {

enum class FullPolicy : uint8_t { kBlock, kDropOldest, kDropNewest };
std::string_view FullPolicyName(FullPolicy p);
StatusOr<FullPolicy> ParseFullPolicy(std::string_view name);  // "block", "drop_oldest", ...

struct Options {
  uint64_t segment_bytes = 64ull << 20;
  // Bytes all segment files may use together. Must be at least 4 segments.
  uint64_t quota_bytes = 1ull << 30;
  FullPolicy full_policy = FullPolicy::kBlock;
  // 0: records become durable when a caller asks (Sync / WaitDurable). > 0: a background
  // thread also syncs this often, bounding how long an unsynced record waits.
  int64_t sync_interval_ms = 0;
  uint32_t max_record_bytes = 1u << 20;
  // A Merkle frontier frame is written at the end of a sync batch once this many records
  // were appended since the last one (and at every segment start and at Close). After
  // corruption, recovery re-anchors the tree at the next frontier frame.
  uint64_t frontier_interval_records = 256;
};

// One damaged region found by recovery. Seqs are present when the records the region
// hid are known (from the next good record or segment); otherwise the spool skips seqs
// conservatively (one per 21 damaged bytes) so none can be reused, and names them.
struct Damage {
  std::string segment;
  uint64_t offset = 0;
  uint64_t bytes = 0;
  bool has_seqs = false;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::string reason;
};

struct RecoveryReport {
  std::vector<Damage> damage;         // new damage; a LOSS record was appended for each
  uint64_t already_recorded = 0;      // damage found again that an earlier LOSS record names
  uint64_t torn_bytes_truncated = 0;  // a writer died mid-record: not corruption
  uint64_t records = 0;               // records found intact
  uint64_t next_seq = 0;
  uint64_t frontier_mismatches = 0;  // stored frontier != recomputed: tampering or a bug
  bool merkle_known = true;          // false: corruption hid leaves and no frontier followed
  bool cursors_reset = false;        // CURSORS was damaged; cursors restart at the oldest seq
};

struct Record {
  uint64_t seq = 0;
  FrameType type = FrameType::kData;
  std::string payload;
};

struct Checkpoint {
  uint64_t size = 0;
  Hash256 root{};
};

// An input position set together with a record (Spool::Append, SetPosition).
struct PositionUpdate {
  std::string_view key;
  std::string_view value;
};

struct AppendResult {
  uint64_t seq = 0;      // valid unless dropped
  bool dropped = false;  // kDropNewest dropped it; a LOSS record accounts for it
};

struct Stats {
  uint64_t next_seq = 0;
  uint64_t durable_size = 0;
  uint64_t oldest_seq = 0;
  uint64_t bytes_used = 0;
  uint64_t quota_bytes = 0;
  uint64_t segments = 0;
  uint64_t dropped_records = 0;
  uint64_t dropped_bytes = 0;
  uint64_t loss_records = 0;
  uint64_t full_refusals = 0;  // appends refused with kResourceExhausted under kBlock
  uint64_t syncs = 0;
  uint64_t write_failures = 0;  // commits whose write or fsync failed
  uint64_t heals = 0;           // Heal() calls that cleared a sticky error
};

class Reader;

class Spool {
 public:
  // Opens (creating if needed) the spool in dir and recovers it. Takes dir/LOCK, so a
  // second Open of the same directory fails with kFailedPrecondition. `env` must outlive
  // the spool.
  static StatusOr<std::unique_ptr<Spool>> Open(env::Env* env, const std::string& dir,
                                               const Options& options,
                                               RecoveryReport* report = nullptr);
  // Calls Close() if it was not called.
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Writes any pending loss record and a final frontier, syncs, stops the flusher.
  Status Close();

  // Appends a data record. Not durable until durable_size() > seq.
  //   kResourceExhausted  full under kBlock: nothing was written; WaitForRoom, then retry.
  //   kInvalidArgument    payload larger than max_record_bytes (or a bad position).
  //   kFailedPrecondition an earlier I/O error (sticky) or the spool is closed.
  // `position`, if given, is set with the record (see SetPosition), under the same lock:
  // an input's position after this record, also when the record was dropped by the full
  // policy (its LOSS record accounts for it), never when it was refused.
  StatusOr<AppendResult> Append(std::string_view payload, const PositionUpdate* position = nullptr);

  // Appends a LOSS record from an input (e.g. UDP datagrams the kernel dropped). It may use
  // the reserve kept for loss records, so it succeeds where a data append is refused;
  // kResourceExhausted only when even the reserve is used up (keep the count, retry).
  StatusOr<uint64_t> AppendLoss(const LossRecord& loss);

  // Sets input position `key` to `value`: where the input is once every record appended
  // before is in the spool. Each group commit writes the positions set since the last one
  // as kPosition frames after the records it writes (so they are durable with exactly the
  // records they cover, whatever part of the appends a commit catches); every segment
  // starts with all of them (removing old segments never loses one); recovery reads the
  // latest back. An input that resumes from Position() after a crash re-reads nothing the
  // spool holds and skips nothing it lost. Not limited by the quota (small).
  // kInvalidArgument past kMaxPositionKeyBytes / kMaxPositionValueBytes;
  // kFailedPrecondition after a sticky error or Close.
  Status SetPosition(std::string_view key, std::string_view value);
  // The latest position of `key` found at recovery or appended since; nullopt if none.
  std::optional<std::string> Position(std::string_view key) const;
  // The seq written in the last position frame recovery found (the next seq when it was
  // written); nullopt if it found none. Every record below it is covered by a position
  // frame; records from it on (a commit cut short by a crash: its frames come at its end)
  // may not be, so an input that also puts its position into its records reads those
  // records to resume exactly after them.
  std::optional<uint64_t> recovered_position_seq() const { return recovered_position_seq_; }
  // Stops writing `key` again in new segments (a file that is gone for good). Recovery may
  // still find its last frame in a retained segment.
  void ForgetPosition(std::string_view key);

  // Makes every record appended before the call durable (group commit).
  Status Sync();
  // Returns once record `seq` is durable; joins or leads a group commit.
  Status WaitDurable(uint64_t seq);
  // After a sticky write error: truncates the active segment to the length its last
  // successful sync covered, removes segments begun since, and writes every record and
  // frame appended since that sync again (same seqs, same bytes) — what recovery after a
  // restart would keep, plus the unsynced records it would have lost. Ok when there was no
  // error or the rewrite was synced; otherwise the error, which stays sticky (call again
  // later). Bytes written after a failed fsync are never trusted: they are rewritten.
  Status Heal();
  // Waits until an append of payload_bytes would fit under the quota and no sticky error
  // refuses it (Heal cleared it), or the timeout; true if it would be taken now.
  bool WaitForRoom(size_t payload_bytes, int64_t timeout_ms);

  uint64_t durable_size() const;  // records [0, durable_size) are durable
  // The same, read from an atomic without the spool's mutex: for the watchdog and the
  // heartbeat path, which must not share a lock with the senders.
  uint64_t durable_size_lock_free() const {
    return durable_size_atomic_.load(std::memory_order_acquire);
  }
  // Bytes used and records dropped by the full policy, as of the last group commit;
  // without the mutex, for heartbeats.
  uint64_t quota_bytes() const { return options_.quota_bytes; }  // fixed at Open
  // The Env the spool reads and writes through (its clock is the agent's clock too).
  env::Env* env() const { return env_; }
  uint64_t bytes_used_lock_free() const {
    return bytes_used_atomic_.load(std::memory_order_relaxed);
  }
  uint64_t dropped_records_lock_free() const {
    return dropped_atomic_.load(std::memory_order_relaxed);
  }
  // The sticky write error that refuses every append (Ok while there is none). Reads an
  // atomic first: without an error it never takes the spool's mutex.
  Status sticky_error() const;
  uint64_t next_seq() const;
  uint64_t oldest_seq() const;  // seqs below were removed (consumed or dropped)
  const Epoch& epoch() const { return epoch_; }
  Stats stats() const;
  // Size and RFC 9162 root of the durable tree. kFailedPrecondition if recovery lost
  // the Merkle state to corruption (see RecoveryReport::merkle_known).
  StatusOr<Checkpoint> DurableCheckpoint() const;

  // Registers a consumer, at the oldest retained seq if new. Persisted. A cursor is not
  // moved by kDropOldest: a reader from it gets kNotFound and resumes at oldest_seq(),
  // where a LOSS record names every seq it missed.
  Status AddCursor(const std::string& name, bool required);
  StatusOr<uint64_t> CursorPosition(const std::string& name) const;
  // Marks records below next_seq consumed (next_seq <= durable_size()), persists the
  // cursor atomically, then removes segments every required cursor has passed.
  Status AdvanceCursor(const std::string& name, uint64_t next_seq);
  // Forgets a consumer (a destination taken out of the configuration), persists, then
  // removes segments the remaining required cursors have passed. kNotFound if unknown.
  Status RemoveCursor(const std::string& name);
  std::vector<std::string> CursorNames() const;

  // A reader of durable records from from_seq on. The reader must not outlive the spool.
  StatusOr<std::unique_ptr<Reader>> NewReader(uint64_t from_seq);

 private:
  friend class Reader;
  struct SegmentInfo {
    uint64_t base = 0;
    uint64_t bytes = 0;
    int64_t created_unix_ns = 0;
  };
  struct Chunk {  // bytes waiting for the leader, all for one segment file
    bool new_segment = false;
    uint64_t base = 0;
    std::string bytes;
  };
  struct DropEpisode {  // kDropNewest drops not yet written down in a LOSS record
    uint64_t records = 0;
    uint64_t bytes = 0;
    int64_t first_ns = 0;
    int64_t last_ns = 0;
    int64_t last_loss_ns = 0;
  };
  class Recovery;

  Spool(env::Env* env, std::string dir, const Options& options);

  // --- all *Locked methods require mu_ ---
  uint64_t AppendFrameLocked(FrameType type, std::string_view payload, uint32_t crc,
                             const Hash256& leaf);
  void AppendLossLocked(const LossRecord& loss);
  void StartSegmentLocked(uint64_t base);
  Chunk NewChunkLocked(bool new_segment, uint64_t base);
  void AppendFrontierLocked();
  void AppendPositionLocked(const std::string& key, std::string_view value);
  Status SetPositionLocked(std::string_view key, std::string_view value);
  // Position frames for the keys set since the last commit (the leader, before it takes
  // the pending chunks).
  void AppendChangedPositionsLocked();
  bool FullLocked(uint64_t need, bool for_loss) const;
  void FlushDropEpisodeLocked(bool force);
  std::vector<std::string> DetachSegmentsBelowLocked(uint64_t seq, uint64_t need);
  void AppendDropOldestLossLocked(const SegmentInfo& gone, const SegmentInfo& next);
  Status PersistCursorsLocked(std::unique_lock<std::mutex>& lock);
  // Removes segments below the lowest required cursor (none if no cursor is required);
  // unlocks for the file removal.
  Status ReleaseConsumedLocked(std::unique_lock<std::mutex>& lock);
  bool SegmentForLocked(uint64_t seq, uint64_t* base) const;

  Status Recover(RecoveryReport* report);
  Status SyncTo(uint64_t target_size, bool flush_all);
  Status SyncThenRemove(const std::vector<std::string>& names);
  // Leader only: writes chunks to segment files and syncs the active one.
  Status WriteChunks(const std::vector<Chunk>& chunks);
  Status RemoveFiles(const std::vector<std::string>& names);
  void FlusherLoop();

  env::Env* const env_;
  const std::string dir_;
  const Options options_;
  Epoch epoch_{};
  std::unique_ptr<env::FileLock> lock_;

  mutable std::mutex mu_;
  std::condition_variable durable_cv_;  // durable_size_ or syncing_ changed
  std::condition_variable room_cv_;     // bytes_used_ fell
  std::condition_variable flusher_cv_;
  uint64_t next_seq_ = 0;                         // GUARDED_BY(mu_)
  uint64_t durable_size_ = 0;                     // GUARDED_BY(mu_)
  std::atomic<uint64_t> durable_size_atomic_{0};  // a copy of durable_size_, written under mu_
  std::atomic<uint64_t> bytes_used_atomic_{0};    // copies at each commit, written under mu_
  std::atomic<uint64_t> dropped_atomic_{0};
  merkle::CompactRange range_;           // after next_seq_ records; GUARDED_BY(mu_)
  merkle::CompactRange durable_range_;   // after durable_size_ records; GUARDED_BY(mu_)
  bool merkle_known_ = true;             // GUARDED_BY(mu_)
  uint64_t records_since_frontier_ = 0;  // GUARDED_BY(mu_)
  std::vector<Chunk> pending_;           // GUARDED_BY(mu_)
  uint64_t pending_bytes_ = 0;           // GUARDED_BY(mu_)
  std::string spare_buffer_;             // a written chunk's buffer, reused; GUARDED_BY(mu_)
  std::deque<SegmentInfo> segments_;     // oldest first; back() is active; GUARDED_BY(mu_)
  uint64_t bytes_used_ = 0;              // GUARDED_BY(mu_)
  bool syncing_ = false;                 // a leader is writing; GUARDED_BY(mu_)
  Status sticky_;                        // GUARDED_BY(mu_)
  // The last segment as the last successful sync (or recovery) left it on disk: what Heal
  // truncates back to. GUARDED_BY(mu_)
  SegmentInfo durable_tail_;
  bool has_durable_tail_ = false;               // GUARDED_BY(mu_)
  std::atomic<bool> failed_atomic_{false};      // sticky_ is set
  bool closed_ = false;                         // GUARDED_BY(mu_)
  bool stop_flusher_ = false;                   // GUARDED_BY(mu_)
  std::map<std::string, CursorState> cursors_;  // GUARDED_BY(mu_)
  uint64_t cursors_version_ = 0;                // bumped on every change; GUARDED_BY(mu_)
  DropEpisode drop_;                            // GUARDED_BY(mu_)
  std::map<std::string, std::string, std::less<>> positions_;  // GUARDED_BY(mu_)
  std::set<std::string, std::less<>> changed_positions_;       // GUARDED_BY(mu_)
  std::optional<uint64_t> recovered_position_seq_;             // set by recovery only
  Stats counters_;  // only the counter fields; GUARDED_BY(mu_)

  // Owned by the sync leader (the thread that set syncing_); no other thread touches it.
  std::unique_ptr<env::WritableFile> active_file_;
  std::mutex cursor_io_mu_;               // serialises CURSORS writes; held across that I/O only
  uint64_t cursors_written_version_ = 0;  // GUARDED_BY(cursor_io_mu_)
  std::thread flusher_;
};

// Reads durable records in seq order. Skips frontier frames and damaged bytes (whose
// loss recovery already recorded); counts what it skipped.
// Thread contract: one thread at a time; must not outlive its Spool.
class SegmentReader;

class Reader {
 public:
  ~Reader();
  // Fills *out with the next durable record; false when caught up with durable_size().
  //   kNotFound  the next record was removed (consumed by all, or dropped by policy).
  //   kDataLoss  a durable record's bytes are missing from its segment.
  StatusOr<bool> Next(Record* out);
  uint64_t next_seq() const { return next_; }
  uint64_t records_skipped() const { return records_skipped_; }

 private:
  friend class Spool;
  Reader(Spool* spool, uint64_t from_seq);
  Status OpenSegmentFor(uint64_t seq);

  Spool* const spool_;
  uint64_t next_;
  uint64_t segment_base_ = 0;
  std::unique_ptr<env::RandomAccessFile> file_;
  std::unique_ptr<SegmentReader> reader_;
  uint64_t records_skipped_ = 0;
};

}  // namespace gapless::spool
