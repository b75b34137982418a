// `gapless gaps`: the completeness report of a collector's store — per stream, the seqs
// expected and received in a time window, the missing ranges, and for each whether and
// why the agent declared it lost. docs/alerts.md#completeness-report.
#pragma once

#include <string>

namespace gapless::cli {

struct GapsFlags {
  std::string data_dir;
  std::string agent;  // empty: every agent
  std::string from;   // RFC 3339 ("2026-11-22T10:00:00Z") or unix seconds; empty: the start
  std::string to;     // exclusive; empty: the end
  bool json = false;
};

// Exit status: 0 complete, 1 incomplete but every missing seq declared (with its
// reason), 2 some missing seqs nobody declared, 3 could not read the store / bad flags.
int Gaps(const GapsFlags& flags);

// `gapless outputs`: per collector output and stream, what the destination should have
// (the newest signed size), what it confirmed (the saved cursor), what waits, and what it
// refused (docs/outputs.md). Readable while the collector runs.
struct OutputsFlags {
  std::string data_dir;
  bool json = false;
};
// Exit status: 0 every stream an output has a cursor for is confirmed up to its signed
// size, 1 something waits or was refused, 3 could not read the store.
int OutputsReport(const OutputsFlags& flags);

}  // namespace gapless::cli
