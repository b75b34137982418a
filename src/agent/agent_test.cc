#include "agent/agent.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <filesystem>
#include <thread>

#include "event/event.h"
#include "identity/identity.h"

namespace gapless::agent {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

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
  config::AgentConfig cfg = Config(false);
  fs::create_directories(dir_);
  const std::string d = dir_.string();
  ASSERT_TRUE(identity::MakeSelfSignedTls(d + "/tls.key", d + "/tls.crt", "c.test").ok());
  auto key = identity::SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  cfg.key_file = d + "/agent.key";
  ASSERT_TRUE((*key)->Save(cfg.key_file).ok());
  for (const char* name : {"kept", "gone"}) {
    transport::DestinationOptions dest;
    dest.name = name;
    dest.address = "127.0.0.1:1";  // nothing listens: the cursors stay at 0
    dest.ca_file = d + "/tls.crt";
    dest.server_name = "c.test";
    cfg.destinations.push_back(dest);
  }
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

}  // namespace
}  // namespace gapless::agent
