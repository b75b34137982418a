// Fuzzes the agent configuration parser with hostile TOML: it must never crash, and any
// error must name a place ("FILE:LINE:COLUMN: ...").
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/agent_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto cfg = gapless::config::ParseAgentConfig(in, "f.toml");
  if (!cfg.ok() && cfg.status().message().rfind("f.toml:", 0) != 0) __builtin_trap();
  return 0;
}
