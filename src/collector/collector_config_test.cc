#include "collector/collector_config.h"

#include <gtest/gtest.h>

#include "checkpoint/note.h"

namespace gapless::collector {
namespace {

TEST(CollectorConfig, RequiresTlsAndEnrolledKeys) {
  auto ok = ParseCollectorConfig(R"([collector]
data_dir = "/c"
listen = ["127.0.0.1:7514", "127.0.0.1:7515"]
tls_cert = "/c/tls.crt"
tls_key = "/c/tls.key"
enrolled_keys = "/c/enrolled"
)",
                                 "c.toml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->options.listen.size(), 2u);
  auto bad = ParseCollectorConfig("[collector]\nlisten = \"nowhere\"\n", "d.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("needs tls_cert and tls_key"), std::string::npos);
  EXPECT_NE(bad.status().message().find("needs enrolled_keys"), std::string::npos);
  EXPECT_NE(bad.status().message().find("d.toml:2:10: listen address"), std::string::npos)
      << bad.status().message();
}

TEST(CollectorConfig, WitnessesNeedAUrlAndACosignerKey) {
  const std::string base = R"([collector]
tls_cert = "/c/tls.crt"
tls_key = "/c/tls.key"
enrolled_keys = "/c/enrolled"
)";
  identity::PublicKey k;
  k.fill(7);
  const std::string key = checkpoint::FormatCosignerKey("witness.example/w1", k);
  auto ok = ParseCollectorConfig(base + R"(
[[collector.witness]]
url = "https://witness.example/add-checkpoint"
key = ")" + key + R"("
timeout_ms = 3000
)",
                                 "w.toml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->options.witnesses.size(), 1u);
  EXPECT_EQ(ok->options.witnesses[0].key, key);
  EXPECT_EQ(ok->options.witnesses[0].timeout_ms, 3000);
  auto bad = ParseCollectorConfig(base + R"(
[[collector.witness]]
url = "witness.example"
key = ")" + checkpoint::FormatVerifierKey("witness.example/w1", k) +
                                      R"("
colour = 1
)",
                                  "x.toml");
  ASSERT_FALSE(bad.ok());
  const std::string m = bad.status().message();
  EXPECT_NE(m.find("needs url"), std::string::npos) << m;
  EXPECT_NE(m.find("expected an Ed25519 cosigner's key"), std::string::npos) << m;
  EXPECT_NE(m.find("colour"), std::string::npos) << m;
}

TEST(CollectorConfig, ArchiveDestination) {
  const std::string base = R"([collector]
tls_cert = "/c/tls.crt"
tls_key = "/c/tls.key"
enrolled_keys = "/c/enrolled"
)";
  auto ok = ParseCollectorConfig(base + R"(
[collector.archive]
dir = "/mnt/offsite/gapless"
interval_seconds = 600
min_records = 1000
)",
                                 "a.toml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->options.archive.dir, "/mnt/offsite/gapless");
  EXPECT_EQ(ok->options.archive.interval_ms, 600'000);
  EXPECT_EQ(ok->options.archive.min_records, 1000u);
  auto bad = ParseCollectorConfig(base + R"(
[collector.archive]
dir = "relative"
recipients = ["age1xyz"]
)",
                                  "b.toml");
  ASSERT_FALSE(bad.ok());
  const std::string m = bad.status().message();
  EXPECT_NE(m.find("needs dir: an absolute path"), std::string::npos) << m;
  EXPECT_NE(m.find("a recipient is"), std::string::npos) << m;
}

TEST(CollectorConfig, AlertOutputs) {
  const std::string base = R"([collector]
data_dir = "/c"
tls_cert = "/c/tls.crt"
tls_key = "/c/tls.key"
enrolled_keys = "/c/enrolled"
)";
  auto plain = ParseCollectorConfig(base, "p.toml");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->alerts.journal, "/c/alerts.jsonl");  // always journaled
  auto ok = ParseCollectorConfig(base + R"(
[monitors]
agent_silent_seconds = 30
delivery_stalled_seconds = 45
volume_drop_percent = 10
[alerts]
alertmanager = ["http://am:9093"]
[[alerts.webhook]]
url = "https://hooks.example/gapless"
secret_file = "/etc/gapless/hook.secret"
)",
                                 "a.toml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->alerts.webhooks.size(), 1u);
  EXPECT_EQ(ok->alerts.webhooks[0].secret_file, "/etc/gapless/hook.secret");
  EXPECT_EQ(ok->alerts.alertmanagers, std::vector<std::string>{"http://am:9093"});
  EXPECT_EQ(ok->alerts.watchdog.rfind("collector@", 0), 0u) << "the watchdog is on by default";
  auto quiet = ParseCollectorConfig(base + "[alerts]\nwatchdog = false\n", "q.toml");
  ASSERT_TRUE(quiet.ok()) << quiet.status().ToString();
  EXPECT_EQ(quiet->alerts.watchdog, "");
  EXPECT_EQ(ok->monitors.agent_silent_s, 30);
  EXPECT_EQ(ok->monitors.delivery_stalled_s, 45);
  EXPECT_DOUBLE_EQ(ok->monitors.volume_drop_ratio, 0.10);
  EXPECT_EQ(ok->monitors.clock_skew_s, 30);  // the default
  auto bad = ParseCollectorConfig(base + R"(
[alerts]
alertmanager = ["am:9093"]
[[alerts.webhook]]
secret = "inline secrets are refused"
)",
                                  "b.toml");
  ASSERT_FALSE(bad.ok());
  const std::string m = bad.status().message();
  EXPECT_NE(m.find("base URL"), std::string::npos) << m;
  EXPECT_NE(m.find("needs url"), std::string::npos) << m;
  EXPECT_NE(m.find("secret"), std::string::npos) << m;
}

