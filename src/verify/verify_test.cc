#include "verify/verify.h"

#include <gtest/gtest.h>

#include "base/crc32c.h"
#include "checkpoint/checkpoint.h"
#include "env/fault_injection_env.h"
#include "identity/identity.h"
#include "spool/loss_record.h"
#include "spool/segment_reader.h"
#include "store/signed_store_test_util.h"
#include "store/stream_store.h"

namespace gapless::verify {
namespace {

using spool::FrameType;
constexpr char kDir[] = "/c/streams/web-01/0102";
const std::string kSegment = std::string(kDir) + "/" + spool::SegmentFileName(0);

struct Record {
  FrameType type;
  std::string payload;
};

// A store written through StreamStore, with checkpoints signed as the collector signs
// them, and ways to damage it.
class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = identity::SigningKey::Generate();
    ASSERT_TRUE(k.ok());
    key_ = std::move(*k);
    verifier_ = *checkpoint::ParseVerifierKey(
        checkpoint::FormatVerifierKey("gapless/collector/c1", key_->public_key()));
    auto s = store::StreamStore::Open(&env_, kDir, epoch_, {});
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
  }

  static std::string Payload(uint64_t seq) {
    return "record " + std::to_string(seq) + " " + std::string(seq % 13, 'x');
  }

  // Stores records [first, first + n) (a gap before first is declared), commits and
  // signs a checkpoint of everything stored.
  void Store(uint64_t first, uint64_t n, std::vector<Record> extra = {}) {
    std::vector<std::pair<FrameType, std::string>> records;
    for (uint64_t i = 0; i < n; ++i) records.emplace_back(FrameType::kData, Payload(first + i));
    for (Record& e : extra) records.emplace_back(e.type, std::move(e.payload));
    store::StoreAndSign(store_.get(), first, records, *key_,
                        checkpoint::CollectorOrigin("c1", "web-01", "0102"),
                        "gapless/collector/c1");
  }

  StreamReport Verify() {
    Options o;
    o.collector_key = verifier_;
    auto r = VerifyStream(&env_, kDir, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : StreamReport{};
  }

  static std::string Problems(const StreamReport& r) {
    std::string all;
    for (const auto& p : r.problems) all += p + "\n";
    return all;
  }

  // Rewrites the segment with its frames passed through edit (which may drop, reorder or
  // duplicate them); CRCs stay valid, as a careful attacker would keep them.
  void RewriteSegment(
      const std::function<void(std::vector<Record>*, std::vector<uint64_t>*)>& edit) {
    const std::string bytes = env_.Contents(kSegment);
    std::vector<Record> records;
    std::vector<uint64_t> seqs;
    auto file = env_.NewRandomAccessFile(kSegment);
    ASSERT_TRUE(file.ok());
    spool::SegmentReader reader(file->get(), spool::kSegmentHeaderSize, bytes.size());
    for (;;) {
      auto ev = reader.Next();
      ASSERT_TRUE(ev.ok());
      if (ev->kind != spool::SegmentReader::Kind::kFrame) break;
      records.push_back({ev->type, std::string(ev->payload)});
      seqs.push_back(ev->seq);
    }
    edit(&records, &seqs);
    std::string out = bytes.substr(0, spool::kSegmentHeaderSize);
    for (size_t i = 0; i < records.size(); ++i) {
      spool::AppendFrame(&out, records[i].type, seqs[i], records[i].payload,
                         crc32c::Value(records[i].payload));
    }
    env_.SetDurableContents(kSegment, out);
  }

  env::FaultInjectionEnv env_;
  spool::Epoch epoch_{1, 2};
  std::unique_ptr<identity::SigningKey> key_;
  checkpoint::Verifier verifier_;
  std::unique_ptr<store::StreamStore> store_;
};

TEST_F(VerifyTest, AnIntactStoreIsCleanAndEveryCheckpointVerifies) {
  Store(0, 500);
  Store(500, 500);
  const StreamReport r = Verify();
  EXPECT_EQ(r.verdict, Verdict::kClean) << Problems(r);
  EXPECT_EQ(r.records, 1000u);
  EXPECT_EQ(r.next_seq, 1000u);
  EXPECT_EQ(r.checkpoints, 2u);
  EXPECT_EQ(r.checkpoints_verified, 2u);
  EXPECT_EQ(r.signed_size, 1000u);
  EXPECT_EQ(r.root, store_->committed_root());
}

// Any single byte of any stored file changed: never clean, never merely incomplete.
TEST_F(VerifyTest, EveryFlippedByteOfEveryFileIsFound) {
  Store(0, 20);
  Store(20, 10);
  for (const std::string& name :
       {spool::SegmentFileName(0), std::string("leaves"), std::string("checkpoints")}) {
    const std::string path = std::string(kDir) + "/" + name;
    const std::string good = env_.Contents(path);
    ASSERT_FALSE(good.empty()) << name;
    for (size_t i = 0; i < good.size(); ++i) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ 0x04);
      env_.SetDurableContents(path, bad);
      const StreamReport r = Verify();
      ASSERT_EQ(r.verdict, Verdict::kTampered) << name << " byte " << i;
    }
    env_.SetDurableContents(path, good);
  }
  EXPECT_EQ(Verify().verdict, Verdict::kClean);
}

