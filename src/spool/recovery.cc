// Spool recovery: rebuild the in-memory state from the segment files, telling a torn
// tail from corruption, and write down every loss it finds. See spool.h for the promises
// and docs/formats/spool.md for the format.
#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "spool/segment_reader.h"
#include "spool/spool.h"

namespace gapless::spool {
namespace {

std::string DamageKey(const Damage& d) {
  return "segment=" + d.segment + " offset=" + std::to_string(d.offset) +
         " bytes=" + std::to_string(d.bytes);
}

// The key part of a corrupt_segment LOSS record's detail ("<key> reason=...").
std::string KeyOfDetail(const std::string& detail) {
  return detail.substr(0, detail.find(" reason="));
}

}  // namespace

class Spool::Recovery {
 public:
  Recovery(Spool* spool, RecoveryReport* report) : s_(spool), report_(report) {}

  Status Run() {
    ASSIGN_OR_RETURN(std::vector<std::string> names, s_->env_->GetChildren(s_->dir_));
    std::vector<std::pair<uint64_t, std::string>> files;
    for (const std::string& name : names) {
      uint64_t base = 0;
      if (ParseSegmentFileName(name, &base)) files.emplace_back(base, name);
      // A leftover of an interrupted atomic write; the real file is intact.
      if (name.size() > 4 && name.ends_with(".tmp")) {
        RETURN_IF_ERROR(s_->env_->RemoveFile(env::JoinPath(s_->dir_, name)));
      }
    }
    std::sort(files.begin(), files.end());
    for (size_t i = 0; i < files.size(); ++i) {
      RETURN_IF_ERROR(ScanSegment(files[i].second, files[i].first, i + 1 == files.size()));
    }
    SkipSeqsHiddenByTrailingDamage();
    RETURN_IF_ERROR(RepairLastSegment());
    RETURN_IF_ERROR(LoadCursors());
    return Install();
  }

 private:
  Status ScanSegment(const std::string& name, uint64_t base, bool last);
  void OnRecord(const SegmentReader::Event& ev, const std::string& name, bool last);
  void OnFrontier(const SegmentReader::Event& ev, const std::string& name);
  void OnPosition(const SegmentReader::Event& ev, const std::string& name, bool last);
  void OnGap(uint64_t first, uint64_t last, const std::string& name);
  void AddDamage(const std::string& name, uint64_t offset, uint64_t bytes, const char* reason);
  void SkipSeqsHiddenByTrailingDamage();
  Status RepairLastSegment();
  Status LoadCursors();
  Status Install();

