#include "alert/alert.h"

#include <gtest/gtest.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "alert/webhook_receiver_test_util.h"
#include "base/sha256.h"
#include "env/fake_clock.h"
#include "env/fault_injection_env.h"

namespace gapless::alert {
namespace {

using testing::Receiver;

bool WaitFor(const std::function<bool()>& pred, int ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

class AlertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "alert_XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    options_.journal = dir_ + "/alerts.jsonl";
    options_.retry_initial_ms = 20;
    options_.retry_max_ms = 100;
    options_.clock = &clock_;
  }
  void TearDown() override {
    alerts_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    alerts_.reset();
    auto a = Alerts::Open(env::Env::Posix(), options_);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    alerts_ = std::move(*a);
  }
  std::vector<AlertEvent> Journal() {
    std::vector<AlertEvent> out;
    std::ifstream in(options_.journal);
    std::string line;
    while (std::getline(in, line)) {
      auto e = ParseEvent(line);
      EXPECT_TRUE(e.ok()) << line;
      if (e.ok()) out.push_back(*e);
    }
    return out;
  }

  env::FakeClock clock_;
  std::string dir_;
  AlertOptions options_;
  std::unique_ptr<Alerts> alerts_;
};

TEST_F(AlertTest, FiringRepeatsAndResolutionsAreJournaledOnceEach) {
  Open();
  alerts_->Fire("archive_failed", "/mnt/offsite", "critical", "the directory does not exist",
                {{"dir", "/mnt/offsite"}});
  clock_.Advance(5'000'000'000);
  alerts_->Fire("archive_failed", "/mnt/offsite", "critical", "the directory does not exist");
  EXPECT_EQ(Journal().size(), 1u);  // a repeat says nothing new
  alerts_->Fire("archive_failed", "/mnt/offsite", "critical", "verification failed");  // update
  alerts_->Resolve("archive_failed", "/mnt/offsite", "archives are written again");
  alerts_->Resolve("archive_failed", "/mnt/offsite", "again");  // not firing: nothing
  const auto j = Journal();
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0].id, 1u);
  EXPECT_EQ(j[0].evidence,
            (std::vector<std::pair<std::string, std::string>>{{"dir", "/mnt/offsite"}}));
  EXPECT_EQ(j[1].summary, "verification failed");
  EXPECT_EQ(j[1].started_ns, j[0].started_ns);  // the same alert, updated
  EXPECT_FALSE(j[2].firing);
  EXPECT_EQ(j[2].at_ns - j[2].started_ns, 5'000'000'000);
  EXPECT_TRUE(alerts_->Firing().empty());
}

TEST_F(AlertTest, ARestartKeepsWhatIsFiringAndCutsATornLine) {
  Open();
  alerts_->Fire("witness_refused", "w1", "critical", "fork");
  alerts_->Fire("archive_failed", "/a", "critical", "missing");
  alerts_->Resolve("archive_failed", "/a", "back");
  alerts_.reset();
  std::ofstream(options_.journal, std::ios::app) << "{\"id\": 4, \"na";  // a crash mid-line
  Open();
  ASSERT_EQ(alerts_->Firing().size(), 1u);
  EXPECT_EQ(alerts_->Firing()[0].name, "witness_refused");
  alerts_->Fire("witness_refused", "w1", "critical", "fork");  // still firing: a repeat
  alerts_->Resolve("witness_refused", "w1", "cosigned again");
  const auto j = Journal();
  ASSERT_EQ(j.size(), 4u);
  EXPECT_EQ(j[3].id, 4u);
  EXPECT_FALSE(j[3].firing);
}

TEST_F(AlertTest, AWebhookThatIsDownGetsEveryAlertLaterInOrderAndSigned) {
  Receiver receiver;
  receiver.status = 503;
  const std::string secret_file = dir_ + "/hook.secret";
  std::ofstream(secret_file) << "s3cret\n";
  ::chmod(secret_file.c_str(), 0600);
  options_.webhooks.push_back(
      {"http://127.0.0.1:" + std::to_string(receiver.port()) + "/hook", secret_file, "", 2000});
  Open();
  for (int i = 0; i < 5; ++i) {
    alerts_->Fire("source_silent", "src-" + std::to_string(i), "warning", "quiet");
  }
  ASSERT_TRUE(WaitFor([&] { return alerts_->output_stats()[0].failures >= 3; }, 10000));
  // The collector restarts while the receiver is still down.
  Open();
  alerts_->Resolve("source_silent", "src-0", "talking again");
  receiver.status = 200;
  ASSERT_TRUE(WaitFor([&] { return receiver.got().size() >= 6; }, 20000));
  const auto got = receiver.got();
  ASSERT_EQ(got.size(), 6u);
  for (size_t i = 0; i < got.size(); ++i) {
    auto e = ParseEvent(got[i].body);
    ASSERT_TRUE(e.ok()) << got[i].body;
    EXPECT_EQ(e->id, i + 1);  // in order, none lost, none twice
    EXPECT_EQ(got[i].target, "/hook");
    // The receiver checks the signature with the shared secret.
    unsigned char mac[32];
    unsigned int len = 0;
    const std::string signed_text = got[i].timestamp + "." + got[i].body;
    HMAC(EVP_sha256(), "s3cret", 6, reinterpret_cast<const unsigned char*>(signed_text.data()),
         signed_text.size(), mac, &len);
    EXPECT_EQ(got[i].signature, "sha256=" + HexEncode(mac, len));
  }
  EXPECT_FALSE(ParseEvent(got[5].body)->firing);
  // Another restart: what was delivered is not delivered again (the cursor is kept).
  Open();
  alerts_->Fire("source_silent", "src-9", "warning", "quiet");
  ASSERT_TRUE(WaitFor([&] { return receiver.got().size() >= 7; }, 20000));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(receiver.got().size(), 7u);
  EXPECT_EQ(ParseEvent(receiver.got()[6].body)->id, 7u);
}

// Issue 21: the disk under the journal is full. Alerts still reach the webhook (from
// memory), in order, at once; the journal never holds a torn line; once the disk takes
// writes again the held events are journaled in id order and not delivered twice.
TEST_F(AlertTest, AFullDiskIsNeverSilentAndTheJournalCatchesUpWithoutDuplicates) {
  Receiver receiver;
  env::FaultInjectionEnv disk;
  ASSERT_TRUE(disk.CreateDir(dir_).ok());
  options_.webhooks.push_back(
      {"http://127.0.0.1:" + std::to_string(receiver.port()) + "/hook", "", "", 2000});
  auto opened = Alerts::Open(&disk, options_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  alerts_ = std::move(*opened);
  alerts_->Fire("before", "x", "warning", "the disk still has room");
  ASSERT_TRUE(WaitFor([&] { return receiver.got().size() == 1; }, 10000));
  const std::string journal_before = disk.Contents(options_.journal);
  disk.SetCapacity(disk.UsedBytes() + 40);  // part of a line fits, not a whole one
  alerts_->Fire("store_write_failed", "a/e", "critical", "No space left on device");
  alerts_->Fire("disk_space_low", "/data", "warning", "full");
  ASSERT_TRUE(WaitFor([&] { return receiver.got().size() == 3; }, 10000))
      << "alerts raised while the journal cannot be written must still be delivered";
  EXPECT_EQ(disk.Contents(options_.journal), journal_before) << "no torn line is left";
  EXPECT_EQ(alerts_->Unjournaled().size(), 2u);
  EXPECT_TRUE(alerts_->journal_failing());
  disk.SetCapacity(~0ull);
  ASSERT_TRUE(WaitFor([&] { return alerts_->Unjournaled().empty(); }, 10000))
      << "the held events are journaled once the disk takes writes";
  EXPECT_FALSE(alerts_->journal_failing());
  alerts_->Resolve("store_write_failed", "a/e", "writes again");
  ASSERT_TRUE(WaitFor([&] { return receiver.got().size() == 4; }, 10000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto got = receiver.got();
  ASSERT_EQ(got.size(), 4u) << "nothing delivered twice";
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(ParseEvent(got[i].body)->id, i + 1);
  std::vector<uint64_t> ids;
  const std::string text = disk.Contents(options_.journal);
  for (size_t at = 0; at < text.size();) {
    const size_t eol = text.find('\n', at);
    ASSERT_NE(eol, std::string::npos) << "a torn last line";
    auto e = ParseEvent(std::string_view(text).substr(at, eol - at));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    ids.push_back(e->id);
    at = eol + 1;
  }
  EXPECT_EQ(ids, (std::vector<uint64_t>{1, 2, 3, 4}));
  alerts_.reset();  // its threads use `disk`
}

TEST_F(AlertTest, AlertmanagerGetsTheV2Shape) {
  Receiver receiver;
  options_.alertmanagers.push_back("http://127.0.0.1:" + std::to_string(receiver.port()));
  Open();
  alerts_->Fire("delivery_stalled", "web-01", "critical", "head ahead of stored for 60 s",
                {{"head", "1200"}, {"stored", "1000"}});
  ASSERT_TRUE(WaitFor([&] { return !receiver.got().empty(); }, 10000));
  const auto got = receiver.got();
  EXPECT_EQ(got[0].target, "/api/v2/alerts");
  const std::string& b = got[0].body;
  EXPECT_EQ(b.front(), '[');
  for (const char* part :
       {"\"alertname\": \"delivery_stalled\"", "\"subject\": \"web-01\"",
        "\"severity\": \"critical\"", "\"summary\": \"head ahead of stored for 60 s\"",
        "\"head\": \"1200\"", "\"startsAt\": \"", "\"endsAt\": \""}) {
    EXPECT_NE(b.find(part), std::string::npos) << part << " in " << b;
  }
}

// The dead man's switch: with nothing firing, Alertmanager still gets "watchdog" at start
// and again every repeat, and the journal and webhooks never see it.
TEST_F(AlertTest, TheWatchdogFiresAtAlertmanagerForEverAndNowhereElse) {
  Receiver am, hook;
  options_.alertmanagers.push_back("http://127.0.0.1:" + std::to_string(am.port()));
  options_.webhooks.push_back({"http://127.0.0.1:" + std::to_string(hook.port()), "", "", 2000});
  options_.watchdog = "collector@host-1";
  options_.repeat_ms = 200;
  Open();
  ASSERT_TRUE(WaitFor([&] { return am.got().size() >= 3; }, 15000)) << am.got().size();
  for (const auto& g : am.got()) {
    EXPECT_NE(g.body.find("\"alertname\": \"watchdog\""), std::string::npos) << g.body;
    EXPECT_NE(g.body.find("\"subject\": \"collector@host-1\""), std::string::npos) << g.body;
  }
  EXPECT_TRUE(Journal().empty());
  EXPECT_TRUE(hook.got().empty());
  EXPECT_TRUE(alerts_->Firing().empty());
}

TEST_F(AlertTest, WithoutAWatchdogAQuietAlertmanagerIsToldNothing) {
  Receiver am;
  options_.alertmanagers.push_back("http://127.0.0.1:" + std::to_string(am.port()));
  options_.repeat_ms = 100;
  Open();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(am.got().empty());
}

TEST(AlertEventFormat, ParsesBackAndRefusesMalformedLines) {
  AlertEvent e;
  e.id = 7;
  e.name = "gap_open";
  e.subject = "web-01/00ff";
  e.summary = "seqs 10-19 missing for 60 s \"quoted\"";
  e.evidence = {{"first", "10"}, {"last", "19"}};
  e.started_ns = 1;
  e.at_ns = 2;
  auto back = ParseEvent(FormatEvent(e));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->summary, e.summary);
  EXPECT_EQ(back->evidence, e.evidence);
  EXPECT_EQ(back->id, 7u);
  for (const char* bad : {"", "{}", "[1]", "{\"id\": 1}", "{\"id\": \"x\"}"}) {
    EXPECT_FALSE(ParseEvent(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace gapless::alert