TEST_F(VerifyTest, RemovedReorderedDuplicatedOrTruncatedRecordsAreFound) {
  Store(0, 50);
  struct Case {
    const char* what;
    std::function<void(std::vector<Record>*, std::vector<uint64_t>*)> edit;
    const char* expect;
  };
  for (const Case& c : std::vector<Case>{
           {"removed",
            [](auto*r, auto*s) {
              r->erase(r->begin() + 10);
              s->erase(s->begin() + 10);
            },
            "nothing declared them gone"},
           {"reordered", [](auto*, auto*s) { std::swap((*s)[10], (*s)[11]); }, "reordered"},
           {"duplicated",
            [](auto*r, auto*s) {
              r->insert(r->begin() + 20, (*r)[19]);
              s->insert(s->begin() + 20, (*s)[19]);
            },
            "stored again"},
           {"truncated",
            [](auto*r, auto*s) {
              r->resize(40);
              s->resize(40);
            },
            "records at the end were removed"},
           {"rewritten in place", [](auto*r, auto*) { (*r)[5].payload = "forged"; },
            "does not match its stored leaf"},
       }) {
    const std::string good = env_.Contents(kSegment);
    RewriteSegment(c.edit);
    const StreamReport r = Verify();
    EXPECT_EQ(r.verdict, Verdict::kTampered) << c.what;
    EXPECT_NE(Problems(r).find(c.expect), std::string::npos) << c.what << ":\n" << Problems(r);
    env_.SetDurableContents(kSegment, good);
  }
}

TEST_F(VerifyTest, AMissingRangeIsDeclaredWithItsLossRecordOrReportedAsAGap) {
  Store(0, 100);
  // The agent's spool dropped 100..149 and said so: a LOSS record (seq 200) and the
  // batch after the hole declares it.
  spool::LossRecord loss;
  loss.reason = spool::LossReason::kSpoolFullDropOldest;
  loss.has_seq_range = true;
  loss.first_seq = 100;
  loss.last_seq = 149;
  loss.record_count = 50;
  Store(150, 50, {{FrameType::kLoss, loss.Encode()}});
  StreamReport r = Verify();
  EXPECT_EQ(r.verdict, Verdict::kIncomplete) << Problems(r);
  ASSERT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.missing[0].first, 100u);
  EXPECT_EQ(r.missing[0].last, 149u);
  ASSERT_EQ(r.declared_losses.size(), 1u);
  EXPECT_EQ(r.declared_losses[0].reason, "spool_full_drop_oldest");
  ASSERT_EQ(r.declared_gaps.size(), 1u);
  // A second hole that only the batch flag declared (its LOSS record not here yet).
  Store(260, 10);
  r = Verify();
  EXPECT_EQ(r.verdict, Verdict::kIncomplete) << Problems(r);
  EXPECT_EQ(r.missing.size(), 2u);
  EXPECT_EQ(r.declared_gaps.size(), 2u);
  // A hole nobody declared: tampering.
  RewriteSegment([](auto* recs, auto* seqs) {
    recs->erase(recs->begin() + 3, recs->begin() + 6);
    seqs->erase(seqs->begin() + 3, seqs->begin() + 6);
  });
  r = Verify();
  EXPECT_EQ(r.verdict, Verdict::kTampered);
  EXPECT_NE(Problems(r).find("seqs 3..5 missing, and nothing declared them gone"),
            std::string::npos)
      << Problems(r);
}

