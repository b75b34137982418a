// Issue 21, as an operator would try it: the real `gapless collector` and `gapless agent`,
// one side's data directory on a 24 MiB tmpfs that fills while lines flow (a filler file
// takes the rest of the volume), then space returns (the filler is removed) — no restart.
// Each test checks: nothing acknowledged is lost and nothing is stored twice (seqs
// 0..N-1 once each, `gapless verify` clean), the *_write_failed alert reaches a webhook
// while the disk is still full, /health is 503 during and 200 after, and the flow resumes
// within 10 s of space returning. The collector's test also fills its volume at a steady
// rate first: disk_space_low must arrive before the volume is full.
// The tests mount tmpfs (they run as root); where mounting is not permitted they say so
// and skip — the unit tests with the fault-injecting Env's ENOSPC cover the logic.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "alert/alert.h"
#include "alert/webhook_receiver_test_util.h"
#include "env/env.h"
#include "event/event.h"
#include "http/client.h"
#include "identity/identity.h"
#include "spool/spool_format.h"
#include "store/stream_store.h"
#include "subprocess.h"

namespace gapless {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("gapless_disk_full_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    ASSERT_TRUE(identity::MakeSelfSignedTls(d + "/tls.key", d + "/tls.crt", "collector.test").ok());
    auto key = identity::SigningKey::Generate();
    ASSERT_TRUE(key.ok());
    ASSERT_TRUE((*key)->Save(d + "/agent.key").ok());
    std::ofstream(d + "/enrolled")
        << "disk-test " << identity::FormatPublicKey((*key)->public_key()) << "\n";
    port_ = testing::FreePort();
    collector_metrics_ = testing::FreePort();
    agent_metrics_ = testing::FreePort();
    std::ofstream(d + "/in.log");
  }
  void TearDown() override {
    StopWriter();
    agent_.reset();
    collector_.reset();
    if (!mounted_.empty()) ::umount2(mounted_.c_str(), MNT_DETACH);
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // A 24 MiB tmpfs at dir_/name; false (and why) if it cannot be mounted.
  bool MountSmallDisk(const std::string& name, std::string* why) {
    const fs::path at = dir_ / name;
    fs::create_directories(at);
    if (::mount("tmpfs", at.c_str(), "tmpfs", 0, "size=24m") != 0) {
      *why = "cannot mount a tmpfs at " + at.string() + " (" + std::strerror(errno) +
             "): run as root to test a full disk with the real binaries";
      return false;
    }
    mounted_ = at.string();
    return true;
  }

  // Appends 1 MiB at a time to a filler file on the small disk until it is full, or only
  // `leave` bytes are free; with `pause`, waits that long between chunks of `chunk` bytes.
  void Fill(uint64_t leave = 0, size_t chunk = 1 << 20, std::chrono::milliseconds pause = 0ms) {
    std::FILE* f = std::fopen((fs::path(mounted_) / "filler").c_str(), "ab");
    ASSERT_NE(f, nullptr);
    const std::string block(chunk, 'f');
    for (;;) {
      const fs::space_info s = fs::space(mounted_);
      if (leave > 0 && s.available <= leave) break;
      const size_t n = std::fwrite(block.data(), 1, block.size(), f);
      if (std::fflush(f) != 0 || n < block.size()) break;  // full
      if (pause > 0ms) std::this_thread::sleep_for(pause);
    }
    std::fclose(f);
  }
  void FreeSpace() { fs::remove(fs::path(mounted_) / "filler"); }

  void WriteConfigs(const std::string& hook_url) {
    const std::string d = dir_.string();
    std::ofstream(d + "/collector.toml")
        << "[collector]\ndata_dir = \"" << d << "/cdata\"\nlisten = \"127.0.0.1:" << port_
        << "\"\ntls_cert = \"" << d << "/tls.crt\"\ntls_key = \"" << d
        << "/tls.key\"\nenrolled_keys = \"" << d
        << "/enrolled\"\nmetrics_listen = \"127.0.0.1:" << collector_metrics_ << "\"\n"
        << "[[alerts.webhook]]\nurl = \"" << hook_url << "/collector\"\n";
    std::ofstream(d + "/agent.toml")
        << "[agent]\nid = \"disk-test\"\ndata_dir = \"" << d << "/adata\"\nkey_file = \"" << d
        << "/agent.key\"\nmetrics_listen = \"127.0.0.1:" << agent_metrics_ << "\"\n"
        << "[spool]\ncommit_delay_ms = 5\nsegment_size = \"1MiB\"\nmax_record_size = \"256KiB\"\n"
        << "[[input]]\ntype = \"file\"\npaths = [\"" << d
        << "/in.log\"]\nstart_at = \"beginning\"\npoll_interval_ms = 20\n"
        << "[[destination]]\nname = \"main\"\naddress = \"127.0.0.1:" << port_ << "\"\nca_file = \""
        << d << "/tls.crt\"\nserver_name = \"collector.test\"\nbackoff_max_ms = 500\n"
        << "[[alerts.webhook]]\nurl = \"" << hook_url << "/agent\"\n";
  }

  void StartBoth() {
    collector_ = std::make_unique<testing::Subprocess>();
    ASSERT_TRUE(collector_->Start(
        {GAPLESS_BINARY, "collector", "--config", (dir_ / "collector.toml").string()}, {}, "",
        Log("collector")));
    agent_ = std::make_unique<testing::Subprocess>();
    ASSERT_TRUE(agent_->Start({GAPLESS_BINARY, "agent", "--config", (dir_ / "agent.toml").string()},
                              {}, "", Log("agent")));
  }
  std::string Log(const std::string& who) const { return (dir_ / (who + ".log")).string(); }

  // "line <i>" lines of 300 bytes to in.log, about 2,000 a second, until StopWriter.
  void StartWriter() {
    writer_ = std::thread([this] {
      std::ofstream out(dir_ / "in.log", std::ios::app);
      while (!stop_writer_) {
        for (int k = 0; k < 20; ++k)
          out << "line " << written_++ << " " << std::string(300, 'x') << "\n";
        out.flush();
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  int StopWriter() {
    stop_writer_ = true;
    if (writer_.joinable()) writer_.join();
    return written_;
  }

  std::string StreamDir() const {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / "cdata" / "streams" / "disk-test", ec)) {
      return e.path().string();
    }
    return "";
  }
  // The seqs the collector holds (read-only while it runs).
  std::vector<uint64_t> StoredSeqs() const {
    std::vector<uint64_t> seqs;
    const std::string s = StreamDir();
    if (s.empty()) return seqs;
    (void)store::ForEachStoredRecord(
        env::Env::Posix(), s,
        [&](uint64_t seq, spool::FrameType, std::string_view) { seqs.push_back(seq); });
    return seqs;
  }
  std::set<int> StoredLines() const {
    std::set<int> lines;
    const std::string s = StreamDir();
    if (s.empty()) return lines;
    (void)store::ForEachStoredRecord(
        env::Env::Posix(), s, [&](uint64_t, spool::FrameType t, std::string_view p) {
          event::Event e;
          if (t == spool::FrameType::kData && event::DecodeEvent(p, &e).ok() &&
              e.raw.rfind("line ", 0) == 0) {
            lines.insert(std::atoi(std::string(e.raw.substr(5, 12)).c_str()));
          }
        });
    return lines;
  }

  http::Response Health(uint16_t port) {
    auto r = http::Get("http://127.0.0.1:" + std::to_string(port) + "/health");
    return r.ok() ? *r : http::Response{};
  }
  // The id of the first firing event `name` the webhook got at `target`; 0: none.
  static uint64_t Got(alert::testing::Receiver& hook, const std::string& target,
                      const std::string& name) {
    for (const auto& g : hook.got()) {
      auto e = alert::ParseEvent(g.body);
      if (g.target == target && e.ok() && e->name == name && e->firing) return e->id;
    }
    return 0;
  }

  // Space is back: the flow must resume within 10 s and then hold every line once.
  void ExpectResumedAndComplete(size_t stored_while_full) {
    const auto freed = Clock::now();
    ASSERT_TRUE(WaitFor([&] { return StoredSeqs().size() > stored_while_full + 100; }, 10s))
        << "nothing more was stored within 10 s of space returning; see " << Log("collector")
        << " and " << Log("agent");
    std::printf("stored again %.1f s after space returned\n",
                std::chrono::duration<double>(Clock::now() - freed).count());
    const int n = StopWriter();
    ASSERT_TRUE(WaitFor([&] { return static_cast<int>(StoredLines().size()) == n; }, 60s))
        << StoredLines().size() << " of " << n << " lines stored";
    ASSERT_TRUE(WaitFor([&] { return Health(collector_metrics_).status == 200; }, 10s))
        << Health(collector_metrics_).body;
    ASSERT_TRUE(WaitFor([&] { return Health(agent_metrics_).status == 200; }, 10s))
        << Health(agent_metrics_).body;
    agent_->Signal(SIGTERM);
    ASSERT_EQ(agent_->Wait(30s), 0) << "see " << Log("agent");
    collector_->Signal(SIGTERM);
    ASSERT_EQ(collector_->Wait(30s), 0) << "see " << Log("collector");
    const std::vector<uint64_t> seqs = StoredSeqs();
    for (uint64_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i) << "seq missing or twice";
    EXPECT_EQ(static_cast<int>(StoredLines().size()), n);
    const std::string out = (dir_ / "verify.out").string();
    const std::string cmd = std::string(GAPLESS_BINARY) + " verify --data-dir " +
                            (dir_ / "cdata").string() + " --agent-keys " +
                            (dir_ / "enrolled").string() + " > " + out + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "gapless verify is not clean; see " << out;
  }

  fs::path dir_;
  std::string mounted_;
  uint16_t port_ = 0, collector_metrics_ = 0, agent_metrics_ = 0;
  std::unique_ptr<testing::Subprocess> collector_, agent_;
  std::thread writer_;
  std::atomic<bool> stop_writer_{false};
  std::atomic<int> written_{0};
};

TEST_F(DiskFullTest, TheCollectorsDiskFillsUnderLoadAndItResumesWithoutARestart) {
  std::string why;
  if (!MountSmallDisk("cdata", &why)) GTEST_SKIP() << why;
  alert::testing::Receiver hook;
  WriteConfigs("http://127.0.0.1:" + std::to_string(hook.port()));
  StartBoth();
  StartWriter();
  ASSERT_TRUE(WaitFor([&] { return StoredSeqs().size() > 1000; }, 20s)) << "see " << Log("agent");
  ASSERT_EQ(Health(collector_metrics_).status, 200) << Health(collector_metrics_).body;

  // A steady fill over the last 6 MiB (the store's own ~1 MiB/s and 320 KiB/s more): the
  // warning comes before the volume is full, that is before the store's first failure.
  Fill(/*leave=*/6 << 20);
  Fill(0, 32 << 10, 100ms);
  // Full now: the store's writes fail; the alert arrives though its journal is full too.
  ASSERT_TRUE(WaitFor([&] { return Got(hook, "/collector", "store_write_failed") != 0; }, 15s))
      << "no store_write_failed at the webhook while the disk is full; see " << Log("collector");
  const uint64_t low = Got(hook, "/collector", "disk_space_low");
  EXPECT_NE(low, 0u) << "no disk_space_low";
  EXPECT_LT(low, Got(hook, "/collector", "store_write_failed"))
      << "disk_space_low came only after the disk was full";
  ASSERT_TRUE(WaitFor(
      [&] {
        const http::Response h = Health(collector_metrics_);
        return h.status == 503 && h.body.find("cannot write") != std::string::npos;
      },
      10s))
      << Health(collector_metrics_).body;
  std::this_thread::sleep_for(2s);
  const size_t stored_while_full = StoredSeqs().size();
  std::this_thread::sleep_for(2s);
  EXPECT_LE(StoredSeqs().size(), stored_while_full + 200)
      << "the store kept growing on a full disk";
  EXPECT_EQ(Health(collector_metrics_).status, 503) << "healthy while the disk is still full";

  FreeSpace();
  ExpectResumedAndComplete(StoredSeqs().size());
}

TEST_F(DiskFullTest, TheAgentsSpoolDiskFillsAndItResumesWithoutARestart) {
  std::string why;
  if (!MountSmallDisk("adata", &why)) GTEST_SKIP() << why;
  alert::testing::Receiver hook;
  WriteConfigs("http://127.0.0.1:" + std::to_string(hook.port()));
  StartBoth();
  StartWriter();
  ASSERT_TRUE(WaitFor([&] { return StoredSeqs().size() > 1000; }, 20s)) << "see " << Log("agent");
  ASSERT_TRUE(WaitFor([&] { return Health(agent_metrics_).status == 200; }, 10s))
      << Health(agent_metrics_).body;

  Fill();  // the spool's next segment or commit fails
  ASSERT_TRUE(WaitFor([&] { return Got(hook, "/agent", "spool_write_failed") != 0; }, 15s))
      << "no spool_write_failed at the webhook while the disk is full; see " << Log("agent");
  ASSERT_TRUE(WaitFor(
      [&] {
        const http::Response h = Health(agent_metrics_);
        return h.status == 503 && h.body.find("the spool cannot write") != std::string::npos;
      },
      10s))
      << Health(agent_metrics_).body;
  std::this_thread::sleep_for(2s);
  const size_t stored_while_full = StoredSeqs().size();
  std::this_thread::sleep_for(2s);
  EXPECT_LE(StoredSeqs().size(), stored_while_full + 200) << "the spool kept taking lines";
  EXPECT_EQ(Health(agent_metrics_).status, 503) << "healthy while the disk is still full";

  FreeSpace();
  ExpectResumedAndComplete(StoredSeqs().size());
}

}  // namespace
}  // namespace gapless
