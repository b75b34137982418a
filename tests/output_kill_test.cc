// Collector outputs end to end, with real processes: the real agent tails a file the test
// keeps appending to, the real collector stores it and delivers it through two outputs at
// once — RELP into a real rsyslog (imrelp → omfile) and an NDJSON file — while the
// collector is killed with -9 three times and rsyslog is restarted once. At the end every
// stored seq is in rsyslog's file and in the NDJSON file: duplicates allowed and counted
// (at-least-once), none missing. The same with a real nats-server -js and the nats
// output, restarted once: every seq in the JetStream stream exactly once (Msg-Id dedup).
//
// rsyslog acknowledges a RELP message once it has taken it into its queue; the test runs
// its main queue in direct mode so an acknowledged message is in omfile's hands, and
// restarts it with SIGTERM (its own durability is rsyslog's configuration, not ours).
// GAPLESS_OUTPUT_RECORDS sets how many lines are written (default 20,000; `make
// test-long`: 100,000).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "identity/identity.h"
#include "ledger/ledger.h"
#include "nats_peer.h"
#include "store/layout.h"
#include "store/stream_store.h"
#include "subprocess.h"

namespace gapless {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

int Records() {
  const char* v = std::getenv("GAPLESS_OUTPUT_RECORDS");
  return v != nullptr ? std::max(1000, std::atoi(v)) : 20'000;
}

class OutputKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("gapless_output_kill_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "rsyslog");
    const std::string d = dir_.string();
    ASSERT_TRUE(identity::MakeSelfSignedTls(d + "/tls.key", d + "/tls.crt", "collector.test").ok());
    auto key = identity::SigningKey::Generate();
    ASSERT_TRUE(key.ok());
    ASSERT_TRUE((*key)->Save(d + "/agent.key").ok());
    std::ofstream(d + "/enrolled")
        << "out-test " << identity::FormatPublicKey((*key)->public_key()) << "\n";
    const uint16_t port = testing::FreePort();
    relp_port_ = testing::FreePort();
    collector_head_ = "[collector]\ndata_dir = \"" + d +
                      "/cdata\"\nlisten = \"127.0.0.1:" + std::to_string(port) +
                      "\"\ntls_cert = \"" + d + "/tls.crt\"\ntls_key = \"" + d +
                      "/tls.key\"\nenrolled_keys = \"" + d +
                      "/enrolled\"\ncheckpoint_interval_ms = 200\n";
    std::ofstream(d + "/agent.toml")
        << "[agent]\nid = \"out-test\"\ndata_dir = \"" << d << "/adata\"\nkey_file = \"" << d
        << "/agent.key\"\n[spool]\ncommit_delay_ms = 20\n"
        << "[[input]]\ntype = \"file\"\npaths = [\"" << d
        << "/in.log\"]\nstart_at = \"beginning\"\n"
        << "[[destination]]\nname = \"main\"\naddress = \"127.0.0.1:" << port << "\"\nca_file = \""
        << d << "/tls.crt\"\nserver_name = \"collector.test\"\nbackoff_max_ms = 200\n";
    std::ofstream(d + "/in.log");
    WriteRsyslog("imrelp");
  }
  // rsyslog receiving on relp_port_ with `module` (imrelp, or imtcp for plain syslog with
  // octet counting; with tls, through its OpenSSL driver and the fixture's certificate)
  // into rsyslog/received.log, each message's raw text on a line.
  void WriteRsyslog(const std::string& module, bool tls = false) const {
    const std::string work = (dir_ / "rsyslog").string();
    const std::string d = dir_.string();
    const bool relp = module == "imrelp";
    std::ofstream(work + "/rsyslog.conf")
        << "global(workDirectory=\"" << work << "\" processInternalMessages=\"on\""
        << (tls && !relp ? " DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"" + d +
                               "/tls.crt\" DefaultNetstreamDriverCertFile=\"" + d +
                               "/tls.crt\" DefaultNetstreamDriverKeyFile=\"" + d + "/tls.key\""
                         : "")
        << ")\nmain_queue(queue.type=\"Direct\")\n"
        << "module(load=\"" << module << "\""
        << (tls && !relp ? " StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" "
                           "StreamDriver.AuthMode=\"anon\""
                         : "")
        << ")\ninput(type=\"" << module << "\" port=\"" << relp_port_ << "\""
        << (tls && relp
                ? " tls=\"on\" tls.cacert=\"" + d + "/tls.crt\" tls.mycert=\"" + d +
                      "/tls.crt\" tls.myprivkey=\"" + d +
                      "/tls.key\" tls.authMode=\"name\" tls.permittedPeer=[\"collector.test\"]"
                : "")
        << ")\ntemplate(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n"
        << "action(type=\"omfile\" file=\"" << work << "/received.log\" template=\"raw\")\n";
  }
  void TearDown() override {
    StopWriter();
    rsyslog_.Signal(SIGTERM);
    rsyslog_.Wait(10s);
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // The collector's config: the common part and these [[output]] tables.
  void WriteCollector(const std::string& outputs) const {
    std::ofstream(dir_ / "collector.toml") << collector_head_ << outputs;
  }
  std::string RelpAndFileOutputs() const {
    return "[[output]]\nname = \"rsyslog\"\ntype = \"relp\"\naddress = \"127.0.0.1:" +
           std::to_string(relp_port_) + "\"\nretry_min_ms = 50\nretry_max_ms = 500\n" +
           "[[output]]\nname = \"lake\"\ntype = \"file\"\npath = \"" + dir_.string() +
           "/lake.ndjson\"\nmax_file_size = \"4MiB\"\n";
  }

  void StartRsyslog() {
    const std::string work = (dir_ / "rsyslog").string();
    ASSERT_TRUE(rsyslog_.Start(
        {"/usr/sbin/rsyslogd", "-n", "-f", work + "/rsyslog.conf", "-i", work + "/pid"}, {}, "",
        work + "/rsyslog.log"));
  }
  std::vector<std::string> Argv(const char* what, const char* file) const {
    return {GAPLESS_BINARY, what, "--config", (dir_ / file).string()};
  }
  std::string Log(const std::string& who) const { return (dir_ / (who + ".log")).string(); }

  // Appends "line <i>" to in.log, about 2,500 lines a second (so that the kills fall while
  // records flow), until `total`.
  void StartWriter(int total) {
    writer_ = std::thread([this, total] {
      std::ofstream out(dir_ / "in.log", std::ios::app);
      while (!stop_writer_ && written_ < total) {
        for (int k = 0; k < 50 && written_ < total; ++k)
          out << "line " << written_++ << " " << std::string(200, 'x') << "\n";
        out.flush();
        std::this_thread::sleep_for(20ms);
      }
    });
  }
  void StopWriter() {
    stop_writer_ = true;
    if (writer_.joinable()) writer_.join();
  }

  // The seqs (from the provenance each delivered record carries) in the files matching
  // `prefix`, counted.
  std::map<uint64_t, int> Seqs(const fs::path& folder, const std::string& prefix,
                               const std::regex& pattern) const {
    std::map<uint64_t, int> seqs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(folder, ec)) {
      if (e.path().filename().string().rfind(prefix, 0) != 0) continue;
      std::ifstream in(e.path());
      std::string line;
      std::smatch m;
      while (std::getline(in, line)) {
        if (std::regex_search(line, m, pattern)) ++seqs[std::stoull(m[1].str())];
      }
    }
    return seqs;
  }
  std::map<uint64_t, int> RsyslogSeqs() const {
    static const std::regex kSeq(R"re(\[gapless@32473 [^\]]*seq="([0-9]+)")re");
    return Seqs(dir_ / "rsyslog", "received.log", kSeq);
  }
  std::map<uint64_t, int> LakeSeqs() const {
    static const std::regex kSeq(R"re("gapless\.seq":([0-9]+))re");
    return Seqs(dir_, "lake.ndjson", kSeq);
  }
  uint64_t StoredRecords() const {
    uint64_t n = 0;
    const store::Layout layout((dir_ / "cdata").string());
    auto streams = layout.ListStreams(env::Env::Posix());
    if (!streams.ok()) return 0;
    for (const auto& s : *streams) {
      (void)store::ForEachStoredRecord(env::Env::Posix(), s.dir,
                                       [&](uint64_t, spool::FrameType, std::string_view) { ++n; });
    }
    return n;
  }

