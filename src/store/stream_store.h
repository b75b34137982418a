// StreamStore: the collector's copy of one agent stream (agent id + epoch), stored
// exactly once, in seq order, durable before it is acknowledged. Format:
// docs/formats/store.md.
//
//   dir/<base>.seg   records in the spool's segment format (same frames, CRC32C, seqs)
//   dir/leaves       the RFC 9162 leaf hash of every seq, 32 bytes each, dense from 0
//                    (zero for seqs the agent declared gone), for O(1) dedupe and proofs
//   dir/level-8, level-16, ...  perfect-subtree hashes for O(log n) proofs (hash_levels.h)
//   dir/gaps         one "first last" line per range the agent declared gone
//   dir/evidence.seg records that arrived with a seq already stored but other bytes
//   dir/FLAGGED      one line per equivocation: the stream can no longer be trusted
//   dir/checkpoints  the collector's signed checkpoints over the stored leaves, in order
//   dir/witnessed    some of them again, with the witnesses' cosignatures (collector/witnessing.h)
//
// What it promises (stream_store_test.cc):
//   - a seq is stored at most once; a re-sent record with the same bytes is counted as a
//     duplicate and not stored again; the same seq with other bytes is kept as evidence
//     and flags the stream;
//   - records are accepted only in seq order: a batch may overlap what is stored, but a
//     hole is accepted only when the agent declares it (kBatchGapBefore);
//   - durable_next() moves only after the fsync of everything below it returned;
//   - Open recovers after a crash: a torn tail is cut, damage is skipped and reported,
//     the leaves file is made to match the records.
//
// Thread contract: Append, next_seq and the stats are for the stream's owner (one thread
// at a time — the collector's network thread); Commit is for the committer thread (one
// at a time) and is the only code that touches the files after Open. One mutex guards
// the hand-over between them; it is never held across file I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "base/sha256.h"
#include "base/status.h"
#include "env/env.h"
#include "merkle/merkle.h"
#include "spool/spool_format.h"
#include "store/hash_levels.h"
#include "store/layout.h"

namespace gapless::store {

struct StoreOptions {
  uint64_t segment_bytes = 64ull << 20;
};

struct OpenReport {
  uint64_t records = 0;
  uint64_t next_seq = 0;
  uint64_t torn_bytes_truncated = 0;
  uint64_t damaged_bytes = 0;  // failed checksums: kept out, logged, a gap for `verify`
  uint64_t leaves_rebuilt = 0;
};

// A record as the store takes it: its frame type, the CRC32C its sender computed (the
// caller has checked it; it is written as is), and its bytes, which must stay valid for
// the call to Append.
struct Record {
  spool::FrameType type = spool::FrameType::kData;
  uint32_t crc = 0;
  std::string_view payload;
};

// Where a batch of records goes: its first seq, and whether the agent declared the seqs
// between the store's next_seq() and first_seq gone from its spool.
struct BatchPosition {
  uint64_t first_seq = 0;
  bool gap_declared = false;
};

struct AppendResult {
  uint32_t appended = 0;
  uint32_t duplicates = 0;     // re-sent records with the stored bytes: not stored again
  uint32_t equivocations = 0;  // stored seqs sent again with other bytes: kept as evidence
  bool declared_gap = false;
};

// What Append did, typed so that callers branch on the kind (the collector maps each to
// a wire::ErrorCode in one table), never on the message's words.
struct [[nodiscard]] AppendOutcome {
  enum class Kind : uint8_t {
    kAppended,        // queued; see result for duplicates and equivocations
    kSequenceGap,     // a hole the agent did not declare; nothing queued
    kImplausibleGap,  // a declared gap larger than any spool could have dropped; nothing queued
    kStoreFailed,     // a write failed now or earlier (sticky), or stored leaves unreadable
  };
  Kind kind = Kind::kAppended;
  Status status;  // OK for kAppended; else what is wrong, for the log and the agent
  AppendResult result;

