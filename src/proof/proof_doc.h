// The proof documents of `gapless prove` / `gapless verify-proof`, checkable offline by
// anyone with the collector's verifier key. Grammar: docs/formats/proof.md.
//   - inclusion: one record, its RFC 9162 inclusion path and the collector's signed
//     checkpoint;
//   - consistency: two signed checkpoints of one stream and the RFC 9162 consistency
//     path between them (the newer tree extends the older: nothing was removed or
//     rewritten in between).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"

namespace gapless::proof {

inline constexpr std::string_view kProofFormat = "gapless-inclusion-proof/1";
inline constexpr std::string_view kConsistencyFormat = "gapless-consistency-proof/1";

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

struct ConsistencyDoc {
  std::string agent;
  std::string epoch;           // hex
  std::string old_checkpoint;  // signed notes, by the same collector
  std::string new_checkpoint;
  std::vector<Hash256> consistency_path;
  std::string collector_key;  // informative, as in ProofDoc
};

// The "format" member of a proof document; kInvalidArgument if it has none.
StatusOr<std::string> ProofFormat(std::string_view json);

std::string FormatProofDoc(const ProofDoc& doc);
// kInvalidArgument naming the missing or malformed member.
StatusOr<ProofDoc> ParseProofDoc(std::string_view json);

// Checks, in order: the verifier key; the checkpoint's signature by it; that the
// checkpoint is a collector's of this stream and of tree_size; the inclusion of the leaf
// at seq under the signed root. kInvalidArgument for a bad key, kNotFound / kDataLoss
// from the signature, kDataLoss for everything else that does not hold. On success, *who
// is the signer's key name.
Status VerifyProofDoc(const ProofDoc& doc, std::string_view verifier_key, std::string* who);

std::string FormatConsistencyDoc(const ConsistencyDoc& doc);
StatusOr<ConsistencyDoc> ParseConsistencyDoc(std::string_view json);
// Checks both signatures by the key, that both checkpoints are the collector's of this
// stream (one origin), that the old size is not larger, and the consistency path between
// the two signed roots. Errors as VerifyProofDoc's.
Status VerifyConsistencyDoc(const ConsistencyDoc& doc, std::string_view verifier_key,
                            std::string* who);

}  // namespace gapless::proof
