// kill -9 of a real `gapless agent` process while it takes in lines that are being
// written: from a tailed file, and from rsyslog's omrelp over RELP. After every trial the
// agent restarts; at the end every line must be in the spool.
// Duplicates are possible by design (a tailed line durable before its offset was saved
// is read again; a RELP message durable before its acknowledgement reached rsyslog is
// resent); the tests count and print them.
// GAPLESS_CRASH_TRIALS sets the number of kills (default 5; `make test-long`: 100).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

  // Starts the agent and kills it with SIGKILL after a random time, Trials() times.
  void KillRepeatedly(int min_ms, int max_ms) {
    std::mt19937 rng(42);
    for (int trial = 0; trial < Trials(); ++trial) {
      testing::Subprocess agent;
      ASSERT_TRUE(agent.Start(argv_, {}, "", agent_log_));
      std::this_thread::sleep_for(
          std::chrono::milliseconds(min_ms + rng() % static_cast<unsigned>(max_ms - min_ms)));
      agent.Signal(SIGKILL);
      ASSERT_NE(agent.Wait(10s), -1);
    }
  }

  // Runs the agent (stopping it cleanly each time, run_for long) until lines 0..n-1 are
  // all in the spool, or no new line came for twelve runs; `line_of` maps an event to its line
  // number
  // (-1: not ours). Asserts none is lost and no loss was recorded; returns the number of
  // duplicates.
  uint64_t ExpectEveryLine(int n, std::chrono::milliseconds run_for,
                           const std::function<int(const event::Event&)>& line_of) {
    std::map<int, int> seen;
    uint64_t duplicates = 0;
    // A sender that retries with growing backoff (rsyslog's omrelp after many refused
    // connections) or waits out a session timeout for frames it sent just before a stop
    // may deliver its tail late: keep going while lines still arrive, and give up only
    // after twelve rounds without a new one.
    // Each idle round runs the agent longer: rsyslog stretches its retry interval after
    // many failed attempts (every clean stop here is one), and a short run can fall
    // between two of its retries every time (CI saw a 44-line tail missed that way).
    size_t before = 0;
    for (int attempt = 0, idle = 0; attempt < 60 && idle < 12; ++attempt) {
      testing::Subprocess agent;
      EXPECT_TRUE(agent.Start(argv_, {}, "", agent_log_));
      std::this_thread::sleep_for(run_for * (1 + idle));
      agent.Signal(SIGTERM);
      EXPECT_EQ(agent.Wait(30s), 0) << "agent did not stop cleanly; see " << agent_log_;
      auto spool = spool::Spool::Open(env::Env::Posix(), (dir_ / "data" / "spool").string(), {});
      EXPECT_TRUE(spool.ok()) << spool.status().ToString();
      if (!spool.ok()) return 0;
      auto reader = (*spool)->NewReader(0);
      EXPECT_TRUE(reader.ok());
      seen.clear();
      duplicates = 0;
      spool::Record r;
      while (*(*reader)->Next(&r)) {
        EXPECT_NE(r.type, spool::FrameType::kLoss) << "a loss was recorded";
        if (r.type != spool::FrameType::kData) continue;
        event::Event e;
        EXPECT_TRUE(event::DecodeEvent(r.payload, &e).ok());
        const int i = line_of(e);
        if (i >= 0 && seen[i]++ > 0) ++duplicates;
      }
      EXPECT_TRUE((*spool)->Close().ok());
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
  KillRepeatedly(100, 500);
  const int written = writer.Stop();
  const uint64_t duplicates =
      ExpectEveryLine(written, 1s, [](const event::Event& e) { return LineNumber(e.raw); });
  if (HasFailure()) return;
  std::printf(
      "%d lines written, %d kill -9 trials, all stored; %llu duplicates (re-read after "
      "a kill, by design)\n",
      written, Trials(), static_cast<unsigned long long>(duplicates));
}

uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// rsyslog (imfile → omrelp) keeps sending while the agent is killed and restarted; it
// resends every message the agent had not acknowledged, so none may be missing.
TEST_F(AgentKillTest, RelpStreamLosesNothingAcrossKill9) {
  const uint16_t port = FreePort();
  // omrelp keeps at most windowSize messages unacknowledged, one commit delay each.
  WriteConfig(20,
              "[[input]]\ntype = \"relp\"\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  const std::string log = (dir_ / "logs" / "app.log").string();
  const std::string work = (dir_ / "rsyslog").string();
  fs::create_directories(work);
  std::ofstream(work + "/rsyslog.conf")
      << "global(workDirectory=\"" << work << "\")\n"
      << "module(load=\"imfile\")\nmodule(load=\"omrelp\")\n"
      << "input(type=\"imfile\" file=\"" << log << "\" tag=\"numbered:\" ruleset=\"fwd\")\n"
      << "ruleset(name=\"fwd\") {\n"
      << "  action(type=\"omrelp\" target=\"127.0.0.1\" port=\"" << port
      << "\" windowSize=\"1024\" timeout=\"5\"\n"
      << "         action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\")\n}\n";
  testing::Subprocess rsyslog;
  ASSERT_TRUE(
      rsyslog.Start({"/usr/sbin/rsyslogd", "-n", "-f", work + "/rsyslog.conf", "-i", work + "/pid"},
                    {}, "", work + "/rsyslog.log"));
  int written = 0;
  {
    LineWriter writer(log, 4);
    KillRepeatedly(1000, 2500);  // rsyslog reconnects about once a second
    written = writer.Stop();
  }
  const uint64_t duplicates =
      ExpectEveryLine(written, 3s, [](const event::Event& e) { return LineNumber(e.message); });
  rsyslog.Signal(SIGTERM);
  rsyslog.Wait(10s);
  if (HasFailure()) return;
  std::printf(
      "%d lines sent over RELP, %d kill -9 trials, all stored; %llu duplicates (resent "
      "because the acknowledgement did not reach rsyslog before the kill)\n",
      written, Trials(), static_cast<unsigned long long>(duplicates));
}

}  // namespace
}  // namespace gapless
