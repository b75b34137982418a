// The agent's configuration: TOML (docs/config.md), parsed and validated in one pass
// that reports every error at once, each with its line and column. The collector's is
// in collector/collector_config.h: the agent links no collector code.
//
// Thread contract: plain values and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "alert/alert.h"
#include "base/status.h"
#include "config/size.h"
#include "input/input.h"
#include "spool/spool.h"
#include "transport/sender.h"

namespace gapless::config {

enum class InputType { kSyslogTcp, kSyslogUdp, kRelp, kHttp, kFile, kJournald };

struct InputConfig {
  InputType type = InputType::kSyslogTcp;
  int line = 0;                     // where the [[input]] table starts, for messages
  input::SyslogOptions syslog;      // kSyslogTcp, kSyslogUdp, kRelp
  input::FileOptions file;          // kFile
  input::HttpOptions http;          // kHttp
  input::JournaldOptions journald;  // kJournald

  friend bool operator==(const InputConfig&, const InputConfig&) = default;
};

// The agent's own alert rules (agent/agent_alerts.h, docs/alerts.md), read from [alerts].
struct AgentAlertRules {
  // A destination without a connection for this long: destination_unreachable.
  int64_t destination_unreachable_s = 60;
  // Inputs waiting for room in a full spool (full_policy block) this long: inputs_blocked.
  int64_t inputs_blocked_s = 5;
  // spool_full resolves once the spool refused and dropped nothing for this long.
  int64_t spool_full_clear_s = 10;
  friend bool operator==(const AgentAlertRules&, const AgentAlertRules&) = default;
};

struct AgentConfig {
  std::string id;        // agent identity; default: the host name
  std::string data_dir;  // the spool lives in data_dir/spool
  spool::Options spool;
  // How long appends gather before each group commit (fsync). Bounds the extra time a
  // record waits to become durable; larger batches cost far less CPU per record.
  int64_t commit_delay_ms = 2;
  std::vector<InputConfig> inputs;
  // The agent's Ed25519 key (gapless keygen); default data_dir/agent.key.
  std::string key_file;
  // Optional: a file holding a one-time enrollment token for the collector (mode 0600).
  std::string enroll_token_file;
  // The watchdog restarts a destination's sender when the spool head moved and its acked
  // seq did not for this long.
  int64_t watchdog_stall_ms = 30000;
  // Each destination also gets a heartbeat connection (transport/heartbeat.h); 0: none.
  int64_t heartbeat_interval_ms = 5000;
  // "address:port" serving /metrics and /health (docs/metrics.md); empty: off.
  std::string metrics_listen;
  std::vector<transport::DestinationOptions> destinations;
  // The agent's alert journal and receivers ([alerts]; journal default
  // data_dir/alerts.jsonl) and its rules.
  alert::AlertOptions alerts;
  AgentAlertRules alert_rules;
};

// Parses and validates. On error: kInvalidArgument whose message has one line per
// problem, "FILE:LINE:COLUMN: what is wrong — what to do".
StatusOr<AgentConfig> ParseAgentConfig(std::string_view toml, const std::string& file_name);
StatusOr<AgentConfig> LoadAgentConfig(const std::string& path);

// The embedded defaults of `gapless run`: data under data_dir, syslog on 127.0.0.1:port
// over TCP and UDP.
AgentConfig DemoConfig(const std::string& data_dir, uint16_t port);

}  // namespace gapless::config
