// The inclusion proof document of `gapless prove` / `gapless verify-proof`: one record,
// its RFC 9162 inclusion path and the collector's signed checkpoint, checkable offline by
// anyone with the collector's verifier key. Grammar: docs/formats/proof.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"

namespace gapless::proof {

inline constexpr std::string_view kProofFormat = "gapless-inclusion-proof/1";

struct ProofDoc {
  std::string agent;
  std::string epoch;  // hex
  uint64_t seq = 0;
  std::string leaf_input;  // the exact bytes of the leaf: record type byte, then payload
  uint64_t tree_size = 0;
  std::vector<Hash256> inclusion_path;
  std::string checkpoint;     // the collector's signed note
  std::string collector_key;  // its verifier key, as the prover knew it (informative)
};

std::string FormatProofDoc(const ProofDoc& doc);
// kInvalidArgument naming the missing or malformed member.
StatusOr<ProofDoc> ParseProofDoc(std::string_view json);

// Checks, in order: the verifier key; the checkpoint's signature by it; that the
// checkpoint is a collector's of this stream and of tree_size; the inclusion of the leaf
// at seq under the signed root. kInvalidArgument for a bad key, kNotFound / kDataLoss
// from the signature, kDataLoss for everything else that does not hold. On success, *who
// is the signer's key name.
Status VerifyProofDoc(const ProofDoc& doc, std::string_view verifier_key, std::string* who);

}  // namespace gapless::proof