TEST_F(VerifyTest, AnotherKeyOrAForkedLogIsReported) {
  Store(0, 10);
  auto other = identity::SigningKey::Generate();
  Options o;
  o.collector_key = *checkpoint::ParseVerifierKey(
      checkpoint::FormatVerifierKey("gapless/collector/c1", (*other)->public_key()));
  auto r = VerifyStream(&env_, kDir, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->verdict, Verdict::kTampered);
  EXPECT_NE(Problems(*r).find("not signed by"), std::string::npos) << Problems(*r);
  // A second checkpoint of the same size and another root, properly signed: a fork.
  checkpoint::Checkpoint c;
  c.origin = checkpoint::CollectorOrigin("c1", "web-01", "0102");
  c.size = 10;
  c.root[0] = 1;
  ASSERT_TRUE(store_
                  ->AppendCheckpoint(*checkpoint::SignNote(checkpoint::FormatCheckpoint(c),
                                                           "gapless/collector/c1", *key_))
                  .ok());
  const StreamReport forked = Verify();
  EXPECT_EQ(forked.verdict, Verdict::kTampered);
  EXPECT_NE(Problems(forked).find("a fork"), std::string::npos) << Problems(forked);
}

// verify may run while the collector writes: a record cut off at the end of the newest
// segment, beyond what was signed, is noted, not tampering; one that hides signed
// records is.
TEST_F(VerifyTest, ARecordBeingWrittenAtTheEndIsNotTampering) {
  Store(0, 20);
  const std::string good = env_.Contents(kSegment);
  std::string frame;
  spool::AppendFrame(&frame, FrameType::kData, 20, "record 20 in flight",
                     crc32c::Value("record 20 in flight"));
  env_.SetDurableContents(kSegment, good + frame.substr(0, frame.size() / 2));
  StreamReport r = Verify();
  EXPECT_EQ(r.verdict, Verdict::kClean) << Problems(r);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("unfinished record"), std::string::npos) << r.notes[0];
  // A whole record beyond the signed size whose leaf is not written yet: also a note.
  env_.SetDurableContents(kSegment, good + frame);
  r = Verify();
  EXPECT_EQ(r.verdict, Verdict::kClean) << Problems(r);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("have no leaf yet"), std::string::npos) << r.notes[0];
  // Cut inside the last signed record instead: that hides signed records.
  env_.SetDurableContents(kSegment, good.substr(0, good.size() - 5));
  r = Verify();
  EXPECT_EQ(r.verdict, Verdict::kTampered);
  EXPECT_NE(Problems(r).find("hides signed records"), std::string::npos) << Problems(r);
}

// The agent signs its own tree; the collector keeps each one that matched its store. A
// collector (or anyone with its key) that rewrites a record and re-signs its checkpoints
// passes every collector-key check, but not the agent's.
class AgentCheckpointTest : public VerifyTest {
 protected:
  void SetUp() override {
    VerifyTest::SetUp();
    auto k = identity::SigningKey::Generate();
    ASSERT_TRUE(k.ok());
    agent_key_ = std::move(*k);
  }

  // Keeps an agent checkpoint of (size, root) as the collector does.
  void KeepAgentCheckpoint(uint64_t size, const Hash256& root,
                           const std::string& origin = checkpoint::AgentOrigin("web-01", "0102")) {
    checkpoint::Checkpoint c;
    c.origin = origin;
    c.size = size;
    c.root = root;
    auto note = checkpoint::SignNote(checkpoint::FormatCheckpoint(c),
                                     checkpoint::AgentKeyName("web-01"), *agent_key_);
    ASSERT_TRUE(note.ok());
    ASSERT_TRUE(
        store::AppendNoteFrame(&env_, std::string(kDir) + "/agent-checkpoints", *note, true).ok());
  }

