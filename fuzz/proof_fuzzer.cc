// Fuzzes the proof document parsers and verifiers (src/proof), inclusion and consistency:
// what `gapless verify-proof` reads from a file an auditor was handed. Properties checked, beyond
// "never crashes or reads out of bounds":
//   - a document that parses formats to JSON that parses to the same document;
//   - verifying it against a key nobody here holds the private half of never succeeds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "checkpoint/note.h"
#include "proof/proof_doc.h"

namespace p = gapless::proof;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

bool Same(const p::ProofDoc& a, const p::ProofDoc& b) {
  return a.agent == b.agent && a.epoch == b.epoch && a.seq == b.seq &&
         a.leaf_input == b.leaf_input && a.tree_size == b.tree_size &&
         a.inclusion_path == b.inclusion_path && a.checkpoint == b.checkpoint &&
         a.collector_key == b.collector_key;
}

bool Same(const p::ConsistencyDoc& a, const p::ConsistencyDoc& b) {
  return a.agent == b.agent && a.epoch == b.epoch && a.old_checkpoint == b.old_checkpoint &&
         a.new_checkpoint == b.new_checkpoint && a.consistency_path == b.consistency_path &&
         a.collector_key == b.collector_key;
}

// A verifier key (valid syntax, matching id) of a public key nobody holds the private
// half of: no document may verify against it.
const std::string& Stranger() {
  static const std::string key = [] {
    gapless::identity::PublicKey k;
    k.fill(0x42);
    return gapless::checkpoint::FormatVerifierKey("gapless/collector/x", k);
  }();
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)p::ProofFormat(in);
  std::string who;
  if (auto c = p::ParseConsistencyDoc(in); c.ok()) {
    auto again = p::ParseConsistencyDoc(p::FormatConsistencyDoc(*c));
    Check(again.ok() && Same(*again, *c));
    Check(!p::VerifyConsistencyDoc(*c, Stranger(), &who).ok());
  }
  auto doc = p::ParseProofDoc(in);
  if (!doc.ok()) return 0;
  auto again = p::ParseProofDoc(p::FormatProofDoc(*doc));
  Check(again.ok() && Same(*again, *doc));
  Check(!p::VerifyProofDoc(*doc, Stranger(), &who).ok());
  return 0;
}
