// `gapless prove` and `gapless verify-proof`: one record's inclusion proof against the
// collector's signed checkpoint, as a JSON document anyone can check offline (format in
// docs/formats/proof.md).
#pragma once

#include <cstdint>
#include <string>

namespace gapless::cli {

// Each returns the process exit status: 0 done / valid, 1 failed / invalid, 2 usage.
int Prove(const std::string& data_dir, const std::string& agent, const std::string& epoch,
          uint64_t seq, const std::string& out_path);
int VerifyProof(const std::string& path, const std::string& verifier_key);

}  // namespace gapless::cli
