// RFC 9162 section 2.1.3 / 2.1.4: inclusion and consistency proofs, and their
// verification.
//
// Proofs are built from perfect subtree hashes only, through HashSource: the hash of the
// 2^level leaves starting at index * 2^level. Every range the RFC's recursion names
// starts at a multiple of the power of two at or above its size, so its root is the
// fold of at most log2(n) perfect subtrees; a proof costs O(log^2 n) source lookups in
// the worst case and O(log n) in the common one. A store that keeps its perfect subtree
// hashes (tiles) answers each lookup with one read.
//
// The verifiers are the RFC's algorithms written down directly and share no code with
// the generators, so a bug in one is not hidden by the same bug in the other.
#pragma once

#include <cstdint>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"

namespace gapless::merkle {

class HashSource {
 public:
  virtual ~HashSource() = default;
  // Hash of the perfect subtree over leaves [index << level, (index + 1) << level).
  // The caller asks only for subtrees inside the tree it is proving.
  virtual StatusOr<Hash256> PerfectSubtree(int level, uint64_t index) const = 0;
};

// Root of the RFC 9162 tree over leaves [begin, end), where begin is a multiple of the
// smallest power of two >= end - begin (true of every range in a proof, and of [0, n)).
StatusOr<Hash256> RangeRoot(const HashSource& source, uint64_t begin, uint64_t end);

// The roots of the aligned perfect subtrees that make up leaves [begin, end), left to
// right, as (level, hash): what a verifier holding a compact range of size `begin` needs to
// reach the tree of size `end` without the leaves (CompactRange::AppendSubtree).
StatusOr<std::vector<std::pair<int, Hash256>>> RangeSubtrees(const HashSource& source,
                                                             uint64_t begin, uint64_t end);

// PATH(index, D[size]); kInvalidArgument unless index < size.
StatusOr<std::vector<Hash256>> InclusionProof(const HashSource& source, uint64_t index,
                                              uint64_t size);
// PROOF(first, D[second]); kInvalidArgument unless first <= second. Empty when first is
// 0 or equal to second.
StatusOr<std::vector<Hash256>> ConsistencyProof(const HashSource& source, uint64_t first,
                                                uint64_t second);

// RFC 9162 section 2.1.3.2. Ok, or kDataLoss naming what does not hold.
Status VerifyInclusion(const Hash256& leaf_hash, uint64_t index, uint64_t size,
                       const std::vector<Hash256>& proof, const Hash256& root);
// RFC 9162 section 2.1.4.2, plus the trivial cases: first == 0 (any tree extends the
// empty one) and first == second (equal roots, empty proof).
Status VerifyConsistency(uint64_t first, uint64_t second, const Hash256& first_root,
                         const Hash256& second_root, const std::vector<Hash256>& proof);

// A HashSource over leaf hashes held in memory, every level computed up front (about
// twice the leaves' memory). For tests, tools and small trees.
class MemoryHashSource : public HashSource {
 public:
  explicit MemoryHashSource(std::vector<Hash256> leaves);
  StatusOr<Hash256> PerfectSubtree(int level, uint64_t index) const override;

 private:
  std::vector<std::vector<Hash256>> levels_;  // levels_[0] = leaves
};

}  // namespace gapless::merkle
