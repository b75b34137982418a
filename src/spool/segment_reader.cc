#include "spool/segment_reader.h"

#include <algorithm>

#include "base/coding.h"
#include "base/crc32c.h"

namespace gapless::spool {
namespace {
constexpr size_t kReadChunk = 256 * 1024;
}

SegmentReader::SegmentReader(const env::RandomAccessFile* file, uint64_t start, uint64_t limit)
    : file_(file), limit_(limit), pos_(start), buf_start_(start) {}

StatusOr<size_t> SegmentReader::Ensure(size_t n) {
  uint64_t have_end = buf_start_ + buf_.size();
  uint64_t want_end = std::min<uint64_t>(pos_ + n, limit_);
  if (want_end > have_end) {
    // Drop consumed bytes, then read at least a chunk so small frames cost one read each
    // chunk, not one per frame.
    buf_.erase(0, pos_ - buf_start_);
    buf_start_ = pos_;
    uint64_t read_end = std::min<uint64_t>(std::max<uint64_t>(want_end, pos_ + kReadChunk), limit_);
    size_t old = buf_.size();
    size_t want = read_end - (buf_start_ + old);
    buf_.resize(old + want);
    ASSIGN_OR_RETURN(size_t got, file_->Read(buf_start_ + old, want, buf_.data() + old));
    buf_.resize(old + got);
  }
  uint64_t avail = buf_start_ + buf_.size() - pos_;
  return static_cast<size_t>(std::min<uint64_t>(avail, n));
}

bool SegmentReader::HeaderValid(const char* h) const {
  if (crc32c::Unmask(DecodeFixed32(h + 13)) != crc32c::Value(h, 13)) return false;
  if (!IsKnownFrameType(static_cast<uint8_t>(h[4]))) return false;
  return DecodeFixed32(h) <= kMaxFramePayload;
}

StatusOr<SegmentReader::Event> SegmentReader::Next() {
  Event ev;
  ev.offset = pos_;
  ASSIGN_OR_RETURN(size_t avail, Ensure(kFrameHeaderSize));
  if (avail == 0) return ev;  // kEnd
  if (avail < kFrameHeaderSize) {
    ev.kind = Kind::kTornTail;
    ev.bytes = limit_ - pos_;
    pos_ = limit_;
    return ev;
  }
  const char* h = At(pos_);
  if (!HeaderValid(h)) return Resync(pos_, "frame header checksum mismatch");
  const uint32_t len = DecodeFixed32(h);
  const uint64_t frame_bytes = kFrameHeaderSize + uint64_t{len};
  if (pos_ + frame_bytes > limit_) {
    ev.kind = Kind::kTornTail;
    ev.bytes = limit_ - pos_;
    pos_ = limit_;
    return ev;
  }
  ASSIGN_OR_RETURN(avail, Ensure(frame_bytes));
  if (avail < frame_bytes) {  // the file shrank under us: treat the rest as a torn tail
    ev.kind = Kind::kTornTail;
    ev.bytes = limit_ - pos_;
    pos_ = limit_;
    return ev;
  }
  h = At(pos_);  // Ensure may have moved the buffer
  std::string_view payload(h + kFrameHeaderSize, len);
  ev.bytes = frame_bytes;
  if (crc32c::Unmask(DecodeFixed32(h + 17)) != crc32c::Value(payload)) {
    // The header is intact, so its length is trusted: skip exactly this frame.
    ev.kind = Kind::kDamage;
    ev.reason = "frame payload checksum mismatch";
    pos_ += frame_bytes;
    return ev;
  }
  ev.kind = Kind::kFrame;
  ev.type = static_cast<FrameType>(h[4]);
  ev.seq = DecodeFixed64(h + 5);
  ev.payload = payload;
  pos_ += frame_bytes;
  return ev;
}

StatusOr<SegmentReader::Event> SegmentReader::Resync(uint64_t damage_start, const char* reason) {
  bool all_zero = true;
  for (uint64_t q = damage_start; q < limit_; ++q) {
    pos_ = q;
    ASSIGN_OR_RETURN(size_t avail, Ensure(kFrameHeaderSize));
    const char* h = At(q);
    if (q > damage_start && avail == kFrameHeaderSize && HeaderValid(h)) {
      const uint64_t frame_bytes = kFrameHeaderSize + uint64_t{DecodeFixed32(h)};
      if (q + frame_bytes <= limit_) {
        ASSIGN_OR_RETURN(size_t got, Ensure(frame_bytes));
        h = At(q);
        if (got == frame_bytes &&
            crc32c::Unmask(DecodeFixed32(h + 17)) ==
                crc32c::Value(h + kFrameHeaderSize, frame_bytes - kFrameHeaderSize)) {
          Event ev;
          ev.kind = Kind::kDamage;
          ev.offset = damage_start;
          ev.bytes = q - damage_start;
          ev.reason = reason;
          return ev;  // pos_ == q: the next call returns the good frame
        }
      }
    }
    all_zero = all_zero && *h == 0;
  }
  Event ev;
  // Nothing valid follows. Zero bytes up to the end are preallocated or zero-filled
  // space a crashed writer left: a torn tail, not corruption.
  ev.kind = all_zero ? Kind::kTornTail : Kind::kDamage;
  ev.offset = damage_start;
  ev.bytes = limit_ - damage_start;
  ev.reason = reason;
  pos_ = limit_;
  return ev;
}

}  // namespace gapless::spool
