// SegmentReader: walks the frames of one segment file and classifies what it finds.
//
// It tells apart, as LevelDB's log reader does:
//   kFrame     a frame whose header and payload checksums hold;
//   kTornTail  the bytes from here to the end cannot be a complete frame because the file
//              ends first (or they are all zero): what a writer that died mid-write
//              leaves. Only the caller knows whether that is legitimate (the last
//              segment) or damage (a sealed segment);
//   kDamage    bytes that fail their checksums. The reader skips exactly those bytes:
//              a frame whose header is intact but payload is not is skipped by its
//              length; otherwise it resynchronises on the next offset where a complete
//              frame validates, so every good frame after the damage is still returned.
// The reader never asserts on file contents; I/O errors are its only Status failures.
//
// Thread contract: single-threaded. `file` must outlive the reader.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "env/env.h"
#include "spool/spool_format.h"

namespace gapless::spool {

class SegmentReader {
 public:
  // Reads the byte range [start, limit) of the file.
  SegmentReader(const env::RandomAccessFile* file, uint64_t start, uint64_t limit);

  enum class Kind { kFrame, kDamage, kTornTail, kEnd };
  struct Event {
    Kind kind = Kind::kEnd;
    uint64_t offset = 0;  // file offset where the frame / damage / tail begins
    uint64_t bytes = 0;   // its length in bytes
    FrameType type = FrameType::kData;
    uint64_t seq = 0;
    std::string_view payload;  // kFrame only; valid until the next call to Next()
    const char* reason = "";   // kDamage only
  };

  StatusOr<Event> Next();
  // File offset of the next unread byte.
  uint64_t position() const { return pos_; }

 private:
  // Makes at least n bytes from pos_ available in buf_ unless the range ends first;
  // returns how many are available (<= n only at the end of the range).
  StatusOr<size_t> Ensure(size_t n);
  const char* At(uint64_t offset) const { return buf_.data() + (offset - buf_start_); }
  bool HeaderValid(const char* h) const;
  StatusOr<Event> Resync(uint64_t damage_start, const char* reason);

  const env::RandomAccessFile* const file_;
  const uint64_t limit_;
  uint64_t pos_;
  uint64_t buf_start_;  // file offset of buf_[0]
  std::string buf_;
};

}  // namespace gapless::spool
