// `gapless keygen`, `gapless collector` and `gapless store inspect`.
#pragma once

#include <string>

namespace gapless::cli {

// Each returns the process exit status.
int Keygen(const std::string& out_path, const std::string& agent_id);
int RunCollector(const std::string& config_path);
int StoreInspect(const std::string& data_dir, bool records);

}  // namespace gapless::cli
