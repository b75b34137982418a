// disk_space_low: a warning before a data directory's volume is full (issue 21), on the
// agent (its data_dir: spool, journal) and the collector (its data_dir: store, journal).
//
// Observed once a second (statvfs). Fires when the free space falls below the smaller of
// min_free_fraction of the volume and min_free_bytes (defaults 10 % and 1 GiB: a small
// volume is not "low" from the start, a large one is warned with 1 GiB left), with the
// rate it is falling at and a forecast "full in N minutes" at that rate; resolves once the
// free space is back above 1.25 times the threshold (no flapping at the line). Subject:
// the directory. Not thread-safe: one caller.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "alert/alert.h"
#include "base/status.h"

namespace gapless::alert {

struct DiskUsage {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;  // available to this (unprivileged) process
};

// statvfs of the volume holding `dir`.
StatusOr<DiskUsage> StatDisk(const std::string& dir);

struct DiskSpaceRules {
  double min_free_fraction = 0.10;
  uint64_t min_free_bytes = 1ull << 30;
};

class DiskSpaceWatch {
 public:
  using StatFn = std::function<StatusOr<DiskUsage>(const std::string&)>;
  DiskSpaceWatch(Alerts* alerts, std::vector<std::string> dirs, DiskSpaceRules rules = {},
                 StatFn stat = StatDisk);
  // One observation of every directory at mono_ns (monotonic nanoseconds).
  void Observe(int64_t mono_ns);
  // The threshold for a volume of total_bytes.
  uint64_t Threshold(uint64_t total_bytes) const;

 private:
  struct Seen {
    int64_t at_ns = 0;
    uint64_t free_bytes = 0;
    double falling_bytes_per_s = 0;  // smoothed; <= 0: not falling
    bool stat_failed = false;
  };
  Alerts* const alerts_;
  const std::vector<std::string> dirs_;
  const DiskSpaceRules rules_;
  const StatFn stat_;
  std::map<std::string, Seen> seen_;
};

}  // namespace gapless::alert
