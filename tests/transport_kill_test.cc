// kill -9 of the real agent, and of the real collector, while records flow between them.
// Whatever the moment of the kill, at the end the collector holds seqs 0..N-1 of the
// agent's stream exactly once and its Merkle root equals the agent's.
//
// The agent tails a file the test keeps appending to ("line <i>"), so the load goes on
// across kills. Its spool segments are small, so they are removed soon after the
// collector acknowledges them and a resend cannot hide a lost acknowledged record.
// (A kill -9 keeps the page cache, so acking before the collector's fsync is not caught
// here: TransportFixture.AcknowledgedRecordsSurviveCollectorPowerLosses tests that order.)
// GAPLESS_CRASH_TRIALS sets the number of kills (default 5; `make test-long`: 100).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "alert/alert.h"
#include "alert/webhook_receiver_test_util.h"
#include "collector/collector.h"
#include "event/event.h"
#include "identity/identity.h"
#include "merkle/merkle.h"
#include "spool/spool.h"
#include "store/stream_store.h"
#include "subprocess.h"

namespace gapless {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

int Trials() { return testing::CrashTrials(); }

class TransportKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("gapless_transport_kill_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    ASSERT_TRUE(identity::MakeSelfSignedTls(d + "/tls.key", d + "/tls.crt", "collector.test").ok());
    auto key = identity::SigningKey::Generate();
    ASSERT_TRUE(key.ok());
    ASSERT_TRUE((*key)->Save(d + "/agent.key").ok());
    std::ofstream(d + "/enrolled")
        << "kill-test " << identity::FormatPublicKey((*key)->public_key()) << "\n";
    port_ = testing::FreePort();
    std::ofstream(d + "/collector.toml")
        << "[collector]\ndata_dir = \"" << d << "/cdata\"\nlisten = \"127.0.0.1:" << port_
        << "\"\ntls_cert = \"" << d << "/tls.crt\"\ntls_key = \"" << d
        << "/tls.key\"\nenrolled_keys = \"" << d << "/enrolled\"\n";
    std::ofstream(d + "/agent.toml")
        << "[agent]\nid = \"kill-test\"\ndata_dir = \"" << d << "/adata\"\nkey_file = \"" << d
        << "/agent.key\"\n[spool]\ncommit_delay_ms = 20\nsegment_size = \"1MiB\"\nmax_record_size "
           "= \"256KiB\"\n"
        << "[[input]]\ntype = \"file\"\npaths = [\"" << d
        << "/in.log\"]\nstart_at = \"beginning\"\nmax_line_size = \"16KiB\"\n"
        << "[[destination]]\nname = \"main\"\naddress = \"127.0.0.1:" << port_ << "\"\nca_file = \""
        << d << "/tls.crt\"\nserver_name = \"collector.test\"\n"
        << "backoff_max_ms = 200\n";
    std::ofstream(d + "/in.log");
  }
  void TearDown() override {
    StopWriter();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::vector<std::string> AgentArgv() const {
    return {GAPLESS_BINARY, "agent", "--config", (dir_ / "agent.toml").string()};
  }
  std::vector<std::string> CollectorArgv() const {
    return {GAPLESS_BINARY, "collector", "--config", (dir_ / "collector.toml").string()};
  }
  std::string Log(const std::string& who) const { return (dir_ / (who + ".log")).string(); }

  // Appends "line <i>" to in.log, about 5,000 lines a second, until StopWriter.
  void StartWriter() {
    writer_ = std::thread([this] {
      std::ofstream out(dir_ / "in.log", std::ios::app);
      while (!stop_writer_) {
        for (int k = 0; k < 50; ++k)
          out << "line " << written_++ << " " << std::string(150, 'x') << "\n";
        out.flush();
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  void StopWriter() {
    stop_writer_ = true;
    if (writer_.joinable()) writer_.join();
  }

  std::string StreamDir() const {
    for (const auto& e : fs::directory_iterator(dir_ / "cdata" / "streams" / "kill-test")) {
      return e.path().string();
    }
    return "";
  }

  // Line numbers the collector holds so far (read-only; the collector may be running).
  std::set<int> StoredLines() const {
    std::set<int> lines;
    std::error_code ec;
    if (!fs::exists(dir_ / "cdata" / "streams" / "kill-test", ec)) return lines;
    (void)store::ForEachStoredRecord(
        env::Env::Posix(), StreamDir(), [&](uint64_t, spool::FrameType t, std::string_view p) {
          event::Event e;
          if (t != spool::FrameType::kData || !event::DecodeEvent(p, &e).ok()) {
            return;
          }
          if (e.raw.rfind("line ", 0) == 0) {
            lines.insert(std::atoi(std::string(e.raw.substr(5, 12)).c_str()));
          }
        });
    return lines;
  }

  // Waits until the collector holds every line written, then stops both cleanly and
  // checks the stream: seqs 0..N-1 once each, and the same Merkle root as the agent.
  void ExpectCompleteStream(testing::Subprocess& agent, testing::Subprocess& collector) {
    StopWriter();
    const int n = written_;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (static_cast<int>(StoredLines().size()) < n &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
    }
    std::this_thread::sleep_for(500ms);  // anything else in flight is acked too
    agent.Signal(SIGTERM);
    ASSERT_EQ(agent.Wait(30s), 0) << "see " << Log("agent");
    collector.Signal(SIGTERM);
    ASSERT_EQ(collector.Wait(30s), 0) << "see " << Log("collector");
    const std::set<int> lines = StoredLines();
    ASSERT_EQ(static_cast<int>(lines.size()), n) << "lines lost; see " << Log("agent");

    auto spool = spool::Spool::Open(env::Env::Posix(), (dir_ / "adata" / "spool").string(), {});
    ASSERT_TRUE(spool.ok()) << spool.status().ToString();
    auto cp = (*spool)->DurableCheckpoint();
    ASSERT_TRUE(cp.ok());
    std::vector<uint64_t> seqs;
    ASSERT_TRUE(store::ForEachStoredRecord(
                    env::Env::Posix(), StreamDir(),
                    [&](uint64_t seq, spool::FrameType, std::string_view) { seqs.push_back(seq); })
                    .ok());
    ASSERT_EQ(seqs.size(), cp->size) << "the collector and the agent's spool differ in size";
    for (uint64_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i) << "seq missing or twice";
    auto st = store::StreamStore::Open(env::Env::Posix(), StreamDir(), (*spool)->epoch(), {});
    ASSERT_TRUE(st.ok());
    auto root = (*st)->Root();
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(*root, cp->root) << "Merkle roots differ";
    std::printf("%d lines, %llu records, %d kills: complete, roots equal\n", n,
                static_cast<unsigned long long>(cp->size), Trials());
  }

  fs::path dir_;
  int port_ = 0;
  std::thread writer_;
  std::atomic<bool> stop_writer_{false};
  std::atomic<int> written_{0};
};

TEST_F(TransportKillTest, AgentKilledRepeatedlyUnderLoad) {
  testing::Subprocess collector;
  ASSERT_TRUE(collector.Start(CollectorArgv(), {}, "", Log("collector")));
  StartWriter();
  std::mt19937 rng(7);
  for (int trial = 0; trial < Trials(); ++trial) {
    testing::Subprocess agent;
    ASSERT_TRUE(agent.Start(AgentArgv(), {}, "", Log("agent")));
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
    agent.Signal(SIGKILL);
    ASSERT_NE(agent.Wait(10s), -1);
  }
  testing::Subprocess agent;
  ASSERT_TRUE(agent.Start(AgentArgv(), {}, "", Log("agent")));
  ExpectCompleteStream(agent, collector);
}

TEST_F(TransportKillTest, CollectorKilledRepeatedlyUnderLoad) {
  testing::Subprocess agent;
  ASSERT_TRUE(agent.Start(AgentArgv(), {}, "", Log("agent")));
  StartWriter();
  std::mt19937 rng(11);
  for (int trial = 0; trial < Trials(); ++trial) {
    testing::Subprocess collector;
    ASSERT_TRUE(collector.Start(CollectorArgv(), {}, "", Log("collector")));
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
    collector.Signal(SIGKILL);
    ASSERT_NE(collector.Wait(10s), -1);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));  // down a while
  }
  testing::Subprocess collector;
  ASSERT_TRUE(collector.Start(CollectorArgv(), {}, "", Log("collector")));
  ExpectCompleteStream(agent, collector);
}

// SIGKILL the agent for good: the collector stops hearing its heartbeats and reports
// agent_silent through the webhook (threshold 3 s here; 60 s by default).
TEST_F(TransportKillTest, AnAgentKilledForGoodIsReportedSilentThroughTheWebhook) {
  alert::testing::Receiver receiver;
  const std::string d = dir_.string();
  std::ofstream(d + "/collector.toml", std::ios::app)
      << "[alerts]\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:" << receiver.port()
      << "/hook\"\n[monitors]\nagent_silent_seconds = 3\n";
  {  // heartbeats every half second
    std::ifstream in(d + "/agent.toml");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find("[agent]\n"), 8, "[agent]\nheartbeat_interval_ms = 500\n");
    std::ofstream(d + "/agent.toml") << text;
  }
  testing::Subprocess collector, agent;
  ASSERT_TRUE(collector.Start(CollectorArgv(), {}, "", Log("collector")));
  ASSERT_TRUE(agent.Start(AgentArgv(), {}, "", Log("agent")));
  StartWriter();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (StoredLines().size() < 500 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_GE(StoredLines().size(), 500u) << "see " << Log("agent");
  std::this_thread::sleep_for(1s);  // heartbeats flow
  agent.Signal(SIGKILL);
  agent.Wait(10s);
  const auto killed = std::chrono::steady_clock::now();
  bool silent = false;
  while (!silent && std::chrono::steady_clock::now() - killed < 90s) {
    for (const auto& g : receiver.got()) {
      auto e = alert::ParseEvent(g.body);
      silent = silent || (e.ok() && e->name == "agent_silent" && e->firing &&
                          e->subject.rfind("kill-test/", 0) == 0);
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(silent) << "no agent_silent within 90 s; see " << Log("collector");
  std::printf("agent_silent: SIGKILL to webhook %.2f s (threshold 3 s, heartbeat 0.5 s)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count());
  collector.Signal(SIGTERM);
  EXPECT_EQ(collector.Wait(30s), 0) << "see " << Log("collector");
}

}  // namespace
}  // namespace gapless