  StreamReport VerifyWithAgentKey() {
    Options o;
    o.collector_key = verifier_;
    o.agent_keys["web-01"] = agent_key_->public_key();
    auto r = VerifyStream(&env_, kDir, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : StreamReport{};
  }

  std::unique_ptr<identity::SigningKey> agent_key_;
};

TEST_F(AgentCheckpointTest, TheAgentsCheckpointsVerifyAgainstAnIntactStore) {
  Store(0, 30);
  KeepAgentCheckpoint(30, store_->committed_root());
  Store(30, 20);
  StreamReport r = VerifyWithAgentKey();
  EXPECT_EQ(r.verdict, Verdict::kClean) << Problems(r);
  EXPECT_EQ(r.agent_checkpoints, 1u);
  EXPECT_EQ(r.agent_checkpoints_verified, 1u);
  EXPECT_EQ(r.agent_signed_size, 30u);
  // Without the agent's key the root is still compared, the signature is not.
  r = Verify();
  EXPECT_EQ(r.verdict, Verdict::kClean) << Problems(r);
  EXPECT_EQ(r.agent_checkpoints_verified, 0u);
}

TEST_F(AgentCheckpointTest, ARecordRewrittenAndReSignedByTheCollectorIsFound) {
  // What the agent sent and signed: records 0..39.
  Store(0, 40);
  const Hash256 agent_root = store_->committed_root();
  // The collector's store rebuilt with record 7 changed, leaves and checkpoints re-signed
  // with the collector's own key: every collector-side check passes.
  auto forged = store::StreamStore::Open(&env_, "/forged/streams/web-01/0102", epoch_, {});
  ASSERT_TRUE(forged.ok());
  std::vector<std::pair<FrameType, std::string>> records;
  for (uint64_t i = 0; i < 40; ++i) {
    records.emplace_back(FrameType::kData, i == 7 ? "record 7, quietly edited" : Payload(i));
  }
  store::StoreAndSign(forged->get(), 0, records, *key_,
                      checkpoint::CollectorOrigin("c1", "web-01", "0102"), "gapless/collector/c1");
  for (const std::string& name :
       {spool::SegmentFileName(0), std::string("leaves"), std::string("checkpoints")}) {
    env_.SetDurableContents(std::string(kDir) + "/" + name,
                            env_.Contents("/forged/streams/web-01/0102/" + name));
  }
  StreamReport r = Verify();
  ASSERT_EQ(r.verdict, Verdict::kClean) << "the forgery should pass the collector's checks\n"
                                        << Problems(r);
  KeepAgentCheckpoint(40, agent_root);
  r = VerifyWithAgentKey();
  EXPECT_EQ(r.verdict, Verdict::kTampered);
  EXPECT_NE(Problems(r).find("agent checkpoint 1 signed a root of size 40 that the stored "
                             "records do not give"),
            std::string::npos)
      << Problems(r);
  // Without the agent's key (as the collector's self-audit runs) the root still disagrees.
  r = Verify();
  EXPECT_EQ(r.verdict, Verdict::kTampered) << Problems(r);
}

TEST_F(AgentCheckpointTest, AnotherKeyAnotherStreamOrACutEndIsFound) {
  Store(0, 20);
  KeepAgentCheckpoint(20, store_->committed_root(), checkpoint::AgentOrigin("web-01", "0a0b"));
  StreamReport r = VerifyWithAgentKey();
  EXPECT_EQ(r.verdict, Verdict::kTampered);
  EXPECT_NE(Problems(r).find("another stream"), std::string::npos) << Problems(r);

  env_.SetDurableContents(std::string(kDir) + "/agent-checkpoints", "");
  KeepAgentCheckpoint(20, store_->committed_root());
  Options o;
  o.collector_key = verifier_;
  o.agent_keys["web-01"] = key_->public_key();  // not the agent's
  auto other = VerifyStream(&env_, kDir, o);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->verdict, Verdict::kTampered);
  EXPECT_NE(Problems(*other).find("agent checkpoint 1"), std::string::npos) << Problems(*other);

  // The agent signed 25 records that the collector had stored; only 20 are there now,
  // and the collector's own checkpoints were cut back to match.
  env_.SetDurableContents(std::string(kDir) + "/agent-checkpoints", "");
  KeepAgentCheckpoint(25, Hash256{});
  r = VerifyWithAgentKey();
  EXPECT_EQ(r.verdict, Verdict::kTampered);
  EXPECT_NE(Problems(r).find("the agent signed 25 records"), std::string::npos) << Problems(r);
}

}  // namespace
}  // namespace gapless::verify
