#include "agent/agent.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "alert/webhook_receiver_test_util.h"
#include "event/event.h"
#include "http/client.h"
#include "identity/identity.h"

namespace gapless::agent {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Sends 2,000 syslog lines of 1 KB to a TCP input from a thread, far more than a small
// quota holds; the destructor stops and joins it.
class Flood {
 public:
  explicit Flood(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    writer_ = std::thread([fd = fd_] {
      const std::string line = "<13>1 - h app - - - " + std::string(1000, 'x') + "\n";
      for (int i = 0; i < 2000; ++i) {
        if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) < 0) return;
      }
    });
  }
  ~Flood() {
    ::shutdown(fd_, SHUT_RDWR);
    writer_.join();
    ::close(fd_);
  }

 private:
  const int fd_;
  std::thread writer_;
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("gapless_agent_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  config::AgentConfig Config(bool with_udp) {
    config::AgentConfig cfg;
    cfg.id = "test";
    cfg.data_dir = (dir_ / "data").string();
    config::InputConfig tcp_in;
    tcp_in.syslog.listen = "127.0.0.1:0";
    cfg.inputs.push_back(tcp_in);
    if (with_udp) {
      config::InputConfig udp_in;
      udp_in.type = config::InputType::kSyslogUdp;
      udp_in.syslog.listen = "127.0.0.1:0";
      cfg.inputs.push_back(udp_in);
    }
    return cfg;
  }

  // Config(false) with an agent key and destinations where nothing listens.
  config::AgentConfig WithUnreachableDestinations(const std::vector<std::string>& names) {
    config::AgentConfig cfg = Config(false);
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    EXPECT_TRUE(identity::MakeSelfSignedTls(d + "/tls.key", d + "/tls.crt", "c.test").ok());
    auto key = identity::SigningKey::Generate();
    EXPECT_TRUE(key.ok());
    cfg.key_file = d + "/agent.key";
    if (key.ok()) {
      EXPECT_TRUE((*key)->Save(cfg.key_file).ok());
    }
    for (const std::string& name : names) {
      transport::DestinationOptions dest;
      dest.name = name;
      dest.address = "127.0.0.1:1";
      dest.ca_file = d + "/tls.crt";
      dest.server_name = "c.test";
      cfg.destinations.push_back(dest);
    }
    return cfg;
  }

  static std::vector<std::string> Messages(spool::Spool* spool, size_t n) {
    std::vector<std::string> out;
    for (int i = 0; i < 1000 && out.size() < n; ++i) {
      out.clear();
      auto reader = spool->NewReader(0);
      spool::Record r;
      while (reader.ok() && *(*reader)->Next(&r)) {
        event::Event e;
        if (r.type == spool::FrameType::kData && event::DecodeEvent(r.payload, &e).ok()) {
          out.emplace_back(e.message);
        }
      }
      if (out.size() < n) std::this_thread::sleep_for(10ms);
    }
    return out;
  }

  fs::path dir_;
};

// Reload with the TCP input unchanged: its open connection keeps delivering, in order,
// across the reload; the new UDP input starts; removing it later stops only it.
TEST_F(AgentTest, ReloadKeepsUnchangedInputsAndTheirConnections) {
  config::AgentConfig cfg = Config(/*with_udp=*/false);
  auto started = Agent::Start(cfg);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  Agent& agent = **started;
  const uint16_t tcp_port = agent.Inputs().at(0).port;
  // Pin the port the first start chose, as a config file on disk would name it. That is a
  // changed setting (0 → the port), so this reload restarts the input on the same port.
  cfg.inputs[0].syslog.listen = "127.0.0.1:" + std::to_string(tcp_port);
  ASSERT_TRUE(agent.Reload(cfg).ok());
  ASSERT_EQ(agent.Inputs().size(), 1u);
  const uint16_t port = agent.Inputs().at(0).port;
  ASSERT_EQ(port, tcp_port);

  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  for (int i = 0; i < 50; ++i)
    asio::write(s, asio::buffer("<13>before " + std::to_string(i) + "\n"));
  ASSERT_EQ(Messages(agent.spool(), 50).size(), 50u);

  config::AgentConfig with_udp = cfg;
  config::InputConfig udp_in;
  udp_in.type = config::InputType::kSyslogUdp;
  udp_in.syslog.listen = "127.0.0.1:0";
  with_udp.inputs.push_back(udp_in);
  ASSERT_TRUE(agent.Reload(with_udp).ok());
  EXPECT_EQ(agent.Inputs().size(), 2u);
  for (int i = 0; i < 50; ++i)
    asio::write(s, asio::buffer("<13>after " + std::to_string(i) + "\n"));
  const auto got = Messages(agent.spool(), 100);
  ASSERT_EQ(got.size(), 100u) << "the connection did not survive the reload";
  EXPECT_EQ(got[99], "after 49");

  ASSERT_TRUE(agent.Reload(cfg).ok());  // remove UDP again
  ASSERT_EQ(agent.Inputs().size(), 1u);
  EXPECT_EQ(agent.Inputs()[0].port, port);
  agent.Stop();
}

TEST_F(AgentTest, ReloadReportsSpoolChangesAsNeedingARestart) {
  config::AgentConfig cfg = Config(false);
  auto started = Agent::Start(cfg);
  ASSERT_TRUE(started.ok());
  config::AgentConfig changed = cfg;
  changed.spool.quota_bytes *= 2;
  const Status s = (*started)->Reload(changed);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("restart"), std::string::npos) << s.ToString();
}

