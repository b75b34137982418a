#include "proof/proof_doc.h"

#include <gtest/gtest.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "identity/identity.h"
#include "merkle/merkle.h"
#include "merkle/proof.h"
#include "spool/spool_format.h"

namespace gapless::proof {
namespace {

// A proof of record 5 of 11, signed by a fresh collector key.
struct Fixture {
  Fixture() {
    std::vector<Hash256> leaves;
    for (int i = 0; i < 11; ++i) {
      leaves.push_back(
          spool::RecordLeafHash(spool::FrameType::kData, "record " + std::to_string(i)));
    }
    merkle::MemoryHashSource source(leaves);
    auto generated = identity::SigningKey::Generate();
    key = std::move(*generated);
    checkpoint::Checkpoint cp;
    cp.origin = checkpoint::CollectorOrigin("c1", "web-01", "00ff");
    cp.size = 11;
    cp.root = *merkle::RangeRoot(source, 0, 11);
    doc.agent = "web-01";
    doc.epoch = "00ff";
    doc.seq = 5;
    doc.leaf_input = std::string(1, '\x01') + "record 5";
    doc.tree_size = 11;
    doc.inclusion_path = *merkle::InclusionProof(source, 5, 11);
    doc.checkpoint =
        *checkpoint::SignNote(checkpoint::FormatCheckpoint(cp), "gapless/collector/c1", *key);
    vkey = checkpoint::FormatVerifierKey("gapless/collector/c1", key->public_key());
    doc.collector_key = vkey;
  }
  std::unique_ptr<identity::SigningKey> key;
  ProofDoc doc;
  std::string vkey;
};

TEST(ProofDoc, FormatsParsesBackAndVerifies) {
  Fixture f;
  auto back = ParseProofDoc(FormatProofDoc(f.doc));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->inclusion_path, f.doc.inclusion_path);
  EXPECT_EQ(back->checkpoint, f.doc.checkpoint);
  EXPECT_EQ(back->leaf_input, f.doc.leaf_input);
  std::string who;
  ASSERT_TRUE(VerifyProofDoc(*back, f.vkey, &who).ok());
  EXPECT_EQ(who, "gapless/collector/c1");
}

TEST(ProofDoc, EachLieIsRefusedWithItsReason) {
  Fixture f;
  std::string who;
  auto expect_refused = [&](ProofDoc d, const std::string& why) {
    const Status s = VerifyProofDoc(d, f.vkey, &who);
    EXPECT_FALSE(s.ok()) << why;
    EXPECT_NE(s.message().find(why), std::string::npos) << s.ToString();
  };
  ProofDoc d = f.doc;
  d.seq = 6;
  expect_refused(d, "another root");
  d = f.doc;
  d.leaf_input = std::string(1, '\x01') + "record 5 changed";
  expect_refused(d, "another root");
  d = f.doc;
  d.inclusion_path[1][0] ^= 1;
  expect_refused(d, "another root");
  d = f.doc;
  d.tree_size = 12;
  expect_refused(d, "differs from the signed checkpoint");
  d = f.doc;
  d.agent = "web-02";
  expect_refused(d, "not of stream web-02/00ff");
  d = f.doc;
  d.checkpoint[d.checkpoint.find("\n11\n") + 1] = '2';  // the signed size, altered
  expect_refused(d, "altered or forged");
  auto other = identity::SigningKey::Generate();
  EXPECT_EQ(VerifyProofDoc(
                f.doc,
                checkpoint::FormatVerifierKey("gapless/collector/c1", (*other)->public_key()), &who)
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(VerifyProofDoc(f.doc, "not a key", &who).code(), StatusCode::kInvalidArgument);
}

TEST(ProofDoc, MalformedDocumentsNameWhatIsWrong) {
  Fixture f;
  const std::string good = FormatProofDoc(f.doc);
  for (const auto& [from, to, why] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"gapless-inclusion-proof/1", "gapless-inclusion-proof/9", "unknown proof format"},
           {"\"seq\": 5", "\"seq\": \"5\"", "\"seq\""},
           {"\"tree_size\": 11", "\"tree_size\": -1", "\"tree_size\""},
           {"\"inclusion_path\": [\"", "\"inclusion_path\": [\"!", "base64 of 32 bytes"},
           {"\"agent\"", "\"agnt\"", "\"agent\""},
       }) {
    std::string bad = good;
    const size_t at = bad.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    bad.replace(at, from.size(), to);
    auto d = ParseProofDoc(bad);
    ASSERT_FALSE(d.ok()) << to;
    EXPECT_NE(d.status().message().find(why), std::string::npos) << d.status().ToString();
  }
  EXPECT_FALSE(ParseProofDoc("").ok());
  EXPECT_FALSE(ParseProofDoc("[1,2]").ok());
}

