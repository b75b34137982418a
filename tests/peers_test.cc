// Real syslog clients that nobody here wrote — util-linux logger, rsyslog (omfwd) and
// syslog-ng's loggen — sending numbered messages to a real agent (in this process, real
// sockets, real spool on disk). Every numbered message must arrive, in order per
// connection, with its bytes intact.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "agent/agent.h"
#include "event/event.h"
#include "subprocess.h"

namespace gapless {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Stored {
  std::string source, peer, message, raw;
};

class PeersTest : public ::testing::Test {
 public:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("gapless_peers_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (agent_) agent_->Stop();
    fs::remove_all(dir_);
  }

  // Starts an agent with a TCP and a UDP syslog input (and TLS if asked) on free ports.
  void StartAgent(bool with_tls = false) {
    config::AgentConfig cfg = config::DemoConfig(dir_.string() + "/data", 0);
    if (with_tls) {
      const std::string cert = (dir_ / "cert.pem").string();
      const std::string key = (dir_ / "key.pem").string();
      const std::string cmd =
          "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
          "-subj /CN=localhost -keyout " +
          key + " -out " + cert + " >/dev/null 2>&1";
      ASSERT_EQ(std::system(cmd.c_str()), 0);
      config::InputConfig tls;
      tls.syslog.listen = "127.0.0.1:0";
      tls.syslog.tls = input::TlsServerOptions{cert, key, "", false};
      cfg.inputs.push_back(tls);
    }
    config::InputConfig relp;
    relp.type = config::InputType::kRelp;
    relp.syslog.listen = "127.0.0.1:0";
    cfg.inputs.push_back(relp);
    config::InputConfig http;
    http.type = config::InputType::kHttp;
    http.http.listen = "127.0.0.1:0";
    cfg.inputs.push_back(http);
    auto a = agent::Agent::Start(cfg);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    agent_ = std::move(*a);
    for (const agent::InputStatus& in : agent_->Inputs()) {
      if (in.name.starts_with("relp:")) {
        relp_port_ = in.port;
      } else if (in.name.starts_with("http:")) {
        http_port_ = in.port;
      } else {
        ports_[in.name.substr(0, 11)] = in.port;
      }
    }
  }
  uint16_t Port(const std::string& kind) { return ports_.at("syslog:" + kind + ":"); }

  // Durable records so far, decoded; waits until at least n are there (30 s at most).
  std::vector<Stored> WaitFor(size_t n) {
    return WaitUntil([n](const std::vector<Stored>& all) { return all.size() >= n; });
  }
  // Durable records, decoded, once done(records) holds (30 s at most).
  template <class Done>
  std::vector<Stored> WaitUntil(Done done) {
    std::vector<Stored> out;
    for (int i = 0; i < 3000; ++i) {
      out.clear();
      auto reader = agent_->spool()->NewReader(0);
      spool::Record r;
      while (reader.ok() && *(*reader)->Next(&r)) {
        if (r.type != spool::FrameType::kData) continue;
        event::Event e;
        EXPECT_TRUE(event::DecodeEvent(r.payload, &e).ok());
        out.push_back({std::string(e.source), std::string(e.peer), std::string(e.message),
                       std::string(e.raw)});
      }
      if (done(out)) break;
      std::this_thread::sleep_for(10ms);
    }
    return out;
  }

  uint64_t LossCount(spool::LossReason reason) {
    uint64_t count = 0;
    auto reader = agent_->spool()->NewReader(0);
    spool::Record r;
    while (reader.ok() && *(*reader)->Next(&r)) {
      if (r.type != spool::FrameType::kLoss) continue;
      auto loss = spool::LossRecord::Decode(r.payload);
      if (loss.ok() && loss->reason == reason) count += loss->record_count;
    }
    return count;
  }

  static void SendUdp(uint16_t port, const std::string& text) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::sendto(fd, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    ::close(fd);
  }

