// Network faults between agent and collector, injected by a TCP proxy (fault_proxy.h):
// a slow link, connections cut in the middle of a frame in either direction, connections
// reset, and a blackholed connection. Under load, whatever the fault, the collector ends
// with every seq exactly once and the agent's Merkle root.
//
// The blackhole is the 2024 shape: the connection stays open and nothing moves, so no
// error ever reaches the sender. The last test runs the real agent binary and checks that
// its watchdog notices and restarts the sender.
#include <atomic>
#include <filesystem>
#include <random>
#include <set>

#include "collector/transport_fixture.h"
#include "event/event.h"
#include "fault_proxy.h"
#include "subprocess.h"

namespace gapless::transport {
namespace {

using namespace std::chrono_literals;
using testing::FaultProxy;

class TransportFaultTest : public TransportFixture {
 protected:
  // Starts the collector, a proxy in front of it and a sender through the proxy.
  Sender* StartThroughProxy() {
    StartCollector();
    proxy_ = std::make_unique<FaultProxy>(collector_->ports()[0]);
    EXPECT_TRUE(proxy_->ok());
    DestinationOptions d = Destination();
    d.address = "127.0.0.1:" + std::to_string(proxy_->port());
    d.batch_records = 256;  // many frames, so cuts land inside them
    d.window = 4;
    d.backoff_initial_ms = 10;
    d.backoff_max_ms = 100;
    return StartSender(d, key_);
  }

  // Appends `rounds` groups of 200 records; before each, `fault` (may be empty) acts
  // on the proxy. Then waits for every record to be acknowledged and checks the store.
  void RunUnderLoad(int rounds, const std::function<void(std::mt19937&)>& fault) {
    Sender* s = StartThroughProxy();
    ASSERT_NE(s, nullptr);
    std::mt19937 rng(42);
    for (int i = 0; i < rounds; ++i) {
      if (fault) fault(rng);
      AppendRecords(200);
      std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 40));
    }
    const uint64_t n = spool_->next_seq();
    ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == n; }, 60000))
        << "acked " << s->stats().acked_next << " of " << n << " after the faults stopped";
    std::printf("%llu records, %d connections, %d cut or reset, %llu duplicates not stored\n",
                static_cast<unsigned long long>(n), proxy_->accepted(), proxy_->faults(),
                static_cast<unsigned long long>(collector_->stats().duplicates));
    senders_.clear();
    proxy_.reset();
    ExpectStoredExactly(n);
  }

  std::unique_ptr<FaultProxy> proxy_;
};

TEST_F(TransportFaultTest, SlowLinkLosesAndDuplicatesNothing) {
  OpenSpool();
  RunUnderLoad(60, [&](std::mt19937&) { proxy_->SetDelay(20); });  // 0-20 ms per chunk
}

TEST_F(TransportFaultTest, ConnectionsCutMidFrameLoseAndDuplicateNothing) {
  OpenSpool();
  RunUnderLoad(80, [&](std::mt19937& rng) {
    if (rng() % 2 != 0) return;
    // Data towards the collector comes in large frames; acks are 9 bytes each, so a cut
    // towards the agent lands inside one when it is a byte or two in.
    const auto dir = rng() % 3 == 0 ? FaultProxy::kToClient : FaultProxy::kToUpstream;
    proxy_->CutLiveAfter(dir, dir == FaultProxy::kToClient ? 1 + rng() % 8 : rng() % 40000);
  });
}

TEST_F(TransportFaultTest, ResetConnectionsLoseAndDuplicateNothing) {
  OpenSpool();
  RunUnderLoad(80, [&](std::mt19937& rng) {
    if (rng() % 3 == 0) proxy_->ResetLive();
  });
}

// Without a watchdog a blackholed connection stalls the sender for good: no error, no
// timeout. This is what the watchdog exists for; Restart (its remedy) recovers at once.
TEST_F(TransportFaultTest, BlackholedConnectionStallsUntilTheSenderIsRestarted) {
  OpenSpool();
  Sender* s = StartThroughProxy();
  AppendRecords(500);
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == 500; }, 10000));
  proxy_->BlackholeLive();
  AppendRecords(500);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(s->stats().acked_next, 500u) << "the blackhole let acks through";
  s->Restart();
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == 1000; }, 10000));
  senders_.clear();
  proxy_.reset();
  ExpectStoredExactly(1000);
}

