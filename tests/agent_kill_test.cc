// kill -9 of a real `gapless agent` process while it takes in lines that are being
// written: from a tailed file, and from rsyslog's omrelp over RELP. After every trial the
// agent restarts; at the end every line must be in the spool.
// The file tail stores nothing twice (issue 16 item 1: its position is in the spool right
// behind the lines it covers), so its test asserts 0 duplicates over at least 10 kills.
// RELP keeps the protocol's at-least-once (a message durable before its acknowledgement
// reached rsyslog is resent, and nothing in RELP marks a resend); that test counts and
// prints them.
// GAPLESS_CRASH_TRIALS sets the number of kills (default 5, the file test at least 10;
// `make test-long`: 100).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "env/env.h"
#include "event/event.h"
#include "spool/spool.h"
#include "subprocess.h"

namespace gapless {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

int Trials() { return testing::CrashTrials(); }

// Appends "line N" lines to a file from a thread until stopped, `burst` lines at a time
// every 2 ms.
class LineWriter {
 public:
  LineWriter(std::string path, int burst)
      : thread_([this, path = std::move(path), burst] {
          std::ofstream f(path, std::ios::app);
          while (!stop_) {
            for (int k = 0; k < burst; ++k) f << "line " << written_++ << "\n";
            f.flush();
            std::this_thread::sleep_for(2ms);
          }
        }) {}
  ~LineWriter() { Stop(); }
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return written_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> written_{0};
  std::thread thread_;
};

class AgentKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("gapless_agent_kill_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "logs");
    argv_ = {GAPLESS_BINARY, "agent", "--config", (dir_ / "agent.toml").string()};
    agent_log_ = (dir_ / "agent.log").string();
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // A long commit delay keeps taken-in lines in memory (not yet written), so a kill lands
  // in that window often: anything acknowledged before durability is lost.
  void WriteConfig(int commit_delay_ms, const std::string& inputs) {
    std::ofstream(dir_ / "agent.toml")
        << "[agent]\nid = \"kill-test\"\ndata_dir = \"" << (dir_ / "data").string()
        << "\"\n[spool]\ncommit_delay_ms = " << commit_delay_ms << "\n"
        << inputs;
  }

  // Starts the agent and kills it with SIGKILL after a random time, `trials` times.
  void KillRepeatedly(int min_ms, int max_ms, int trials = Trials()) {
    std::mt19937 rng(42);
    for (int trial = 0; trial < trials; ++trial) {
      testing::Subprocess agent;
      ASSERT_TRUE(agent.Start(argv_, {}, "", agent_log_));
      std::this_thread::sleep_for(
          std::chrono::milliseconds(min_ms + rng() % static_cast<unsigned>(max_ms - min_ms)));
      agent.Signal(SIGKILL);
      ASSERT_NE(agent.Wait(10s), -1);
    }
  }

  // Reads the spool: `seen` counts each line (`line_of` maps an event to its line number,
  // -1: not ours); returns the number of duplicates. A LOSS record fails the test.
  uint64_t ReadLines(const std::function<int(const event::Event&)>& line_of,
                     std::map<int, int>* seen) {
    seen->clear();
    auto spool = spool::Spool::Open(env::Env::Posix(), (dir_ / "data" / "spool").string(), {});
    EXPECT_TRUE(spool.ok()) << spool.status().ToString();
    if (!spool.ok()) return 0;
    auto reader = (*spool)->NewReader(0);
    EXPECT_TRUE(reader.ok());
    uint64_t duplicates = 0;
    spool::Record r;
    while (*(*reader)->Next(&r)) {
      EXPECT_NE(r.type, spool::FrameType::kLoss) << "a loss was recorded";
      if (r.type != spool::FrameType::kData) continue;
      event::Event e;
      EXPECT_TRUE(event::DecodeEvent(r.payload, &e).ok());
      const int i = line_of(e);
      if (i >= 0 && (*seen)[i]++ > 0) ++duplicates;
    }
    EXPECT_TRUE((*spool)->Close().ok());
    return duplicates;
  }

  // Runs the agent for `run_for`, then stops it cleanly; `while_up` runs once it started.
  void RunAgent(std::chrono::milliseconds run_for, const std::function<void()>& while_up) {
    testing::Subprocess agent;
    EXPECT_TRUE(agent.Start(argv_, {}, "", agent_log_));
    if (while_up) while_up();
    std::this_thread::sleep_for(run_for);
    agent.Signal(SIGTERM);
    EXPECT_EQ(agent.Wait(30s), 0) << "agent did not stop cleanly; see " << agent_log_;
  }

  // Runs the agent (stopping it cleanly each time, run_for long) until lines 0..n-1 are
  // all in the spool, or no new line came for twelve runs. `while_up` runs in each run once
  // the agent started (the RELP test nudges rsyslog with it). Asserts none is lost and no
  // loss was recorded; returns the number of duplicates.
  uint64_t ExpectEveryLine(int n, std::chrono::milliseconds run_for,
                           const std::function<int(const event::Event&)>& line_of,
                           const std::function<void()>& while_up = {}) {
    std::map<int, int> seen;
    uint64_t duplicates = 0;
    // A sender that retries with growing backoff (rsyslog's omrelp after many refused
    // connections) may deliver its tail late: keep going while lines still arrive, give up
    // only after twelve rounds without a new one, and run the agent longer each idle round
    // so that a short run cannot fall between two of its retries every time.
    // (CI missed 40-60-line RELP tails four times before the nudge; the kept directory of
    // the last miss showed omrelp holding them in a dead session, not a slow retry.)
    size_t before = 0;
    for (int attempt = 0, idle = 0; attempt < 60 && idle < 12; ++attempt) {
      RunAgent(run_for * (1 + idle), while_up);
      duplicates = ReadLines(line_of, &seen);
      if (HasFailure()) return 0;
      if (static_cast<int>(seen.size()) == n) break;
      idle = seen.size() > before ? 0 : idle + 1;
      before = seen.size();
    }
    int missing = 0, first_missing = -1, last_seen = -1;
    for (int i = 0; i < n; ++i) {
      if (seen.count(i) == 0) {
        if (missing++ == 0) first_missing = i;
      } else {
        last_seen = i;
      }
    }
    EXPECT_EQ(missing, 0) << missing << " of " << n << " lines missing, the first is line "
                          << first_missing << "; the last line stored is " << last_seen
                          << (last_seen < first_missing ? " (only a tail is missing: too slow?)"
                                                        : " (a hole: lost)");
    return duplicates;
  }

  fs::path dir_;
  std::vector<std::string> argv_;
  std::string agent_log_;
};

int LineNumber(std::string_view text) {
  const size_t at = text.rfind("line ");
  return at == std::string_view::npos ? -1 : std::atoi(std::string(text.substr(at + 5)).c_str());
}

TEST_F(AgentKillTest, FileTailLosesNoLineAcrossKill9) {
  const std::string log = (dir_ / "logs" / "app.log").string();
  WriteConfig(100,
              "[[input]]\ntype = \"file\"\npaths = [\"" + log + "\"]\npoll_interval_ms = 20\n");
  LineWriter writer(log, 50);
  const int trials = std::max(10, Trials());
  KillRepeatedly(100, 500, trials);
  const int written = writer.Stop();
  const uint64_t duplicates =
      ExpectEveryLine(written, 1s, [](const event::Event& e) { return LineNumber(e.raw); });
  if (HasFailure()) return;
  EXPECT_EQ(duplicates, 0u) << "lines stored twice: the tail re-read what the spool held";
  std::printf("%d lines written, %d kill -9 trials, all stored; %llu duplicates\n", written, trials,
              static_cast<unsigned long long>(duplicates));
}

// An agent taking RELP from rsyslog (imfile → omrelp) on a free port, with the given
// commit delay. rsyslog runs until the fixture ends.
class RelpKillTest : public AgentKillTest {
 protected:
  void StartRsyslog(int commit_delay_ms) {
    const uint16_t port = testing::FreePort();
    WriteConfig(commit_delay_ms, "[[input]]\ntype = \"relp\"\nlisten = \"127.0.0.1:" +
                                     std::to_string(port) + "\"\n");
    const std::string work = (dir_ / "rsyslog").string();
    fs::create_directories(work);
    std::ofstream(work + "/rsyslog.conf")
        << "global(workDirectory=\"" << work << "\")\n"
        << "module(load=\"imfile\")\nmodule(load=\"omrelp\")\n"
        << "input(type=\"imfile\" file=\"" << log() << "\" tag=\"numbered:\" ruleset=\"fwd\")\n"
        << "ruleset(name=\"fwd\") {\n"
        << "  action(type=\"omrelp\" target=\"127.0.0.1\" port=\"" << port
        << "\" windowSize=\"1024\" timeout=\"5\"\n"
        << "         action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\")\n}\n";
    ASSERT_TRUE(rsyslog_.Start(
        {"/usr/sbin/rsyslogd", "-n", "-f", work + "/rsyslog.conf", "-i", work + "/pid"}, {}, "",
        work + "/rsyslog.log"));
  }
  void TearDown() override {
    rsyslog_.Signal(SIGTERM);
    rsyslog_.Wait(10s);
    AgentKillTest::TearDown();
  }