  std::string WriteNumberedFile(int n, const std::string& prefix) {
    const std::string path = (dir_ / (prefix + ".txt")).string();
    std::ofstream f(path);
    for (int i = 0; i < n; ++i) f << prefix << " line " << i << "\n";
    return path;
  }

  fs::path dir_;
  std::unique_ptr<agent::Agent> agent_;
  std::map<std::string, uint16_t> ports_;
  uint16_t relp_port_ = 0;
  uint16_t http_port_ = 0;
};

// Messages whose text is "<prefix> line N", grouped by connection (peer); each group must
// be 0..k in order, and together they must be 0..n-1 exactly once.
void ExpectNumbered(const std::vector<Stored>& got, const std::string& prefix, int n) {
  std::map<std::string, int> next_per_peer;
  std::vector<int> seen(static_cast<size_t>(n), 0);
  const std::regex re(prefix + " line ([0-9]+)");
  int matched = 0;
  for (const Stored& s : got) {
    std::smatch m;
    if (!std::regex_match(s.message, m, re)) continue;
    ++matched;
    const int i = std::stoi(m[1]);
    ASSERT_LT(i, n);
    ++seen[static_cast<size_t>(i)];
    EXPECT_GT(i, next_per_peer.count(s.peer) ? next_per_peer[s.peer] - 1 : -1)
        << "out of order from " << s.peer;
    next_per_peer[s.peer] = i + 1;
    EXPECT_NE(s.raw.find(s.message), std::string::npos) << "raw bytes lost the message";
  }
  EXPECT_EQ(matched, n);
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], 1) << prefix << " line " << i;
}

TEST_F(PeersTest, LoggerOverUdpTcpAndOctetCounting) {
  StartAgent();
  const int n = 300;
  struct Run {
    std::string prefix;
    std::vector<std::string> flags;
  };
  const std::string tcp = std::to_string(Port("tcp"));
  const std::string udp = std::to_string(Port("udp"));
  const std::vector<Run> runs = {
      {"udp3164", {"--rfc3164", "-d", "-P", udp}},
      {"tcp5424", {"--rfc5424", "-T", "-P", tcp}},
      {"octets", {"--rfc5424", "-T", "--octet-count", "-P", tcp}},
  };
  for (const Run& run : runs) {
    const std::string file = WriteNumberedFile(n, run.prefix);
    std::vector<std::string> argv = {"/usr/bin/logger", "-n", "127.0.0.1", "-t", "peers"};
    argv.insert(argv.end(), run.flags.begin(), run.flags.end());
    argv.push_back("-f");
    argv.push_back(file);
    testing::Subprocess logger;
    ASSERT_TRUE(logger.Start(argv, {}, "", (dir_ / "logger.log").string()));
    ASSERT_EQ(logger.Wait(30s), 0) << run.prefix;
  }
  // Wait for both TCP runs in full (UDP datagrams count towards the total too).
  const auto got = WaitUntil([&](const std::vector<Stored>& all) {
    size_t tcp_records = 0;
    for (const Stored& s : all) tcp_records += s.source.rfind("syslog:tcp:", 0) == 0 ? 1 : 0;
    return tcp_records >= static_cast<size_t>(2 * n);
  });
  ExpectNumbered(got, "tcp5424", n);
  ExpectNumbered(got, "octets", n);
  // UDP cannot hold a sender back: logger sends faster than a debug build reads, and the
  // kernel buffer (rmem_max) holds ~256 small datagrams. The promise is that every
  // datagram is stored or counted in a udp_kernel_drop LOSS record — exactly.
  uint64_t stored = 0;
  int last = -1;
  for (const Stored& s : got) {
    if (s.message.rfind("udp3164 line ", 0) != 0) continue;
    const int i = std::stoi(s.message.substr(13));
    EXPECT_GT(i, last) << "UDP datagrams stored out of order";
    last = i;
    ++stored;
  }
  uint64_t lost = 0;
  for (int i = 0; i < 100 && stored + lost < static_cast<uint64_t>(n); ++i) {
    lost = LossCount(spool::LossReason::kUdpKernelDrop);
    std::this_thread::sleep_for(20ms);  // the drop count arrives with the next datagram
    if (stored + lost < static_cast<uint64_t>(n)) SendUdp(Port("udp"), "<13>nudge");
  }
  EXPECT_EQ(stored + lost, static_cast<uint64_t>(n)) << stored << " stored, " << lost << " lost";
}

