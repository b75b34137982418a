// The query's per-segment index (issue 17): for each segment of a stored stream, a summary
// of what it holds — its size, seq range, the smallest and largest record time (event
// time, else observed) and the sources present — so a query bounded in time or by source
// skips segments that cannot match. Derived state: written by the query when it has read a
// segment to its end, kept apart from the evidence (store::Layout::SegmentIndex), rebuilt
// when missing, damaged (checksum) or stale, never trusted over the segment: every record
// read is still checked against the filter.
// A summary of the newest segment, which the collector is still writing, is "open": it
// covers the segment's first `size` bytes, and holds the CRC32C of the (up to) 4 KiB
// before that end. It stays true while the segment still has those bytes: the store only
// appends, and the only cut (store::StreamStore::DiscardUnsynced after a failed write)
// takes back unsynced bytes that the agent re-sends identical. A later query skips the
// covered bytes when they cannot match and reads only what was appended since.
// Format (text, docs/formats/store.md "Query index"):
//   gapless-segment-index/1\n size <bytes>\n [open <tail crc hex>\n] seqs <first> <end>\n
//   time <min> <max>\n sources <n|all>\n <one source per line>... crc32c <hex>\n
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "base/status.h"
#include "env/env.h"

namespace gapless::query {

struct SegmentSummary {
  uint64_t segment_bytes = 0;           // sealed: the segment's size; open: the bytes covered
  bool open = false;                    // a prefix of the newest segment (above)
  uint32_t tail_crc = 0;                // open: TailCrc of the segment at segment_bytes
  uint64_t first_seq = 0, end_seq = 0;  // [first, end)
  int64_t min_time = INT64_MAX, max_time = INT64_MIN;  // none: min > max
  bool all_sources = false;  // more than kMaxSources: any source may be there
  std::set<std::string> sources;
  static constexpr size_t kMaxSources = 64;

  void AddSource(std::string_view s) {
    if (all_sources || sources.count(std::string(s)) > 0) return;
    if (sources.size() >= kMaxSources) {
      all_sources = true;
      sources.clear();
      return;
    }
    sources.emplace(s);
  }
};

std::string EncodeSummary(const SegmentSummary& s);
// kDataLoss naming what is wrong for anything that is not exactly what Encode writes.
StatusOr<SegmentSummary> DecodeSummary(std::string_view text);

// CRC32C of the segment file's bytes [max(0, end - 4096), end).
StatusOr<uint32_t> TailCrc(env::Env* env, const std::string& segment_path, uint64_t end);

// The summary at path if it is there, intact and still true of the segment at
// segment_path, now segment_bytes long: a sealed one of exactly that size, or an open one
// whose covered bytes are still there (size and tail CRC); nullopt if missing; an error if
// damaged or stale (the caller warns and rebuilds it).
StatusOr<std::optional<SegmentSummary>> ReadSummary(env::Env* env, const std::string& path,
                                                    const std::string& segment_path,
                                                    uint64_t segment_bytes);
// Writes it atomically, making its directory.
Status WriteSummary(env::Env* env, const std::string& path, const SegmentSummary& s);

}  // namespace gapless::query
