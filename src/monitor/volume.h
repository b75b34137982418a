// SourceHistory: one source's record counts per minute, and the count a window of time
// is expected to hold — the robust baseline behind the volume_drop and source_silent
// monitors (docs/alerts.md).
//
// The baseline of a window [from, to) (minutes) is the median of samples from the
// source's own history:
//   - with at least min_history_days past days that cover it, one sample per day: the
//     count of the same time of day, widened by 30 minutes each side and scaled to the
//     window's length (so a daily rhythm is expected, and the few records of a quiet
//     source are not judged on a narrow slice);
//   - otherwise, the trailing_windows windows of the same length just before it.
// The median ignores a minority of odd samples: a day the collector was down, a burst,
// a weekend day among weekdays. With too little history there is no baseline and the
// source is not judged.
//
// Thread contract: plain value; the owner synchronizes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace gapless::monitor {

constexpr int64_t kMinutesPerDay = 24 * 60;

struct BaselineOptions {
  int history_days = 7;      // past days looked at (and kept)
  int min_history_days = 3;  // fewer covered days: the trailing baseline
  int trailing_windows = 6;  // windows before the judged one, for the trailing baseline
};

struct Baseline {
  double expected = 0;  // records the window is expected to hold
  int samples = 0;
  std::string method;  // "same time on past days" | "trailing windows"
};

// Whether seeing at most n records is implausible (probability under 1e-6) for a source
// that sends Poisson(lambda) records in the window. The monitors ask it about a source
// running at twice the drop ratio (40% of its baseline: a deep weekend or night), so
// that the few records of a quiet source are not mistaken for a drop.
bool Implausible(uint64_t n, double lambda);

class SourceHistory {
 public:
  // Counts n records in minute `minute` (unix time / 60 s).
  void Add(int64_t minute, uint64_t n);
  // Records in minutes [from, to).
  uint64_t Count(int64_t from, int64_t to) const;
  std::optional<Baseline> Expected(int64_t from, int64_t to, const BaselineOptions& o) const;
  // Forgets minutes before `minute`.
  void Trim(int64_t minute);
  // The first minute with records; history before it does not exist (not zero).
  int64_t first_minute() const { return first_minute_; }
  bool empty() const { return minutes_.empty(); }
  const std::map<int64_t, uint64_t>& minutes() const { return minutes_; }

 private:
  std::map<int64_t, uint64_t> minutes_;
  int64_t first_minute_ = INT64_MAX;
};

}  // namespace gapless::monitor