// Runs rsyslogd reading `input` with imfile and sending it with `action` (one
// action(...) statement) until `done` holds for the stored records.
std::vector<Stored> RunRsyslog(PeersTest* t, const fs::path& dir, const std::string& input,
                               const std::string& action, size_t n) {
  const std::string work = (dir / "rsyslog").string();
  fs::create_directories(work);
  const std::string conf = work + "/rsyslog.conf";
  std::ofstream(conf) << "global(workDirectory=\"" << work
                      << "\" processInternalMessages=\"on\")\n"
                         "module(load=\"imfile\")\n"
                         "module(load=\"omrelp\")\n"
                         "input(type=\"imfile\" file=\""
                      << input
                      << "\" tag=\"numbered:\" ruleset=\"fwd\")\n"
                         "ruleset(name=\"fwd\") {\n  "
                      << action << "\n}\n";
  testing::Subprocess rsyslog;
  EXPECT_TRUE(rsyslog.Start({"/usr/sbin/rsyslogd", "-n", "-f", conf, "-i", work + "/pid"}, {}, "",
                            work + "/rsyslog.log"));
  auto got = t->WaitFor(n);
  rsyslog.Signal(SIGTERM);
  rsyslog.Wait(10s);
  if (got.size() < n) {
    std::ifstream log(work + "/rsyslog.log");
    ADD_FAILURE() << "rsyslogd's output:\n" << std::string(std::istreambuf_iterator<char>(log), {});
  }
  return got;
}

TEST_F(PeersTest, RsyslogForwardsAFileOverTcpOctetCounted) {
  StartAgent();
  const int n = 2000;
  const auto got = RunRsyslog(this, dir_, WriteNumberedFile(n, "rsyslog"),
                              "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"" +
                                  std::to_string(Port("tcp")) +
                                  "\" protocol=\"tcp\" tcp_framing=\"octet-counted\"\n"
                                  "         template=\"RSYSLOG_SyslogProtocol23Format\"\n"
                                  "         action.resumeRetryCount=\"-1\")",
                              n);
  ExpectNumbered(got, "rsyslog", n);
  for (const Stored& s : got) EXPECT_EQ(s.source, "syslog:tcp:" + std::to_string(Port("tcp")));
}

// omrelp through librelp: the agent acknowledges each message once durable.
TEST_F(PeersTest, RsyslogForwardsAFileOverRelp) {
  StartAgent();
  const int n = 2000;
  const auto got = RunRsyslog(this, dir_, WriteNumberedFile(n, "relp"),
                              "action(type=\"omrelp\" target=\"127.0.0.1\" port=\"" +
                                  std::to_string(relp_port_) +
                                  "\"\n"
                                  "         template=\"RSYSLOG_SyslogProtocol23Format\"\n"
                                  "         action.resumeRetryCount=\"-1\")",
                              n);
  ExpectNumbered(got, "relp", n);
  for (const Stored& s : got) EXPECT_EQ(s.source, "relp:" + std::to_string(relp_port_));
  for (const agent::InputStatus& in : agent_->Inputs()) {
    if (in.name.starts_with("relp:")) {
      EXPECT_EQ(in.stats.acked, static_cast<uint64_t>(n));
    }
  }
}