  // Every seq in [0, n) at least once; returns the number of duplicates.
  static int ExpectComplete(const std::map<uint64_t, int>& seqs, uint64_t n, const char* where) {
    int missing = 0, duplicates = 0;
    for (uint64_t s = 0; s < n; ++s) {
      auto it = seqs.find(s);
      if (it == seqs.end()) {
        if (++missing <= 5) ADD_FAILURE() << where << ": seq " << s << " missing";
      } else {
        duplicates += it->second - 1;
      }
    }
    EXPECT_EQ(missing, 0) << where;
    EXPECT_LE(seqs.empty() ? 0 : seqs.rbegin()->first, n - 1) << where << ": a seq never stored";
    return duplicates;
  }

  // What `gapless outputs` prints for the collector's data directory; it exits with
  // `exit_code` (0: everything confirmed, 1: something waits).
  std::string Report(int exit_code = 0) const {
    testing::Subprocess report;
    EXPECT_TRUE(report.Start({GAPLESS_BINARY, "outputs", "--data-dir", (dir_ / "cdata").string()},
                             {}, "", Log("report")));
    EXPECT_EQ(report.Wait(30s), exit_code << 8) << "see " << Log("report");
    std::ifstream in(Log("report"));
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  bool WaitUntil(const std::function<bool()>& done, std::chrono::seconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(200ms);
    }
    return true;
  }

