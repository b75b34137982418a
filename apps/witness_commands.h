// `gapless witness`: runs a C2SP tlog-witness for gapless collectors (src/witness).
#pragma once

#include <string>
#include <vector>

namespace gapless::cli {

struct WitnessFlags {
  std::string data_dir;
  std::string listen = "127.0.0.1:7380";
  std::string name;
  std::vector<std::string> collectors;  // collector verifier keys to trust
};

// Runs until SIGINT or SIGTERM; 0 on a clean stop, 1 if it cannot start.
int RunWitness(const WitnessFlags& flags);

}  // namespace gapless::cli
