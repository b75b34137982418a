// The collector with a real witness (src/witness, served over HTTP): every checkpoint it
// signs is cosigned and kept beside the store; a collector that presents another history
// of the same stream (a fork: same key, same origin, other records) is refused.
#include "collector/witnessing.h"

#include <filesystem>

#include "checkpoint/checkpoint.h"
#include "collector/transport_fixture.h"
#include "verify/verify.h"
#include "witness/server.h"
#include "witness/witness.h"

namespace gapless::transport {
namespace {

class WitnessingTest : public TransportFixture {
 protected:
  void SetUp() override {
    TransportFixture::SetUp();
    auto collector_key = identity::SigningKey::Load(copts_.signing_key);
    ASSERT_TRUE(collector_key.ok());
    witness::WitnessOptions wo;
    wo.name = "witness.test/w1";
    wo.data_dir = dir_ + "/witness";
    wo.logs.push_back(
        {"gapless/collector/" + copts_.name + "/",
         *checkpoint::ParseVerifierKey(checkpoint::FormatVerifierKey(
             collector::CheckpointKeyName(copts_.name), (*collector_key)->public_key()))});
    auto wkey = identity::SigningKey::Generate();
    auto w = witness::Witness::Open(env::Env::Posix(), wo, std::move(*wkey));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    witness_ = std::move(*w);
    auto server = witness::StartServer(witness_.get(), "127.0.0.1:0");
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    copts_.witnesses.push_back(
        {"http://127.0.0.1:" + std::to_string(server_->port()) + "/add-checkpoint",
         witness_->cosigner_key(), "", 5000});
    copts_.checkpoint_interval_ms = 50;
    copts_.witness_retry_ms = 50;
    alert::AlertOptions ao;
    ao.journal = dir_ + "/alerts.jsonl";
    auto alerts = alert::Alerts::Open(env::Env::Posix(), ao);
    ASSERT_TRUE(alerts.ok());
    alerts_ = std::move(*alerts);
    copts_.alerts = alerts_.get();
  }
  void TearDown() override {
    TransportFixture::TearDown();
    server_.reset();
    alerts_.reset();
  }
  // Sends `n` records with payload prefix `what`, waits for their acks, stops the
  // collector (which signs the last checkpoint and has it witnessed).
  collector::CollectorStats Ship(uint64_t n, const std::string& what) {
    StartCollector();
    Sender* s = StartSender(Destination(), key_);
    const uint64_t upto = spool_->next_seq() + n;
    for (uint64_t i = spool_->next_seq(); i < upto; ++i) {
      EXPECT_TRUE(spool_->Append(what + " " + std::to_string(i)).ok());
      if (i % 50 == 0) {
        EXPECT_TRUE(spool_->Sync().ok());
      }
    }
    EXPECT_TRUE(spool_->Sync().ok());
    EXPECT_TRUE(WaitFor([&] { return s->stats().acked_next == upto; }, 20000));
    senders_.clear();
    collector_->Stop();
    return collector_->stats();
  }
  // Every note in the stream's witnessed file, with its size.
  std::vector<std::pair<uint64_t, checkpoint::Note>> Witnessed() {
    std::vector<std::pair<uint64_t, checkpoint::Note>> out;
    EXPECT_TRUE(store::ForEachCheckpoint(
                    env::Env::Posix(), StreamDir(),
                    [&](std::string_view n) {
                      auto note = checkpoint::ParseNote(n);
                      EXPECT_TRUE(note.ok());
                      if (!note.ok()) return;
                      out.emplace_back(checkpoint::ParseCheckpoint(note->text)->size, *note);
                    },
                    store::StreamFiles::NoteLog::kWitnessed)
                    .ok());
    return out;
  }

