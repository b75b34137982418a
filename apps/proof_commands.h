// `gapless prove` and `gapless verify-proof`: one record's inclusion proof against the
// collector's signed checkpoint, or the consistency proof between two of its signed
// checkpoints, as a JSON document anyone can check offline (docs/formats/proof.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace gapless::cli {

// Each returns the process exit status: 0 done / valid, 1 failed / invalid, 2 usage.
struct ProveFlags {
  std::string data_dir, agent, epoch, out;
  std::optional<uint64_t> seq;       // an inclusion proof of this record
  std::optional<uint64_t> old_size;  // a consistency proof from this signed size
  bool witnessed = false;            // against the newest checkpoint a witness cosigned
};

// With seq: that record's inclusion proof against the latest signed checkpoint. With
// old_size: the consistency proof from the signed checkpoint of that size to the latest.
// The checkpoint carries the witnesses' cosignatures kept for it (dir/witnessed).
int Prove(const ProveFlags& flags);
// witness_keys: cosigner keys whose valid cosignature the checkpoint must carry.
int VerifyProof(const std::string& path, const std::string& verifier_key,
                const std::vector<std::string>& witness_keys);

}  // namespace gapless::cli
