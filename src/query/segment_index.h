// The query's per-segment index (issue 17): for each sealed segment of a stored stream, a
// summary of what it holds — its size, seq range, the smallest and largest record time
// (event time, else observed) and the sources present — so a query bounded in time or by
// source skips segments that cannot match. Derived state: written by the query when it has
// read a sealed segment whole, kept apart from the evidence (store::Layout::SegmentIndex),
// rebuilt when missing, damaged (checksum) or stale (the segment's size differs), never
// trusted over the segment: every record read is still checked against the filter.
// Format (text, docs/formats/store.md "Query index"):
//   gapless-segment-index/1\n size <bytes>\n seqs <first> <end>\n time <min> <max>\n
//   sources <n|all>\n <one source per line>... crc32c <hex of everything before>\n
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
  uint64_t segment_bytes = 0;
  uint64_t first_seq = 0, end_seq = 0;                 // [first, end)
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

// The summary at path if it is there, intact and of a segment of segment_bytes; nullopt
// if missing; an error if damaged or stale (the caller warns and rebuilds it).
StatusOr<std::optional<SegmentSummary>> ReadSummary(env::Env* env, const std::string& path,
                                                    uint64_t segment_bytes);
// Writes it atomically, making its directory.
Status WriteSummary(env::Env* env, const std::string& path, const SegmentSummary& s);

}  // namespace gapless::query
