// The console in a real browser: Debian's chromium, headless, driven by playwright-core
// (tests/console/browser.mjs), against a collector with its monitors, ledger and alert
// journal, fed by a real sender and heartbeats over TLS (the transport fixture). Checks
// what the issue asks: the overview's numbers are `gapless status --json`'s, a drop_oldest
// loss shows on the stream's timeline as declared, with its reason and exact range, within
// 5 s; a stopped agent's row turns red naming agent_silent while the page is open; the downloaded
// inclusion proof verifies with `gapless verify-proof`; a screenshot of every page is
// kept under the build directory (console-screenshots/).
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "alert/alert.h"
#include "collector/transport_fixture.h"
#include "console/console.h"
#include "ledger/ledger.h"
#include "monitor/monitor.h"
#include "proof/prover.h"
#include "query/query.h"
#include "report/gaps_report.h"
#include "store/layout.h"
#include "subprocess.h"
#include "transport/heartbeat.h"

namespace gapless::transport {
namespace {

using namespace std::chrono_literals;

class ConsoleBrowserTest : public TransportFixture {
 protected:
  void SetUp() override {
    TransportFixture::SetUp();
    for (const char* need : {CHROMIUM_PATH, NODE_PATH}) {
      ASSERT_TRUE(std::filesystem::exists(need))
          << need << " is missing: run scripts/install-deps.sh (chromium, node, playwright-core)";
    }
    ASSERT_TRUE(
        std::filesystem::exists(std::string(CONSOLE_TEST_DIR) + "/node_modules/playwright-core"))
        << "playwright-core is missing: run scripts/install-deps.sh (npm ci in tests/console)";
    std::filesystem::create_directories(copts_.data_dir);
    alert::AlertOptions ao;
    ao.journal = store::Layout(copts_.data_dir).AlertJournal();
    auto alerts = alert::Alerts::Open(env::Env::Posix(), ao);
    ASSERT_TRUE(alerts.ok());
    alerts_ = std::move(*alerts);
    auto ledger = ledger::Ledger::Open(store::Layout(copts_.data_dir).Ledger());
    ASSERT_TRUE(ledger.ok());
    ledger_ = std::move(*ledger);
    mo_.agent_silent_s = 2;
    monitors_ = std::make_unique<monitor::Monitors>(alerts_.get(), env::Env::Posix()->clock(), mo_,
                                                    ledger_.get());
    copts_.alerts = alerts_.get();
    copts_.monitors = monitors_.get();
    ticker_ = std::thread([this] {
      while (!stop_ticker_) {
        monitors_->Tick();
        std::this_thread::sleep_for(100ms);
      }
    });
    shots_ = std::string(SCREENSHOT_DIR);
    std::filesystem::create_directories(shots_);
  }
  void TearDown() override {
    console_.reset();
    heartbeat_.reset();
    TransportFixture::TearDown();
    stop_ticker_ = true;
    if (ticker_.joinable()) ticker_.join();
    alerts_.reset();
  }

  void StartConsole() {
    console::ServeOptions s;
    s.listen = "127.0.0.1:0";
    console::ConsoleOptions o;
    o.data_dir = copts_.data_dir;
    o.alert_journal = store::Layout(copts_.data_dir).AlertJournal();
    o.agent_silent_s = mo_.agent_silent_s;
    auto c = console::Serve(s, o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    console_ = std::move(*c);
    base_ = "http://127.0.0.1:" + std::to_string(console_->port());
  }

  void StartHeartbeat() {
    auto h = Heartbeater::Start(
        Destination(), AgentIdentity{"agent-1", key_, ""}, spool_->epoch(),
        [this] {
          wire::Heartbeat hb;
          hb.agent_wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
          hb.head_seq = spool_->durable_size_lock_free();
          return hb;
        },
        200);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    heartbeat_ = std::move(*h);
  }

  // Runs a program; its exit status, with stdout and stderr in *output.
  int Run(std::vector<std::string> argv, std::string* output, std::chrono::seconds limit = 90s) {
    const std::string log = dir_ + "/run.log";
    std::remove(log.c_str());
    gapless::testing::Subprocess p;
    EXPECT_TRUE(p.Start(argv, {}, "", log));
    const int status = p.Wait(limit);
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    *output = text.str();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  int Browser(std::vector<std::string> args, std::string* output) {
    std::vector<std::string> argv = {NODE_PATH, std::string(CONSOLE_TEST_DIR) + "/browser.mjs",
                                     base_, shots_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Run(argv, output);
  }

  monitor::MonitorOptions mo_;
  std::unique_ptr<alert::Alerts> alerts_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<monitor::Monitors> monitors_;
  std::unique_ptr<Heartbeater> heartbeat_;
  std::unique_ptr<http::Server> console_;
  std::atomic<bool> stop_ticker_{false};
  std::thread ticker_;
  std::string base_, shots_;
};

// A number member of the stream object of `gapless status --json` for `stream`.
uint64_t StatusField(const std::string& json, const std::string& stream, const std::string& name) {
  const size_t slash = stream.find('/');
  const std::string key = "{\"agent\": \"" + stream.substr(0, slash) + "\", \"epoch\": \"" +
                          stream.substr(slash + 1) + "\"";
  const size_t at = json.find(key);
  EXPECT_NE(at, std::string::npos) << stream << " not in " << json;
  if (at == std::string::npos) return UINT64_MAX;
  const std::string object = json.substr(at, json.find('}', at) - at);
  std::smatch m;
  EXPECT_TRUE(std::regex_search(object, m, std::regex("\"" + name + "\": ([0-9]+)"))) << object;
  return m.empty() ? UINT64_MAX : std::stoull(m[1]);
}

TEST_F(ConsoleBrowserTest, TheConsoleShowsWhatTheCliSaysAndTheEvidence) {
  // A spool that dropped its oldest records while the collector was away: declared loss.
  ASSERT_NO_FATAL_FAILURE(OpenOverfullDropOldestSpool());
  const uint64_t n = spool_->next_seq();
  StartCollector();
  StartConsole();
  Sender* s = StartSender(Destination(), key_);
  StartHeartbeat();
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == n; }, 20000));
  const auto stored = std::chrono::steady_clock::now();
  const std::string epoch = store::EpochHex(spool_->epoch());
  const std::string stream = "agent-1/" + epoch;

