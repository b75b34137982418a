#include "alert/disk_space.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "base/log.h"

namespace gapless::alert {
namespace {

constexpr double kSmoothing = 0.3;  // weight of the newest rate sample
constexpr double kResolveFactor = 1.25;

std::string Mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

StatusOr<DiskUsage> StatDisk(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) {
    return UnavailableError("statvfs " + dir + ": " + std::strerror(errno));
  }
  DiskUsage u;
  u.total_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  u.free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  return u;
}

DiskSpaceWatch::DiskSpaceWatch(Alerts* alerts, std::vector<std::string> dirs, DiskSpaceRules rules,
                               StatFn stat)
    : alerts_(alerts), dirs_(std::move(dirs)), rules_(rules), stat_(std::move(stat)) {}

uint64_t DiskSpaceWatch::Threshold(uint64_t total_bytes) const {
  const auto by_fraction =
      static_cast<uint64_t>(static_cast<double>(total_bytes) * rules_.min_free_fraction);
  return std::min(by_fraction, rules_.min_free_bytes);
}

void DiskSpaceWatch::Observe(int64_t mono_ns) {
  for (const std::string& dir : dirs_) {
    Seen& seen = seen_[dir];
    StatusOr<DiskUsage> u = stat_(dir);
    if (!u.ok()) {
      if (!seen.stat_failed) LogWarning("disk space: " + u.status().ToString());
      seen.stat_failed = true;
      continue;
    }
    seen.stat_failed = false;
    if (seen.at_ns != 0 && mono_ns > seen.at_ns) {
      const double dt = static_cast<double>(mono_ns - seen.at_ns) / 1e9;
      const double rate =
          (static_cast<double>(seen.free_bytes) - static_cast<double>(u->free_bytes)) / dt;
      seen.falling_bytes_per_s = kSmoothing * rate + (1 - kSmoothing) * seen.falling_bytes_per_s;
    }
    seen.at_ns = mono_ns;
    seen.free_bytes = u->free_bytes;
    const uint64_t threshold = Threshold(u->total_bytes);
    if (u->free_bytes >= static_cast<uint64_t>(static_cast<double>(threshold) * kResolveFactor)) {
      alerts_->Resolve("disk_space_low", dir, Mib(u->free_bytes) + " free again");
      continue;
    }
    if (u->free_bytes >= threshold) continue;  // between: as it was
    const std::vector<AlertEvent> firing = alerts_->Firing();
    const bool already = std::any_of(firing.begin(), firing.end(), [&](const AlertEvent& e) {
      return e.name == "disk_space_low" && e.subject == dir;
    });
    if (already) continue;  // fired once; the forecast is not updated every second
    std::string forecast = "not falling now";
    if (seen.falling_bytes_per_s > 1) {
      const double minutes = static_cast<double>(u->free_bytes) / seen.falling_bytes_per_s / 60.0;
      forecast = "full in " + std::to_string(static_cast<int64_t>(std::ceil(minutes))) +
                 " minutes at the current rate (" +
                 std::to_string(static_cast<int64_t>(seen.falling_bytes_per_s / 1024)) + " KiB/s)";
    }
    alerts_->Fire(
        "disk_space_low", dir, "warning",
        "only " + Mib(u->free_bytes) + " of " + Mib(u->total_bytes) + " free under " + dir +
            " (below " + Mib(threshold) + "); " + forecast +
            ": when it is full, writes are refused until space returns",
        {{"dir", dir},
         {"free_bytes", std::to_string(u->free_bytes)},
         {"total_bytes", std::to_string(u->total_bytes)},
         {"threshold_bytes", std::to_string(threshold)},
         {"falling_bytes_per_s",
          std::to_string(static_cast<int64_t>(std::max(0.0, seen.falling_bytes_per_s)))}});
  }
}

}  // namespace gapless::alert
