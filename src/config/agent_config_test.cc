#include "config/agent_config.h"

#include <gtest/gtest.h>

namespace gapless::config {
namespace {

TEST(AgentConfig, FullExampleParses) {
  auto cfg = ParseAgentConfig(R"(
[agent]
id = "web-01"
data_dir = "/tmp/gapless"

[spool]
quota = "2GiB"
segment_size = "32MiB"
full_policy = "drop_oldest"
commit_delay_ms = 5

[[input]]
type = "syslog_tcp"
listen = "0.0.0.0:6514"
framing = "octet_counted"
max_message_size = "16KiB"
max_connections = 64
[input.tls]
cert = "/etc/gapless/cert.pem"
key = "/etc/gapless/key.pem"

[[input]]
type = "syslog_udp"
name = "firewalls"
listen = "[::]:514"
receive_buffer_size = "8MiB"
)",
                              "agent.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->id, "web-01");
  EXPECT_EQ(cfg->data_dir, "/tmp/gapless");
  EXPECT_EQ(cfg->spool.quota_bytes, 2ull << 30);
  EXPECT_EQ(cfg->spool.segment_bytes, 32ull << 20);
  EXPECT_EQ(cfg->spool.full_policy, spool::FullPolicy::kDropOldest);
  EXPECT_EQ(cfg->commit_delay_ms, 5);
  ASSERT_EQ(cfg->inputs.size(), 2u);
  const InputConfig& tcp = cfg->inputs[0];
  EXPECT_EQ(tcp.type, InputType::kSyslogTcp);
  EXPECT_EQ(tcp.line, 12);
  EXPECT_EQ(tcp.syslog.framing, syslog::Framing::kOctetCounted);
  EXPECT_EQ(tcp.syslog.max_message_bytes, 16u << 10);
  EXPECT_EQ(tcp.syslog.max_connections, 64u);
  ASSERT_TRUE(tcp.syslog.tls.has_value());
  EXPECT_EQ(tcp.syslog.tls->key_file, "/etc/gapless/key.pem");
  EXPECT_EQ(cfg->inputs[1].syslog.name, "firewalls");
  EXPECT_EQ(cfg->inputs[1].syslog.receive_buffer_bytes, 8 << 20);
}

TEST(AgentConfig, AgentTableWithoutIdUsesTheHostName) {
  auto cfg = ParseAgentConfig("[agent]\ndata_dir = \"/d\"\n", "a.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_FALSE(cfg->id.empty());
  EXPECT_FALSE(ParseAgentConfig("[agent]\nid = \"\"\n", "a.toml").ok());
}

TEST(AgentConfig, DefaultsAreSafe) {
  auto cfg = ParseAgentConfig("", "empty.toml");
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->spool.full_policy, spool::FullPolicy::kBlock);
  EXPECT_FALSE(cfg->id.empty());
  EXPECT_TRUE(cfg->inputs.empty());
}

TEST(AgentConfig, TheAgentAlertsByItselfWithTheCollectorsAlertTable) {
  auto plain = ParseAgentConfig("[agent]\nid = \"web-01\"\ndata_dir = \"/d\"\n", "a.toml");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->alerts.journal, "/d/alerts.jsonl");  // always journaled
  EXPECT_EQ(plain->alerts.watchdog, "") << "the agent's watchdog is optional";
  EXPECT_EQ(plain->alert_rules, AgentAlertRules{});
  auto cfg = ParseAgentConfig(R"([agent]
id = "web-01"
[alerts]
alertmanager = ["http://am:9093"]
watchdog = true
destination_unreachable_seconds = 30
inputs_blocked_seconds = 2
[[alerts.webhook]]
url = "https://hooks.example/gapless"
)",
                              "a.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->alerts.alertmanagers, std::vector<std::string>{"http://am:9093"});
  EXPECT_EQ(cfg->alerts.watchdog, "agent@web-01");
  ASSERT_EQ(cfg->alerts.webhooks.size(), 1u);
  EXPECT_EQ(cfg->alert_rules.destination_unreachable_s, 30);
  EXPECT_EQ(cfg->alert_rules.inputs_blocked_s, 2);
  EXPECT_EQ(cfg->alert_rules.spool_full_clear_s, 10);
  auto bad =
      ParseAgentConfig("[alerts]\ndestination_unreachable_seconds = 0\nwatch_dog = 1\n", "b.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("b.toml:2:"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("unknown key \"watch_dog\" in [alerts]"), std::string::npos)
      << bad.status().message();
}

