// `gapless agent`, `gapless validate` and `gapless run`.
#pragma once

#include <cstdint>
#include <string>

namespace gapless::cli {

struct RunFlags {
  std::string data_dir = "./gapless-data";
  uint16_t port = 5514;
  uint16_t collector_port = 7514;
  uint16_t console_port = 9514;  // the console (docs/console.md) on 127.0.0.1; 0: off
  uint16_t metrics_port = 9516;  // collector's /metrics; the agent's is the next; 0: off
  double duration_s = 0;         // 0: until SIGINT / SIGTERM
};

// Each returns the process exit status.
int RunAgent(const std::string& config_path);
int Validate(const std::string& config_path);
int RunDemo(const RunFlags& flags);

}  // namespace gapless::cli
