#include "merkle/merkle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gapless::merkle {
namespace {

// RFC 9162 section 2.1.1, written straight from the definition with no shared code
// beyond SHA-256 itself.
Hash256 NaiveMth(const std::vector<std::string>& d, size_t begin, size_t end) {
  size_t n = end - begin;
  if (n == 0) return Sha256::Digest("");
  if (n == 1) return Sha256::Digest(std::string(1, '\0') + d[begin]);
  size_t k = 1;
  while (k * 2 < n) k *= 2;
  Hash256 l = NaiveMth(d, begin, begin + k);
  Hash256 r = NaiveMth(d, begin + k, end);
  std::string buf(1, '\x01');
  buf.append(reinterpret_cast<const char*>(l.data()), 32);
  buf.append(reinterpret_cast<const char*>(r.data()), 32);
  return Sha256::Digest(buf);
}

std::string Entry(size_t i) { return "entry-" + std::to_string(i) + std::string(i % 7, 'x'); }

TEST(Merkle, EmptyTreeIsHashOfEmptyString) {
  EXPECT_EQ(HexEncode(CompactRange().Root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Merkle, IncrementalRootEqualsNaiveDefinitionForEverySizeUpTo300) {
  std::vector<std::string> entries;
  CompactRange range;
  for (size_t n = 0; n <= 300; ++n) {
    ASSERT_EQ(range.size(), n);
    ASSERT_EQ(range.Root(), NaiveMth(entries, 0, n)) << "size " << n;
    ASSERT_EQ(range.hashes().size(), static_cast<size_t>(__builtin_popcountll(n)));
    entries.push_back(Entry(n));
    range.Append(LeafHash(entries.back()));
  }
}

TEST(Merkle, FromPartsRestoresAndValidates) {
  CompactRange range;
  for (size_t i = 0; i < 13; ++i) range.Append(LeafHash(Entry(i)));
  auto copy = CompactRange::FromParts(range.size(), range.hashes());
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(*copy, range);
  copy->Append(LeafHash("next"));
  range.Append(LeafHash("next"));
  EXPECT_EQ(copy->Root(), range.Root());
  EXPECT_FALSE(CompactRange::FromParts(13, {}).ok());
}

// A known value computed independently: the RFC 9162 root of the two one-byte entries
// "a" and "b" — SHA-256(0x01 || SHA-256(0x00||"a") || SHA-256(0x00||"b")).
TEST(Merkle, TwoLeafRootMatchesHandComputation) {
  CompactRange range;
  range.Append(LeafHash("a"));
  range.Append(LeafHash("b"));
  Hash256 la = Sha256::Digest(std::string("\0a", 2));
  Hash256 lb = Sha256::Digest(std::string("\0b", 2));
  std::string buf("\x01");
  buf.append(reinterpret_cast<const char*>(la.data()), 32);
  buf.append(reinterpret_cast<const char*>(lb.data()), 32);
  EXPECT_EQ(range.Root(), Sha256::Digest(buf));
}

}  // namespace
}  // namespace gapless::merkle