// Consistency between the checkpoints of sizes 6 and 11 of the fixture's log.
struct ConsistencyFixture {
  ConsistencyFixture() {
    for (int i = 0; i < 11; ++i) {
      leaves.push_back(
          spool::RecordLeafHash(spool::FrameType::kData, "record " + std::to_string(i)));
    }
    merkle::MemoryHashSource source(leaves);
    auto generated = identity::SigningKey::Generate();
    key = std::move(*generated);
    doc.agent = "web-01";
    doc.epoch = "00ff";
    doc.old_checkpoint = Signed(source, 6);
    doc.new_checkpoint = Signed(source, 11);
    doc.consistency_path = *merkle::ConsistencyProof(source, 6, 11);
    vkey = checkpoint::FormatVerifierKey("gapless/collector/c1", key->public_key());
    doc.collector_key = vkey;
  }
  std::string Signed(const merkle::HashSource& source, uint64_t size) {
    checkpoint::Checkpoint cp;
    cp.origin = checkpoint::CollectorOrigin("c1", "web-01", "00ff");
    cp.size = size;
    cp.root = *merkle::RangeRoot(source, 0, size);
    return *checkpoint::SignNote(checkpoint::FormatCheckpoint(cp), "gapless/collector/c1", *key);
  }
  std::vector<Hash256> leaves;
  std::unique_ptr<identity::SigningKey> key;
  ConsistencyDoc doc;
  std::string vkey;
};

TEST(ConsistencyDoc, FormatsParsesBackAndVerifies) {
  ConsistencyFixture f;
  const std::string text = FormatConsistencyDoc(f.doc);
  EXPECT_EQ(*ProofFormat(text), kConsistencyFormat);
  auto back = ParseConsistencyDoc(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->consistency_path, f.doc.consistency_path);
  std::string who;
  ASSERT_TRUE(VerifyConsistencyDoc(*back, f.vkey, &who).ok());
  EXPECT_EQ(who, "gapless/collector/c1");
  EXPECT_FALSE(ParseProofDoc(text).ok());  // one format is not taken for the other
}

TEST(ConsistencyDoc, ARewrittenHistoryIsRefused) {
  ConsistencyFixture f;
  std::string who;
  auto expect_refused = [&](const ConsistencyDoc& d, const std::string& why) {
    const Status s = VerifyConsistencyDoc(d, f.vkey, &who);
    EXPECT_FALSE(s.ok()) << why;
    EXPECT_NE(s.message().find(why), std::string::npos) << s.ToString();
  };
  // The log signs a new head over a history in which record 3 was rewritten.
  std::vector<Hash256> forked = f.leaves;
  forked[3] = spool::RecordLeafHash(spool::FrameType::kData, "record 3, rewritten");
  merkle::MemoryHashSource fork_source(forked);
  ConsistencyDoc d = f.doc;
  d.new_checkpoint = f.Signed(fork_source, 11);
  d.consistency_path = *merkle::ConsistencyProof(fork_source, 6, 11);
  expect_refused(d, "root");
  d = f.doc;
  d.consistency_path[0][5] ^= 1;
  expect_refused(d, "root");
  d = f.doc;
  std::swap(d.old_checkpoint, d.new_checkpoint);
  expect_refused(d, "larger than the new one");
  d = f.doc;
  d.epoch = "00fe";
  expect_refused(d, "not of stream web-01/00fe");
  d = f.doc;
  d.old_checkpoint[d.old_checkpoint.find("\n6\n") + 1] = '7';
  expect_refused(d, "old checkpoint signature");
  auto other = identity::SigningKey::Generate();
  EXPECT_EQ(VerifyConsistencyDoc(
                f.doc,
                checkpoint::FormatVerifierKey("gapless/collector/c1", (*other)->public_key()), &who)
                .code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace gapless::proof
