#include "merkle/proof.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "merkle/merkle.h"

namespace gapless::merkle {
namespace {

// RFC 9162 sections 2.1.1, 2.1.3.1 and 2.1.4.1 written straight from the definitions
// (MTH, PATH, PROOF/SUBPROOF), sharing nothing with proof.cc but SHA-256 itself.
class Naive {
 public:
  explicit Naive(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      leaves_.push_back(Sha256::Digest(std::string(1, '\0') + "entry-" + std::to_string(i) +
                                       std::string(i % 5, 'x')));
    }
  }
  const std::vector<Hash256>& leaves() const { return leaves_; }

  Hash256 Mth(size_t begin, size_t end) {
    auto [it, fresh] = memo_.try_emplace({begin, end});
    if (!fresh) return it->second;
    const size_t n = end - begin;
    Hash256 h;
    if (n == 0) {
      h = Sha256::Digest("");
    } else if (n == 1) {
      h = leaves_[begin];
    } else {
      const size_t k = LargestPowerOfTwoBelow(n);
      const Hash256 l = Mth(begin, begin + k), r = Mth(begin + k, end);
      std::string buf(1, '\x01');
      buf.append(reinterpret_cast<const char*>(l.data()), 32);
      buf.append(reinterpret_cast<const char*>(r.data()), 32);
      h = Sha256::Digest(buf);
    }
    memo_[{begin, end}] = h;
    return h;
  }

  // PATH(m, D[begin:end])
  std::vector<Hash256> Path(size_t m, size_t begin, size_t end) {
    const size_t n = end - begin;
    if (n == 1) return {};
    const size_t k = LargestPowerOfTwoBelow(n);
    std::vector<Hash256> p;
    if (m < k) {
      p = Path(m, begin, begin + k);
      p.push_back(Mth(begin + k, end));
    } else {
      p = Path(m - k, begin + k, end);
      p.push_back(Mth(begin, begin + k));
    }
    return p;
  }

  // SUBPROOF(m, D[begin:end], b)
  std::vector<Hash256> Subproof(size_t m, size_t begin, size_t end, bool b) {
    const size_t n = end - begin;
    if (m == n) {
      if (b) return {};
      return {Mth(begin, end)};
    }
    const size_t k = LargestPowerOfTwoBelow(n);
    std::vector<Hash256> p;
    if (m <= k) {
      p = Subproof(m, begin, begin + k, b);
      p.push_back(Mth(begin + k, end));
    } else {
      p = Subproof(m - k, begin + k, end, false);
      p.push_back(Mth(begin, begin + k));
    }
    return p;
  }