TEST(CollectorConfig, OutputsAreParsedWithTheirDefaultsAndEveryMistakeIsNamed) {
  const std::string base = R"([collector]
tls_cert = "/c/tls.crt"
tls_key = "/c/tls.key"
enrolled_keys = "/c/enrolled"
)";
  auto ok = ParseCollectorConfig(base + R"(
[[output]]
name = "siem-relay"
type = "relp"
address = "rsyslog.example:2514"
streams = ["web-*", "db-01"]

[[output]]
name = "lake"
type = "file"
path = "/var/spool/gapless/lake.ndjson"
max_file_size = "64MiB"
required = false
stall_seconds = 120
)",
                                 "o.toml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->options.outputs.size(), 2u);
  const output::OutputOptions& relp = ok->options.outputs[0];
  EXPECT_EQ(relp.type, "relp");
  EXPECT_EQ(relp.shape, output::Shape::kRfc5424);  // the default for RELP
  EXPECT_EQ(relp.streams, (std::vector<std::string>{"web-*", "db-01"}));
  EXPECT_TRUE(relp.required);
  EXPECT_EQ(relp.stall_after_ms, 60'000);
  const output::OutputOptions& file = ok->options.outputs[1];
  EXPECT_EQ(file.shape, output::Shape::kJson);
  EXPECT_EQ(file.max_file_bytes, 64ull << 20);
  EXPECT_FALSE(file.required);
  EXPECT_EQ(file.stall_after_ms, 120'000);

  auto bad = ParseCollectorConfig(base + R"(
[[output]]
name = "x"
type = "splunk"

[[output]]
type = "file"
path = "relative"

[[output]]
name = "lake"
type = "file"
path = "/l.ndjson"
shape = "raw"
colour = "blue"
)",
                                  "p.toml");
  ASSERT_FALSE(bad.ok());
  const std::string& m = bad.status().message();
  EXPECT_NE(m.find("p.toml:6:1: output \"x\": type \"splunk\" is not one of file, relp"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("needs a name"), std::string::npos) << m;
  EXPECT_NE(m.find("shape must be json"), std::string::npos) << m;
  EXPECT_NE(m.find("colour"), std::string::npos) << m;
}

}  // namespace
}  // namespace gapless::collector

namespace gapless::collector {
namespace {

// The console is off unless console_listen is set; off loopback it needs a token file or
// a client CA, and `gapless validate` (this parser) says which to set.
TEST(CollectorConfig, AConsoleOffLoopbackNeedsATokenOrClientCertificates) {
  const std::string base = R"([collector]
tls_cert = "c.pem"
tls_key = "k.pem"
enrolled_keys = "e"
)";
  auto off = ParseCollectorConfig(base, "c.toml");
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_TRUE(off->console.listen.empty());
  auto local = ParseCollectorConfig(base + "console_listen = \"127.0.0.1:9514\"\n", "c.toml");
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  EXPECT_EQ(local->console.listen, "127.0.0.1:9514");
  auto open = ParseCollectorConfig(base + "console_listen = \"0.0.0.0:9514\"\n", "c.toml");
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.status().message().find("c.toml:5:"), std::string::npos)
      << open.status().message();
  EXPECT_NE(open.status().message().find("console_token_file"), std::string::npos);
  auto token = ParseCollectorConfig(
      base + "console_listen = \"0.0.0.0:9514\"\nconsole_token_file = \"/etc/gapless/token\"\n",
      "c.toml");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(token->console.token_file, "/etc/gapless/token");
  auto ca = ParseCollectorConfig(
      base + "console_listen = \"10.0.0.5:9514\"\nconsole_client_ca = \"ca.pem\"\n", "c.toml");
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  EXPECT_FALSE(ParseCollectorConfig(base + "console_listen = \"nowhere\"\n", "c.toml").ok());
}

}  // namespace
}  // namespace gapless::collector
