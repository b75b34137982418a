// Fuzzes the agent's and the collector's configuration parsers with hostile TOML: they
// must never crash, and any error must name a place ("FILE:LINE:COLUMN: ...").
#include <cstddef>
#include <cstdint>
#include <string>

#include "collector/collector_config.h"
#include "config/agent_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto agent = gapless::config::ParseAgentConfig(in, "f.toml");
  if (!agent.ok() && agent.status().message().rfind("f.toml:", 0) != 0) __builtin_trap();
  auto collector = gapless::collector::ParseCollectorConfig(in, "f.toml");
  if (!collector.ok() && collector.status().message().rfind("f.toml:", 0) != 0) __builtin_trap();
  (void)gapless::config::DetectConfigKind(in);
  return 0;
}
