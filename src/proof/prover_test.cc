#include "proof/prover.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/checkpoint.h"
#include "identity/identity.h"
#include "proof/proof_doc.h"
#include "store/signed_store_test_util.h"
#include "store/stream_store.h"

namespace gapless::proof {
namespace {

using spool::FrameType;

// A collector data directory with one signed stream (store/signed_store_test_util.h);
// proofs of it are checked as an auditor checks them (VerifyProofDoc with the collector's
// key).
class ProverTest : public store::SignedDataDirTest {
 protected:
  ProverTest() : SignedDataDirTest("prover") {}

  // The proof verifies with the collector's key and proves `payload` at `seq`.
  void ExpectProves(const StatusOr<std::string>& json, uint64_t seq, const std::string& payload) {
    ASSERT_TRUE(json.ok()) << json.status().ToString();
    auto doc = ParseProofDoc(*json);
    ASSERT_TRUE(doc.ok()) << doc.status().ToString();
    std::string who;
    EXPECT_TRUE(VerifyProofDoc(*doc, vkey_, &who).ok());
    EXPECT_EQ(doc->seq, seq);
    EXPECT_EQ(doc->leaf_input, std::string(1, static_cast<char>(FrameType::kData)) + payload);
  }
};

// One Prover serves many proofs of a stream, and a seq signed after it read the
// checkpoints is proven too (it reads them again); one not signed yet is kNotFound.
TEST_F(ProverTest, ProvesManyRecordsAndPicksUpCheckpointsSignedSince) {
  Store(0, 100);
  Prover prover(env::Env::Posix(), data_);
  for (uint64_t seq : {0, 1, 50, 99}) {
    ExpectProves(prover.Inclusion("web-01", "", seq), seq, "record " + std::to_string(seq));
  }
  auto beyond = prover.Inclusion("web-01", "00aa", 150);
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.status().code(), StatusCode::kNotFound);
  EXPECT_NE(beyond.status().message().find("try again"), std::string::npos);
  Store(100, 100);
  ExpectProves(prover.Inclusion("web-01", "00aa", 150), 150, "record 150");
  auto consistency = prover.Consistency("web-01", "", 100);
  ASSERT_TRUE(consistency.ok()) << consistency.status().ToString();
  auto cdoc = ParseConsistencyDoc(*consistency);
  ASSERT_TRUE(cdoc.ok());
  std::string who;
  EXPECT_TRUE(VerifyConsistencyDoc(*cdoc, vkey_, &who).ok());
  EXPECT_EQ(prover.Inclusion("web-02", "", 0).status().code(), StatusCode::kNotFound);
}

// A record altered after it was signed yields no proof.
TEST_F(ProverTest, AStoreAlteredAfterItWasSignedYieldsNoProof) {
  Store(0, 100);
  store_.reset();
  const std::string segment = data_ + "/streams/web-01/00aa/" + spool::SegmentFileName(0);
  std::string bytes;
  {
    std::ifstream in(segment, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = bytes.find("record 42");
  ASSERT_NE(at, std::string::npos);
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at + 7));
    f.put('X');
  }
  Prover prover(env::Env::Posix(), data_);
  EXPECT_TRUE(prover.Inclusion("web-01", "", 41).ok());
  auto altered = prover.Inclusion("web-01", "", 42);
  EXPECT_FALSE(altered.ok());
}

}  // namespace
}  // namespace gapless::proof
