// `gapless verify`: the auditor's check of a collector's store (src/verify).
#pragma once

#include <string>

namespace gapless::cli {

struct VerifyFlags {
  std::string data_dir;
  std::string agent;  // empty: every stream
  std::string epoch;  // empty: every epoch of the agent(s)
  std::string key;    // the collector's verifier key; empty: data_dir/collector.vkey
  bool json = false;
};

// Exit status: 0 every stream clean, 1 some incomplete (every missing seq declared),
// 2 some tampered, 3 nothing could be verified (no such store, unreadable, bad key).
int Verify(const VerifyFlags& flags);

}  // namespace gapless::cli
