// Reading durable records back, for consumers (senders) and tools.
#include <algorithm>

#include "spool/segment_reader.h"
#include "spool/spool.h"

namespace gapless::spool {

bool Spool::SegmentForLocked(uint64_t seq, uint64_t* base) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), seq,
                             [](uint64_t s, const SegmentInfo& seg) { return s < seg.base; });
  if (it == segments_.begin()) return false;
  *base = std::prev(it)->base;
  return true;
}

StatusOr<std::unique_ptr<Reader>> Spool::NewReader(uint64_t from_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (from_seq < segments_.front().base) {
    return NotFoundError("records below seq " + std::to_string(segments_.front().base) +
                         " were removed from the spool");
  }
  if (from_seq > next_seq_) {
    return InvalidArgumentError("seq " + std::to_string(from_seq) + " is beyond the spool head");
  }
  return std::unique_ptr<Reader>(new Reader(this, from_seq));
}

Reader::Reader(Spool* spool, uint64_t from_seq) : spool_(spool), next_(from_seq) {}
Reader::~Reader() = default;

Status Reader::OpenSegmentFor(uint64_t seq) {
  uint64_t base = 0;
  {
    std::lock_guard<std::mutex> lock(spool_->mu_);
    if (!spool_->SegmentForLocked(seq, &base)) {
      return NotFoundError("seq " + std::to_string(seq) + " was removed from the spool");
    }
  }
  const std::string path = env::JoinPath(spool_->dir_, SegmentFileName(base));
  ASSIGN_OR_RETURN(file_, spool_->env_->NewRandomAccessFile(path));
  ASSIGN_OR_RETURN(uint64_t size, spool_->env_->GetFileSize(path));
  segment_base_ = base;
  reader_ = std::make_unique<SegmentReader>(file_.get(), kSegmentHeaderSize, size);
  return Status::Ok();
}

StatusOr<bool> Reader::Next(Record* out) {
  for (;;) {
    // Lock-free: taking the spool's mutex once per record contended with every append
    // (e2e benchmark, docs/benchmarks.md).
    if (next_ >= spool_->durable_size_lock_free()) return false;
    if (!reader_) RETURN_IF_ERROR(OpenSegmentFor(next_));
    ASSIGN_OR_RETURN(SegmentReader::Event ev, reader_->Next());
    switch (ev.kind) {
      case SegmentReader::Kind::kFrame:
        if (!IsRecord(ev.type) || ev.seq < next_) continue;
        records_skipped_ += ev.seq - next_;  // hidden by damage; recovery wrote a LOSS
        out->seq = ev.seq;
        out->type = ev.type;
        out->payload.assign(ev.payload);
        next_ = ev.seq + 1;
        return true;
      case SegmentReader::Kind::kDamage:
        continue;
      case SegmentReader::Kind::kEnd:
      case SegmentReader::Kind::kTornTail:
        break;
    }
    // End of what this segment showed when opened. Snapshot durability first, then look
    // at the file: bytes of records below the snapshot were written before it was taken.
    uint64_t durable = 0;
    uint64_t next_base = 0;
    bool has_next = false;
    {
      std::lock_guard<std::mutex> lock(spool_->mu_);
      durable = spool_->durable_size_;
      for (const auto& seg : spool_->segments_) {
        if (seg.base > segment_base_) {
          next_base = seg.base;
          has_next = true;
          break;
        }
      }
    }
    const std::string path = env::JoinPath(spool_->dir_, SegmentFileName(segment_base_));
    StatusOr<uint64_t> stat = spool_->env_->GetFileSize(path);
    if (!stat.ok() && stat.status().code() == StatusCode::kNotFound) {
      // Every record of this segment up to next_ was read and the segment was removed
      // since (its consumers moved past it): look up where next_ lives now.
      reader_.reset();
      file_.reset();
      continue;
    }
    ASSIGN_OR_RETURN(uint64_t size, std::move(stat));
    if (size > ev.offset) {  // the active segment grew
      reader_ = std::make_unique<SegmentReader>(file_.get(), ev.offset, size);
      continue;
    }
    if (has_next && next_base <= durable) {  // this segment is sealed: move on
      records_skipped_ += next_base > next_ ? next_base - next_ : 0;
      next_ = std::max(next_, next_base);
      reader_.reset();
      continue;
    }
    return DataLossError("durable record " + std::to_string(next_) + " is missing from " + path);
  }
}

}  // namespace gapless::spool
