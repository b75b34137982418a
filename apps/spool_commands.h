// `gapless spool ...`: tools for a spool directory (the agent must not be running).
#pragma once

#include <cstdint>
#include <string>

namespace gapless::cli {

// Each returns the process exit status.
int SpoolAppend(const std::string& dir, bool quiet);
int SpoolInspect(const std::string& dir, bool show_records);

}  // namespace gapless::cli