  bool ok() const { return kind == Kind::kAppended; }
  const AppendResult& operator*() const { return result; }
  const AppendResult* operator->() const { return &result; }
};

struct StreamStats {
  uint64_t next_seq = 0;
  uint64_t durable_next = 0;
  uint64_t duplicates = 0;
  uint64_t equivocations = 0;
  uint64_t declared_gap_records = 0;
  bool merkle_known = true;
  bool flagged = false;  // an equivocation was seen (now or before Open)
};

class StreamStore {
 public:
  static StatusOr<std::unique_ptr<StreamStore>> Open(env::Env* env, const std::string& dir,
                                                     const spool::Epoch& epoch,
                                                     const StoreOptions& options,
                                                     OpenReport* report = nullptr);
  ~StreamStore();
  StreamStore(const StreamStore&) = delete;
  StreamStore& operator=(const StreamStore&) = delete;

  // Owner thread. Checks the batch against what is stored and queues what is new.
  // leaves[i] is the RFC 9162 leaf of records[i] (the caller computed it while checking).
  AppendOutcome Append(const BatchPosition& at, const std::vector<Record>& records,
                       const std::vector<Hash256>& leaves);
  uint64_t next_seq() const { return next_seq_; }

  // Committer thread. Writes and syncs what was queued; durable_next() then covers it.
  // An error is sticky: nothing is acknowledged past it and Append fails from then on.
  Status Commit();
  // Committer thread, after Commit failed (a full or failing disk): closes the files and
  // cuts them back to what the last successful Commit (or Open) made durable — the active
  // segment to its synced length, segments begun since removed, leaves, gaps, evidence and
  // FLAGGED to their synced sizes — so that a new Open recovers exactly the acknowledged
  // records and trusts nothing written after a failed write or fsync (the sender still
  // holds the rest and sends it again). The object takes no more writes; reopen the stream.
  Status DiscardUnsynced();
  bool has_pending() const;
  uint64_t durable_next() const { return durable_next_.load(std::memory_order_acquire); }

  // Committer thread: the size and RFC 9162 root of the durable leaves file (a declared
  // gap counts as zero leaves, so this is the collector's own tree, which equals the
  // agent's only without gaps). What the collector signs.
  uint64_t committed_size() const { return levels_.size(); }
  Hash256 committed_root() const { return levels_.Range().Root(); }
  // Committer thread: appends one signed checkpoint note to dir/checkpoints and syncs. A
  // failed append is cut back before the next one (never a torn frame in the middle).
  Status AppendCheckpoint(std::string_view note);
  // Any thread: a write failed (sticky); committed_size() may then count leaves that
  // DiscardUnsynced cuts back, so nothing is signed from it.
  bool failed() const { return failed_.load(std::memory_order_acquire); }

  StreamStats stats() const;
  // Any thread: seqs the agent declared gone (zero leaves in the collector's tree).
  uint64_t declared_gap_records() const { return gap_records_.load(std::memory_order_acquire); }
  // RFC 9162 root over seqs [0, next_seq()); kFailedPrecondition after a declared gap.
  StatusOr<Hash256> Root() const;
  const std::string& dir() const { return dir_; }
  const spool::Epoch& epoch() const { return epoch_; }

 private:
  StreamStore(env::Env* env, std::string dir, const spool::Epoch& epoch,
              const StoreOptions& options);
  Status Recover(OpenReport* report);
  // Committer thread: feeds committed leaves to the level files.
  Status AppendLevels(std::string_view leaves);
  // Open: cuts a torn checkpoint at the end of dir/checkpoints, opens it for appending.
  Status RecoverCheckpoints();
  StatusOr<Hash256> StoredLeaf(uint64_t seq);
  // Adds one record's frame (and leaf) to pending_.
  void QueueRecordLocked(uint64_t seq, const Record& r, const Hash256& leaf) REQUIRES(mu_);

  env::Env* const env_;
  const std::string dir_;
  const StreamFiles files_;
  const spool::Epoch epoch_;
  const StoreOptions options_;