// The real agent, tailing a file, with its watchdog at 1 s: a blackhole on its connection
// is noticed, logged, the sender restarted, and every line arrives.
TEST_F(TransportFaultTest, AgentWatchdogRestartsASenderStuckOnABlackhole) {
  namespace fs = std::filesystem;
  StartCollector();
  proxy_ = std::make_unique<FaultProxy>(collector_->ports()[0]);
  ASSERT_TRUE(proxy_->ok());
  ASSERT_TRUE(key_->Save(dir_ + "/agent.key").ok());
  std::ofstream(dir_ + "/agent.toml")
      << "[agent]\nid = \"agent-1\"\ndata_dir = \"" << dir_ << "/adata\"\nkey_file = \"" << dir_
      << "/agent.key\"\nwatchdog_stall_seconds = 1\n"
      << "[spool]\ncommit_delay_ms = 5\n"
      << "[[input]]\ntype = \"file\"\npaths = [\"" << dir_
      << "/in.log\"]\nstart_at = \"beginning\"\npoll_interval_ms = 20\n"
      << "[[destination]]\nname = \"main\"\naddress = \"127.0.0.1:" << proxy_->port()
      << "\"\nca_file = \"" << dir_ << "/tls.crt\"\nserver_name = \"collector.test\"\n"
      << "backoff_max_ms = 200\n";
  std::ofstream in(dir_ + "/in.log");
  int written = 0;
  auto write_lines = [&](int n) {
    for (int i = 0; i < n; ++i) in << "line " << written++ << "\n";
    in.flush();
  };
  // Lines stored so far (read-only; the collector is running).
  auto stored_lines = [&] {
    std::set<int> lines;
    const fs::path streams = fs::path(copts_.data_dir) / "streams" / "agent-1";
    std::error_code ec;
    if (!fs::exists(streams, ec)) return lines;
    for (const auto& e : fs::directory_iterator(streams)) {
      (void)store::ForEachStoredRecord(
          env::Env::Posix(), e.path().string(),
          [&](uint64_t, spool::FrameType t, std::string_view p) {
            event::Event ev;
            if (t == spool::FrameType::kData && event::DecodeEvent(p, &ev).ok() &&
                ev.raw.rfind("line ", 0) == 0) {
              lines.insert(std::atoi(std::string(ev.raw.substr(5)).c_str()));
            }
          });
    }
    return lines;
  };
  const std::string log = dir_ + "/agent.log";
  gapless::testing::Subprocess agent;
  ASSERT_TRUE(
      agent.Start({GAPLESS_BINARY, "agent", "--config", dir_ + "/agent.toml"}, {}, "", log));
  write_lines(200);
  ASSERT_TRUE(WaitFor([&] { return static_cast<int>(stored_lines().size()) == written; }, 20000))
      << "nothing arrived before the fault; see " << log;
  const int before = proxy_->accepted();
  proxy_->BlackholeLive();
  const auto fault_at = std::chrono::steady_clock::now();
  write_lines(300);
  ASSERT_TRUE(WaitFor([&] { return static_cast<int>(stored_lines().size()) == written; }, 30000))
      << "the blackholed sender never recovered; see " << log;
  const double recovered_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - fault_at).count();
  EXPECT_GT(proxy_->accepted(), before) << "recovered without a new connection?";
  agent.Signal(SIGTERM);
  ASSERT_EQ(agent.Wait(30s), 0) << "see " << log;
  std::ifstream agent_log(log);
  const std::string text((std::istreambuf_iterator<char>(agent_log)),
                         std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("watchdog: destination main has acknowledged nothing"), std::string::npos)
      << text;
  std::printf("blackhole: %d lines, all stored %.1f s after the fault (watchdog at 1 s)\n", written,
              recovered_s);
}

}  // namespace
}  // namespace gapless::transport
