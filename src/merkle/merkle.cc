#include "merkle/merkle.h"

#include <bit>

namespace gapless::merkle {

Hash256 EmptyRoot() { return Sha256::Digest(""); }

Hash256 LeafHash(std::string_view entry) {
  thread_local Sha256 h;
  const uint8_t prefix = 0x00;
  return h.Update(&prefix, 1).Update(entry).Finish();
}

Hash256 NodeHash(const Hash256& left, const Hash256& right) {
  thread_local Sha256 h;
  const uint8_t prefix = 0x01;
  return h.Update(&prefix, 1).Update(left.data(), 32).Update(right.data(), 32).Finish();
}

StatusOr<CompactRange> CompactRange::FromParts(uint64_t size, std::vector<Hash256> hashes) {
  if (hashes.size() != static_cast<size_t>(std::popcount(size))) {
    return InvalidArgumentError("compact range of size " + std::to_string(size) + " needs " +
                                std::to_string(std::popcount(size)) + " hashes, got " +
                                std::to_string(hashes.size()));
  }
  CompactRange r;
  r.size_ = size;
  r.hashes_ = std::move(hashes);
  return r;
}

void CompactRange::Append(const Hash256& leaf_hash) {
  // Like incrementing a binary counter: each trailing one bit of size_ is a perfect
  // subtree of equal height that merges with the carry.
  Hash256 carry = leaf_hash;
  for (uint64_t s = size_; s & 1; s >>= 1) {
    carry = NodeHash(hashes_.back(), carry);
    hashes_.pop_back();
  }
  hashes_.push_back(carry);
  ++size_;
}

Status CompactRange::AppendSubtree(int level, const Hash256& root) {
  if (level < 0 || level > 62 || (size_ & ((uint64_t{1} << level) - 1)) != 0) {
    return InvalidArgumentError("a subtree of 2^" + std::to_string(level) +
                                " leaves cannot follow " + std::to_string(size_) + " leaves");
  }
  Hash256 carry = root;
  for (uint64_t s = size_ >> level; s & 1; s >>= 1) {
    carry = NodeHash(hashes_.back(), carry);
    hashes_.pop_back();
  }
  hashes_.push_back(carry);
  size_ += uint64_t{1} << level;
  return Status::Ok();
}

Hash256 CompactRange::Root() const {
  if (hashes_.empty()) return EmptyRoot();
  Hash256 root = hashes_.back();
  for (size_t i = hashes_.size() - 1; i-- > 0;) root = NodeHash(hashes_[i], root);
  return root;
}

}  // namespace gapless::merkle
