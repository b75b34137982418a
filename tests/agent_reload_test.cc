// SIGHUP to a real `gapless agent`: a valid new file adds an input while the running one
// keeps its connection; an invalid file is refused and the running configuration stays.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "env/env.h"
#include "event/event.h"
#include "spool/spool.h"
#include "subprocess.h"

namespace gapless {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Waits until `needle` appears in the file (10 s at most).
bool WaitForText(const std::string& path, const std::string& needle) {
  for (int i = 0; i < 1000; ++i) {
    if (ReadAll(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(AgentReload, SighupAppliesAValidFileAndRefusesAnInvalidOne) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("gapless_reload_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string config = (dir / "agent.toml").string();
  const std::string log = (dir / "agent.log").string();
  const uint16_t tcp_port = testing::FreePort(SOCK_STREAM);
  const uint16_t udp_port = testing::FreePort(SOCK_DGRAM);
  const std::string base =
      "[agent]\nid = \"reload\"\ndata_dir = \"" + (dir / "data").string() +
      "\"\n[[input]]\ntype = \"syslog_tcp\"\nlisten = \"127.0.0.1:" + std::to_string(tcp_port) +
      "\"\n";
  std::ofstream(config) << base;
  testing::Subprocess agent;
  ASSERT_TRUE(agent.Start({GAPLESS_BINARY, "agent", "--config", config}, {}, "", log));
  ASSERT_TRUE(WaitForText(log, "running")) << ReadAll(log);

  const int tcp = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to = Loopback(tcp_port);
  ASSERT_EQ(::connect(tcp, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  const std::string first = "<13>before reload\n";
  ASSERT_EQ(::write(tcp, first.data(), first.size()), static_cast<ssize_t>(first.size()));

  // A valid file that adds a UDP input.
  std::ofstream(config) << base
                        << "[[input]]\ntype = \"syslog_udp\"\nlisten = \"127.0.0.1:" << udp_port
                        << "\"\n";
  agent.Signal(SIGHUP);
  ASSERT_TRUE(WaitForText(log, "reloaded")) << ReadAll(log);
  const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in uto = Loopback(udp_port);
  const std::string datagram = "<13>over udp after reload";
  ::sendto(udp, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&uto),
           sizeof(uto));
  ::close(udp);

  // An invalid file: refused, and the TCP connection opened before still delivers.
  std::ofstream(config) << base << "[[input]]\ntype = \"nonsense\"\n";
  agent.Signal(SIGHUP);
  ASSERT_TRUE(WaitForText(log, "reload refused")) << ReadAll(log);
  const std::string second = "<13>same connection after both reloads\n";
  ASSERT_EQ(::write(tcp, second.data(), second.size()), static_cast<ssize_t>(second.size()));
  ::close(tcp);
  std::this_thread::sleep_for(300ms);
  agent.Signal(SIGTERM);
  ASSERT_EQ(agent.Wait(30s), 0) << ReadAll(log);

  auto spool = spool::Spool::Open(env::Env::Posix(), (dir / "data" / "spool").string(), {});
  ASSERT_TRUE(spool.ok()) << spool.status().ToString();
  auto reader = (*spool)->NewReader(0);
  ASSERT_TRUE(reader.ok());
  std::vector<std::string> messages;
  spool::Record r;
  while (*(*reader)->Next(&r)) {
    event::Event e;
    if (r.type == spool::FrameType::kData && event::DecodeEvent(r.payload, &e).ok()) {
      messages.emplace_back(e.message);
    }
  }
  // Each arrived once. Only one connection's lines are ordered: the datagram may be read
  // before or after the TCP line written later (TSan in CI saw both).
  std::vector<std::string> sorted = messages;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::string>{"before reload", "over udp after reload",
                                              "same connection after both reloads"}));
  const auto at = [&](const std::string& m) {
    return std::find(messages.begin(), messages.end(), m);
  };
  EXPECT_LT(at("before reload"), at("same connection after both reloads"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gapless