 private:
  static size_t LargestPowerOfTwoBelow(size_t n) {
    size_t k = 1;
    while (k * 2 < n) k *= 2;
    return k;
  }
  std::vector<Hash256> leaves_;
  std::map<std::pair<size_t, size_t>, Hash256> memo_;
};

constexpr size_t kMax = 300;

// Values other than m below end: its neighbours and both ends (the likely confusions).
std::vector<size_t> Near(size_t m, size_t end) {
  std::vector<size_t> out;
  for (size_t v = m > 4 ? m - 4 : 0; v < std::min(end, m + 5); ++v) out.push_back(v);
  for (size_t v : {size_t{0}, size_t{1}, end - 1}) out.push_back(v);
  std::erase_if(out, [&](size_t v) { return v == m || v >= end; });
  return out;
}

TEST(MerkleProof, RangeRootIsTheTreeRoot) {
  Naive naive(kMax);
  MemoryHashSource source(naive.leaves());
  for (size_t n = 0; n <= kMax; ++n) {
    auto root = RangeRoot(source, 0, n);
    ASSERT_TRUE(root.ok());
    ASSERT_EQ(*root, naive.Mth(0, n)) << n;
  }
  EXPECT_EQ(RangeRoot(source, 3, 7).status().code(), StatusCode::kInvalidArgument);
}

TEST(MerkleProof, InclusionProofsAreTheRfcPathsAndVerifyForEverySizeUpTo300) {
  Naive naive(kMax);
  MemoryHashSource source(naive.leaves());
  for (size_t n = 1; n <= kMax; ++n) {
    const Hash256 root = naive.Mth(0, n);
    for (size_t m = 0; m < n; ++m) {
      auto proof = InclusionProof(source, m, n);
      ASSERT_TRUE(proof.ok());
      ASSERT_EQ(*proof, naive.Path(m, 0, n)) << "leaf " << m << " size " << n;
      ASSERT_TRUE(VerifyInclusion(naive.leaves()[m], m, n, *proof, root).ok())
          << "leaf " << m << " size " << n;
    }
  }
  EXPECT_EQ(InclusionProof(source, 5, 5).status().code(), StatusCode::kInvalidArgument);
}

TEST(MerkleProof, ConsistencyProofsAreTheRfcProofsAndVerifyForEveryPairUpTo300) {
  Naive naive(kMax);
  MemoryHashSource source(naive.leaves());
  for (size_t n = 1; n <= kMax; ++n) {
    const Hash256 second = naive.Mth(0, n);
    for (size_t m = 0; m <= n; ++m) {
      auto proof = ConsistencyProof(source, m, n);
      ASSERT_TRUE(proof.ok());
      const std::vector<Hash256> expected =
          m == 0 ? std::vector<Hash256>{} : naive.Subproof(m, 0, n, true);
      ASSERT_EQ(*proof, expected) << m << " → " << n;
      ASSERT_TRUE(VerifyConsistency(m, n, naive.Mth(0, m), second, *proof).ok()) << m << " → " << n;
    }
  }
  EXPECT_EQ(ConsistencyProof(source, 6, 5).status().code(), StatusCode::kInvalidArgument);
}

// A verifier holding the compact range of [0, a), the leaves [a, b) and the subtrees of
// [b, n) reaches the root of n — what an archive of a record range relies on.
TEST(MerkleProof, CompactRangePlusLeavesPlusRangeSubtreesGiveTheRoot) {
  Naive naive(kMax);
  MemoryHashSource source(naive.leaves());
  for (size_t n = 1; n <= 80; ++n) {
    for (size_t a = 0; a <= n; ++a) {
      for (size_t b = a; b <= n; ++b) {
        CompactRange left;
        for (size_t i = 0; i < a; ++i) left.Append(naive.leaves()[i]);
        auto range = CompactRange::FromParts(a, left.hashes());
        ASSERT_TRUE(range.ok());
        for (size_t i = a; i < b; ++i) range->Append(naive.leaves()[i]);
        auto right = RangeSubtrees(source, b, n);
        ASSERT_TRUE(right.ok());
        for (const auto& [level, h] : *right) ASSERT_TRUE(range->AppendSubtree(level, h).ok());
        ASSERT_EQ(range->size(), n);
        ASSERT_EQ(range->Root(), naive.Mth(0, n)) << a << " " << b << " " << n;
      }
    }
  }
  CompactRange three;
  for (int i = 0; i < 3; ++i) three.Append(naive.leaves()[i]);
  EXPECT_FALSE(three.AppendSubtree(1, naive.leaves()[0]).ok());  // not aligned
}

// The published RFC 6962 test vectors (certificate-transparency's reference tests): eight
// fixed entries, the roots of their prefixes, and the proofs for leaf 0 / size 1 in 8.
TEST(MerkleProof, MatchesThePublishedRfc6962Vectors) {
  const std::vector<std::string> entries = {
      "",
      std::string(1, '\x00'),
      "\x10",
      "\x20\x21",
      "\x30\x31",
      "\x40\x41\x42\x43",
      "\x50\x51\x52\x53\x54\x55\x56\x57",
      "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"};
  const char* roots[] = {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
                         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
                         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
                         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
                         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  const std::vector<std::string> path0 = {
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"};
  std::vector<Hash256> leaves;
  for (const std::string& e : entries) leaves.push_back(LeafHash(e));
  MemoryHashSource source(leaves);
  for (uint64_t n = 1; n <= 8; ++n) EXPECT_EQ(HexEncode(*RangeRoot(source, 0, n)), roots[n - 1]);
  auto hex = [](const std::vector<Hash256>& p) {
    std::vector<std::string> out;
    for (const Hash256& h : p) out.push_back(HexEncode(h));
    return out;
  };
  EXPECT_EQ(hex(*InclusionProof(source, 0, 8)), path0);
  EXPECT_EQ(hex(*ConsistencyProof(source, 1, 8)), path0);
}

// Every way of lying: a changed hash (each byte position), another index or size, a
// proof cut short or padded, another leaf or root. None may verify.
TEST(MerkleProof, TamperedInclusionProofsFail) {
  Naive naive(kMax);
  MemoryHashSource source(naive.leaves());
  size_t checked = 0;
  for (size_t n = 1; n <= kMax; n += (n < 70 ? 1 : 13)) {
    const Hash256 root = naive.Mth(0, n);
    for (size_t m = 0; m < n; ++m) {
      const std::vector<Hash256> proof = *InclusionProof(source, m, n);
      const Hash256& leaf = naive.leaves()[m];
      for (size_t i = 0; i < proof.size(); ++i) {
        std::vector<Hash256> bad = proof;
        bad[i][(i * 7 + m) % 32] ^= 0x01;
        ASSERT_FALSE(VerifyInclusion(leaf, m, n, bad, root).ok()) << m << "/" << n << " hash " << i;
      }
      for (size_t other : Near(m, n + 2)) {
        ASSERT_FALSE(VerifyInclusion(leaf, other, n, proof, root).ok())
            << "leaf " << m << " proven at index " << other << " of " << n;
      }
      // Another size, with that tree's root. (With this tree's root a proof can pass for
      // a size whose path has the same shape: the size is bound by the signed checkpoint
      // that names it with its root, not by the path.)
      for (size_t size = m + 1; size < n + 3 && size <= kMax; ++size) {
        if (size == n) continue;
        ASSERT_FALSE(VerifyInclusion(leaf, m, size, proof, naive.Mth(0, size)).ok())
            << "leaf " << m << " of " << n << " proven in size " << size;
      }
      if (!proof.empty()) {
        std::vector<Hash256> shorter(proof.begin(), proof.end() - 1);
        ASSERT_FALSE(VerifyInclusion(leaf, m, n, shorter, root).ok());
      }
      std::vector<Hash256> longer = proof;
      longer.push_back(root);
      ASSERT_FALSE(VerifyInclusion(leaf, m, n, longer, root).ok());
      ASSERT_FALSE(VerifyInclusion(naive.leaves()[(m + 1) % kMax], m, n, proof, root).ok());
      ASSERT_FALSE(VerifyInclusion(leaf, m, n, proof, naive.Mth(0, n + 1)).ok());
      ++checked;
    }
  }
  EXPECT_GT(checked, 3000u);
}

TEST(MerkleProof, TamperedConsistencyProofsFail) {
  Naive naive(kMax);
  MemoryHashSource source(naive.leaves());
  for (size_t n = 2; n <= kMax; n += (n < 70 ? 1 : 13)) {
    const Hash256 second = naive.Mth(0, n);
    for (size_t m = 1; m < n; ++m) {
      const Hash256 first = naive.Mth(0, m);
      const std::vector<Hash256> proof = *ConsistencyProof(source, m, n);
      for (size_t i = 0; i < proof.size(); ++i) {
        std::vector<Hash256> bad = proof;
        bad[i][(i * 5 + m) % 32] ^= 0x80;
        ASSERT_FALSE(VerifyConsistency(m, n, first, second, bad).ok()) << m << "→" << n;
      }
      for (size_t other : Near(m, n)) {
        if (other == 0) continue;
        ASSERT_FALSE(VerifyConsistency(other, n, naive.Mth(0, other), second, proof).ok())
            << m << "→" << n << " claimed from " << other;
      }
      if (n + 1 <= kMax) {
        ASSERT_FALSE(VerifyConsistency(m, n + 1, first, naive.Mth(0, n + 1), proof).ok());
      }
      ASSERT_FALSE(VerifyConsistency(m, n, naive.Mth(0, m - 1), second, proof).ok());
      ASSERT_FALSE(VerifyConsistency(m, n, first, naive.Mth(0, n - 1), proof).ok());
      std::vector<Hash256> shorter(proof.begin(), proof.end() - 1);
      ASSERT_FALSE(VerifyConsistency(m, n, first, second, shorter).ok()) << m << "→" << n;
      std::vector<Hash256> longer = proof;
      longer.push_back(second);
      ASSERT_FALSE(VerifyConsistency(m, n, first, second, longer).ok()) << m << "→" << n;
    }
  }
  // The trivial cases still bind their inputs.
  EXPECT_FALSE(VerifyConsistency(5, 5, naive.Mth(0, 5), naive.Mth(0, 4), {}).ok());
  EXPECT_FALSE(VerifyConsistency(0, 5, EmptyRoot(), naive.Mth(0, 5), {naive.Mth(0, 5)}).ok());
  EXPECT_FALSE(VerifyConsistency(6, 5, naive.Mth(0, 6), naive.Mth(0, 5), {}).ok());
}

}  // namespace
}  // namespace gapless::merkle
