// The completeness report of `gapless gaps` (docs/alerts.md#completeness-report): per
// stream, the seqs expected and received in a time window, the missing ranges, and for
// each whether and why the agent declared it lost. Also served as /api/gaps.
//
// Thread contract: pure functions of the store they read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace gapless::report {

struct MissingRange {
  uint64_t first = 0, last = 0;  // inclusive
  bool declared = false;
  std::string reason;  // declared: the LOSS reason
};

struct StreamGaps {
  std::string agent, epoch;
  Status error;             // the stream could not be read: the rest is empty
  uint64_t lo = 0, hi = 0;  // the window as seqs [lo, hi)
  uint64_t received = 0;
  std::vector<MissingRange> missing;
  std::vector<std::string> unsequenced;  // LOSS records without seqs in the window
  // 0 complete, 1 incomplete but every missing seq declared, 2 undeclared gaps.
  int status() const;
  const char* verdict() const;
};

// RFC 3339 UTC ("2026-11-22T10:00:00Z", fractions ignored) or unix seconds → unix ns.
std::optional<int64_t> ParseGapsTime(const std::string& text);

// Every stream of data_dir (only `agent`'s when not empty) over [from_ns, to_ns). An error
// only when the store cannot be listed or its format is not this version's.
StatusOr<std::vector<StreamGaps>> ReadGaps(const std::string& data_dir, const std::string& agent,
                                           int64_t from_ns, int64_t to_ns);
// The document of `gapless gaps --json`, with a newline; streams with an error are left
// out (the CLI names them on stderr; the console in its message).
std::string GapsJson(const std::vector<StreamGaps>& streams);

}  // namespace gapless::report
