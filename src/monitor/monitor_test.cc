// The monitors on a fake clock: each rule fires after its threshold, not before, with
// its evidence, and resolves when the condition ends.
#include "monitor/monitor.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

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
    Heartbeat hb;
    hb.agent = "web-01";
    hb.epoch = "00ff";
    hb.agent_wall_ns = clock_.NowNanos() + skew_ns;
    hb.head_seq = head;
    return hb;
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

// Issue 16 item 3 (b): an agent with two collectors; this one is fine, the other one
// ("backup") stopped acknowledging. Its heartbeats say so, and this collector reports it.
TEST_F(MonitorTest, AnotherDestinationThatStopsAcknowledgingIsReportedStalled) {
  monitors_->OnStored("web-01", "00ff", 1000);
  uint64_t head = 1000;
  auto beat = [&](uint64_t backup_acked) {
    Heartbeat hb = Hb(head);
    hb.destinations = {{"main", head}, {"backup", backup_acked}};
    hb.to = "main";
    monitors_->OnHeartbeat(hb);
    monitors_->OnStored("web-01", "00ff", head);  // main keeps up
  };
  for (int i = 0; i < 12; ++i) {  // 60 s; backup stuck at 900 while the head grows
    head += 50;
    beat(900);
    Run(5);
  }
  EXPECT_TRUE(Firing().empty()) << "exactly 60 s: not yet";
  head += 50;
  beat(900);
  Run(1);
  EXPECT_EQ(Firing(), std::vector<std::string>{"destination_stalled web-01/00ff/backup"});
  EXPECT_EQ(Evidence("destination_stalled", "acked"), "900");
  EXPECT_EQ(Evidence("destination_stalled", "agent_head"), "1650");
  beat(1200);  // backup recovered
  EXPECT_TRUE(Firing().empty());
  // Its own destination is never judged from the heartbeat (delivery_stalled does that),
  // and an idle agent's destinations that have everything are not stalled.
  for (int i = 0; i < 30; ++i) {
    Heartbeat hb = Hb(head);
    hb.destinations = {{"main", 0}, {"backup", head}};
    hb.to = "main";
    monitors_->OnHeartbeat(hb);
    Run(5);
  }
  EXPECT_TRUE(Firing().empty());
  // A stalled destination that leaves the agent's list (a reload) is resolved, and names
  // are never kept beyond the latest heartbeat's.
  for (int i = 0; i < 13; ++i) {
    Heartbeat hb = Hb(head += 10);
    hb.destinations = {{"main", head}, {"backup", 0}};
    hb.to = "main";
    monitors_->OnHeartbeat(hb);
    monitors_->OnStored("web-01", "00ff", head);
    Run(5);
  }
  EXPECT_EQ(Firing(), std::vector<std::string>{"destination_stalled web-01/00ff/backup"});
  Heartbeat hb = Hb(head);
  hb.destinations = {{"main", head}};
  hb.to = "main";
  monitors_->OnHeartbeat(hb);
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
  monitors_->OnStored("web-01", "00ff", 150);  // the agent re-sent the range
  EXPECT_TRUE(Firing().empty());
  // A gap filled in time never fires.
  monitors_->OnGapOpened("web-01", "00ff", 300, 301);
  Run(30);
  monitors_->OnStored("web-01", "00ff", 302);
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

TEST_F(MonitorTest, AGapIsFilledWhenTheStoredPointPassesIt) {
  monitors_->OnStored("web-01", "00ff", 100);
  monitors_->OnGapOpened("web-01", "00ff", 100, 149);  // the agent jumped ahead to 150
  Run(61);
  EXPECT_EQ(Firing(), std::vector<std::string>{"gap_open web-01/00ff/100"});
  monitors_->OnStored("web-01", "00ff", 149);  // not yet past it
  EXPECT_EQ(Firing().size(), 1u);
  monitors_->OnStored("web-01", "00ff", 150);
  EXPECT_TRUE(Firing().empty());
}

TEST_F(MonitorTest, ANewEpochWhileTheOldOneWasIncompleteIsAnEpochReset) {
  monitors_->OnStored("web-01", "00aa", 60);
  monitors_->OnHeartbeat({"web-01", "00aa", clock_.NowNanos(), 100, 0, 0, {}, ""});
  monitors_->OnHeartbeat({"web-01", "00bb", clock_.NowNanos(), 5, 0, 0, {}, ""});  // spool replaced
  EXPECT_EQ(Firing(), std::vector<std::string>{"epoch_reset web-01/00aa"});
  EXPECT_EQ(Evidence("epoch_reset", "missing"), "40");
  EXPECT_EQ(Evidence("epoch_reset", "new_epoch"), "00bb");
  // Another agent whose old epoch was complete: nothing.
  monitors_->OnStored("db-01", "0011", 80);
  monitors_->OnHeartbeat({"db-01", "0011", clock_.NowNanos(), 80, 0, 0, {}, ""});
  monitors_->OnStored("db-01", "0022", 0);
  EXPECT_EQ(Firing().size(), 1u);
}

// ---- per-source rules: a simulated source over days of fake time ----

constexpr int64_t kMin = 60 * kS;
constexpr int64_t kMonday = 1'699'833'600LL * kS;  // 2023-11-13 00:00 UTC, a Monday

// Records per minute of a busy source with a day/night rhythm (lowest at 03:00, 30% of
// the peak at 15:00), office hours 30% busier, weekends at 35%.
double Rhythm(int64_t now_ns, double peak) {
  const int64_t minute_of_week = ((now_ns - kMonday) / kMin) % (7 * kMinutesPerDay);
  const double hour = static_cast<double>(minute_of_week % kMinutesPerDay) / 60.0;
  double rate = peak * (0.3 + 0.35 * (1 - std::cos(2 * M_PI * (hour - 3) / 24)));
  if (hour >= 9 && hour < 17) rate *= 1.3;
  if (minute_of_week >= 5 * kMinutesPerDay) rate *= 0.35;
  return rate;
}

class SourceMonitorTest : public MonitorTest {
 protected:
  void SetUp() override {
    clock_.Set(kMonday);
    MonitorTest::SetUp();
  }
  // One minute of fake time: each source sends Poisson(rate) records read during the
  // minute, delivered at its end; then the monitors tick.
  void Minute(const std::vector<std::pair<std::string, double>>& rates) {
    std::vector<RecordSeen> seen;
    for (const auto& [source, rate] : rates) {
      std::poisson_distribution<int> poisson(rate);
      const int n = rate > 0 ? poisson(rng_) : 0;
      for (int i = 0; i < n; ++i) {
        seen.push_back({source, clock_.NowNanos() + i * (kMin / (n + 1)), 0});
      }
    }
    clock_.Advance(kMin);
    monitors_->OnRecords("web-01", seen);
    monitors_->Tick();
  }
  size_t JournalLines() {
    std::ifstream in(dir_ + "/alerts.jsonl");
    return static_cast<size_t>(
        std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n'));
  }
  // A week of the rhythm for a busy and a quiet source.
  void NormalWeek() {
    for (int m = 0; m < 7 * kMinutesPerDay; ++m) {
      const int64_t now = clock_.NowNanos();
      Minute({{"syslog:tcp:6514", Rhythm(now, 200)}, {"file:/var/log/auth.log", Rhythm(now, 4)}});
    }
  }

  std::mt19937 rng_{20261122};
};

TEST_F(SourceMonitorTest, ANormalWeekWithNightsAndAWeekendRaisesNothing) {
  NormalWeek();
  EXPECT_EQ(JournalLines(), 0u) << std::ifstream(dir_ + "/alerts.jsonl").rdbuf();
}

TEST_F(SourceMonitorTest, ASourceFallingToFivePercentOfItsBaselineIsAVolumeDrop) {
  NormalWeek();
  ASSERT_EQ(JournalLines(), 0u);
  // Monday again, 10:00: the busy source falls to 5% of its rhythm.
  auto minute = [&](double busy) {
    const int64_t now = clock_.NowNanos();
    Minute(
        {{"syslog:tcp:6514", busy * Rhythm(now, 200)}, {"file:/var/log/auth.log", Rhythm(now, 4)}});
  };
  for (int m = 0; m < 10 * 60; ++m) minute(1);
  ASSERT_TRUE(Firing().empty());
  int minutes = 0;
  while (Firing().empty() && minutes < 30) {
    minute(0.05);
    ++minutes;
  }
  ASSERT_EQ(Firing(), std::vector<std::string>{"volume_drop web-01/syslog:tcp:6514"});
  std::printf("volume_drop: drop to 5%% to alert %d simulated minutes (10-minute window)\n",
              minutes);
  EXPECT_LE(minutes, 12);  // the 10-minute window, a minute to settle, the tick
  EXPECT_EQ(Evidence("volume_drop", "baseline"), "same time on past days (7)");
  EXPECT_LT(std::stoi(Evidence("volume_drop", "percent_of_baseline")), 20);
  for (int m = 0; m < 12; ++m) minute(1);
  EXPECT_TRUE(Firing().empty()) << "resolves once the volume is back";
}

TEST_F(SourceMonitorTest, WithoutDaysOfHistoryTheTrailingWindowsAreTheBaseline) {
  for (int m = 0; m < 90; ++m) Minute({{"syslog:tcp:6514", 100}});
  for (int m = 0; m < 12; ++m) Minute({{"syslog:tcp:6514", 5}});
  ASSERT_EQ(Firing(), std::vector<std::string>{"volume_drop web-01/syslog:tcp:6514"});
  EXPECT_EQ(Evidence("volume_drop", "baseline"), "trailing windows (6)");
}

TEST_F(SourceMonitorTest, ANewSourceIsNotJudgedBeforeItHasHistory) {
  for (int m = 0; m < 20; ++m) Minute({{"new", 100}});
  for (int m = 0; m < 14; ++m) Minute({{"new", 0}});
  EXPECT_EQ(JournalLines(), 0u);
  // The 5 silent minutes now have 6 windows of 5 before them: a baseline, judged.
  Minute({{"new", 0}});
  EXPECT_EQ(Firing(), std::vector<std::string>{"source_silent web-01/new"});
}

TEST_F(SourceMonitorTest, ASparseSourceIsNotMistakenForADropOrSilence) {
  for (int m = 0; m < 3 * kMinutesPerDay; ++m) Minute({{"sparse", m % 30 == 0 ? 2 : 0}});
  EXPECT_EQ(JournalLines(), 0u);
}

TEST_F(SourceMonitorTest, AQuietSourceIsSilentOnceSilenceIsImplausible) {
  for (int m = 0; m < 3 * 60; ++m) Minute({{"file:/var/log/auth.log", 2.5}});
  int minutes = 0;
  while (Firing().empty() && minutes < 90) {
    Minute({{"file:/var/log/auth.log", 0}});
    ++minutes;
  }
  // 2.5 a minute: 5 or 10 silent minutes are plausible at 40% of that, 20 are not.
  ASSERT_EQ(Firing(), std::vector<std::string>{"source_silent web-01/file:/var/log/auth.log"});
  EXPECT_GE(std::stoi(Evidence("source_silent", "silent_minutes")), 20);
  EXPECT_GT(minutes, 10);  // (its last records may have ended a minute or two early)
  EXPECT_LE(minutes, 40);
}

TEST_F(SourceMonitorTest, ASourceThatStopsIsSilentWithinSixMinutes) {
  for (int m = 0; m < 60; ++m) Minute({{"syslog:udp:514", 20}});
  int minutes = 0;
  while (Firing().empty() && minutes < 20) {
    Minute({{"syslog:udp:514", 0}});
    ++minutes;
  }
  ASSERT_EQ(Firing(), std::vector<std::string>{"source_silent web-01/syslog:udp:514"});
  std::printf("source_silent: stop to alert %d simulated minutes (20 records/min)\n", minutes);
  EXPECT_EQ(minutes, 5);  // five silent minutes, judged at the end of the fifth
  monitors_->OnRecords("web-01", {{"syslog:udp:514", clock_.NowNanos(), 0}});
  for (const auto& f : Firing()) EXPECT_NE(f, "source_silent web-01/syslog:udp:514");
}

TEST_F(SourceMonitorTest, StaleAndFutureEventTimes) {
  const int64_t now = clock_.NowNanos();
  monitors_->OnRecords("web-01", {{"file:/a", now, now - 400 * kS},
                                  {"file:/a", now, now - 301 * kS},
                                  {"file:/b", now, now + 61 * kS},
                                  {"file:/b", now, now}});
  monitors_->Tick();  // sets the minute
  clock_.Advance(kMin);
  monitors_->Tick();
  EXPECT_EQ(Firing(), (std::vector<std::string>{"future_timestamps web-01/file:/b",
                                                "ingestion_lag web-01/file:/a"}));
  EXPECT_EQ(Evidence("ingestion_lag", "freshest_lag_ms"), "301000");
  EXPECT_EQ(Evidence("future_timestamps", "records"), "1");
  const int64_t later = clock_.NowNanos();
  monitors_->OnRecords("web-01", {{"file:/a", later, later - 10 * kS}, {"file:/b", later, later}});
  clock_.Advance(kMin);
  monitors_->Tick();
  EXPECT_TRUE(Firing().empty());
}

// ---- the ledger: written each tick, and what a restarted collector starts from ----

class LedgerMonitorTest : public SourceMonitorTest {
 protected:
  void SetUp() override {
    SourceMonitorTest::SetUp();
    Restart();
  }
  // A new Monitors over the same ledger, as after a collector restart.
  void Restart() {
    monitors_.reset();
    ledger_.reset();
    auto l = ledger::Ledger::Open(dir_ + "/ledger.db");
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ledger_ = std::move(*l);
    monitors_ = std::make_unique<Monitors>(alerts_.get(), &clock_, MonitorOptions{}, ledger_.get());
    ASSERT_TRUE(monitors_->Load().ok());
  }
  ledger::Contents Read() {
    auto c = ledger_->Read(0);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : ledger::Contents{};
  }

  std::unique_ptr<ledger::Ledger> ledger_;
};

TEST_F(LedgerMonitorTest, EachTickWritesWhatChanged) {
  monitors_->OnStored("web-01", "00ff", 100);
  monitors_->OnHeartbeat({"web-01", "00ff", clock_.NowNanos(), 180, 4096, 1 << 20, {}, ""});
  monitors_->OnGapOpened("web-01", "00ff", 100, 149);
  monitors_->OnDeclaredLoss("web-01", "00ff", 7, 19, "spool_full_drop_oldest");
  monitors_->OnAgentCheckpoint("web-01", "00ff", 100, true, "");
  monitors_->OnRecords("web-01", {{"syslog:udp:514", clock_.NowNanos(), 0},
                                  {"syslog:udp:514", clock_.NowNanos(), 0}});
  EXPECT_TRUE(Read().streams.empty()) << "nothing before the tick";
  monitors_->Tick();
  ledger::Contents c = Read();
  ASSERT_EQ(c.streams.size(), 1u);
  EXPECT_EQ(c.streams[0].head, 180u);
  EXPECT_EQ(c.streams[0].stored, 100u);
  EXPECT_EQ(c.streams[0].spool_bytes, 4096u);
  ASSERT_EQ(c.gaps.size(), 1u);
  EXPECT_EQ(c.gaps[0].closed_ns, 0);
  ASSERT_EQ(c.losses.size(), 1u);
  EXPECT_EQ(c.losses[0].last, 19u);
  ASSERT_EQ(c.checkpoints.size(), 1u);
  ASSERT_EQ(c.counts.size(), 1u);
  EXPECT_EQ(c.counts[0].source, "syslog:udp:514");
  EXPECT_EQ(c.counts[0].count, 2u);
  ASSERT_EQ(c.alerts.size(), 1u);  // the declared loss
  EXPECT_EQ(c.alerts[0].name, "declared_loss");

  monitors_->OnStored("web-01", "00ff", 150);  // fills the gap
  monitors_->OnRecords("web-01", {{"syslog:udp:514", clock_.NowNanos(), 0}});
  monitors_->Tick();
  c = Read();
  EXPECT_EQ(c.streams[0].stored, 150u);
  EXPECT_NE(c.gaps[0].closed_ns, 0);
  EXPECT_EQ(c.counts[0].count, 3u);
}

TEST_F(LedgerMonitorTest, ARestartKeepsTheBaselinesAndWatchesTheAgentsItKnew) {
  for (int m = 0; m < 90; ++m) Minute({{"syslog:tcp:6514", 100}});
  monitors_->OnHeartbeat({"web-01", "00ff", clock_.NowNanos(), 0, 0, 0, {}, ""});
  monitors_->Tick();
  Restart();
  // The history came back: a drop right after the restart is judged on it.
  for (int m = 0; m < 12; ++m) Minute({{"syslog:tcp:6514", 5}});
  // And the agent heard before the restart, and not since, is reported silent.
  EXPECT_EQ(Firing(), (std::vector<std::string>{"agent_silent web-01/00ff",
                                                "volume_drop web-01/syslog:tcp:6514"}));
}

// A ledger that cannot be written (here: its streams table dropped behind its back) is
// reported by ledger_failing() — what /health reads — while the alerts go on; the rows
// are kept and written once the table is back.
TEST_F(LedgerMonitorTest, AFailingLedgerIsReportedAndTheAlertsGoOn) {
  monitors_->OnStored("web-01", "00ff", 10);
  monitors_->Tick();
  ASSERT_FALSE(monitors_->ledger_failing());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/ledger.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE streams", nullptr, nullptr, nullptr), SQLITE_OK);
  monitors_->OnStored("web-01", "00ff", 20);
  monitors_->OnDeclaredLoss("web-01", "00ff", 3, 4, "test");
  monitors_->Tick();
  EXPECT_TRUE(monitors_->ledger_failing());
  EXPECT_EQ(Firing(), std::vector<std::string>{"declared_loss web-01/00ff/3"});
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE streams(agent TEXT NOT NULL, epoch TEXT NOT NULL, "
                         "first_seen_ns INTEGER NOT NULL, last_heartbeat_ns INTEGER NOT NULL, "
                         "agent_wall_ns INTEGER NOT NULL, head INTEGER NOT NULL, stored INTEGER "
                         "NOT NULL, stored_moved_ns INTEGER NOT NULL, spool_bytes INTEGER NOT "
                         "NULL, spool_quota INTEGER NOT NULL, PRIMARY KEY(agent, epoch))",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  monitors_->Tick();
  EXPECT_FALSE(monitors_->ledger_failing());
  const ledger::Contents c = Read();
  ASSERT_EQ(c.streams.size(), 1u);
  EXPECT_EQ(c.streams[0].stored, 20u);
  ASSERT_EQ(c.losses.size(), 1u) << "kept from the failed write";
}

}  // namespace
}  // namespace gapless::monitor
