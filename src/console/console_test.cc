// The console's handler and server: the API is the CLI's report code (the same bytes as
// `gapless status --json`), the overview judges and pages on the server, bad parameters
// are 400 with a message, and off loopback nothing is served without the token, over TLS.
#include "console/console.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "http/client.h"
#include "identity/identity.h"
#include "report/status_report.h"
#include "store/layout.h"

namespace gapless::console {
namespace {

class ConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/console_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto ledger = ledger::Ledger::Open(store::Layout(dir_).Ledger());
    ASSERT_TRUE(ledger.ok());
    ledger_ = std::move(*ledger);
    const int64_t now = report::WallNowNanos();
    ledger::Delta d;
    // Three streams: complete, with a declared loss, with an open gap and a critical alert.
    d.streams.push_back({"web-1", "00aa", now, now, now, 100, 100, now, 0, 0});
    d.streams.push_back({"web-2", "00bb", now, now, now, 50, 50, now, 0, 0});
    d.streams.push_back({"db-1", "00cc", now, now, now, 80, 70, now, 0, 0});
    d.losses.push_back({"web-2", "00bb", 10, 19, "spool_full_drop_oldest", now});
    d.gaps.push_back({"db-1", "00cc", 70, 79, now, 0});
    d.replace_alerts = true;
    d.alerts.push_back({"agent_silent", "db-1/00cc", "critical", "no heartbeat", now});
    d.counts.push_back({"web-1", "syslog:udp:514", now / 60'000'000'000 - 1, 42});
    ASSERT_TRUE(ledger_->Write(d).ok());
  }

  http::ServerResponse Get(Console& c, const std::string& target, const std::string& auth = "") {
    http::ServerRequest r;
    r.method = "GET";
    r.target = target;
    r.authorization = auth;
    return c.Handle(r);
  }

  ConsoleOptions Options() {
    ConsoleOptions o;
    o.data_dir = dir_;
    o.alert_journal = dir_ + "/alerts.jsonl";
    return o;
  }

  std::string dir_;
  std::unique_ptr<ledger::Ledger> ledger_;
};

TEST(ParseTargetTest, DecodesAndRefusesWhatIsMalformed) {
  std::string path;
  std::map<std::string, std::string> p;
  ASSERT_TRUE(ParseTarget("/api/x%2Fy?a=1&b=two+words&c=%41%62&&d", &path, &p).ok());
  EXPECT_EQ(path, "/api/x/y");
  EXPECT_EQ(p.at("a"), "1");
  EXPECT_EQ(p.at("b"), "two words");
  EXPECT_EQ(p.at("c"), "Ab");
  EXPECT_EQ(p.at("d"), "");
  EXPECT_FALSE(ParseTarget("/a?x=%4", &path, &p).ok());
  EXPECT_FALSE(ParseTarget("/a?x=%zz", &path, &p).ok());
  EXPECT_FALSE(ParseTarget("/a?x=1&x=2", &path, &p).ok());
  std::string many = "/a?";
  for (int i = 0; i < 17; ++i) many += "k" + std::to_string(i) + "=1&";
  EXPECT_FALSE(ParseTarget(many, &path, &p).ok());
  EXPECT_FALSE(ParseTarget("/a?x=" + std::string(1025, 'y'), &path, &p).ok());
  EXPECT_TRUE(IsLoopbackListen("127.0.0.1:9514"));
  EXPECT_TRUE(IsLoopbackListen("[::1]:9514"));
  EXPECT_FALSE(IsLoopbackListen("0.0.0.0:9514"));
  EXPECT_FALSE(IsLoopbackListen("10.1.2.3:9514"));
}

TEST_F(ConsoleTest, StatusIsTheCliDocumentAndTheOverviewJudgesAndPages) {
  Console c(Options());
  auto status = Get(c, "/api/status");
  ASSERT_EQ(status.status, 200) << status.body;
  auto direct = report::ReadStatus(*ledger_, dir_, report::WallNowNanos());
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(status.body, report::StatusJson(*direct));
  EXPECT_NE(status.body.find("\"declared_losses\": 10"), std::string::npos) << status.body;

  auto ov = Get(c, "/api/overview");
  ASSERT_EQ(ov.status, 200) << ov.body;
  EXPECT_NE(ov.body.find("\"streams\": 3, \"red\": 1, \"amber\": 1, \"green\": 1"),
            std::string::npos)
      << ov.body;
  EXPECT_NE(ov.body.find("\"state\": \"red\", \"reason\": \"firing: agent_silent\""),
            std::string::npos)
      << ov.body;
  EXPECT_NE(ov.body.find("\"reason\": \"10 record(s) declared lost\""), std::string::npos);
  // Server-side filter and paging: one row per page, the totals still of every stream.
  auto page = Get(c, "/api/overview?filter=web&limit=1&offset=1");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("\"matched\": 2"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("\"agent\": \"web-2\""), std::string::npos) << page.body;
  EXPECT_EQ(page.body.find("\"agent\": \"web-1\""), std::string::npos) << page.body;
  auto red = Get(c, "/api/overview?state=red");
  EXPECT_NE(red.body.find("\"matched\": 1"), std::string::npos) << red.body;
  EXPECT_NE(red.body.find("db-1"), std::string::npos);
}

TEST_F(ConsoleTest, BadParametersAre400WithAMessage) {
  Console c(Options());
  for (const char* target :
       {"/api/status?x=1", "/api/overview?limit=abc", "/api/overview?limit=5000",
        "/api/overview?state=blue", "/api/overview?offset=-1", "/api/gaps?from=yesterday",
        "/api/alerts?state=open", "/api/sources?range=month", "/api/search?grep=%5Bunclosed",
        "/api/search?severity=loud", "/api/proof/inclusion?agent=web-1",
        "/api/proof/inclusion?agent=web-1&seq=1x", "/api/overview?q=%zz"}) {
    auto r = Get(c, target);
    EXPECT_EQ(r.status, 400) << target << ": " << r.body;
    EXPECT_NE(r.body.find("\"error\": "), std::string::npos) << target << ": " << r.body;
  }
  EXPECT_EQ(Get(c, "/api/nothing").status, 404);
  EXPECT_EQ(Get(c, "/no-such-page").status, 404);
  http::ServerRequest post;
  post.method = "POST";
  post.target = "/api/status";
  EXPECT_EQ(c.Handle(post).status, 405);
  auto page = Get(c, "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<title>gapless console</title>"), std::string::npos);
  EXPECT_EQ(Get(c, "/app.js").content_type, "text/javascript; charset=utf-8");
}

TEST_F(ConsoleTest, WithATokenTheApiAnswers401WithoutDataButThePageLoads) {
  ConsoleOptions o = Options();
  o.token = "0123456789abcdef0123";
  o.open = false;
  Console c(o);
  for (const std::string auth :
       {"", "Bearer wrong", "Bearer 0123456789abcdef012", "bearer 0123456789abcdef0123"}) {
    auto r = Get(c, "/api/status", auth);
    EXPECT_EQ(r.status, 401) << auth;
    EXPECT_EQ(r.body.find("web-1"), std::string::npos) << r.body;
  }
  EXPECT_EQ(Get(c, "/api/status", "Bearer 0123456789abcdef0123").status, 200);
  EXPECT_EQ(Get(c, "/").status, 200);  // the page carries no data
}

// Off loopback: TLS with the collector's pair and the token; the server refuses to start
// without either; a token file must be owner-only.
TEST_F(ConsoleTest, OffLoopbackItServesTlsAndNeedsTheToken) {
  const std::string key = dir_ + "/tls.key", crt = dir_ + "/tls.crt", tok = dir_ + "/token";
  ASSERT_TRUE(identity::MakeSelfSignedTls(key, crt, "localhost").ok());
  ServeOptions s;
  s.listen = "0.0.0.0:0";
  s.tls_cert = crt;
  s.tls_key = key;
  auto refused = Serve(s, Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("console_token_file"), std::string::npos);
  { std::ofstream(tok) << "0123456789abcdef0123\n"; }
  ::chmod(tok.c_str(), 0644);
  s.token_file = tok;
  EXPECT_FALSE(Serve(s, Options()).ok());  // readable by others
  ::chmod(tok.c_str(), 0600);
  auto server = Serve(s, Options());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string base = "https://localhost:" + std::to_string((*server)->port());
  http::ClientOptions co;
  co.ca_file = crt;
  http::Request r;
  r.method = "GET";
  r.url = base + "/api/status";
  auto no_token = http::Send(r, co);
  ASSERT_TRUE(no_token.ok()) << no_token.status().ToString();
  EXPECT_EQ(no_token->status, 401);
  EXPECT_EQ(no_token->body.find("web-1"), std::string::npos) << no_token->body;
  r.headers.push_back({"Authorization", "Bearer 0123456789abcdef0123"});
  auto with_token = http::Send(r, co);
  ASSERT_TRUE(with_token.ok());
  EXPECT_EQ(with_token->status, 200);
  EXPECT_NE(with_token->body.find("web-1"), std::string::npos);
  // Plain HTTP to the TLS port gets nothing.
  http::Request plain;
  plain.method = "GET";
  plain.url = "http://127.0.0.1:" + std::to_string((*server)->port()) + "/api/status";
  auto p = http::Send(plain, co);
  EXPECT_TRUE(!p.ok() || p->body.find("web-1") == std::string::npos);
}

// A client certificate the console's CA vouched for is enough, without a token; without
// one the API is 401. (curl presents the certificate: our HTTP client has none to give.)
TEST_F(ConsoleTest, AClientCertificateTheCaVouchedForNeedsNoToken) {
  const std::string key = dir_ + "/tls.key", crt = dir_ + "/tls.crt";
  const std::string ckey = dir_ + "/client.key", ccrt = dir_ + "/client.crt";
  ASSERT_TRUE(identity::MakeSelfSignedTls(key, crt, "localhost").ok());
  ASSERT_TRUE(identity::MakeSelfSignedTls(ckey, ccrt, "operator").ok());
  ServeOptions s;
  s.listen = "0.0.0.0:0";
  s.tls_cert = crt;
  s.tls_key = key;
  s.client_ca = ccrt;  // self-signed: its own CA
  auto server = Serve(s, Options());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string url = "https://localhost:" + std::to_string((*server)->port()) + "/api/status";
  auto curl = [&](const std::string& extra) {
    const std::string cmd = "curl -s -o " + dir_ + "/body -w '%{http_code}' --cacert " + crt + " " +
                            extra + " " + url + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[256];
    while (p != nullptr && std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
    if (p != nullptr) ::pclose(p);
    std::ifstream in(dir_ + "/body");
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return std::make_pair(out, body);
  };
  auto [with_code, with_body] = curl("--cert " + ccrt + " --key " + ckey);
  EXPECT_EQ(with_code, "200") << with_body;
  EXPECT_NE(with_body.find("web-1"), std::string::npos) << with_body;
  auto [without_code, without_body] = curl("");
  EXPECT_EQ(without_code, "401") << without_body;
  EXPECT_EQ(without_body.find("web-1"), std::string::npos) << without_body;
}

}  // namespace
}  // namespace gapless::console
