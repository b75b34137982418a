#include "witness/witness.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/checkpoint.h"
#include "http/client.h"
#include "merkle/proof.h"
#include "witness/protocol.h"
#include "witness/server.h"

namespace gapless::witness {
namespace {

constexpr char kOrigin[] = "gapless/collector/c1/web-01/00ff";

Hash256 Leaf(int i) { return Sha256::Digest("leaf " + std::to_string(i)); }

// A log (a collector's stream) that signs its checkpoints and builds requests.
struct Log {
  Log() {
    auto k = identity::SigningKey::Generate();
    key = std::move(*k);
    for (int i = 0; i < 40; ++i) leaves.push_back(Leaf(i));
  }
  std::string Note(uint64_t size, std::string origin = kOrigin) const {
    merkle::MemoryHashSource source(leaves);
    checkpoint::Checkpoint cp{std::move(origin), size, *merkle::RangeRoot(source, 0, size), {}};
    return *checkpoint::SignNote(checkpoint::FormatCheckpoint(cp), "gapless/collector/c1", *key);
  }
  std::string Request(uint64_t old_size, uint64_t size) const {
    merkle::MemoryHashSource source(leaves);
    AddCheckpointRequest r;
    r.old_size = old_size;
    if (old_size > 0) r.proof = *merkle::ConsistencyProof(source, old_size, size);
    r.checkpoint = Note(size);
    return FormatAddCheckpoint(r);
  }
  checkpoint::Verifier verifier() const {
    return *checkpoint::ParseVerifierKey(
        checkpoint::FormatVerifierKey("gapless/collector/c1", key->public_key()));
  }
  std::shared_ptr<const identity::SigningKey> key;
  std::vector<Hash256> leaves;
};

class WitnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/witness_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    auto k = identity::SigningKey::Generate();
    witness_seed_ = std::move(*k);
    Open("gapless/collector/c1/");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Open(const std::string& trusted_origin) {
    WitnessOptions o;
    o.name = "witness.test/w1";
    o.data_dir = dir_;
    o.logs.push_back({trusted_origin, log_.verifier()});
    witness_.reset();
    auto w = Witness::Open(env::Env::Posix(), o, witness_seed_);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    witness_ = std::move(*w);
  }
  // The cosignature's timestamp, checked against the witness's key over the note.
  uint64_t CosignedAt(const std::string& note, const AddResult& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    auto cosigned = checkpoint::ParseNote(note + r.body);
    EXPECT_TRUE(cosigned.ok()) << cosigned.status().ToString();
    auto v = checkpoint::ParseCosignerKey(witness_->cosigner_key());
    EXPECT_TRUE(v.ok());
    auto ts = checkpoint::VerifyCosignature(*cosigned, *v);
    EXPECT_TRUE(ts.ok()) << ts.status().ToString();
    return ts.ok() ? *ts : 0;
  }

  std::string dir_;
  Log log_;
  std::shared_ptr<const identity::SigningKey> witness_seed_;
  std::unique_ptr<Witness> witness_;
};

TEST_F(WitnessTest, CosignsAGrowingLogAndTellsAStaleClientItsSize) {
  EXPECT_EQ(CosignedAt(log_.Note(5), witness_->AddCheckpoint(log_.Request(0, 5), 1000)), 1000u);
  EXPECT_EQ(CosignedAt(log_.Note(9), witness_->AddCheckpoint(log_.Request(5, 9), 1001)), 1001u);
  // A client that thinks the witness is still at 5 learns it is at 9.
  AddResult r = witness_->AddCheckpoint(log_.Request(5, 12), 1002);
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.content_type, "text/x.tlog.size");
  EXPECT_EQ(r.body, "9\n");
  // The same checkpoint again is cosigned again; then it grows from 9.
  CosignedAt(log_.Note(9), witness_->AddCheckpoint(log_.Request(9, 9), 1003));
  CosignedAt(log_.Note(40), witness_->AddCheckpoint(log_.Request(9, 40), 1004));
}

