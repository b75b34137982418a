// The `gapless` subcommands that exist today: the spool tools and the demo `run`.
#pragma once

#include <cstdint>
#include <string>

namespace gapless::cli {

struct RunFlags {
  std::string data_dir = "./gapless-data";
  double interval_s = 0.5;
  double duration_s = 0;  // 0: until SIGINT / SIGTERM
};

// Each returns the process exit status.
int RunDemo(const RunFlags& flags);
int SpoolAppend(const std::string& dir, bool quiet);
int SpoolInspect(const std::string& dir, bool show_records);

}  // namespace gapless::cli
