#include "store/stream_store.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <map>
#include <optional>

#include "base/invariant.h"
#include "base/log.h"
#include "spool/segment_reader.h"
#include "store/layout.h"
#include "store/reader.h"

namespace gapless::store {
namespace {

constexpr size_t kLeafSize = 32;
constexpr size_t kRecentLeaves = 1 << 16;
// A declared gap is written as zero leaves; beyond this it is refused as implausible
// (an agent cannot have dropped more than its spool held).
constexpr uint64_t kMaxDeclaredGap = 1ull << 24;

std::string_view AsBytes(const Hash256& h) {
  return std::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}

}  // namespace

StreamStore::StreamStore(env::Env* env, std::string dir, const spool::Epoch& epoch,
                         const StoreOptions& options)
    : env_(env), dir_(std::move(dir)), files_(dir_), epoch_(epoch), options_(options) {}

StreamStore::~StreamStore() = default;

StatusOr<std::unique_ptr<StreamStore>> StreamStore::Open(env::Env* env, const std::string& dir,
                                                         const spool::Epoch& epoch,
                                                         const StoreOptions& options,
                                                         OpenReport* report) {
  RETURN_IF_ERROR(env->CreateDir(dir));
  std::unique_ptr<StreamStore> s(new StreamStore(env, dir, epoch, options));
  OpenReport local;
  RETURN_IF_ERROR(s->Recover(report != nullptr ? report : &local));
  return s;
}

Status StreamStore::Recover(OpenReport* report) {
  ASSIGN_OR_RETURN(auto segments, ListSegments(env_, dir_));
  const std::string leaves_path = files_.Leaves();
  uint64_t leaves_in_file = 0;
  if (env_->FileExists(leaves_path)) {
    ASSIGN_OR_RETURN(uint64_t bytes, env_->GetFileSize(leaves_path));
    leaves_in_file = bytes / kLeafSize;
  }
  std::string missing_leaves;            // leaves of seqs the leaves file does not hold yet
  std::vector<std::string> level_bytes;  // the level files, rebuilt from every leaf
  uint64_t last_base = 0;
  uint64_t last_size = 0;
  for (auto it = segments.begin(); it != segments.end(); ++it) {
    const std::string path = env::JoinPath(dir_, it->second);
    const bool last = std::next(it) == segments.end();
    ASSIGN_OR_RETURN(uint64_t size, env_->GetFileSize(path));
    ASSIGN_OR_RETURN(auto file, env_->NewRandomAccessFile(path));
    std::string header(spool::kSegmentHeaderSize, '\0');
    ASSIGN_OR_RETURN(size_t got, file->Read(0, header.size(), header.data()));
    spool::SegmentHeader h;
    bool version_mismatch = false;
    if (got < header.size() || !spool::DecodeSegmentHeader(header, &h, &version_mismatch) ||
        h.epoch != epoch_) {
      if (last && size < spool::kSegmentHeaderSize) {  // died while creating it
        RETURN_IF_ERROR(env_->RemoveFile(path));
        report->torn_bytes_truncated += size;
        continue;
      }
      LogError("store " + dir_ + ": segment " + it->second +
               " has a damaged header; its records are left out (a gap)");
      report->damaged_bytes += size;
      continue;
    }
    spool::SegmentReader reader(file.get(), spool::kSegmentHeaderSize, size);
    for (;;) {
      ASSIGN_OR_RETURN(spool::SegmentReader::Event ev, reader.Next());
      if (ev.kind == spool::SegmentReader::Kind::kEnd) break;
      if (ev.kind == spool::SegmentReader::Kind::kTornTail) {
        if (last) {
          RETURN_IF_ERROR(env_->TruncateFile(path, ev.offset));
          report->torn_bytes_truncated += ev.bytes;
          size = ev.offset;
          break;
        }
        report->damaged_bytes += ev.bytes;
        break;
      }
      if (ev.kind == spool::SegmentReader::Kind::kDamage) {
        LogError("store " + dir_ + ": " + std::to_string(ev.bytes) + " damaged bytes in " +
                 it->second + " at offset " + std::to_string(ev.offset) + " (" + ev.reason + ")");
        report->damaged_bytes += ev.bytes;
        continue;
      }
      if (!spool::IsRecord(ev.type) || ev.seq < next_seq_) continue;
      const Hash256 leaf = spool::RecordLeafHash(ev.type, ev.payload);
      for (; next_seq_ < ev.seq; ++next_seq_) {  // a declared gap, or damage hid records
        merkle_known_ = false;
        if (next_seq_ >= leaves_in_file) missing_leaves.append(kLeafSize, '\0');
        levels_.Add(Hash256{}, &level_bytes);
      }
      if (merkle_known_) range_.Append(leaf);
      levels_.Add(leaf, &level_bytes);
      if (next_seq_ >= leaves_in_file) missing_leaves.append(AsBytes(leaf));
      ++next_seq_;
      ++report->records;
    }
    last_base = it->first;
    last_size = size;
  }
  // The leaves file must hold exactly one leaf per seq below next_seq_.
  if (leaves_in_file > next_seq_) {
    RETURN_IF_ERROR(env_->TruncateFile(leaves_path, next_seq_ * kLeafSize));
  } else if (env_->FileExists(leaves_path)) {
    ASSIGN_OR_RETURN(uint64_t bytes, env_->GetFileSize(leaves_path));
    if (bytes != leaves_in_file * kLeafSize) {
      RETURN_IF_ERROR(env_->TruncateFile(leaves_path, leaves_in_file * kLeafSize));
    }
  }
  ASSIGN_OR_RETURN(leaves_, env_->NewAppendableFile(leaves_path));
  RETURN_IF_ERROR(leaves_->Append(missing_leaves));
  RETURN_IF_ERROR(leaves_->Sync());
  // Invariant: one leaf per seq below next_seq_, whatever the file held before.
  INVARIANT(leaves_->Size() == next_seq_ * kLeafSize);
  report->leaves_rebuilt = missing_leaves.size() / kLeafSize;
  ASSIGN_OR_RETURN(leaves_reader_, env_->NewRandomAccessFile(leaves_path));
  // The level files are derived: rewrite them whole, and drop tiers the tree no longer has.
  for (size_t t = 0; t < level_bytes.size(); ++t) {
    RETURN_IF_ERROR(
        env::WriteFileAtomically(env_, files_.Level(static_cast<int>(t) + 1), level_bytes[t]));
  }
  for (int tier = static_cast<int>(level_bytes.size()) + 1; env_->FileExists(files_.Level(tier));
       ++tier) {
    RETURN_IF_ERROR(env_->RemoveFile(files_.Level(tier)));
  }
  if (!segments.empty() && last_size >= spool::kSegmentHeaderSize) {
    ASSIGN_OR_RETURN(active_, env_->NewAppendableFile(files_.Segment(last_base)));
    RETURN_IF_ERROR(active_->Sync());  // the truncation, if any
    active_base_ = segment_base_ = last_base;
    segment_fill_ = last_size;
  }
  RETURN_IF_ERROR(RecoverCheckpoints());
  RETURN_IF_ERROR(env_->SyncDir(dir_));
  flagged_ = env_->FileExists(files_.Flagged());
  NoteSynced();
  recent_base_ = next_seq_;
  durable_next_.store(next_seq_, std::memory_order_release);
  {
    MutexLock lock(&mu_);  // no other thread yet; for the analysis
    pending_.next = next_seq_;
  }
  report->next_seq = next_seq_;
  return Status::Ok();
}

StatusOr<Hash256> StreamStore::StoredLeaf(uint64_t seq) {
  if (seq >= recent_base_) return recent_leaves_[seq - recent_base_];
  Hash256 leaf{};
  ASSIGN_OR_RETURN(size_t got, leaves_reader_->Read(seq * kLeafSize, kLeafSize,
                                                    reinterpret_cast<char*>(leaf.data())));
  if (got != kLeafSize) return DataLossError("leaf " + std::to_string(seq) + " missing");
  return leaf;
}

void StreamStore::QueueRecordLocked(uint64_t seq, const Record& r, const Hash256& leaf) {
  const size_t frame_bytes = spool::kFrameHeaderSize + r.payload.size();
  if (segment_fill_ == 0 || segment_fill_ + frame_bytes > options_.segment_bytes) {
    Chunk c;
    c.new_segment = true;
    c.base = seq;
    c.bytes =
        spool::EncodeSegmentHeader(spool::SegmentHeader{epoch_, seq, env_->clock()->NowNanos()});
    pending_.segments.push_back(std::move(c));
    segment_fill_ = spool::kSegmentHeaderSize;
    segment_base_ = seq;
  } else if (pending_.segments.empty()) {
    pending_.segments.push_back(Chunk{false, segment_base_, {}});
  }
  spool::AppendFrame(&pending_.segments.back().bytes, r.type, seq, r.payload, r.crc);
  segment_fill_ += frame_bytes;
  pending_.leaves.append(AsBytes(leaf));
}

AppendOutcome StreamStore::Append(const BatchPosition& at, const std::vector<Record>& records,
                                  const std::vector<Hash256>& leaves) {
  using Kind = AppendOutcome::Kind;
  if (failed_.load(std::memory_order_acquire)) {
    return {Kind::kStoreFailed,
            FailedPreconditionError("the store of this stream failed an earlier write"),
            {}};
  }
  AppendResult result;
  const uint64_t first = at.first_seq;
  if (first > next_seq_ && !at.gap_declared) {
    return {Kind::kSequenceGap,
            FailedPreconditionError("sequence gap: expected seq " + std::to_string(next_seq_) +
                                    ", batch starts at " + std::to_string(first)),
            {}};
  }
  if (first > next_seq_ && first - next_seq_ > kMaxDeclaredGap) {
    return {Kind::kImplausibleGap,
            InvalidArgumentError("declared gap of " + std::to_string(first - next_seq_) +
                                 " records is larger than any spool could have dropped"),
            {}};
  }
  // Classify the overlap with what is stored before taking the lock (it may read the
  // leaves file).
  std::vector<size_t> conflicting;
  size_t fresh_from = 0;
  for (; fresh_from < records.size() && first + fresh_from < next_seq_; ++fresh_from) {
    auto stored = StoredLeaf(first + fresh_from);
    if (!stored.ok()) return {Kind::kStoreFailed, stored.status(), {}};
    if (*stored == leaves[fresh_from]) {
      ++result.duplicates;
    } else {
      conflicting.push_back(fresh_from);
    }
  }
  {
    MutexLock lock(&mu_);
    if (first > next_seq_) {
      pending_.gaps += std::to_string(next_seq_) + " " + std::to_string(first - 1) + "\n";
      gap_records_.fetch_add(first - next_seq_, std::memory_order_release);
      for (; next_seq_ < first; ++next_seq_) {
        pending_.leaves.append(kLeafSize, '\0');
        recent_leaves_.push_back(Hash256{});
      }
      merkle_known_ = false;
      result.declared_gap = true;
    }
    for (size_t i : conflicting) {
      const uint64_t seq = first + i;
      spool::AppendFrame(&pending_.evidence, records[i].type, seq, records[i].payload,
                         records[i].crc);
      pending_.flagged += "equivocation at seq " + std::to_string(seq) +
                          ": stored leaf differs "
                          "from the leaf " +
                          HexEncode(leaves[i]) + " sent again\n";
    }
    for (size_t i = fresh_from; i < records.size(); ++i) {
      QueueRecordLocked(next_seq_, records[i], leaves[i]);
      if (merkle_known_) range_.Append(leaves[i]);
      recent_leaves_.push_back(leaves[i]);
      ++next_seq_;
      ++result.appended;
    }
    pending_.next = next_seq_;
  }
  // Invariant: the leaves at hand cover every seq from recent_base_ up to next_seq_.
  INVARIANT(recent_base_ + recent_leaves_.size() == next_seq_);
  result.equivocations = static_cast<uint32_t>(conflicting.size());
  duplicates_ += result.duplicates;
  equivocations_ += result.equivocations;
  if (!conflicting.empty()) flagged_ = true;
  for (size_t i : conflicting) {
    LogError("EQUIVOCATION: stream " + dir_ + " seq " + std::to_string(first + i) +
             " was sent again with different bytes; both kept (evidence.seg), stream flagged");
  }
  const uint64_t durable = durable_next();
  while (recent_leaves_.size() > kRecentLeaves && recent_base_ < durable) {
    recent_leaves_.pop_front();
    ++recent_base_;
  }
  return {Kind::kAppended, Status::Ok(), result};
}

bool StreamStore::has_pending() const {
  MutexLock lock(&mu_);
  return pending_.next != durable_next() || !pending_.evidence.empty() || !pending_.gaps.empty();
}

Status StreamStore::Commit() {
  Pending work;
  {
    MutexLock lock(&mu_);
    if (!sticky_.ok()) return sticky_;
    work.next = pending_.next;
    std::swap(work.segments, pending_.segments);
    std::swap(work.leaves, pending_.leaves);
    std::swap(work.gaps, pending_.gaps);
    std::swap(work.evidence, pending_.evidence);
    std::swap(work.flagged, pending_.flagged);
  }
  auto append_small = [this](const std::string& path, const std::string& bytes,
                             bool segment_header) -> Status {
    if (bytes.empty()) return Status::Ok();
    const bool existed = env_->FileExists(path);
    ASSIGN_OR_RETURN(auto f, env_->NewAppendableFile(path));
    if (!existed && segment_header) {
      RETURN_IF_ERROR(f->Append(
          spool::EncodeSegmentHeader(spool::SegmentHeader{epoch_, 0, env_->clock()->NowNanos()})));
    }
    RETURN_IF_ERROR(f->Append(bytes));
    RETURN_IF_ERROR(f->Sync());
    if (!existed) RETURN_IF_ERROR(env_->SyncDir(dir_));
    return f->Close();
  };
  Status s;
  bool new_file = false;
  for (Chunk& c : work.segments) {
    if (!s.ok()) break;
    if (c.new_segment) {
      if (active_ != nullptr) {
        s = active_->Sync();
        if (s.ok()) s = active_->Close();
        if (!s.ok()) break;
      }
      auto f = env_->NewWritableFile(files_.Segment(c.base));
      if (!f.ok()) {
        s = f.status();
        break;
      }
      active_ = std::move(*f);
      active_base_ = c.base;
      new_file = true;
    }
    s = active_->Append(c.bytes);
  }
  if (s.ok() && active_ != nullptr && !work.segments.empty()) s = active_->Sync();
  if (s.ok() && new_file) s = env_->SyncDir(dir_);
  if (s.ok() && !work.leaves.empty()) {
    s = leaves_->Append(work.leaves);
    if (s.ok()) s = leaves_->Sync();
    if (s.ok()) s = AppendLevels(work.leaves);
  }
  if (s.ok()) s = append_small(files_.Gaps(), work.gaps, false);
  if (s.ok()) s = append_small(files_.Evidence(), work.evidence, true);
  if (s.ok()) s = append_small(files_.Flagged(), work.flagged, false);
  if (!s.ok()) {
    MutexLock lock(&mu_);
    sticky_ = s;
    failed_.store(true, std::memory_order_release);
    LogError("store " + dir_ + ": write failed, nothing more is acknowledged: " + s.ToString());
    return s;
  }
  // Invariant: the durable point never moves back.
  INVARIANT(work.next >= durable_next());
  if (!work.segments.empty() || !work.leaves.empty() || !work.gaps.empty() ||
      !work.evidence.empty() || !work.flagged.empty()) {
    NoteSynced();
  }
  durable_next_.store(work.next, std::memory_order_release);
  return Status::Ok();
}

void StreamStore::NoteSynced() {
  synced_.has_segment = active_ != nullptr;
  synced_.segment_base = active_base_;
  synced_.segment_bytes = active_ != nullptr ? active_->Size() : 0;
  synced_.leaves_bytes = leaves_ != nullptr ? leaves_->Size() : 0;
  auto size_of = [this](const std::string& path) -> uint64_t {
    if (!env_->FileExists(path)) return 0;
    StatusOr<uint64_t> n = env_->GetFileSize(path);
    return n.ok() ? *n : 0;
  };
  synced_.gaps_bytes = size_of(files_.Gaps());
  synced_.evidence_bytes = size_of(files_.Evidence());
  synced_.flagged_bytes = size_of(files_.Flagged());
}

Status StreamStore::DiscardUnsynced() {
  {
    MutexLock lock(&mu_);
    if (sticky_.ok()) sticky_ = FailedPreconditionError("the store of this stream was discarded");
    failed_.store(true, std::memory_order_release);
    pending_ = Pending{};
  }
  active_.reset();
  leaves_.reset();
  checkpoints_.reset();
  level_files_.clear();
  ASSIGN_OR_RETURN(auto segments, ListSegments(env_, dir_));
  for (const auto& [base, name] : segments) {
    const std::string path = env::JoinPath(dir_, name);
    if (synced_.has_segment && base == synced_.segment_base) {
      RETURN_IF_ERROR(env_->TruncateFile(path, synced_.segment_bytes));
    } else if (!synced_.has_segment || base > synced_.segment_base) {
      RETURN_IF_ERROR(env_->RemoveFile(path));  // begun by a failed commit: nothing durable
    }
  }
  auto cut = [this](const std::string& path, uint64_t bytes) -> Status {
    if (!env_->FileExists(path)) return Status::Ok();
    return bytes == 0 ? env_->RemoveFile(path) : env_->TruncateFile(path, bytes);
  };
  RETURN_IF_ERROR(cut(files_.Leaves(), synced_.leaves_bytes));
  RETURN_IF_ERROR(cut(files_.Gaps(), synced_.gaps_bytes));
  RETURN_IF_ERROR(cut(files_.Evidence(), synced_.evidence_bytes));
  RETURN_IF_ERROR(cut(files_.Flagged(), synced_.flagged_bytes));
  return env_->SyncDir(dir_);
}

namespace {

// Walks "<length>\n<note>" frames; returns the offset after the last complete one.
uint64_t WalkCheckpoints(std::string_view data, const std::function<void(std::string_view)>& fn) {
  uint64_t at = 0;
  while (at < data.size()) {
    const size_t eol = data.find('\n', at);
    if (eol == std::string_view::npos || eol - at > 7) break;
    uint64_t len = 0;
    bool digits = eol > at;
    for (size_t i = at; i < eol; ++i) {
      if (data[i] < '0' || data[i] > '9') digits = false;
      len = len * 10 + static_cast<uint64_t>(data[i] - '0');
    }
    if (!digits || eol + 1 + len > data.size()) break;
    fn(data.substr(eol + 1, len));
    at = eol + 1 + len;
  }
  return at;
}

}  // namespace

Status StreamStore::RecoverCheckpoints() {
  const std::string path = files_.Notes(StreamFiles::NoteLog::kCheckpoints);
  if (env_->FileExists(path)) {
    ASSIGN_OR_RETURN(std::string data, env::ReadFileToString(env_, path));
    const uint64_t good = WalkCheckpoints(data, [](std::string_view) {});
    if (good != data.size()) {
      LogWarning("store " + dir_ + ": cutting " + std::to_string(data.size() - good) +
                 " bytes of a torn checkpoint");
      RETURN_IF_ERROR(env_->TruncateFile(path, good));
    }
  }
  ASSIGN_OR_RETURN(checkpoints_, env_->NewAppendableFile(path));
  return checkpoints_->Sync();
}

Status AppendNoteFrame(env::Env* env, const std::string& path, std::string_view note,
                       bool repair_tail) {
  if (repair_tail && env->FileExists(path)) {
    ASSIGN_OR_RETURN(std::string data, env::ReadFileToString(env, path));
    const uint64_t good = WalkCheckpoints(data, [](std::string_view) {});
    if (good != data.size()) {
      LogWarning(path + ": cutting " + std::to_string(data.size() - good) +
                 " bytes of a torn note");
      RETURN_IF_ERROR(env->TruncateFile(path, good));
    }
  }
  ASSIGN_OR_RETURN(auto file, env->NewAppendableFile(path));
  std::string frame = std::to_string(note.size()) + "\n";
  frame.append(note);
  RETURN_IF_ERROR(file->Append(frame));
  RETURN_IF_ERROR(file->Sync());
  return file->Close();
}

Status StreamStore::AppendCheckpoint(std::string_view note) {
  const std::string path = files_.Notes(StreamFiles::NoteLog::kCheckpoints);
  if (checkpoints_ == nullptr) {  // the last append failed: cut what it may have left
    RETURN_IF_ERROR(env_->TruncateFile(path, checkpoints_good_));
    ASSIGN_OR_RETURN(checkpoints_, env_->NewAppendableFile(path));
  }
  const uint64_t before = checkpoints_->Size();
  std::string frame = std::to_string(note.size()) + "\n";
  frame.append(note);
  Status s = checkpoints_->Append(frame);
  if (s.ok()) s = checkpoints_->Sync();
  if (!s.ok()) {
    checkpoints_.reset();
    checkpoints_good_ = before;
  }
  return s;
}

StatusOr<StoredRecord> ReadStoredRecord(env::Env* env, const std::string& dir, uint64_t seq) {
  ASSIGN_OR_RETURN(auto reader, StreamReader::Open(env, dir, seq));
  for (;;) {
    ASSIGN_OR_RETURN(StreamReader::Entry e, reader->Next());
    if (e.kind == StreamReader::Kind::kEnd ||
        (e.kind == StreamReader::Kind::kRecord && e.seq > seq)) {
      break;
    }
    if (e.kind == StreamReader::Kind::kRecord && e.seq == seq) {
      return StoredRecord{e.type, std::string(e.payload)};
    }
  }
  return NotFoundError("seq " + std::to_string(seq) + " is not stored in " + dir);
}

Status ForEachCheckpoint(env::Env* env, const std::string& dir,
                         const std::function<void(std::string_view)>& fn,
                         StreamFiles::NoteLog log) {
  const std::string path = StreamFiles(dir).Notes(log);
  const std::string file(StreamFiles::NoteLogName(log));
  if (!env->FileExists(path)) return Status::Ok();
  ASSIGN_OR_RETURN(std::string data, env::ReadFileToString(env, path));
  const uint64_t good = WalkCheckpoints(data, fn);
  if (good != data.size()) {
    return DataLossError(std::to_string(data.size() - good) + " bytes at offset " +
                         std::to_string(good) + " of the " + file +
                         " file are not a complete checkpoint (damaged, or "
                         "cut off by a crash the collector has not recovered from yet)");
  }
  return Status::Ok();
}

// Not synced: the level files are rebuilt from the records at every Open.
Status StreamStore::AppendLevels(std::string_view leaves) {
  std::vector<std::string> tiers;
  for (size_t at = 0; at + kLeafSize <= leaves.size(); at += kLeafSize) {
    Hash256 leaf;
    std::memcpy(leaf.data(), leaves.data() + at, kLeafSize);
    levels_.Add(leaf, &tiers);
  }
  for (size_t t = 0; t < tiers.size(); ++t) {
    if (tiers[t].empty()) continue;
    if (level_files_.size() <= t) level_files_.resize(t + 1);
    if (level_files_[t] == nullptr) {
      ASSIGN_OR_RETURN(level_files_[t],
                       env_->NewAppendableFile(files_.Level(static_cast<int>(t) + 1)));
    }
    RETURN_IF_ERROR(level_files_[t]->Append(tiers[t]));
  }
  return Status::Ok();
}

StreamStats StreamStore::stats() const {
  StreamStats st;
  st.next_seq = next_seq_;
  st.durable_next = durable_next();
  st.duplicates = duplicates_;
  st.equivocations = equivocations_;
  st.declared_gap_records = declared_gap_records();
  st.merkle_known = merkle_known_;
  st.flagged = flagged_;
  return st;
}

StatusOr<Hash256> StreamStore::Root() const {
  if (!merkle_known_) {
    return FailedPreconditionError("the agent declared a gap: the root needs its checkpoint");
  }
  return range_.Root();
}

}  // namespace gapless::store

namespace gapless::store {

Status ForEachStoredRecord(
    env::Env* env, const std::string& dir,
    const std::function<void(uint64_t, spool::FrameType, std::string_view)>& fn,
    uint64_t from_seq) {
  ASSIGN_OR_RETURN(auto reader, StreamReader::Open(env, dir, from_seq));
  for (;;) {
    ASSIGN_OR_RETURN(StreamReader::Entry e, reader->Next());
    if (e.kind == StreamReader::Kind::kEnd) return Status::Ok();
    if (e.kind == StreamReader::Kind::kRecord) fn(e.seq, e.type, e.payload);
  }
}

}  // namespace gapless::store