  // The stream page: the declared range with its reason, exactly as the gaps report has it.
  auto gaps = report::ReadGaps(copts_.data_dir, "agent-1", INT64_MIN, INT64_MAX);
  ASSERT_TRUE(gaps.ok());
  ASSERT_EQ(gaps->size(), 1u);
  report::MissingRange want;
  for (const report::MissingRange& r : (*gaps)[0].missing) {
    if (r.reason == "spool_full_drop_oldest") want = r;
  }
  ASSERT_TRUE(want.declared) << "no drop_oldest range in the gaps report";
  // The collector's indexer (query::IndexStore) gives each segment its time range.
  auto indexed = query::IndexStore(env::Env::Posix(), copts_.data_dir);
  ASSERT_TRUE(indexed.ok()) << indexed.status().ToString();
  std::string out;
  ASSERT_EQ(Browser({"stream", "agent-1", epoch}, &out), 0) << out;
  EXPECT_EQ(out.find("\"over_time_segments\":0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"over_time_segments\":"), std::string::npos) << out;
  const double seen_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stored).count();
  EXPECT_LE(seen_s, 5.0) << "the declared loss took " << seen_s << " s to show";
  const std::string range = std::to_string(want.first) + "-" + std::to_string(want.last);
  EXPECT_NE(out.find("\"range\":\"" + range +
                     "\",\"declared\":true,\"reason\":"
                     "\"spool_full_drop_oldest\""),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("incomplete (declared)"), std::string::npos) << out;

  // The overview's numbers against `gapless status --json` at the same moment (nothing
  // moves: every record is stored).
  ASSERT_TRUE(WaitFor(
      [&] {
        auto c = ledger_->Read(0);
        return c.ok() && !c->streams.empty() && c->streams[0].stored == n && !c->losses.empty();
      },
      10000));
  ASSERT_EQ(Browser({"overview"}, &out), 0) << out;
  std::string status;
  Run({GAPLESS_BINARY, "status", "--data-dir", copts_.data_dir, "--json"}, &status);
  for (const char* field : {"head", "stored", "lag", "open_gaps", "declared_losses", "alerts"}) {
    const uint64_t cli = StatusField(status, stream, field);
    std::smatch m;
    const std::string overview = out;
    ASSERT_TRUE(std::regex_search(
        overview, m, std::regex("\"stream\":\"" + stream + "\"[^}]*\"" + field + "\":([0-9]+)")))
        << field << " not on the page: " << out;
    EXPECT_EQ(std::stoull(m[1]), cli) << field << "\nstatus: " << status << "\npage: " << out;
  }
  // The declared losses fire declared_loss (critical): red, with the reason in words.
  EXPECT_NE(out.find("\"state\":\"red\""), std::string::npos) << out;

  // The inclusion proof of the newest record, downloaded from the page, verifies offline.
  ASSERT_TRUE(WaitFor(
      [&] {
        proof::Prover p(env::Env::Posix(), copts_.data_dir);
        return p.Inclusion("agent-1", epoch, n - 1).ok();
      },
      10000));
  const std::string proof_file = dir_ + "/proof.json";
  ASSERT_EQ(Browser({"proof", "agent-1", epoch, std::to_string(n - 1), proof_file}, &out), 0)
      << out;
  std::string verified;
  EXPECT_EQ(Run({GAPLESS_BINARY, "verify-proof", proof_file, "--key", collector_->verifier_key()},
                &verified),
            0)
      << verified;

  // Every other page renders, search finds records, the keyboard moves through the pages.
  ASSERT_EQ(Browser({"pages"}, &out), 0) << out;
  EXPECT_NE(out.find("\"first_focus\":\"Overview\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"after_enter\":\"#/overview\""), std::string::npos) << out;
  EXPECT_EQ(out.find("\"search_results\":0"), std::string::npos) << out;

  // The agent stops talking: the open page turns its row red, naming agent_silent.
  senders_.clear();
  heartbeat_.reset();
  ASSERT_EQ(Browser({"wait-state", stream, "red", "agent_silent", "20000"}, &out), 0) << out;
  EXPECT_NE(out.find("agent_silent"), std::string::npos) << out;
  for (const char* shot : {"overview.png", "overview-phone.png", "stream.png", "sources.png",
                           "alerts.png", "outputs.png", "search.png", "overview-red.png"}) {
    EXPECT_TRUE(std::filesystem::exists(shots_ + "/" + shot)) << shot;
  }
}

}  // namespace
}  // namespace gapless::transport
