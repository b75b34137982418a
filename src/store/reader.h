// StreamReader: the one way to read the records of a stored stream — for the outputs,
// query, verify, export, the self-audit and the archiver. Everything goes through the
// Env, so fault injection reaches every reader.
//
// It reads the stream's segments (store/layout.h names them) in base order, from the
// segment that holds from_seq, and returns what it finds, typed as the segment reader
// classifies it:
//   kRecord     an intact record (seq >= from_seq and < the limit), in file order, which
//               the writer keeps in seq order; verify checks that it did;
//   kDamage     bytes failing their checksums, skipped; the good records after them
//               still follow;
//   kBadHeader  a sealed segment whose header is damaged: its records cannot be read;
//   kTornTail   a record cut off at the end of a sealed segment (the next one exists,
//               so no writer will finish it): damage;
//   kEnd        nothing more for now. unfinished_bytes() > 0 when the newest segment ends
//               in a cut-off record, and creating_segment() when its header is still
//               incomplete: a writer is (or was, before a crash) at work there.
// After kEnd, Next() may be called again at any time: it picks up what was appended since,
// in the same segment or in segments created since (a roll), so a reader can follow a
// stream the collector is writing. A reader never asserts on file contents; its Status
// errors are I/O errors only.
//
// Thread contract: single-threaded; the Env must outlive the reader. The StreamStore may
// write the same directory from other threads or processes meanwhile.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/sha256.h"
#include "base/status.h"
#include "env/env.h"
#include "spool/segment_reader.h"
#include "spool/spool_format.h"
#include "store/layout.h"

namespace gapless::event {
struct Event;
}

namespace gapless::store {

class StreamReader {
 public:
  enum class Kind { kRecord, kDamage, kBadHeader, kTornTail, kEnd };
  struct Entry {
    Kind kind = Kind::kEnd;
    uint64_t seq = 0;  // kRecord
    spool::FrameType type = spool::FrameType::kData;
    std::string_view payload;  // kRecord; valid until the next call to Next()
    std::string_view segment;  // file name of its segment; valid until the next call
    uint64_t offset = 0;       // file offset of the record / damage
    uint64_t bytes = 0;        // kDamage, kTornTail, kBadHeader: bytes left out
    std::string reason;        // kDamage: what failed

    // The record's RFC 9162 leaf: SHA-256(0x00 || type byte || payload), as stored.
    Hash256 Leaf() const;
    // The record's event (docs/formats/event.md); an error for LOSS records and for
    // payloads that are not an encoded event.
    Status DecodeEvent(event::Event* out) const;
  };

  // dir: a stream directory (Layout::StreamDir / StreamRef::dir). Records below from_seq
  // are passed over; segments wholly below it are not read.
  static StatusOr<std::unique_ptr<StreamReader>> Open(env::Env* env, std::string dir,
                                                      uint64_t from_seq = 0);

  StatusOr<Entry> Next();

  // Records at or above limit are not returned (kEnd instead) until the limit is raised:
  // an in-process reader passes the store's durable point so that it never reads past
  // what was acknowledged.
  void set_limit(uint64_t limit) { limit_ = limit; }
  // Called before a segment is read, with its base seq, its size and whether it is the
  // newest (no newer segment is listed): where to start reading it. 0 reads it whole;
  // kSkipSegment skips a sealed segment whole (for the newest it means 0); an offset past
  // the header starts there, which must be a frame boundary the reader reached before (the
  // records before it are not returned). For indexes that know what a segment, or its first
  // bytes, cannot hold (query/segment_index.h).
  static constexpr uint64_t kSkipSegment = UINT64_MAX;
  void set_segment_start(std::function<uint64_t(uint64_t base, uint64_t size, bool newest)> f) {
    segment_start_ = std::move(f);
  }
  // The offset just past the last frame read in the current segment (its header's end
  // before any): at kEnd, where a later reader may start with set_segment_start.
  uint64_t position() const { return offset_; }
  // At kEnd: see above.
  uint64_t unfinished_bytes() const { return unfinished_; }
  bool creating_segment() const { return creating_; }
  // The base seq of the segment being read (or last read).
  uint64_t segment_base() const { return base_; }

 private:
  StreamReader(env::Env* env, std::string dir, uint64_t from_seq)
      : env_(env), files_(std::move(dir)), from_seq_(from_seq) {}
  // Re-lists the segments; true if one newer than the current exists.
  StatusOr<bool> NewerSegmentExists();
  // Opens the segment at base_ and checks its header; sets header_ok_ / creating_.
  StatusOr<bool> OpenSegment(Entry* bad);
  // The file name of the segment at base_ (formatted once per segment).
  std::string_view SegmentName();
  // Moves to the next segment after base_ in segments_; false if there is none.
  bool Advance();
  // The segment's known bytes are read (torn: up to a cut-off frame of torn_bytes). An
  // entry to return, or nullopt to read on (the segment grew, or the next one exists).
  StatusOr<std::optional<Entry>> AtEndOfSegment(bool torn, uint64_t torn_bytes);

  env::Env* const env_;
  const StreamFiles files_;
  const uint64_t from_seq_;
  uint64_t limit_ = UINT64_MAX;
  std::function<uint64_t(uint64_t, uint64_t, bool)> segment_start_;
  uint64_t start_at_ = 0;                     // from segment_start_, for the segment being opened
  std::map<uint64_t, std::string> segments_;  // base -> name, as last listed
  bool have_segment_ = false;
  uint64_t base_ = 0;
  std::string segment_name_;  // of segment_name_base_: what Entry::segment points at
  uint64_t segment_name_base_ = 0;
  std::unique_ptr<env::RandomAccessFile> file_;
  bool header_checked_ = false;
  bool bad_header_reported_ = false;  // for the segment at base_
  uint64_t offset_ = 0;               // next unread byte of the current segment
  uint64_t size_ = 0;                 // its size when last looked at
  std::unique_ptr<spool::SegmentReader> reader_;
  uint64_t unfinished_ = 0;
  bool creating_ = false;
};

}  // namespace gapless::store