  // omrelp notices that a session is dead only when it next sends: frames it sent to an
  // agent that was killed before acknowledging them wait in its window until then (see
  // RelpTailHeldAtAKillArrivesWithTheSendersNextMessage). A line that is not "line N"
  // makes it send.
  void Nudge() { std::ofstream(log(), std::ios::app) << "nudge\n"; }

  static int Line(const event::Event& e) { return LineNumber(e.message); }

  std::string log() const { return (dir_ / "logs" / "app.log").string(); }

  testing::Subprocess rsyslog_;
};

// rsyslog keeps sending while the agent is killed and restarted; it resends every message
// the agent had not acknowledged, so none may be missing.
TEST_F(RelpKillTest, RelpStreamLosesNothingAcrossKill9) {
  // omrelp keeps at most windowSize messages unacknowledged, one commit delay each.
  StartRsyslog(20);
  int written = 0;
  {
    LineWriter writer(log(), 4);
    KillRepeatedly(1000, 2500);  // rsyslog reconnects about once a second
    written = writer.Stop();
  }
  const uint64_t duplicates = ExpectEveryLine(written, 3s, Line, [this] { Nudge(); });
  if (HasFailure()) return;
  std::printf(
      "%d lines sent over RELP, %d kill -9 trials, all stored; %llu duplicates (resent "
      "because the acknowledgement did not reach rsyslog before the kill)\n",
      written, Trials(), static_cast<unsigned long long>(duplicates));
}

// The last lines before a kill, sent but not yet durable (a 1 s commit delay), with nothing
// after them: omrelp holds them in its window and resends them with its next message.
TEST_F(RelpKillTest, RelpTailHeldAtAKillArrivesWithTheSendersNextMessage) {
  StartRsyslog(1000);
  testing::Subprocess agent;
  ASSERT_TRUE(agent.Start(argv_, {}, "", agent_log_));
  std::this_thread::sleep_for(1s);  // rsyslog connects
  {
    std::ofstream f(log(), std::ios::app);
    for (int i = 0; i < 10; ++i) f << "line " << i << "\n";
  }
  std::this_thread::sleep_for(300ms);  // sent, inside the commit delay
  agent.Signal(SIGKILL);
  ASSERT_NE(agent.Wait(10s), -1);
  std::map<int, int> seen;
  RunAgent(3s, {});
  ReadLines(Line, &seen);
  const size_t before_nudge = seen.size();
  const uint64_t duplicates = ExpectEveryLine(10, 2s, Line, [this] { Nudge(); });
  if (HasFailure()) return;
  // How many came without a nudge is rsyslog's business, printed rather than asserted.
  std::printf("%zu of 10 lines arrived before rsyslog sent again, all 10 after; %llu duplicates\n",
              before_nudge, static_cast<unsigned long long>(duplicates));
}

}  // namespace
}  // namespace gapless