TEST_F(AgentTest, StartFailsCleanlyWhenAPortIsTaken) {
  asio::io_context io;
  tcp::acceptor taken(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  config::AgentConfig cfg = Config(false);
  cfg.inputs[0].syslog.listen = "127.0.0.1:" + std::to_string(taken.local_endpoint().port());
  auto started = Agent::Start(cfg);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.status().message().find("cannot listen"), std::string::npos)
      << started.status().ToString();
  // Nothing is left holding the spool: a second start with a free port works.
  cfg.inputs[0].syslog.listen = "127.0.0.1:0";
  EXPECT_TRUE(Agent::Start(cfg).ok());
}

// A destination taken out of the configuration (by a reload, or between runs) must not
// keep its cursor: a required one would hold the spool's segments until it is full.
TEST_F(AgentTest, RemovedDestinationsLoseTheirSpoolCursor) {
  config::AgentConfig cfg = WithUnreachableDestinations({"kept", "gone"});  // cursors stay at 0
  {
    auto started = Agent::Start(cfg);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    EXPECT_EQ((*started)->spool()->CursorNames(), (std::vector<std::string>{"gone", "kept"}));
    config::AgentConfig fewer = cfg;
    fewer.destinations.pop_back();
    ASSERT_TRUE((*started)->Reload(fewer).ok());
    EXPECT_EQ((*started)->spool()->CursorNames(), std::vector<std::string>{"kept"});
    EXPECT_EQ((*started)->Destinations().size(), 1u);
  }
  cfg.destinations.clear();  // and between runs
  auto again = Agent::Start(cfg);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->spool()->CursorNames().empty());
}

// /health turns 503 while a required destination holds unacknowledged records and has
// acknowledged nothing for longer than the watchdog's stall time, and while the spool
// (policy block) refuses writes; /metrics shows the backlog.
TEST_F(AgentTest, HealthSaysWhenADestinationStallsOrTheSpoolRefusesWrites) {
  config::AgentConfig cfg = WithUnreachableDestinations({"central"});
  cfg.watchdog_stall_ms = 1000;
  cfg.heartbeat_interval_ms = 0;
  cfg.spool.quota_bytes = 256 << 10;
  cfg.spool.segment_bytes = 64 << 10;
  cfg.spool.max_record_bytes = 16 << 10;
  cfg.metrics_listen = "127.0.0.1:0";
  auto started = Agent::Start(cfg);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  Agent& agent = **started;
  const std::string base = "http://127.0.0.1:" + std::to_string(agent.metrics_port());
  auto get = [&](const std::string& path) {
    auto res = http::Get(base + path);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    return res.ok() ? *res : http::Response{};
  };
  EXPECT_EQ(get("/health").status, 200) << "nothing to deliver yet";

  // A writer that sends far more than the quota; the input pauses when the spool is full.
  Flood flood(agent.Inputs().at(0).port);
  bool full = false, stalled = false;
  for (int i = 0; i < 200 && !(full && stalled); ++i) {
    std::this_thread::sleep_for(50ms);
    const auto h = get("/health");
    EXPECT_TRUE(h.status == 200 || h.status == 503) << h.status;
    full = full || h.body.find("the spool is full and refused writes") != std::string::npos;
    stalled = stalled || h.body.find("destination central is stalled") != std::string::npos;
  }
  EXPECT_TRUE(full);
  EXPECT_TRUE(stalled);
  EXPECT_EQ(get("/health").status, 503);
  const std::string m = get("/metrics").body;
  EXPECT_NE(
      m.find("gapless_agent_destination_backlog_records{agent=\"test\",destination=\"central\"}"),
      std::string::npos)
      << m;
  EXPECT_EQ(m.find("gapless_agent_spool_full_refusals_total{agent=\"test\"} 0\n"),
            std::string::npos)
      << m;
  agent.Stop();  // closes the input's connection: the writer's send fails
}

// Issue 16 item 3: the collector is down and the spool fills; the agent itself tells a
// webhook (and its journal) within seconds: spool_full, inputs_blocked,
// destination_unreachable.
TEST_F(AgentTest, WithItsCollectorDownAndItsSpoolFullTheAgentAlertsByItself) {
  alert::testing::Receiver hook;
  config::AgentConfig cfg = WithUnreachableDestinations({"central"});
  cfg.heartbeat_interval_ms = 0;
  cfg.spool.quota_bytes = 256 << 10;
  cfg.spool.segment_bytes = 64 << 10;
  cfg.spool.max_record_bytes = 16 << 10;
  cfg.alert_rules.destination_unreachable_s = 1;
  cfg.alert_rules.inputs_blocked_s = 1;
  cfg.alerts.webhooks.push_back({"http://127.0.0.1:" + std::to_string(hook.port()), "", "", 2000});
  auto started = Agent::Start(cfg);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  Agent& agent = **started;
  Flood flood(agent.Inputs().at(0).port);
  const std::vector<std::string> wanted = {"\"spool_full\"", "\"inputs_blocked\"",
                                           "\"destination_unreachable\""};
  auto all_arrived = [&] {
    std::string bodies;
    for (const auto& g : hook.got()) bodies += g.body;
    return std::all_of(wanted.begin(), wanted.end(),
                       [&](const std::string& w) { return bodies.find(w) != std::string::npos; });
  };
  for (int i = 0; i < 300 && !all_arrived(); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(all_arrived());
  std::set<std::string> firing;
  for (const auto& e : agent.alerts()->Firing()) firing.insert(e.name + " " + e.subject);
  EXPECT_EQ(firing, (std::set<std::string>{"destination_unreachable test/central",
                                           "inputs_blocked test", "spool_full test"}));
  agent.Stop();
  std::ifstream journal(cfg.data_dir + "/alerts.jsonl");
  const std::string text((std::istreambuf_iterator<char>(journal)), {});
  for (const std::string& w : wanted) EXPECT_NE(text.find(w), std::string::npos) << w;
}

}  // namespace
}  // namespace gapless::agent