TEST(AgentConfig, EveryErrorIsReportedAtOnceWithItsLine) {
  auto cfg = ParseAgentConfig(R"([agent]
idd = "typo"
[spool]
full_policy = "overwrite"
quota = "12 parsecs"
[[input]]
type = "syslog_tcp"
listen = "localhost:514"
[[input]]
type = "carrier_pigeon"
[[input]]
listen = "127.0.0.1:1"
)",
                              "bad.toml");
  ASSERT_FALSE(cfg.ok());
  const std::string& m = cfg.status().message();
  EXPECT_NE(m.find("bad.toml:2:1: unknown key \"idd\" in [agent]"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.toml:4:"), std::string::npos) << m;
  EXPECT_NE(m.find("overwrite"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.toml:5:"), std::string::npos) << m;
  EXPECT_NE(m.find("parsecs"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.toml:8:"), std::string::npos) << m;
  EXPECT_NE(m.find("numeric"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.toml:10:"), std::string::npos) << m;
  EXPECT_NE(m.find("carrier_pigeon"), std::string::npos) << m;
  EXPECT_NE(m.find("needs a type"), std::string::npos) << m;
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 5) << m;  // 6 lines, one per problem
  EXPECT_LT(m.find("bad.toml:4:"), m.find("bad.toml:5:")) << "not in file order";
}

TEST(AgentConfig, SyntaxErrorNamesThePlace) {
  auto cfg = ParseAgentConfig("[agent]\nid = \"unterminated\n", "syn.toml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message().rfind("syn.toml:2:", 0), 0u) << cfg.status().message();
}

TEST(AgentConfig, HttpInput) {
  auto cfg = ParseAgentConfig(R"([[input]]
type = "http"
listen = "127.0.0.1:8080"
path = "/v1/logs"
max_body_size = "1MiB"
token_file = "/etc/gapless/http-token"
)",
                              "h.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  ASSERT_EQ(cfg->inputs.size(), 1u);
  EXPECT_EQ(cfg->inputs[0].type, InputType::kHttp);
  EXPECT_EQ(cfg->inputs[0].http.path, "/v1/logs");
  EXPECT_EQ(cfg->inputs[0].http.max_body_bytes, 1u << 20);
  EXPECT_EQ(cfg->inputs[0].http.token_file, "/etc/gapless/http-token");
  auto bad = ParseAgentConfig(
      "[[input]]\ntype = \"http\"\nlisten = \"127.0.0.1:1\"\npath = \"logs\"\n"
      "token_file = \"relative\"\n",
      "b.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("b.toml:4:8: path must start with /"), std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("b.toml:5:14: token_file must be an absolute path"),
            std::string::npos)
      << bad.status().message();
}

TEST(AgentConfig, FileMultilineOptions) {
  auto cfg = ParseAgentConfig(R"([[input]]
type = "file"
paths = ["/var/log/app.log"]
multiline_start = "^[0-9]{4}-"
multiline_max_lines = 50
multiline_timeout_ms = 500
)",
                              "m.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->inputs[0].file.multiline_start, "^[0-9]{4}-");
  EXPECT_EQ(cfg->inputs[0].file.multiline_max_lines, 50u);
  EXPECT_EQ(cfg->inputs[0].file.multiline_timeout_ms, 500);
  auto bad = ParseAgentConfig(
      "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\nmultiline_start = \"^(\"\n", "r.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("r.toml:4:19: multiline_start \"^(\" is not a valid"),
            std::string::npos)
      << bad.status().message();
}

TEST(AgentConfig, JournaldInput) {
  auto cfg = ParseAgentConfig(R"([[input]]
type = "journald"
directory = "/var/log/journal"
matches = ["_SYSTEMD_UNIT=sshd.service", "PRIORITY=3"]
start_at = "end"
)",
                              "j.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->inputs[0].type, InputType::kJournald);
  EXPECT_EQ(cfg->inputs[0].journald.matches.size(), 2u);
  EXPECT_EQ(cfg->inputs[0].journald.start_at, input::StartAt::kEnd);
  auto bad = ParseAgentConfig("[[input]]\ntype = \"journald\"\nmatches = [\"sshd\"]\n", "b.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("b.toml:3:12: each match must be"), std::string::npos)
      << bad.status().message();
}

TEST(AgentConfig, MessageSizeMustFitTheSpoolRecord) {
  auto cfg = ParseAgentConfig(R"([spool]
max_record_size = "64KiB"
[[input]]
type = "syslog_udp"
listen = "127.0.0.1:514"
max_message_size = "64KiB"
)",
                              "m.toml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("m.toml:3:1: max_message_size"), std::string::npos)
      << cfg.status().message();
}

TEST(AgentConfig, NonAsciiIsRefusedWithItsPlaceAndEscapesWork) {
  auto bad = ParseAgentConfig(
      "[agent]\nid = \"w\xC3\xA9"
      "b\"\n",
      "u.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("u.toml:2:8: non-ASCII byte 0xC3", 0), 0u)
      << bad.status().message();
  auto good = ParseAgentConfig("[agent]\ndata_dir = \"/w\\u00e9b\"\n", "u.toml");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->data_dir,
            "/w\xC3\xA9"
            "b");
  // The input the fuzzer found (undefined behaviour inside toml++ 3.3).
  EXPECT_FALSE(ParseAgentConfig("\xC9\xBB\x10\x44", "u.toml").ok());
}

TEST(ParseSize, UnitsAndErrors) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64KiB"), 65536u);
  EXPECT_EQ(*ParseSize("1 GiB"), 1ull << 30);
  EXPECT_EQ(*ParseSize("500MB"), 500'000'000u);
  EXPECT_FALSE(ParseSize("").ok());
  EXPECT_FALSE(ParseSize("MiB").ok());
  EXPECT_FALSE(ParseSize("5 furlongs").ok());
  EXPECT_FALSE(ParseSize("99999999999999999999").ok());
  EXPECT_FALSE(ParseSize("18446744073709551615GiB").ok());
}

}  // namespace
}  // namespace gapless::config

namespace gapless::config {
namespace {

TEST(AgentConfig, DestinationsAreParsedAndCheckedWithTheirPlace) {
  auto cfg = ParseAgentConfig(R"([agent]
id = "web-1"
data_dir = "/d"

[[destination]]
name = "main"
address = "10.0.0.5:7514"
ca_file = "/etc/gapless/ca.pem"
server_name = "collector.example"

[[destination]]
name = "archive"
address = "10.0.0.6:7514"
ca_file = "/etc/gapless/ca.pem"
required = false
window = 4
)",
                              "a.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  ASSERT_EQ(cfg->destinations.size(), 2u);
  EXPECT_EQ(cfg->destinations[0].address, "10.0.0.5:7514");
  EXPECT_EQ(cfg->destinations[0].server_name, "collector.example");
  EXPECT_TRUE(cfg->destinations[0].required);
  EXPECT_FALSE(cfg->destinations[1].required);
  EXPECT_EQ(cfg->destinations[1].window, 4u);
  EXPECT_EQ(cfg->key_file, "/d/agent.key");

  auto bad = ParseAgentConfig(R"([[destination]]
name = "x"
address = "collector.example:7514"

[[destination]]
name = "x"
address = "10.0.0.1:1"
ca_file = "c"
)",
                              "b.toml");
  ASSERT_FALSE(bad.ok());
  const std::string& m = bad.status().message();
  EXPECT_NE(m.find("b.toml:3:11: listen address \"collector.example:7514\" is not a numeric"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("b.toml:1:1: this [[destination]] needs ca_file"), std::string::npos) << m;
  EXPECT_NE(m.find("two destinations are named \"x\""), std::string::npos) << m;
}

TEST(ConfigKind, ACollectorFileIsToldFromAnAgentFile) {
  EXPECT_EQ(DetectConfigKind("[collector]\nname = \"c\"\n"), ConfigKind::kCollector);
  EXPECT_EQ(DetectConfigKind("[agent]\nid = \"a\"\n"), ConfigKind::kAgent);
  EXPECT_EQ(DetectConfigKind("[collector\n"), ConfigKind::kAgent);  // syntax: agent parser says
  EXPECT_EQ(DetectConfigKind(""), ConfigKind::kAgent);
}

}  // namespace
}  // namespace gapless::config