  std::unique_ptr<witness::Witness> witness_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<alert::Alerts> alerts_;
};

TEST_F(WitnessingTest, CheckpointsAreCosignedAndKeptBesideTheStore) {
  OpenSpool();
  collector::CollectorStats st = Ship(400, "first");
  st = Ship(600, "second");  // a restarted collector: the witness tells it its size
  EXPECT_EQ(st.witnessing.refused, 0u);
  const auto witnessed = Witnessed();
  ASSERT_FALSE(witnessed.empty());
  EXPECT_EQ(witnessed.back().first, 1000u);  // the final checkpoint, cosigned
  auto collector_key = *checkpoint::ParseVerifierKey(collector_->verifier_key());
  auto cosigner = *checkpoint::ParseCosignerKey(witness_->cosigner_key());
  uint64_t last = 0;
  for (const auto& [size, note] : witnessed) {
    EXPECT_GE(size, last);
    last = size;
    EXPECT_TRUE(checkpoint::VerifyNote(note, collector_key).ok());
    EXPECT_TRUE(checkpoint::VerifyCosignature(note, cosigner).ok()) << size;
  }
  EXPECT_GE(st.witnessing.cosigned, 1u);
}

TEST_F(WitnessingTest, AForkOfTheSameStreamIsRefusedByTheWitness) {
  // Two spools with one epoch: the same stream, two histories.
  OpenSpool();
  spool_.reset();
  std::filesystem::copy(dir_ + "/spool", dir_ + "/spool-b",
                        std::filesystem::copy_options::recursive);
  OpenSpool();
  EXPECT_EQ(Ship(300, "honest").witnessing.refused, 0u);
  ASSERT_FALSE(Witnessed().empty());

  // The same collector key and name, another store, other records under the same seqs.
  auto b = spool::Spool::Open(env::Env::Posix(), dir_ + "/spool-b", {});
  ASSERT_TRUE(b.ok());
  spool_ = std::move(*b);
  copts_.data_dir = dir_ + "/collector-b";
  collector::CollectorStats st = Ship(300, "forked");
  EXPECT_GE(st.witnessing.refused, 1u);  // same size, other root
  EXPECT_EQ(st.witnessing.cosigned, 0u);
  st = Ship(200, "forked");
  EXPECT_GE(st.witnessing.refused, 1u);  // a consistency proof from the witness's size fails
  EXPECT_EQ(st.witnessing.cosigned, 0u);
  EXPECT_TRUE(Witnessed().empty());  // nothing of the fork was cosigned
  // A critical alert names the stream and the witness.
  const auto firing = alerts_->Firing();
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_EQ(firing[0].name, "witness_refused");
  EXPECT_EQ(firing[0].severity, "critical");
  EXPECT_NE(firing[0].subject.find("/agent-1/"), std::string::npos) << firing[0].subject;
}

TEST_F(WitnessingTest, AnUnreachableWitnessDelaysNothingAndIsRetried) {
  const uint16_t port = server_->port();
  server_.reset();  // the witness is down
  OpenSpool();
  StartCollector();
  Sender* s = StartSender(Destination(), key_);
  AppendRecords(200);
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == 200; }, 10000));  // acks flow
  ASSERT_TRUE(WaitFor([&] { return collector_->stats().witnessing.failed >= 2; }, 10000));
  EXPECT_EQ(collector_->stats().witnessing.cosigned, 0u);
  ASSERT_EQ(alerts_->Firing().size(), 1u);
  EXPECT_EQ(alerts_->Firing()[0].name, "witness_failing");
  // It comes back on the same port: the pending checkpoint is cosigned without new records.
  auto server = witness::StartServer(witness_.get(), "127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  server_ = std::move(*server);
  EXPECT_TRUE(WaitFor([&] { return collector_->stats().witnessing.cosigned >= 1; }, 10000));
  EXPECT_TRUE(alerts_->Firing().empty());  // resolved by the cosignature
  senders_.clear();
  collector_->Stop();
  ASSERT_FALSE(Witnessed().empty());
  EXPECT_EQ(Witnessed().back().first, 200u);
}

// `verify` checks the witnessed file against the checkpoint log and the witness's key.
TEST_F(WitnessingTest, VerifyChecksTheCosignaturesKeptInTheStore) {
  OpenSpool();
  Ship(500, "record");
  verify::Options o;
  o.collector_key = *checkpoint::ParseVerifierKey(collector_->verifier_key());
  o.witness_keys.push_back(*checkpoint::ParseCosignerKey(witness_->cosigner_key()));
  auto r = verify::VerifyStream(env::Env::Posix(), StreamDir(), o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->problems.empty()) << r->problems.front();
  EXPECT_GE(r->witnessed, 1u);
  EXPECT_EQ(r->witnessed_size, 500u);

  // A cosignature byte changed: refused as forged.
  const std::string path =
      store::StreamFiles(StreamDir()).Notes(store::StreamFiles::NoteLog::kWitnessed);
  std::string text = *env::ReadFileToString(env::Env::Posix(), path);
  const size_t line = text.rfind("\xE2\x80\x94 witness.test/w1 ");
  ASSERT_NE(line, std::string::npos);
  std::string bad = text;
  char& c = bad[line + 50];  // inside the Ed25519 signature, past the key id and time
  c = c == 'A' ? 'B' : 'A';
  ASSERT_TRUE(env::WriteFileAtomically(env::Env::Posix(), path, bad).ok());
  r = verify::VerifyStream(env::Env::Posix(), StreamDir(), o);
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->problems.empty());
  EXPECT_NE(r->problems.front().find("witness.test/w1"), std::string::npos) << r->problems.front();

  // The checkpoint log cut before the witnessed checkpoint: the cut is found.
  ASSERT_TRUE(env::WriteFileAtomically(env::Env::Posix(), path, text).ok());
  ASSERT_TRUE(env::WriteFileAtomically(env::Env::Posix(), StreamDir() + "/checkpoints", "").ok());
  r = verify::VerifyStream(env::Env::Posix(), StreamDir(), o);
  ASSERT_TRUE(r.ok());
  bool found = false;
  for (const auto& p : r->problems)
    found = found || p.find("not in the collector's checkpoint log") != std::string::npos;
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace gapless::transport