TEST_F(WitnessTest, AForkedOrRewrittenHistoryIsNeverCosigned) {
  CosignedAt(log_.Note(9), witness_->AddCheckpoint(log_.Request(0, 9), 1));
  Log fork;
  fork.key = log_.key;  // the log's own key: only the witness can tell
  fork.leaves[3] = Sha256::Digest("rewritten");
  EXPECT_EQ(witness_->AddCheckpoint(fork.Request(9, 20), 2).status, 422);
  EXPECT_EQ(witness_->AddCheckpoint(fork.Request(9, 9), 3).status, 409);  // same size, other root
  // A proof that lies: the honest proof, one hash changed.
  std::string req = log_.Request(9, 20);
  const size_t at = req.find('\n') + 1;
  req[at] = req[at] == 'A' ? 'B' : 'A';
  EXPECT_EQ(witness_->AddCheckpoint(req, 4).status, 422);
  // The honest log still gets its cosignature.
  CosignedAt(log_.Note(20), witness_->AddCheckpoint(log_.Request(9, 20), 5));
}

TEST_F(WitnessTest, RefusesUnknownLogsOtherKeysAndMalformedRequests) {
  Log stranger;  // a key the witness does not trust for this origin
  EXPECT_EQ(witness_->AddCheckpoint(stranger.Request(0, 5), 1).status, 403);
  AddCheckpointRequest other;
  other.checkpoint = log_.Note(5, "gapless/collector/c10/web-01/00ff");  // not under c1/
  EXPECT_EQ(witness_->AddCheckpoint(FormatAddCheckpoint(other), 1).status, 404);
  EXPECT_EQ(witness_->AddCheckpoint("old 01\n\n" + log_.Note(5), 1).status, 400);
  EXPECT_EQ(witness_->AddCheckpoint("old 6\n\n" + log_.Note(5), 1).status, 400);  // old > size
  EXPECT_EQ(witness_->AddCheckpoint("old 0\n" + log_.Note(5), 1).status, 400);    // no empty line
  EXPECT_EQ(witness_->AddCheckpoint("old 0\n\nnot a note\n", 1).status, 400);
  // From zero, the proof must be empty.
  AddCheckpointRequest padded;
  padded.proof.push_back(Leaf(1));
  padded.checkpoint = log_.Note(5);
  EXPECT_EQ(witness_->AddCheckpoint(FormatAddCheckpoint(padded), 1).status, 422);
  // None of that moved the witness.
  CosignedAt(log_.Note(5), witness_->AddCheckpoint(log_.Request(0, 5), 2));
}

TEST_F(WitnessTest, StateSurvivesARestartAndDamagedStateIsRefused) {
  CosignedAt(log_.Note(9), witness_->AddCheckpoint(log_.Request(0, 9), 1));
  Open("gapless/collector/c1/");
  AddResult r = witness_->AddCheckpoint(log_.Request(0, 5), 2);  // a rollback to 5
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body, "9\n");
  witness_.reset();
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    std::ofstream(e.path()) << "garbage\n";
  }
  WitnessOptions o;
  o.name = "witness.test/w1";
  o.data_dir = dir_;
  auto w = Witness::Open(env::Env::Posix(), o, witness_seed_);
  EXPECT_EQ(w.status().code(), StatusCode::kDataLoss) << w.status().ToString();
}

TEST_F(WitnessTest, ServesTheProtocolOverHttp) {
  auto server = StartServer(witness_.get(), "127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());
  http::Request req;
  req.url = base + "/add-checkpoint";
  req.body = log_.Request(0, 7);
  auto res = http::Send(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  CosignedAt(log_.Note(7), AddResult{res->status, res->content_type, res->body});
  res = http::Send(req);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 409);
  EXPECT_EQ(res->body, "7\n");
  http::Request get;
  get.method = "GET";
  get.url = base + "/";
  res = http::Send(get);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body, witness_->cosigner_key() + "\n");
  req.body = std::string(kMaxRequestBytes + 1, 'x');
  res = http::Send(req);
  EXPECT_TRUE(!res.ok() || res->status >= 400);
}

}  // namespace
}  // namespace gapless::witness
