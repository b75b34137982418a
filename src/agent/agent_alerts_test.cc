#include "agent/agent_alerts.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "env/fake_clock.h"

namespace gapless::agent {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

class AgentAlertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "agent_alerts_XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    options_.journal = dir_ + "/alerts.jsonl";
    options_.clock = &clock_;
    Open();
  }
  void TearDown() override {
    rules_.reset();
    alerts_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    rules_.reset();
    alerts_.reset();
    auto a = alert::Alerts::Open(env::Env::Posix(), options_);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    alerts_ = std::move(*a);
    rules_ = std::make_unique<AgentAlerts>(alerts_.get(), "web-01", config::AgentAlertRules{});
  }
  // The firing alerts as "name subject severity".
  std::set<std::string> Firing() const {
    std::set<std::string> out;
    for (const auto& e : alerts_->Firing()) out.insert(e.name + " " + e.subject + " " + e.severity);
    return out;
  }
  AgentObservation At(int64_t s) {
    AgentObservation o = base_;
    o.mono_ns = s * kSecond;
    return o;
  }

  env::FakeClock clock_;
  std::string dir_;
  alert::AlertOptions options_;
  std::unique_ptr<alert::Alerts> alerts_;
  std::unique_ptr<AgentAlerts> rules_;
  AgentObservation base_ = [] {
    AgentObservation o;
    o.spool_dir = "/var/lib/gapless/spool";
    o.full_policy = "block";
    return o;
  }();
};

TEST_F(AgentAlertsTest, AFullSpoolAndBlockedInputsFireAndResolveWhenRoomReturns) {
  rules_->Observe(At(100));
  EXPECT_TRUE(Firing().empty());
  base_.refused_full = 3;
  base_.inputs_waiting = 2;
  rules_->Observe(At(101));
  EXPECT_EQ(Firing(), std::set<std::string>{"spool_full web-01 critical"})
      << "inputs_blocked waits inputs_blocked_s (5 s)";
  for (int64_t s = 102; s <= 106; ++s) {
    base_.refused_full += 1;       // the inputs retry and are refused again
    base_.inputs_waiting = s % 2;  // sometimes momentarily not waiting
    rules_->Observe(At(s));
  }
  EXPECT_EQ(Firing(), (std::set<std::string>{"inputs_blocked web-01 critical",
                                             "spool_full web-01 critical"}));
  base_.inputs_waiting = 0;
  rules_->Observe(At(107));
  EXPECT_EQ(Firing(), std::set<std::string>{"spool_full web-01 critical"})
      << "the inputs run again; the spool is judged full for spool_full_clear_s more";
  rules_->Observe(At(115));  // the last refusal was seen at 106
  EXPECT_EQ(Firing(), std::set<std::string>{"spool_full web-01 critical"});
  rules_->Observe(At(116));
  EXPECT_TRUE(Firing().empty());
}

TEST_F(AgentAlertsTest, DropsByTheFullPolicyAreASpoolFullToo) {
  base_.full_policy = "drop_oldest";
  rules_->Observe(At(10));
  base_.dropped_records = 40;
  rules_->Observe(At(11));
  ASSERT_EQ(alerts_->Firing().size(), 1u);
  EXPECT_NE(alerts_->Firing()[0].summary.find("dropped by full_policy drop_oldest"),
            std::string::npos);
}

TEST_F(AgentAlertsTest, AnUnreachableDestinationFiresAfterItsThresholdCriticalOnlyIfRequired) {
  base_.durable = 500;
  base_.destinations = {{"central", "c:6514", true, false, 0, 100},
                        {"backup", "b:6514", false, false, 0, 500}};
  rules_->Observe(At(0));
  rules_->Observe(At(59));
  EXPECT_TRUE(Firing().empty());
  base_.destinations[0].connect_failures = 30;
  rules_->Observe(At(60));
  EXPECT_EQ(Firing(), (std::set<std::string>{"destination_unreachable web-01/backup warning",
                                             "destination_unreachable web-01/central critical"}));
  for (const auto& e : alerts_->Firing()) {
    if (e.subject != "web-01/central") continue;
    const std::map<std::string, std::string> ev(e.evidence.begin(), e.evidence.end());
    EXPECT_EQ(ev.at("unacknowledged"), "400");
    EXPECT_EQ(ev.at("connect_failures"), "30");
  }
  base_.destinations[0].connected = true;
  rules_->Observe(At(61));
  EXPECT_EQ(Firing(), std::set<std::string>{"destination_unreachable web-01/backup warning"});
  // A connection that drops again starts a new count from when it was last up.
  base_.destinations[0].connected = false;
  rules_->Observe(At(100));
  EXPECT_EQ(Firing().size(), 1u);
  rules_->Observe(At(121));
  EXPECT_EQ(Firing().size(), 2u);
  // A destination removed by a reload is no longer unreachable.
  base_.destinations.pop_back();
  rules_->Observe(At(122));
  EXPECT_EQ(Firing(), std::set<std::string>{"destination_unreachable web-01/central critical"});
}

TEST_F(AgentAlertsTest, ASpoolErrorFiresAndARestartWithoutItResolvesWhatTheJournalHeld) {
  base_.spool_error = "spool write failed: No space left on device";
  base_.inputs_waiting = 2;  // they wait for the heal: not a full spool, not blocked inputs
  base_.destinations = {{"central", "c:6514", true, false, 0, 0}};
  rules_->Observe(At(0));
  rules_->Observe(At(61));
  EXPECT_EQ(Firing(), (std::set<std::string>{"destination_unreachable web-01/central critical",
                                             "spool_write_failed web-01 critical"}));
  base_.inputs_waiting = 0;
  // The agent restarts: the journal says both are firing; the spool recovered, and the
  // destination is still down.
  Open();
  EXPECT_EQ(Firing().size(), 2u);
  base_.spool_error.clear();
  rules_->Observe(At(1000));
  EXPECT_EQ(Firing(), std::set<std::string>{"destination_unreachable web-01/central critical"})
      << "still down: the restart is no proof it is reachable";
  base_.destinations[0].connected = true;
  rules_->Observe(At(1001));
  EXPECT_TRUE(Firing().empty());
}

}  // namespace
}  // namespace gapless::agent