  // Owner thread only.
  uint64_t next_seq_ = 0;
  merkle::CompactRange range_;
  bool merkle_known_ = true;
  std::deque<Hash256> recent_leaves_;  // seqs [recent_base_, next_seq_)
  uint64_t recent_base_ = 0;
  std::unique_ptr<env::RandomAccessFile> leaves_reader_;
  uint64_t duplicates_ = 0;
  uint64_t equivocations_ = 0;
  std::atomic<uint64_t> gap_records_{0};  // written by the owner, read by any thread
  bool flagged_ = false;
  uint64_t segment_fill_ = 0;  // bytes in the active segment, queued ones included
  uint64_t segment_base_ = 0;  // base of the active segment, as the owner sees it

  // The hand-over between the owner and the committer.
  struct Chunk {  // bytes for one segment file; a new one starts with its header
    bool new_segment = false;
    uint64_t base = 0;
    std::string bytes;
  };
  struct Pending {
    std::vector<Chunk> segments;
    std::string leaves;
    std::string gaps;
    std::string evidence;
    std::string flagged;
    uint64_t next = 0;  // durable_next once written
  };
  mutable Mutex mu_;
  Pending pending_ GUARDED_BY(mu_);
  Status sticky_ GUARDED_BY(mu_);
  std::atomic<uint64_t> durable_next_{0};
  std::atomic<bool> failed_{false};

  // Committer thread only (after Open).
  // What the last successful Commit (or Open) left durable: what DiscardUnsynced keeps.
  struct Synced {
    bool has_segment = false;
    uint64_t segment_base = 0, segment_bytes = 0;
    uint64_t leaves_bytes = 0, gaps_bytes = 0, evidence_bytes = 0, flagged_bytes = 0;
  };
  Synced synced_;
  void NoteSynced();
  uint64_t active_base_ = 0;
  std::unique_ptr<env::WritableFile> active_;
  std::unique_ptr<env::WritableFile> leaves_;
  LevelBuilder levels_;
  std::unique_ptr<env::WritableFile> checkpoints_;               // null after a failed append
  uint64_t checkpoints_good_ = 0;                                // its size before that append
  std::vector<std::unique_ptr<env::WritableFile>> level_files_;  // [tier - 1], opened on need
};

// Calls fn(seq, type, payload) for every intact record of a store directory (not
// evidence), in seq order. For tests, `verify` and tools; the store may not be open.
// Segments wholly below from_seq are not read (records below it may still be passed).
Status ForEachStoredRecord(
    env::Env* env, const std::string& dir,
    const std::function<void(uint64_t, spool::FrameType, std::string_view)>& fn,
    uint64_t from_seq = 0);

// The intact record stored at seq (reads one segment). kNotFound if none is: beyond the
// end, a declared gap, or damage.
struct StoredRecord {
  spool::FrameType type = spool::FrameType::kData;
  std::string payload;
};
StatusOr<StoredRecord> ReadStoredRecord(env::Env* env, const std::string& dir, uint64_t seq);

// Calls fn(note) for every complete note in one of the stream's note logs, oldest first:
// the collector's checkpoints (kCheckpoints), those with the cosignatures witnesses
// returned (kWitnessed), or the agent's signed checkpoints that matched the store when
// they arrived (kAgentCheckpoints). Framing: "<decimal byte length>\n<note bytes>" each.
// kDataLoss (after the calls) if bytes follow that are not a complete frame.
Status ForEachCheckpoint(env::Env* env, const std::string& dir,
                         const std::function<void(std::string_view)>& fn,
                         StreamFiles::NoteLog log = StreamFiles::NoteLog::kCheckpoints);
// Appends one framed note to the file at path and syncs it; with repair_tail, first cuts
// a torn frame a crash left at its end. For logs one writer owns (dir/witnessed).
Status AppendNoteFrame(env::Env* env, const std::string& path, std::string_view note,
                       bool repair_tail);

}  // namespace gapless::store