  fs::path dir_;
  std::string collector_head_;
  uint16_t relp_port_ = 0;
  testing::Subprocess rsyslog_;
  std::thread writer_;
  std::atomic<bool> stop_writer_{false};
  std::atomic<int> written_{0};
};

TEST_F(OutputKillTest, RelpAndFileLoseNothingAcrossCollectorKillsAndAnRsyslogRestart) {
  const int total = Records();
  WriteCollector(RelpAndFileOutputs());
  StartRsyslog();
  testing::Subprocess agent;
  ASSERT_TRUE(agent.Start(Argv("agent", "agent.toml"), {}, "", Log("agent")));
  StartWriter(total);
  std::mt19937 rng(23);
  for (int kill = 0; kill < 3; ++kill) {
    testing::Subprocess collector;
    ASSERT_TRUE(collector.Start(Argv("collector", "collector.toml"), {}, "", Log("collector")));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500 + rng() % 1500));
    if (kill == 1) {  // rsyslog goes away for a while, and comes back
      rsyslog_.Signal(SIGTERM);
      ASSERT_EQ(rsyslog_.Wait(10s), 0);
      std::this_thread::sleep_for(1s);
      StartRsyslog();
    }
    std::printf("kill %d: rsyslog has %zu\n", kill, RsyslogSeqs().size());
    collector.Signal(SIGKILL);
    ASSERT_NE(collector.Wait(10s), -1);
  }
  testing::Subprocess collector;
  ASSERT_TRUE(collector.Start(Argv("collector", "collector.toml"), {}, "", Log("collector")));
  writer_.join();  // every line is written
  ASSERT_EQ(written_, total);
  // Every line stored, then every stored record delivered to both.
  ASSERT_TRUE(WaitUntil([&] { return StoredRecords() >= static_cast<uint64_t>(total); }, 120s))
      << "stored " << StoredRecords() << " of " << total << "; see " << Log("collector");
  const uint64_t n = StoredRecords();
  ASSERT_TRUE(WaitUntil([&] { return RsyslogSeqs().size() >= n && LakeSeqs().size() >= n; }, 120s))
      << "rsyslog has " << RsyslogSeqs().size() << ", the file " << LakeSeqs().size() << " of " << n
      << "; see " << Log("collector");
  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(30s), 0);
  collector.Signal(SIGTERM);
  EXPECT_EQ(collector.Wait(30s), 0) << "see " << Log("collector");
  rsyslog_.Signal(SIGTERM);
  EXPECT_EQ(rsyslog_.Wait(10s), 0);
  // The per-output report says the same from the state on disk.
  const std::string text = Report();
  for (const char* output : {"output lake", "output rsyslog"}) {
    EXPECT_NE(text.find(output), std::string::npos) << text;
  }
  EXPECT_NE(text.find("should have " + std::to_string(n) + ", confirmed " + std::to_string(n) +
                      ", waiting 0, refused 0"),
            std::string::npos)
      << text;
  // The ledger holds each output's account too (written each second and at the stop).
  {
    auto ledger = ledger::Ledger::Open(store::Layout((dir_ / "cdata").string()).Ledger(), true);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    auto c = (*ledger)->Read(0);
    ASSERT_TRUE(c.ok());
    std::map<std::string, uint64_t> delivered;
    for (const auto& r : c->outputs) delivered[r.output + " " + r.type] += r.delivered;
    EXPECT_EQ(delivered["rsyslog relp"], n);
    EXPECT_EQ(delivered["lake file"], n);
  }
  const int relp_dups = ExpectComplete(RsyslogSeqs(), n, "rsyslog");
  const int file_dups = ExpectComplete(LakeSeqs(), n, "file output");
  std::printf(
      "%llu records, 3 collector kills, 1 rsyslog restart: none missing; duplicates: "
      "rsyslog %d, file %d\n",
      static_cast<unsigned long long>(n), relp_dups, file_dups);
}

