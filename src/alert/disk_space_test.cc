#include "alert/disk_space.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "env/fake_clock.h"

namespace gapless::alert {
namespace {

class DiskSpaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "disk_space_XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    AlertOptions o;
    o.journal = dir_ + "/alerts.jsonl";
    o.clock = &clock_;
    auto a = Alerts::Open(env::Env::Posix(), o);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    alerts_ = std::move(*a);
  }
  void TearDown() override {
    alerts_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::vector<AlertEvent> Low() {
    std::vector<AlertEvent> out;
    for (const AlertEvent& e : alerts_->Firing()) {
      if (e.name == "disk_space_low") out.push_back(e);
    }
    return out;
  }

  env::FakeClock clock_;
  std::string dir_;
  std::unique_ptr<Alerts> alerts_;
  DiskUsage usage_{24 << 20, 24 << 20};
};

// A 24 MiB volume filling at 100 KiB/s: the warning comes below 10 % free (2.4 MiB), with
// a forecast close to the truth, long before it is full; it resolves only well above the
// line once space returns.
TEST_F(DiskSpaceTest, ASteadilyFillingVolumeIsWarnedBeforeItIsFullWithAForecast) {
  DiskSpaceWatch watch(alerts_.get(), {"/data"}, {},
                       [&](const std::string&) -> StatusOr<DiskUsage> { return usage_; });
  EXPECT_EQ(watch.Threshold(24 << 20), (24u << 20) / 10);
  EXPECT_EQ(watch.Threshold(1ull << 40), 1ull << 30) << "a large volume: 1 GiB";
  int64_t t = 0;
  int second = 0;
  for (; usage_.free_bytes > 0 && Low().empty(); ++second) {
    watch.Observe(t);
    t += 1'000'000'000;
    usage_.free_bytes -= std::min<uint64_t>(usage_.free_bytes, 100 << 10);
  }
  ASSERT_EQ(Low().size(), 1u) << "never warned before the volume was full";
  EXPECT_GT(usage_.free_bytes, 2u << 20) << "warned when less than 10 % was left";
  const AlertEvent e = Low()[0];
  EXPECT_EQ(e.subject, "/data");
  EXPECT_EQ(e.severity, "warning");
  // 2.4 MiB left at 100 KiB/s: about 25 seconds, so "full in 1 minutes".
  EXPECT_NE(e.summary.find("full in 1 minutes"), std::string::npos) << e.summary;
  // No update every second while it stays low.
  for (int i = 0; i < 5; ++i, t += 1'000'000'000) watch.Observe(t);
  EXPECT_EQ(Low()[0].summary, e.summary);
  // Space returns, a little: still low (hysteresis); then well above.
  usage_.free_bytes = (24u << 20) / 10 + (64 << 10);
  watch.Observe(t += 1'000'000'000);
  EXPECT_EQ(Low().size(), 1u);
  usage_.free_bytes = 12u << 20;
  watch.Observe(t += 1'000'000'000);
  EXPECT_TRUE(Low().empty());
}

TEST_F(DiskSpaceTest, AVolumeThatCannotBeReadIsLoggedNotAlerted) {
  DiskSpaceWatch watch(alerts_.get(), {"/nowhere"}, {}, [](const std::string& d) {
    return StatusOr<DiskUsage>(UnavailableError("statvfs " + d + ": no such directory"));
  });
  watch.Observe(0);
  EXPECT_TRUE(Low().empty());
  auto real = StatDisk(dir_);
  ASSERT_TRUE(real.ok()) << real.status().ToString();
  EXPECT_GT(real->total_bytes, 0u);
  EXPECT_LE(real->free_bytes, real->total_bytes);
}

}  // namespace
}  // namespace gapless::alert
