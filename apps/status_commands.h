// `gapless status`: what a collector knows about its agents right now, from its ledger
// (data_dir/ledger.db, readable while the collector runs): per stream the last heartbeat,
// the agent's head, what is stored, the lag between them, open gaps and the alerts
// firing; per source its records in the last 10 and 60 minutes.
#pragma once

#include <string>

namespace gapless::cli {

struct StatusFlags {
  std::string data_dir;
  bool json = false;
};

// Exit status: 0 nothing firing and no open gap, 1 something firing or open, 2 the
// ledger could not be read.
int ShowStatus(const StatusFlags& flags);

}  // namespace gapless::cli