TEST_F(OutputKillTest, JetStreamHoldsEveryRecordExactlyOnceAcrossCollectorKills) {
  const int total = Records();
  testing::NatsPeer nats(dir_ / "nats");
  ASSERT_TRUE(nats.Start());
  ASSERT_TRUE(nats.Connect()) << "see " << (dir_ / "nats" / "nats-server.log");
  ASSERT_TRUE(nats.AddStream("GAPLESS", "logs.gapless"));
  WriteCollector("[[output]]\nname = \"jetstream\"\ntype = \"nats\"\nurl = \"" + nats.url() +
                 "\"\nsubject = \"logs.gapless\"\nstream = \"GAPLESS\"\nretry_min_ms = 50\n"
                 "retry_max_ms = 500\ntimeout_ms = 2000\n");
  testing::Subprocess agent;
  ASSERT_TRUE(agent.Start(Argv("agent", "agent.toml"), {}, "", Log("agent")));
  StartWriter(total);
  std::mt19937 rng(29);
  for (int kill = 0; kill < 3; ++kill) {
    testing::Subprocess collector;
    ASSERT_TRUE(collector.Start(Argv("collector", "collector.toml"), {}, "", Log("collector")));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500 + rng() % 1500));
    if (kill == 1) {  // nats-server goes away for a while, and comes back
      ASSERT_EQ(nats.Stop(), 0);
      std::this_thread::sleep_for(1s);
      ASSERT_TRUE(nats.Start());
      ASSERT_TRUE(nats.Connect());
    }
    std::printf("kill %d: the stream has %lld\n", kill,
                static_cast<long long>(nats.Count("GAPLESS")));
    collector.Signal(SIGKILL);
    ASSERT_NE(collector.Wait(10s), -1);
  }
  testing::Subprocess collector;
  ASSERT_TRUE(collector.Start(Argv("collector", "collector.toml"), {}, "", Log("collector")));
  writer_.join();
  ASSERT_EQ(written_, total);
  ASSERT_TRUE(WaitUntil([&] { return StoredRecords() >= static_cast<uint64_t>(total); }, 120s))
      << "stored " << StoredRecords() << " of " << total << "; see " << Log("collector");
  const uint64_t n = StoredRecords();
  ASSERT_TRUE(WaitUntil([&] { return nats.Count("GAPLESS") >= static_cast<int64_t>(n); }, 120s))
      << "the stream has " << nats.Count("GAPLESS") << " of " << n << "; see " << Log("collector");
  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(30s), 0);
  collector.Signal(SIGTERM);
  EXPECT_EQ(collector.Wait(30s), 0) << "see " << Log("collector");
  const std::string text = Report();
  EXPECT_NE(text.find("output jetstream"), std::string::npos) << text;
  EXPECT_NE(text.find("should have " + std::to_string(n) + ", confirmed " + std::to_string(n) +
                      ", waiting 0, refused 0"),
            std::string::npos)
      << text;
  // Every message's Msg-Id is "out-test/<epoch>/<seq>": one epoch, every seq once.
  std::map<uint64_t, int> seqs;
  std::set<std::string> epochs;
  for (const auto& [id, count] : nats.MsgIds("GAPLESS", "logs.gapless")) {
    const size_t a = id.find('/'), b = id.rfind('/');
    ASSERT_TRUE(a != std::string::npos && b > a) << id;
    epochs.insert(id.substr(a + 1, b - a - 1));
    seqs[std::stoull(id.substr(b + 1))] += count;
  }
  EXPECT_EQ(epochs.size(), 1u);
  EXPECT_EQ(nats.Count("GAPLESS"), static_cast<int64_t>(n));
  EXPECT_EQ(ExpectComplete(seqs, n, "jetstream"), 0) << "a resend made a second message";
  std::printf("%llu records, 3 collector kills, 1 nats-server restart: none missing, none twice\n",
              static_cast<unsigned long long>(n));
}