// curl POSTs a file of NDJSON lines, then the same lines as one JSON array.
TEST_F(PeersTest, CurlPostsNdjsonAndJsonArrays) {
  StartAgent();
  const int n = 1000;
  const std::string ndjson = (dir_ / "events.ndjson").string();
  const std::string array = (dir_ / "events.json").string();
  {
    std::ofstream lines(ndjson);
    std::ofstream arr(array);
    arr << "[";
    for (int i = 0; i < n; ++i) {
      lines << "{\"message\":\"curl line " << i << "\",\"host\":\"h\"}\n";
      arr << (i ? "," : "") << "{\"message\":\"curl line " << n + i << "\"}";
    }
    arr << "]";
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(http_port_) + "/ingest";
  const std::string answer = (dir_ / "answer").string();
  for (const auto& [file, type] :
       {std::pair{ndjson, "application/x-ndjson"}, std::pair{array, "application/json"}}) {
    const std::string cmd = "curl -sS -o " + answer +
                            " -w '%{http_code}' -H 'Content-Type: " + type + "' --data-binary @" +
                            file + " " + url + " > " + answer + ".code";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::ifstream code(answer + ".code");
    std::string status((std::istreambuf_iterator<char>(code)), {});
    std::ifstream body(answer);
    EXPECT_EQ(status, "200") << std::string(std::istreambuf_iterator<char>(body), {});
  }
  const auto got = WaitFor(2 * n);
  ExpectNumbered(got, "curl", 2 * n);
  for (const Stored& s : got) EXPECT_EQ(s.source, "http:" + std::to_string(http_port_));
}

// loggen numbers each connection's messages "seq: 0000000042" from 0; n per connection.
void ExpectLoggenSeqs(const std::vector<Stored>& got, int connections, int n) {
  const std::regex re("seq: ([0-9]{10}),");
  std::map<std::string, std::vector<int>> per_peer;
  for (const Stored& s : got) {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(s.message, m, re)) << s.message;
    per_peer[s.peer].push_back(std::stoi(m[1]));
  }
  EXPECT_EQ(static_cast<int>(per_peer.size()), connections);
  for (const auto& [peer, seqs] : per_peer) {
    ASSERT_EQ(static_cast<int>(seqs.size()), n) << peer;
    for (int i = 0; i < n; ++i) ASSERT_EQ(seqs[static_cast<size_t>(i)], i) << peer;
  }
}

class LoggenTest : public PeersTest {
 protected:
  void RunLoggen(std::vector<std::string> flags, uint16_t port, int n) {
    const fs::path root = fs::path(GAPLESS_PEERS_DIR) / "syslog-ng/usr";
    const std::string loggen = (root / "bin/loggen").string();
    ASSERT_TRUE(fs::exists(loggen)) << "run scripts/fetch-peers.sh (make test does)";
    // loggen activates one transport plugin: "-i -S" (TCP) or "-U" (TLS over TCP). It
    // exits 0 even when it cannot connect: the counts below are what prove delivery.
    std::vector<std::string> argv = {
        loggen, "-P", "-Q", "-r", "1000000", "-n", std::to_string(n), "--active-connections=2"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("127.0.0.1");
    argv.push_back(std::to_string(port));
    testing::Subprocess p;
    ASSERT_TRUE(p.Start(argv,
                        {"SYSLOGNG_PREFIX=" + root.string(),
                         "LD_LIBRARY_PATH=" + (root / "lib/syslog-ng").string()},
                        "", (dir_ / "loggen.log").string()));
    const int status = p.Wait(60s);
    std::ifstream log(dir_ / "loggen.log");
    const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    ASSERT_EQ(status, 0) << text;
    std::cerr << "loggen: " << text;
  }
};

TEST_F(LoggenTest, TcpTwoConnections) {
  StartAgent();
  const int n = 10000;  // per connection
  RunLoggen({"-i", "-S"}, Port("tcp"), n);
  ExpectLoggenSeqs(WaitFor(2 * n), 2, n);
}

TEST_F(LoggenTest, TlsTwoConnections) {
  StartAgent(/*with_tls=*/true);
  const int n = 2500;  // per connection
  RunLoggen({"-U"}, Port("tls"), n);
  std::vector<Stored> tls;
  for (Stored& s : WaitFor(2 * n)) {
    if (s.source.rfind("syslog:tls:", 0) == 0) tls.push_back(std::move(s));
  }
  ExpectLoggenSeqs(tls, 2, n);
}

}  // namespace
}  // namespace gapless
