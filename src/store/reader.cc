#include "store/reader.h"

#include <algorithm>
#include <optional>

#include "base/invariant.h"
#include "event/event.h"

namespace gapless::store {

Hash256 StreamReader::Entry::Leaf() const { return spool::RecordLeafHash(type, payload); }

Status StreamReader::Entry::DecodeEvent(event::Event* out) const {
  if (kind != Kind::kRecord || type != spool::FrameType::kData) {
    return InvalidArgumentError("seq " + std::to_string(seq) + " is not a data record");
  }
  return event::DecodeEvent(payload, out);
}

StatusOr<std::unique_ptr<StreamReader>> StreamReader::Open(env::Env* env, std::string dir,
                                                           uint64_t from_seq) {
  std::unique_ptr<StreamReader> r(new StreamReader(env, std::move(dir), from_seq));
  ASSIGN_OR_RETURN(r->segments_, ListSegments(env, r->files_.dir()));
  return r;
}

StatusOr<bool> StreamReader::NewerSegmentExists() {
  ASSIGN_OR_RETURN(segments_, ListSegments(env_, files_.dir()));
  return segments_.upper_bound(base_) != segments_.end();
}

std::string_view StreamReader::SegmentName() {
  if (segment_name_.empty() || segment_name_base_ != base_) {
    segment_name_ = spool::SegmentFileName(base_);
    segment_name_base_ = base_;
  }
  return segment_name_;
}

bool StreamReader::Advance() {
  auto it = segments_.upper_bound(base_);
  if (it == segments_.end()) return false;
  base_ = it->first;
  file_.reset();
  reader_.reset();
  header_checked_ = false;
  offset_ = size_ = 0;
  return true;
}

StatusOr<bool> StreamReader::OpenSegment(Entry* bad) {
  const std::string path = files_.Segment(base_);
  ASSIGN_OR_RETURN(size_, env_->GetFileSize(path));
  ASSIGN_OR_RETURN(file_, env_->NewRandomAccessFile(path));
  std::string header(spool::kSegmentHeaderSize, '\0');
  ASSIGN_OR_RETURN(size_t got, file_->Read(0, header.size(), header.data()));
  spool::SegmentHeader h;
  bool version_mismatch = false;
  if (got == header.size() && spool::DecodeSegmentHeader(header, &h, &version_mismatch)) {
    header_checked_ = true;
    offset_ = std::max<uint64_t>(spool::kSegmentHeaderSize, start_at_);
    start_at_ = 0;
    return true;
  }
  start_at_ = 0;
  creating_ = got < header.size();  // a writer may still be creating it
  bad->kind = Kind::kBadHeader;
  bad->segment = SegmentName();
  bad->bytes = size_;
  bad->reason = version_mismatch ? "unknown segment format version" : "damaged segment header";
  return false;
}

StatusOr<std::optional<StreamReader::Entry>> StreamReader::AtEndOfSegment(bool torn,
                                                                          uint64_t torn_bytes) {
  reader_.reset();
  ASSIGN_OR_RETURN(const bool newer, NewerSegmentExists());  // before the size: see below
  // A writer rolls to a new segment only after it finished the old one, so once a newer
  // segment is listed, the size read after it is the old segment's final size.
  ASSIGN_OR_RETURN(const uint64_t size, env_->GetFileSize(files_.Segment(base_)));
  if (size > size_) {  // appended since: read on
    size_ = size;
    return std::optional<Entry>();
  }
  if (!newer) {
    unfinished_ = torn ? torn_bytes : 0;
    return std::optional<Entry>(Entry{});  // kEnd
  }
  Entry e;
  e.kind = Kind::kTornTail;
  e.segment = SegmentName();
  e.offset = offset_;
  e.bytes = size_ - offset_;
  Advance();
  if (!torn) return std::optional<Entry>();  // go on with the next segment
  return std::optional<Entry>(std::move(e));
}

StatusOr<StreamReader::Entry> StreamReader::Next() {
  unfinished_ = 0;
  creating_ = false;
  for (;;) {
    if (!have_segment_) {
      if (segments_.empty()) {
        ASSIGN_OR_RETURN(segments_, ListSegments(env_, files_.dir()));
      }
      if (segments_.empty()) return Entry{};
      auto it = segments_.upper_bound(from_seq_);  // the segment holding from_seq
      base_ = it == segments_.begin() ? it->first : std::prev(it)->first;
      have_segment_ = true;
    }
    if (!header_checked_ && segment_start_ && reader_ == nullptr && offset_ == 0) {
      const bool newest = segments_.upper_bound(base_) == segments_.end();
      ASSIGN_OR_RETURN(const uint64_t size, env_->GetFileSize(files_.Segment(base_)));
      start_at_ = segment_start_(base_, size, newest);
      if (start_at_ == kSkipSegment && !newest) {
        start_at_ = 0;
        Advance();
        continue;
      }
      if (start_at_ == kSkipSegment || start_at_ > size) start_at_ = 0;
    }
    if (!header_checked_) {
      Entry bad;
      ASSIGN_OR_RETURN(const bool ok, OpenSegment(&bad));
      if (!ok) {
        ASSIGN_OR_RETURN(const bool newer, NewerSegmentExists());
        if (!newer && creating_) return Entry{};  // kEnd, creating_segment()
        creating_ = false;
        const bool reported = bad_header_reported_;
        if (!newer) {  // a damaged newest segment: report it once, then wait for more
          file_.reset();
          bad_header_reported_ = true;
          if (reported) return Entry{};
          return bad;
        }
        bad_header_reported_ = false;
        Advance();
        if (reported) continue;
        return bad;
      }
    }
    if (reader_ == nullptr) {
      reader_ = std::make_unique<spool::SegmentReader>(file_.get(), offset_, size_);
    }
    ASSIGN_OR_RETURN(spool::SegmentReader::Event ev, reader_->Next());
    using SK = spool::SegmentReader::Kind;
    if (ev.kind == SK::kFrame) {
      if (spool::IsRecord(ev.type) && ev.seq >= limit_) {
        reader_.reset();  // re-read from here once the limit is raised
        return Entry{};
      }
      offset_ = reader_->position();
      // Invariant: the segment reader never passes the limit it was given.
      INVARIANT(offset_ <= size_);
      if (!spool::IsRecord(ev.type) || ev.seq < from_seq_) continue;
      Entry e;
      e.kind = Kind::kRecord;
      e.seq = ev.seq;
      e.type = ev.type;
      e.payload = ev.payload;
      e.segment = SegmentName();
      e.offset = ev.offset;
      return e;
    }
    if (ev.kind == SK::kDamage) {
      offset_ = reader_->position();
      Entry e;
      e.kind = Kind::kDamage;
      e.segment = SegmentName();
      e.offset = ev.offset;
      e.bytes = ev.bytes;
      e.reason = ev.reason;
      return e;
    }
    // kTornTail or kEnd: the segment's known bytes are read.
    if (ev.kind == SK::kTornTail) offset_ = ev.offset;
    ASSIGN_OR_RETURN(std::optional<Entry> e, AtEndOfSegment(ev.kind == SK::kTornTail, ev.bytes));
    if (e) return *std::move(e);
  }
}

}  // namespace gapless::store
