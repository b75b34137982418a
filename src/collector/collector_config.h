// The collector's configuration: TOML (docs/config.md, "Collector"), parsed and
// validated in one pass that reports every error at once, each with its line and column
// (config/toml_checker.h). `gapless collector` starts from it and `gapless validate`
// checks a file with the same code.
//
// Thread contract: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "alert/alert.h"
#include "base/status.h"
#include "collector/collector.h"
#include "console/console.h"
#include "monitor/monitor.h"

namespace gapless::collector {

struct CollectorConfig {
  CollectorOptions options;
  // [alerts]; journal defaults to <data_dir>/alerts.jsonl (docs/alerts.md).
  alert::AlertOptions alerts;
  // [monitors]: the thresholds of the completeness rules.
  monitor::MonitorOptions monitors;
  // "address:port" serving /metrics and /health (docs/metrics.md); empty: off.
  std::string metrics_listen;
  // The console (docs/console.md): console_listen, console_token_file, console_client_ca;
  // its TLS pair is the collector's.
  console::ServeOptions console;
  // The store's self-audit (collector/auditing.h) every this often; 0: off.
  int64_t audit_interval_ms = 3'600'000;
  // The query index brought up to date (query::IndexStore) every this often; 0: off.
  int64_t index_interval_ms = 60'000;
};

// Parses and validates. On error: kInvalidArgument whose message has one line per
// problem, "FILE:LINE:COLUMN: what is wrong — what to do".
StatusOr<CollectorConfig> ParseCollectorConfig(std::string_view toml, const std::string& file_name);
StatusOr<CollectorConfig> LoadCollectorConfig(const std::string& path);

}  // namespace gapless::collector
