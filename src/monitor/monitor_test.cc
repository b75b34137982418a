// The monitors on a fake clock: each rule fires after its threshold, not before, with
// its evidence, and resolves when the condition ends.
#include "monitor/monitor.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "env/fake_clock.h"

namespace gapless::monitor {
namespace {

constexpr int64_t kS = 1'000'000'000;

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "monitor_XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    alert::AlertOptions o;
    o.journal = dir_ + "/alerts.jsonl";
    o.clock = &clock_;
    auto a = alert::Alerts::Open(env::Env::Posix(), o);
    ASSERT_TRUE(a.ok());
    alerts_ = std::move(*a);
    monitors_ = std::make_unique<Monitors>(alerts_.get(), &clock_);
  }
  void TearDown() override {
    monitors_.reset();
    alerts_.reset();
    std::filesystem::remove_all(dir_);
  }
  Heartbeat Hb(uint64_t head, int64_t skew_ns = 0) {
    return {"web-01", "00ff", clock_.NowNanos() + skew_ns, head, 0, 0};
  }
  // Names of the firing alerts, "name subject" each.
  std::vector<std::string> Firing() {
    std::vector<std::string> out;
    for (const auto& e : alerts_->Firing()) out.push_back(e.name + " " + e.subject);
    return out;
  }
  // Advances the clock by `seconds`, one tick per second.
  void Run(int seconds) {
    for (int i = 0; i < seconds; ++i) {
      clock_.Advance(kS);
      monitors_->Tick();
    }
  }
  std::string Evidence(const std::string& name, const std::string& key) {
    for (const auto& e : alerts_->Firing()) {
      if (e.name != name) continue;
      for (const auto& [k, v] : e.evidence) {
        if (k == key) return v;
      }
    }
    return "";
  }

  std::string dir_;
  env::FakeClock clock_;
  std::unique_ptr<alert::Alerts> alerts_;
  std::unique_ptr<Monitors> monitors_;
};

TEST_F(MonitorTest, AgentSilentAfterSixtySecondsWithoutAHeartbeat) {
  monitors_->OnHeartbeat(Hb(0));
  Run(60);
  EXPECT_TRUE(Firing().empty());
  Run(1);
  EXPECT_EQ(Firing(), std::vector<std::string>{"agent_silent web-01/00ff"});
  monitors_->OnHeartbeat(Hb(0));
  EXPECT_TRUE(Firing().empty());
}

// 2024: the agent is alive, collecting and heartbeating, but nothing reaches the store.
TEST_F(MonitorTest, DeliveryStalledWhileTheAgentIsAliveAndCollecting) {
  monitors_->OnStored("web-01", "00ff", 1000);
  uint64_t head = 1000;
  for (int i = 0; i < 12; ++i) {  // 60 s of heartbeats every 5 s, the head growing
    head += 50;
    monitors_->OnHeartbeat(Hb(head));
    Run(5);
  }
  EXPECT_TRUE(Firing().empty());  // exactly 60 s: not yet
  monitors_->OnHeartbeat(Hb(head += 50));
  Run(1);
  EXPECT_EQ(Firing(), std::vector<std::string>{"delivery_stalled web-01/00ff"});
  EXPECT_EQ(Evidence("delivery_stalled", "stored"), "1000");
  EXPECT_EQ(Evidence("delivery_stalled", "agent_head"), "1650");
  monitors_->OnStored("web-01", "00ff", 1400);  // the sender recovered
  EXPECT_TRUE(Firing().empty());
}

TEST_F(MonitorTest, AnIdleAgentIsNotStalled) {
  monitors_->OnStored("web-01", "00ff", 500);
  for (int i = 0; i < 60; ++i) {  // five minutes, nothing new anywhere
    monitors_->OnHeartbeat(Hb(500));
    Run(5);
  }
  EXPECT_TRUE(Firing().empty());
}

TEST_F(MonitorTest, ClockSkewBeyondThirtySeconds) {
  monitors_->OnHeartbeat(Hb(0, 29 * kS));
  EXPECT_TRUE(Firing().empty());
  monitors_->OnHeartbeat(Hb(0, -45 * kS));
  EXPECT_EQ(Firing(), std::vector<std::string>{"clock_skew web-01/00ff"});
  EXPECT_EQ(Evidence("clock_skew", "skew_ms"), "-45000");
  monitors_->OnHeartbeat(Hb(0, 1 * kS));
  EXPECT_TRUE(Firing().empty());
}

TEST_F(MonitorTest, AGapNotFilledWithinSixtySeconds) {
  monitors_->OnGapOpened("web-01", "00ff", 100, 149);
  Run(60);
  EXPECT_TRUE(Firing().empty());
  Run(1);
  EXPECT_EQ(Firing(), std::vector<std::string>{"gap_open web-01/00ff/100"});
  EXPECT_EQ(Evidence("gap_open", "last"), "149");
  monitors_->OnGapClosed("web-01", "00ff", 100);
  EXPECT_TRUE(Firing().empty());
  // A gap filled in time never fires.
  monitors_->OnGapOpened("web-01", "00ff", 300, 301);
  Run(30);
  monitors_->OnGapClosed("web-01", "00ff", 300);
  Run(60);
  EXPECT_TRUE(Firing().empty());
}

TEST_F(MonitorTest, ADeclaredLossFiresAtOnceWithItsRangeAndReason) {
  monitors_->OnDeclaredLoss("web-01", "00ff", 7, 19, "spool_full_drop_oldest");
  EXPECT_EQ(Firing(), std::vector<std::string>{"declared_loss web-01/00ff/7"});
  EXPECT_EQ(Evidence("declared_loss", "records"), "13");
  EXPECT_EQ(Evidence("declared_loss", "reason"), "spool_full_drop_oldest");
  clock_.Advance(3600 * kS);
  monitors_->Tick();
  EXPECT_EQ(Firing().size(), 1u);  // held for an hour
  Run(1);
  EXPECT_TRUE(Firing().empty());
}

}  // namespace
}  // namespace gapless::monitor