// syslog-ng (unpacked by scripts/fetch-peers.sh, never installed) receiving RFC 5424 with
// octet counting on port into folder/received.log, each message's structured data on a
// line.
class SyslogNg {
 public:
  bool Start(const fs::path& folder, uint16_t port) {
    const fs::path root = fs::path(GAPLESS_PEERS_DIR) / "syslog-ng/usr";
    std::ofstream(folder / "syslog-ng.conf")
        << "@version: 3.38\n"
        << "source s { syslog(transport(\"tcp\") ip(\"127.0.0.1\") port(" << port
        << ") max-connections(20)); };\n"
        << "destination d { file(\"" << (folder / "received.log").string()
        << "\" template(\"$SDATA\\n\") fsync(no)); };\n"
        << "log { source(s); destination(d); };\n";
    return process_.Start(
        {(root / "sbin/syslog-ng").string(), "-F", "--no-caps",
         "--module-path=" + (root / "lib/syslog-ng/3.38").string(), "-f",
         (folder / "syslog-ng.conf").string(), "-R", (folder / "syslog-ng.persist").string(), "-p",
         (folder / "syslog-ng.pid").string(), "-c", (folder / "syslog-ng.ctl").string()},
        {"LD_LIBRARY_PATH=" + (root / "lib/syslog-ng").string()}, "",
        (folder / "syslog-ng.log").string());
  }
  ~SyslogNg() {
    process_.Signal(SIGTERM);
    process_.Wait(10s);
  }

 private:
  testing::Subprocess process_;
};

