// RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, kept incrementally.
//
//   MTH({})        = SHA-256()
//   leaf hash      = SHA-256(0x00 || entry)
//   node hash      = SHA-256(0x01 || left || right)
//   MTH(D[n])      = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
//
// CompactRange keeps only the roots of the perfect subtrees that make up a tree of size n
// (one per set bit of n, largest first): O(log n) state, O(1) amortised hashing per
// appended leaf, and the root of the whole tree at any moment.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"

namespace gapless::merkle {

Hash256 EmptyRoot();
Hash256 LeafHash(std::string_view entry);
Hash256 NodeHash(const Hash256& left, const Hash256& right);

class CompactRange {
 public:
  CompactRange() = default;

  // Rebuilds the range of a tree of `size` leaves from its subtree roots, largest first.
  // Fails if the number of hashes is not the number of set bits of size.
  static StatusOr<CompactRange> FromParts(uint64_t size, std::vector<Hash256> hashes);

  void Append(const Hash256& leaf_hash);
  // Appends a whole perfect subtree of 2^level leaves by its root. kInvalidArgument unless
  // size() is a multiple of 2^level (the subtree must be aligned, as in the tree itself).
  Status AppendSubtree(int level, const Hash256& root);
  uint64_t size() const { return size_; }
  // Root of the tree of size() leaves; EmptyRoot() for size 0.
  Hash256 Root() const;
  // Subtree roots, largest (leftmost) first.
  const std::vector<Hash256>& hashes() const { return hashes_; }

  friend bool operator==(const CompactRange&, const CompactRange&) = default;

 private:
  uint64_t size_ = 0;
  std::vector<Hash256> hashes_;
};

}  // namespace gapless::merkle
