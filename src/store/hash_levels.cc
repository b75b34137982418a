#include "store/hash_levels.h"

#include "merkle/merkle.h"
#include "store/layout.h"

namespace gapless::store {
namespace {

constexpr size_t kHashSize = 32;

// The root of the perfect subtree over hashes (a power of two of them), in place.
Hash256 Fold(std::vector<Hash256> hashes) {
  for (size_t n = hashes.size(); n > 1; n /= 2) {
    for (size_t i = 0; i < n / 2; ++i)
      hashes[i] = merkle::NodeHash(hashes[2 * i], hashes[2 * i + 1]);
  }
  return hashes[0];
}

}  // namespace

void LevelBuilder::Add(const Hash256& leaf, std::vector<std::string>* out) {
  if (partial_.empty()) partial_.emplace_back();
  partial_[0].push_back(leaf);
  ++leaves_;
  for (size_t t = 0; partial_[t].size() == kTileWidth; ++t) {
    const Hash256 up = Fold(std::move(partial_[t]));
    partial_[t].clear();
    if (out->size() < t + 1) out->resize(t + 1);
    (*out)[t].append(reinterpret_cast<const char*>(up.data()), up.size());
    if (partial_.size() < t + 2) partial_.emplace_back();
    partial_[t + 1].push_back(up);
  }
}

merkle::CompactRange LevelBuilder::Range() const {
  merkle::CompactRange range;
  for (size_t t = partial_.size(); t-- > 0;) {
    for (const Hash256& h : partial_[t]) {
      // Aligned by construction: every tier above holds only whole 2^(8(t+1)) groups.
      (void)range.AppendSubtree(static_cast<int>(t) * kTileHeight, h);
    }
  }
  return range;
}

StatusOr<std::unique_ptr<StoredHashSource>> StoredHashSource::Open(env::Env* env,
                                                                   const std::string& dir) {
  std::unique_ptr<StoredHashSource> s(new StoredHashSource());
  const StreamFiles files(dir);
  const std::string leaves = files.Leaves();
  ASSIGN_OR_RETURN(uint64_t bytes, env->GetFileSize(leaves));
  s->leaves_ = bytes / kHashSize;
  ASSIGN_OR_RETURN(auto f, env->NewRandomAccessFile(leaves));
  s->tiers_.push_back(std::move(f));
  for (int tier = 1; env->FileExists(files.Level(tier)); ++tier) {
    ASSIGN_OR_RETURN(auto t, env->NewRandomAccessFile(files.Level(tier)));
    s->tiers_.push_back(std::move(t));
  }
  return s;
}

StatusOr<Hash256> StoredHashSource::PerfectSubtree(int level, uint64_t index) const {
  if (level < 0 || level > 63) return InvalidArgumentError("subtree level out of range");
  const size_t tier = static_cast<size_t>(level / kTileHeight);
  const uint64_t count = uint64_t{1} << (level % kTileHeight);
  if (tier >= tiers_.size()) {
    return NotFoundError("no stored subtree at level " + std::to_string(level) +
                         " (the tree is smaller, or its level files are missing)");
  }
  std::vector<Hash256> hashes(count);
  ASSIGN_OR_RETURN(size_t got, tiers_[tier]->Read(index * count * kHashSize, count * kHashSize,
                                                  reinterpret_cast<char*>(hashes.data())));
  if (got != count * kHashSize) {
    return NotFoundError("subtree " + std::to_string(level) + "/" + std::to_string(index) +
                         " is not stored (yet)");
  }
  return Fold(std::move(hashes));
}

}  // namespace gapless::store