TEST_F(OutputKillTest, SyslogReachesRsyslogAndSyslogNgWithEveryRecordAcrossACollectorKill) {
  // No acknowledgement exists in syslog: a batch counts as sent once the receiver's TCP
  // acknowledged its bytes. A collector killed -9 resends from its cursor: duplicates,
  // none missing, at both receivers.
  const int total = std::min(Records(), 20'000);
  WriteRsyslog("imtcp");
  StartRsyslog();
  fs::create_directories(dir_ / "syslog-ng");
  const uint16_t ng_port = testing::FreePort();
  SyslogNg ng;
  ASSERT_TRUE(ng.Start(dir_ / "syslog-ng", ng_port));
  WriteCollector("[[output]]\nname = \"rsyslog\"\ntype = \"syslog\"\naddress = \"127.0.0.1:" +
                 std::to_string(relp_port_) + "\"\nretry_min_ms = 50\nretry_max_ms = 500\n" +
                 "[[output]]\nname = \"syslogng\"\ntype = \"syslog\"\naddress = \"127.0.0.1:" +
                 std::to_string(ng_port) + "\"\nretry_min_ms = 50\nretry_max_ms = 500\n");
  testing::Subprocess agent;
  ASSERT_TRUE(agent.Start(Argv("agent", "agent.toml"), {}, "", Log("agent")));
  StartWriter(total);
  {
    testing::Subprocess collector;
    ASSERT_TRUE(collector.Start(Argv("collector", "collector.toml"), {}, "", Log("collector")));
    std::this_thread::sleep_for(2s);
    std::printf("kill: rsyslog has %zu\n", RsyslogSeqs().size());
    collector.Signal(SIGKILL);
    ASSERT_NE(collector.Wait(10s), -1);
  }
  testing::Subprocess collector;
  ASSERT_TRUE(collector.Start(Argv("collector", "collector.toml"), {}, "", Log("collector")));
  writer_.join();
  ASSERT_TRUE(WaitUntil([&] { return StoredRecords() >= static_cast<uint64_t>(total); }, 120s))
      << "stored " << StoredRecords() << " of " << total << "; see " << Log("collector");
  const uint64_t n = StoredRecords();
  static const std::regex kSeq(R"re(\[gapless@32473 [^\]]*seq="([0-9]+)")re");
  auto ng_seqs = [&] { return Seqs(dir_ / "syslog-ng", "received.log", kSeq); };
  ASSERT_TRUE(WaitUntil([&] { return RsyslogSeqs().size() >= n && ng_seqs().size() >= n; }, 120s))
      << "rsyslog has " << RsyslogSeqs().size() << ", syslog-ng " << ng_seqs().size() << " of " << n
      << "; see " << Log("collector") << " and " << (dir_ / "syslog-ng" / "syslog-ng.log");
  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(30s), 0);
  collector.Signal(SIGTERM);
  EXPECT_EQ(collector.Wait(30s), 0) << "see " << Log("collector");
  const int rsyslog_dups = ExpectComplete(RsyslogSeqs(), n, "rsyslog imtcp");
  const int ng_dups = ExpectComplete(ng_seqs(), n, "syslog-ng");
  std::printf(
      "%llu records over syslog, 1 collector kill: none missing; duplicates: rsyslog %d, "
      "syslog-ng %d\n",
      static_cast<unsigned long long>(n), rsyslog_dups, ng_dups);
}

