// `gapless prove` and `gapless verify-proof`: one record's inclusion proof against the
// collector's signed checkpoint, or the consistency proof between two of its signed
// checkpoints, as a JSON document anyone can check offline (docs/formats/proof.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace gapless::cli {

// Each returns the process exit status: 0 done / valid, 1 failed / invalid, 2 usage.
// With seq: that record's inclusion proof against the latest signed checkpoint. With
// old_size: the consistency proof from the signed checkpoint of that size to the latest.
int Prove(const std::string& data_dir, const std::string& agent, const std::string& epoch,
          std::optional<uint64_t> seq, std::optional<uint64_t> old_size,
          const std::string& out_path);
int VerifyProof(const std::string& path, const std::string& verifier_key);

}  // namespace gapless::cli
