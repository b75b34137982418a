// Perfect-subtree hashes of a stream's Merkle tree, kept beside its leaves so that any
// proof costs O(log n) small reads (the layout idea of C2SP tlog-tiles, with tiles 8
// levels high). docs/formats/store.md:
//
//   dir/leaves     tree level 0: every leaf hash, 32 bytes each (StreamStore writes it)
//   dir/level-8    entry i: the hash of the perfect subtree over leaves [i*2^8, (i+1)*2^8)
//   dir/level-16   entry i: over leaves [i*2^16, (i+1)*2^16)
//   ...            one file per multiple of 8 that has at least one complete subtree
//
// A perfect subtree of height h is the fold of 2^(h mod 8) consecutive entries of level
// 8*floor(h/8): one read of at most 4 KiB and at most 127 hashes.
//
// The level files are derived from the leaves: StreamStore appends to them at commit
// without syncing, and rewrites them from the records at every Open.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"
#include "env/env.h"
#include "merkle/merkle.h"
#include "merkle/proof.h"

namespace gapless::store {

inline constexpr int kTileHeight = 8;
inline constexpr size_t kTileWidth = size_t{1} << kTileHeight;

// Fed every leaf in seq order; yields the level entries the leaves complete.
class LevelBuilder {
 public:
  // Appends to (*out)[tier - 1] the 32-byte entries of each tier this leaf completes
  // (out grows as tiers appear).
  void Add(const Hash256& leaf, std::vector<std::string>* out);
  // The compact range of every leaf added so far, rebuilt from the trailing entries of
  // each tier (at most 255 per tier): O(log n) work, not one hash per leaf.
  merkle::CompactRange Range() const;
  uint64_t size() const { return leaves_; }  // leaves added

 private:
  std::vector<std::vector<Hash256>> partial_;  // [t]: the trailing entries of tier t (< 256)
  uint64_t leaves_ = 0;
};

// A merkle::HashSource over a store directory's leaves and level files. Reads what the
// files hold when asked, so it may be used while a collector appends; the caller asks
// only about trees no larger than the leaves stored.
class StoredHashSource : public merkle::HashSource {
 public:
  static StatusOr<std::unique_ptr<StoredHashSource>> Open(env::Env* env, const std::string& dir);
  StatusOr<Hash256> PerfectSubtree(int level, uint64_t index) const override;
  uint64_t leaves() const { return leaves_; }  // leaves stored when opened

 private:
  std::vector<std::unique_ptr<env::RandomAccessFile>> tiers_;  // [0] = leaves
  uint64_t leaves_ = 0;
};

}  // namespace gapless::store
