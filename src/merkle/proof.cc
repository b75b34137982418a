#include "merkle/proof.h"

#include <algorithm>
#include <bit>
#include <string>

#include "merkle/merkle.h"

namespace gapless::merkle {
namespace {

// The largest power of two smaller than n (n >= 2): the RFC's split point k.
uint64_t Split(uint64_t n) { return std::bit_floor(n - 1); }

Status Mismatch(const std::string& what) { return DataLossError("proof does not verify: " + what); }

}  // namespace

StatusOr<Hash256> RangeRoot(const HashSource& source, uint64_t begin, uint64_t end) {
  if (end < begin) return InvalidArgumentError("range end before its begin");
  const uint64_t size = end - begin;
  if (size == 0) return EmptyRoot();
  if (begin % std::bit_ceil(size) != 0) {
    return InvalidArgumentError("range [" + std::to_string(begin) + ", " + std::to_string(end) +
                                ") is not a subtree of an RFC 9162 tree");
  }
  // Perfect subtrees left to right, largest first; the root folds them from the right.
  std::vector<Hash256> parts;
  for (uint64_t at = begin, left = size; left > 0;) {
    const int level = static_cast<int>(std::bit_width(left)) - 1;
    ASSIGN_OR_RETURN(Hash256 h, source.PerfectSubtree(level, at >> level));
    parts.push_back(h);
    at += uint64_t{1} << level;
    left -= uint64_t{1} << level;
  }
  Hash256 root = parts.back();
  for (size_t i = parts.size() - 1; i-- > 0;) root = NodeHash(parts[i], root);
  return root;
}

StatusOr<std::vector<std::pair<int, Hash256>>> RangeSubtrees(const HashSource& source,
                                                             uint64_t begin, uint64_t end) {
  if (end < begin) return InvalidArgumentError("range end before its begin");
  std::vector<std::pair<int, Hash256>> out;
  for (uint64_t at = begin; at < end;) {
    // The largest aligned subtree starting at `at` that ends by `end`.
    int level = at == 0 ? 63 : std::countr_zero(at);
    while (level > 0 && (level >= 63 || (uint64_t{1} << level) > end - at)) --level;
    ASSIGN_OR_RETURN(Hash256 h, source.PerfectSubtree(level, at >> level));
    out.emplace_back(level, h);
    at += uint64_t{1} << level;
  }
  return out;
}

StatusOr<std::vector<Hash256>> InclusionProof(const HashSource& source, uint64_t index,
                                              uint64_t size) {
  if (index >= size) {
    return InvalidArgumentError("leaf " + std::to_string(index) + " is not in a tree of size " +
                                std::to_string(size));
  }
  // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]), or PATH(m-k, D[k:n]) : MTH(D[0:k]).
  // Walked from the top, so the siblings come out in reverse order.
  std::vector<Hash256> path;
  uint64_t begin = 0, end = size, m = index;
  while (end - begin > 1) {
    const uint64_t k = Split(end - begin);
    if (m < k) {
      ASSIGN_OR_RETURN(Hash256 right, RangeRoot(source, begin + k, end));
      path.push_back(right);
      end = begin + k;
    } else {
      ASSIGN_OR_RETURN(Hash256 left, RangeRoot(source, begin, begin + k));
      path.push_back(left);
      begin += k;
      m -= k;
    }
  }
  std::reverse(path.begin(), path.end());
  return path;
}

StatusOr<std::vector<Hash256>> ConsistencyProof(const HashSource& source, uint64_t first,
                                                uint64_t second) {
  if (first > second) {
    return InvalidArgumentError("consistency from size " + std::to_string(first) +
                                " to the smaller size " + std::to_string(second));
  }
  std::vector<Hash256> proof;
  if (first == 0 || first == second) return proof;
  // SUBPROOF(m, D[n], b), walked from the top like the inclusion path.
  uint64_t begin = 0, end = second, m = first;
  bool whole = true;  // b: the old tree is still a prefix of the range
  for (;;) {
    const uint64_t n = end - begin;
    if (m == n) {
      if (!whole) {
        ASSIGN_OR_RETURN(Hash256 h, RangeRoot(source, begin, end));
        proof.push_back(h);
      }
      break;
    }
    const uint64_t k = Split(n);
    if (m <= k) {
      ASSIGN_OR_RETURN(Hash256 right, RangeRoot(source, begin + k, end));
      proof.push_back(right);
      end = begin + k;
    } else {
      ASSIGN_OR_RETURN(Hash256 left, RangeRoot(source, begin, begin + k));
      proof.push_back(left);
      begin += k;
      m -= k;
      whole = false;
    }
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

Status VerifyInclusion(const Hash256& leaf_hash, uint64_t index, uint64_t size,
                       const std::vector<Hash256>& proof, const Hash256& root) {
  if (index >= size) {
    return Mismatch("leaf index " + std::to_string(index) + " is not below the tree size " +
                    std::to_string(size));
  }
  uint64_t fn = index, sn = size - 1;
  Hash256 r = leaf_hash;
  for (const Hash256& p : proof) {
    if (sn == 0) return Mismatch("the inclusion proof is longer than the tree is deep");
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Mismatch("the inclusion proof is shorter than the tree is deep");
  if (r != root) return Mismatch("the inclusion proof leads to another root");
  return Status::Ok();
}

Status VerifyConsistency(uint64_t first, uint64_t second, const Hash256& first_root,
                         const Hash256& second_root, const std::vector<Hash256>& proof) {
  if (first > second) return Mismatch("the first tree is larger than the second");
  if (first == 0) {
    if (!proof.empty()) return Mismatch("a proof from the empty tree must be empty");
    return Status::Ok();
  }
  if (first == second) {
    if (!proof.empty()) return Mismatch("a proof between equal sizes must be empty");
    if (first_root != second_root) return Mismatch("equal sizes with different roots");
    return Status::Ok();
  }
  if (proof.empty()) return Mismatch("the consistency proof is empty");
  std::vector<Hash256> path;
  if (std::has_single_bit(first)) path.push_back(first_root);
  path.insert(path.end(), proof.begin(), proof.end());
  uint64_t fn = first - 1, sn = second - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash256 fr = path[0], sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash256& c = path[i];
    if (sn == 0) return Mismatch("the consistency proof is longer than the tree is deep");
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Mismatch("the consistency proof is shorter than the tree is deep");
  if (fr != first_root) return Mismatch("the proof does not lead to the first root");
  if (sr != second_root) return Mismatch("the proof does not lead to the second root");
  return Status::Ok();
}

MemoryHashSource::MemoryHashSource(std::vector<Hash256> leaves) {
  levels_.push_back(std::move(leaves));
  while (levels_.back().size() > 1) {
    const std::vector<Hash256>& below = levels_.back();
    std::vector<Hash256> up;
    for (size_t i = 0; i + 1 < below.size(); i += 2) up.push_back(NodeHash(below[i], below[i + 1]));
    levels_.push_back(std::move(up));
  }
}

StatusOr<Hash256> MemoryHashSource::PerfectSubtree(int level, uint64_t index) const {
  if (level < 0 || static_cast<size_t>(level) >= levels_.size() ||
      index >= levels_[static_cast<size_t>(level)].size()) {
    return NotFoundError("subtree " + std::to_string(level) + "/" + std::to_string(index) +
                         " is beyond the " + std::to_string(levels_[0].size()) + " leaves");
  }
  return levels_[static_cast<size_t>(level)][index];
}

}  // namespace gapless::merkle