  Spool* const s_;
  RecoveryReport* const report_;
  std::vector<Damage> damage_;
  int open_damage_ = -1;  // damage since the last good record whose seqs are not known yet
  bool have_expected_ = false;
  uint64_t expected_ = 0;  // seq the next record should carry
  merkle::CompactRange range_;
  bool merkle_known_ = false;
  bool have_epoch_ = false;
  Epoch epoch_{};
  std::set<std::string> recorded_damage_;  // keys named by earlier corrupt_segment LOSS
  std::vector<SegmentInfo> segments_;
  // The last segment: torn tail to cut, or nothing worth keeping.
  bool last_has_records_ = false;
  bool last_has_damage_ = false;
  bool last_has_positions_ = false;
  bool reuse_last_ = false;  // no records but positions: kept as the active segment
  std::optional<uint64_t> last_position_seq_;
  std::map<std::string, std::string, std::less<>> positions_;  // the latest of each key
  bool truncate_last_ = false;
  uint64_t truncate_at_ = 0;
  bool remove_last_ = false;
  std::string last_name_;
};

Status Spool::Recover(RecoveryReport* report) {
  *report = RecoveryReport{};
  return Recovery(this, report).Run();
}

Status Spool::Recovery::ScanSegment(const std::string& name, uint64_t base, bool last) {
  const std::string path = env::JoinPath(s_->dir_, name);
  ASSIGN_OR_RETURN(std::unique_ptr<env::RandomAccessFile> file,
                   s_->env_->NewRandomAccessFile(path));
  ASSIGN_OR_RETURN(uint64_t size, s_->env_->GetFileSize(path));
  if (last) last_name_ = name;
  SegmentInfo info{base, size, 0};
  if (size < kSegmentHeaderSize && last) {  // died while creating the segment
    report_->torn_bytes_truncated += size;
    remove_last_ = true;
    return Status::Ok();
  }
  if (!have_expected_) {
    have_expected_ = true;
    expected_ = base;
    merkle_known_ = base == 0;  // otherwise the segment's first frontier frame says
  } else if (base > expected_) {
    OnGap(expected_, base - 1, name);
  }
  std::string header(kSegmentHeaderSize, '\0');
  ASSIGN_OR_RETURN(size_t got, file->Read(0, header.size(), header.data()));
  header.resize(got);
  SegmentHeader h;
  bool version_mismatch = false;
  if (DecodeSegmentHeader(header, &h, &version_mismatch)) {
    if (have_epoch_ && h.epoch != epoch_) {
      return FailedPreconditionError("segment " + path +
                                     " belongs to a different spool (its epoch differs); "
                                     "move it out of " +
                                     s_->dir_);
    }
    have_epoch_ = true;
    epoch_ = h.epoch;
    info.created_unix_ns = h.created_unix_ns;
  } else if (version_mismatch) {
    return FailedPreconditionError("segment " + path +
                                   " was written by a newer gapless format; upgrade gapless");
  } else {
    AddDamage(name, 0, std::min<uint64_t>(size, kSegmentHeaderSize),
              "segment header checksum mismatch");
  }

  SegmentReader reader(file.get(), kSegmentHeaderSize, size);
  for (;;) {
    ASSIGN_OR_RETURN(SegmentReader::Event ev, reader.Next());
    if (ev.kind == SegmentReader::Kind::kEnd) break;
    if (ev.kind == SegmentReader::Kind::kFrame) {
      if (IsRecord(ev.type)) {
        OnRecord(ev, name, last);
      } else if (ev.type == FrameType::kPosition) {
        OnPosition(ev, name, last);
      } else {
        OnFrontier(ev, name);
      }
    } else if (ev.kind == SegmentReader::Kind::kDamage) {
      AddDamage(name, ev.offset, ev.bytes, ev.reason);
      if (last) last_has_damage_ = true;
    } else if (last) {  // kTornTail of the last segment: the writer died mid-write
      truncate_last_ = true;
      truncate_at_ = ev.offset;
      info.bytes = ev.offset;
      report_->torn_bytes_truncated += ev.bytes;
    } else {
      AddDamage(name, ev.offset, ev.bytes, "incomplete frame at the end of a sealed segment");
    }
  }
  if (last && !last_has_records_ && !last_has_damage_) {
    if (!last_has_positions_) {
      remove_last_ = true;  // nothing in it but a header and frontier: start afresh
      return Status::Ok();
    }
    // No records, but positions that may be their only copy: appends go on in it rather
    // than in a fresh segment of the same base (which would replace it).
    reuse_last_ = true;
  }
  segments_.push_back(info);
  return Status::Ok();
}

void Spool::Recovery::OnRecord(const SegmentReader::Event& ev, const std::string& name, bool last) {
  if (ev.seq < expected_) {
    AddDamage(name, ev.offset, ev.bytes, "record out of sequence");
    return;
  }
  if (ev.seq > expected_) OnGap(expected_, ev.seq - 1, name);
  if (merkle_known_) range_.Append(RecordLeafHash(ev.type, ev.payload));
  if (ev.type == FrameType::kLoss) {
    StatusOr<LossRecord> loss = LossRecord::Decode(ev.payload);
    if (loss.ok() && loss->reason == LossReason::kCorruptSegment) {
      recorded_damage_.insert(KeyOfDetail(loss->detail));
    }
  }
  expected_ = ev.seq + 1;
  open_damage_ = -1;
  ++report_->records;
  if (last) last_has_records_ = true;
}

void Spool::Recovery::OnPosition(const SegmentReader::Event& ev, const std::string& name,
                                 bool last) {
  std::string key, value;
  if (!DecodePosition(ev.payload, &key, &value)) {
    AddDamage(name, ev.offset, ev.bytes, "malformed position frame");
    return;
  }
  positions_[key] = std::move(value);  // frames are scanned oldest first
  last_position_seq_ = ev.seq;
  if (last) last_has_positions_ = true;
}

void Spool::Recovery::OnFrontier(const SegmentReader::Event& ev, const std::string& name) {
  const uint64_t size = ev.seq;
  if (size < expected_) return;  // stale: already past it
  std::vector<Hash256> hashes(ev.payload.size() / 32);
  for (size_t i = 0; i < hashes.size(); ++i) {
    std::copy_n(ev.payload.data() + 32 * i, 32, hashes[i].data());
  }
  StatusOr<merkle::CompactRange> stored = merkle::CompactRange::FromParts(size, hashes);
  if (!stored.ok() || ev.payload.size() % 32 != 0) {
    AddDamage(name, ev.offset, ev.bytes, "malformed Merkle frontier");
    return;
  }
  // Records hidden by damage before this frame are now counted exactly.
  if (size > expected_) OnGap(expected_, size - 1, name);
  expected_ = size;
  if (!merkle_known_) {
    range_ = std::move(*stored);
    merkle_known_ = true;
  } else if (!(range_ == *stored)) {
    ++report_->frontier_mismatches;
  }
}

void Spool::Recovery::OnGap(uint64_t first, uint64_t last, const std::string& name) {
  merkle_known_ = false;  // the leaves of the missing records are unknown
  if (open_damage_ >= 0 && !damage_[open_damage_].has_seqs) {
    Damage& d = damage_[open_damage_];
    d.has_seqs = true;
    d.first_seq = first;
    d.last_seq = last;
  } else {
    Damage d;
    d.segment = name;
    d.has_seqs = true;
    d.first_seq = first;
    d.last_seq = last;
    d.reason = "records missing";
    damage_.push_back(std::move(d));
  }
  expected_ = last + 1;
  open_damage_ = -1;
}

void Spool::Recovery::AddDamage(const std::string& name, uint64_t offset, uint64_t bytes,
                                const char* reason) {
  if (open_damage_ >= 0) {
    Damage& d = damage_[open_damage_];
    if (d.segment == name && d.offset + d.bytes == offset) {
      d.bytes += bytes;  // adjacent: one region
      return;
    }
  }
  Damage d;
  d.segment = name;
  d.offset = offset;
  d.bytes = bytes;
  d.reason = reason;
  damage_.push_back(std::move(d));
  open_damage_ = static_cast<int>(damage_.size()) - 1;
}

void Spool::Recovery::SkipSeqsHiddenByTrailingDamage() {
  // Damage after the last good record hides an unknown number of records, which may have
  // been durable and shipped. Skip one seq per frame header that could fit, so a seq is
  // never reused; the LOSS record names them all.
  if (open_damage_ < 0 || damage_[open_damage_].has_seqs) return;
  const uint64_t bytes = damage_[open_damage_].bytes;
  const uint64_t k = (bytes + kFrameHeaderSize - 1) / kFrameHeaderSize;
  if (k == 0) return;
  OnGap(expected_, expected_ + k - 1, damage_[open_damage_].segment);
}

Status Spool::Recovery::RepairLastSegment() {
  if (last_name_.empty()) return Status::Ok();
  const std::string path = env::JoinPath(s_->dir_, last_name_);
  if (remove_last_) {
    RETURN_IF_ERROR(s_->env_->RemoveFile(path));
    return s_->env_->SyncDir(s_->dir_);
  }
  if (truncate_last_) RETURN_IF_ERROR(s_->env_->TruncateFile(path, truncate_at_));
  // Sync even without a cut: after a process crash (not a power loss) the bytes we just
  // read may still be only in the page cache, and we are about to call them durable.
  ASSIGN_OR_RETURN(std::unique_ptr<env::WritableFile> f, s_->env_->NewAppendableFile(path));
  RETURN_IF_ERROR(f->Sync());
  return f->Close();
}

Status Spool::Recovery::LoadCursors() {
  const std::string path = env::JoinPath(s_->dir_, "CURSORS");
  if (!s_->env_->FileExists(path)) return Status::Ok();
  ASSIGN_OR_RETURN(std::string bytes, env::ReadFileToString(s_->env_, path));
  StatusOr<std::vector<CursorState>> cursors = DecodeCursors(bytes);
  if (!cursors.ok()) {
    // Positions unknown: forget them; consumers re-register at the oldest seq and get
    // duplicates rather than gaps.
    report_->cursors_reset = true;
    return Status::Ok();
  }
  for (CursorState& c : *cursors) s_->cursors_[c.name] = c;
  return Status::Ok();
}

Status Spool::Recovery::Install() {
  std::unique_lock<std::mutex> lock(s_->mu_);
  const uint64_t next = have_expected_ ? expected_ : 0;
  if (!have_expected_) merkle_known_ = true;  // a new, empty spool
  if (!have_epoch_) s_->env_->RandomBytes(epoch_.data(), epoch_.size());
  s_->epoch_ = epoch_;
  s_->next_seq_ = next;
  s_->durable_size_ = next;
  s_->durable_size_atomic_.store(next, std::memory_order_release);
  s_->merkle_known_ = merkle_known_;
  s_->range_ = range_;
  s_->durable_range_ = range_;
  s_->segments_.assign(segments_.begin(), segments_.end());
  s_->bytes_used_ = 0;
  for (const SegmentInfo& seg : segments_) s_->bytes_used_ += seg.bytes;
  s_->positions_ = std::move(positions_);
  s_->recovered_position_seq_ = last_position_seq_;
  // What the files hold now is the durable tail a Heal truncates back to.
  s_->has_durable_tail_ = !segments_.empty();
  if (!segments_.empty()) s_->durable_tail_ = segments_.back();
  if (reuse_last_) {
    for (const auto& [key, value] : s_->positions_) s_->AppendPositionLocked(key, value);
  } else {
    // Appends go to a fresh segment after recovery, with every position again at its head.
    s_->StartSegmentLocked(next);
  }
  for (auto& [name, c] : s_->cursors_) c.next_seq = std::min(c.next_seq, next);

  report_->next_seq = next;
  report_->merkle_known = merkle_known_;
  const int64_t now = s_->env_->clock()->NowNanos();
  for (const Damage& d : damage_) {
    if (recorded_damage_.count(DamageKey(d)) > 0) {
      ++report_->already_recorded;
      continue;
    }
    report_->damage.push_back(d);
    LossRecord loss;
    loss.reason = LossReason::kCorruptSegment;
    loss.has_seq_range = d.has_seqs;
    loss.first_seq = d.first_seq;
    loss.last_seq = d.last_seq;
    loss.record_count = d.has_seqs ? d.last_seq - d.first_seq + 1 : 0;
    loss.bytes = d.bytes;
    loss.time_to_unix_ns = now;
    loss.detail = DamageKey(d) + " reason=" + d.reason;
    s_->AppendLossLocked(loss);
  }
  lock.unlock();
  RETURN_IF_ERROR(s_->Sync());
  lock.lock();
  return s_->PersistCursorsLocked(lock);
}

}  // namespace gapless::spool
