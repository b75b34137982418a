#include "monitor/volume.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace gapless::monitor {
namespace {

constexpr int64_t kWiden = 30;  // minutes each side of a past day's window

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

bool Implausible(uint64_t n, double lambda) {
  constexpr double kP = 1e-6;
  const double k = static_cast<double>(n);
  if (k >= lambda) return false;
  if (lambda > 1000) {  // the normal approximation, with continuity correction
    const double z = (k + 0.5 - lambda) / std::sqrt(lambda);
    return 0.5 * std::erfc(-z / std::sqrt(2.0)) < kP;
  }
  double p = 0;  // P(X <= n), summed in the linear domain from log terms
  for (uint64_t i = 0; i <= n; ++i) {
    const double x = static_cast<double>(i);
    p += std::exp(-lambda + x * std::log(lambda) - std::lgamma(x + 1));
  }
  return p < kP;
}

void SourceHistory::Add(int64_t minute, uint64_t n) {
  if (n == 0) return;
  minutes_[minute] += n;
  first_minute_ = std::min(first_minute_, minute);
}

uint64_t SourceHistory::Count(int64_t from, int64_t to) const {
  uint64_t n = 0;
  for (auto it = minutes_.lower_bound(from); it != minutes_.end() && it->first < to; ++it) {
    n += it->second;
  }
  return n;
}

std::optional<Baseline> SourceHistory::Expected(int64_t from, int64_t to,
                                                const BaselineOptions& o) const {
  const int64_t len = to - from;
  if (len <= 0 || minutes_.empty()) return std::nullopt;
  std::vector<double> days;
  for (int d = 1; d <= o.history_days; ++d) {
    const int64_t shift = d * kMinutesPerDay;
    if (from - shift - kWiden < first_minute_) break;  // not covered, nor any older day
    const double n = static_cast<double>(Count(from - shift - kWiden, to - shift + kWiden));
    days.push_back(n * static_cast<double>(len) / static_cast<double>(len + 2 * kWiden));
  }
  if (static_cast<int>(days.size()) >= o.min_history_days) {
    return Baseline{Median(days), static_cast<int>(days.size()), "same time on past days"};
  }
  if (from - o.trailing_windows * len < first_minute_) return std::nullopt;
  std::vector<double> trailing;
  for (int k = 1; k <= o.trailing_windows; ++k) {
    trailing.push_back(static_cast<double>(Count(from - k * len, to - k * len)));
  }
  return Baseline{Median(trailing), o.trailing_windows, "trailing windows"};
}

void SourceHistory::Trim(int64_t minute) {
  minutes_.erase(minutes_.begin(), minutes_.lower_bound(minute));
  first_minute_ = std::max(first_minute_, minute);  // what is older is no longer known
}

}  // namespace gapless::monitor