TEST_F(OutputKillTest, SyslogOverTlsReachesRsyslogAndAWrongNameIsRefused) {
  // rsyslog's imtcp through its OpenSSL stream driver as the TLS receiver. Two outputs
  // to it: one checks the certificate for the name it carries, one for another name.
  WriteRsyslog("imtcp", /*tls=*/true);
  StartRsyslog();
  const std::string d = dir_.string();
  const std::string common = "\"\naddress = \"127.0.0.1:" + std::to_string(relp_port_) +
                             "\"\ntls = true\nca_file = \"" + d +
                             "/tls.crt\"\nretry_min_ms = 50\nretry_max_ms = 500\n";
  WriteCollector(
      "[[output]]\nname = \"tls\"\ntype = \"syslog\"\nserver_name = \"collector.test" + common +
      "[[output]]\nname = \"wrongname\"\ntype = \"syslog\"\nserver_name = \"elsewhere.test" +
      common);
  testing::Subprocess agent;
  ASSERT_TRUE(agent.Start(Argv("agent", "agent.toml"), {}, "", Log("agent")));
  testing::Subprocess collector;
  ASSERT_TRUE(collector.Start(Argv("collector", "collector.toml"), {}, "", Log("collector")));
  StartWriter(1000);
  writer_.join();
  ASSERT_TRUE(WaitUntil([&] { return RsyslogSeqs().size() >= 1000; }, 60s))
      << "rsyslog has " << RsyslogSeqs().size() << "; see " << Log("collector") << " and "
      << (dir_ / "rsyslog" / "rsyslog.log");
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(ExpectComplete(RsyslogSeqs(), 1000, "rsyslog over TLS"), 0)
      << "the output with the wrong name sent nothing";
  std::ifstream log(Log("collector"));
  const std::string log_text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(log_text.find("the certificate of elsewhere.test was not accepted"), std::string::npos)
      << log_text.substr(0, 2000);
  const std::string text = Report(/*exit_code=*/1);
  EXPECT_NE(text.find("output tls (syslog: sent, unconfirmed"), std::string::npos) << text;
  // gapless status says it too, an output a line.
  testing::Subprocess status;
  ASSERT_TRUE(status.Start({GAPLESS_BINARY, "status", "--data-dir", (dir_ / "cdata").string()}, {},
                           "", Log("status")));
  EXPECT_NE(status.Wait(30s), -1);
  std::ifstream status_in(Log("status"));
  const std::string status_text((std::istreambuf_iterator<char>(status_in)), {});
  EXPECT_TRUE(
      std::regex_search(status_text, std::regex("tls +syslog +sent, unconfirmed +1000 +0 +0")))
      << status_text;
  EXPECT_TRUE(std::regex_search(status_text,
                                std::regex("wrongname +syslog +sent, unconfirmed +0 +1000 +0")))
      << status_text;
  const size_t wrong = text.find("output wrongname");
  ASSERT_NE(wrong, std::string::npos) << text;
  EXPECT_NE(text.find("confirmed 0, waiting 1000", wrong), std::string::npos)
      << "an output that never confirmed anything shows everything waiting:\n"
      << text;
  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(30s), 0);
  collector.Signal(SIGTERM);
  EXPECT_EQ(collector.Wait(30s), 0);
}

TEST_F(OutputKillTest, RelpOverTlsReachesRsyslog) {
  WriteRsyslog("imrelp", /*tls=*/true);
  StartRsyslog();
  WriteCollector("[[output]]\nname = \"relptls\"\ntype = \"relp\"\naddress = \"127.0.0.1:" +
                 std::to_string(relp_port_) + "\"\ntls = true\nca_file = \"" + dir_.string() +
                 "/tls.crt\"\nserver_name = \"collector.test\"\ncert_file = \"" + dir_.string() +
                 "/tls.crt\"\nkey_file = \"" + dir_.string() +
                 "/tls.key\"\nretry_min_ms = 50\n"
                 "retry_max_ms = 500\n");
  testing::Subprocess agent;
  ASSERT_TRUE(agent.Start(Argv("agent", "agent.toml"), {}, "", Log("agent")));
  testing::Subprocess collector;
  ASSERT_TRUE(collector.Start(Argv("collector", "collector.toml"), {}, "", Log("collector")));
  StartWriter(1000);
  writer_.join();
  ASSERT_TRUE(WaitUntil([&] { return RsyslogSeqs().size() >= 1000; }, 60s))
      << "rsyslog has " << RsyslogSeqs().size() << "; see " << Log("collector") << " and "
      << (dir_ / "rsyslog" / "rsyslog.log");
  EXPECT_EQ(ExpectComplete(RsyslogSeqs(), 1000, "rsyslog imrelp over TLS"), 0);
  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(30s), 0);
  collector.Signal(SIGTERM);
  EXPECT_EQ(collector.Wait(30s), 0);
}

}  // namespace
}  // namespace gapless
