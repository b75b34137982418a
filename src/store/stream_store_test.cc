#include "store/stream_store.h"

#include <gtest/gtest.h>

#include "base/crc32c.h"
#include "env/fault_injection_env.h"
#include "merkle/merkle.h"
#include "merkle/proof.h"
#include "store/hash_levels.h"

namespace gapless::store {
namespace {

using spool::FrameType;
constexpr char kDir[] = "/store/agent/epoch";

// A batch decoded as the collector sees it: payloads owned here, records view them.
struct Batch {
  BatchPosition at;
  std::vector<std::string> payloads;
  std::vector<Record> records;
  std::vector<Hash256> leaves;
};

std::string Payload(uint64_t seq, char variant = 'a') {
  return "record " + std::to_string(seq) + " " + std::string(20 + seq % 30, variant);
}

Batch MakeBatch(uint64_t first, uint32_t n, char variant = 'a', bool gap_declared = false) {
  Batch b;
  b.at.first_seq = first;
  b.at.gap_declared = gap_declared;
  for (uint32_t i = 0; i < n; ++i) b.payloads.push_back(Payload(first + i, variant));
  for (const std::string& p : b.payloads) {
    b.records.push_back(Record{FrameType::kData, crc32c::Value(p), p});
    b.leaves.push_back(spool::RecordLeafHash(FrameType::kData, p));
  }
  return b;
}

class StreamStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<StreamStore> Open(OpenReport* report = nullptr) {
    auto s = StreamStore::Open(&env_, kDir, epoch_, options_, report);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  AppendResult Append(StreamStore* s, const Batch& b) {
    auto r = s->Append(b.at, b.records, b.leaves);
    EXPECT_TRUE(r.ok()) << r.status.ToString();
    return r.ok() ? *r : AppendResult{};
  }
  std::vector<std::pair<uint64_t, std::string>> Stored() {
    std::vector<std::pair<uint64_t, std::string>> out;
    EXPECT_TRUE(ForEachStoredRecord(&env_, kDir, [&](uint64_t seq, FrameType, std::string_view p) {
                  out.emplace_back(seq, std::string(p));
                }).ok());
    return out;
  }
  static Hash256 ExpectedRoot(uint64_t n) {
    merkle::CompactRange r;
    for (uint64_t i = 0; i < n; ++i) r.Append(spool::RecordLeafHash(FrameType::kData, Payload(i)));
    return r.Root();
  }

  env::FaultInjectionEnv env_;
  spool::Epoch epoch_{1, 2, 3};
  StoreOptions options_{.segment_bytes = 4096};
};

TEST_F(StreamStoreTest, StoresInOrderAcrossSegmentsAndIsDurableOnlyAfterCommit) {
  auto s = Open();
  for (uint64_t first = 0; first < 1000; first += 100) {
    EXPECT_EQ(Append(s.get(), MakeBatch(first, 100)).appended, 100u);
  }
  EXPECT_EQ(s->next_seq(), 1000u);
  EXPECT_EQ(s->durable_next(), 0u);
  EXPECT_TRUE(s->has_pending());
  ASSERT_TRUE(s->Commit().ok());
  EXPECT_EQ(s->durable_next(), 1000u);
  EXPECT_FALSE(s->has_pending());
  auto root = s->Root();
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(*root, ExpectedRoot(1000));
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 1000u);
  for (uint64_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(stored[i].first, i);
    ASSERT_EQ(stored[i].second, Payload(i));
  }
  EXPECT_GT(env_.GetChildren(kDir)->size(), 5u);  // several segments
}

TEST_F(StreamStoreTest, ResentRecordsAreDuplicatesNotStoredTwice) {
  auto s = Open();
  Append(s.get(), MakeBatch(0, 50));
  ASSERT_TRUE(s->Commit().ok());
  const AppendResult r = Append(s.get(), MakeBatch(20, 60));  // 30 old, 30 new
  EXPECT_EQ(r.duplicates, 30u);
  EXPECT_EQ(r.appended, 30u);
  EXPECT_EQ(Append(s.get(), MakeBatch(0, 80)).duplicates, 80u);  // old ones from the cache
  ASSERT_TRUE(s->Commit().ok());
  EXPECT_EQ(Stored().size(), 80u);
  EXPECT_EQ(*s->Root(), ExpectedRoot(80));
  EXPECT_FALSE(s->stats().flagged);
}

TEST_F(StreamStoreTest, SameSeqOtherBytesIsKeptAsEvidenceAndFlagsTheStream) {
  auto s = Open();
  Append(s.get(), MakeBatch(0, 10));
  ASSERT_TRUE(s->Commit().ok());
  const AppendResult r = Append(s.get(), MakeBatch(5, 10, 'z'));  // 5 conflicting, 5 new
  EXPECT_EQ(r.equivocations, 5u);
  EXPECT_EQ(r.appended, 5u);
  ASSERT_TRUE(s->Commit().ok());
  EXPECT_TRUE(s->stats().flagged);
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 15u);
  EXPECT_EQ(stored[5].second, Payload(5));  // the first version stays the record
  const std::string evidence = env_.Contents(std::string(kDir) + "/evidence.seg");
  EXPECT_NE(evidence.find(Payload(5, 'z')), std::string::npos);
  EXPECT_NE(env_.Contents(std::string(kDir) + "/FLAGGED").find("seq 5"), std::string::npos);
  s.reset();
  EXPECT_TRUE(Open()->stats().flagged);  // survives a restart
}

TEST_F(StreamStoreTest, AHoleIsRefusedUnlessTheAgentDeclaresIt) {
  auto s = Open();
  Append(s.get(), MakeBatch(0, 10));
  const Batch hole = MakeBatch(15, 5);
  auto refused = s->Append(hole.at, hole.records, hole.leaves);
  EXPECT_EQ(refused.kind, AppendOutcome::Kind::kSequenceGap);
  EXPECT_EQ(s->next_seq(), 10u);
  const Batch declared = MakeBatch(15, 5, 'a', /*gap_declared=*/true);
  EXPECT_TRUE(Append(s.get(), declared).declared_gap);
  ASSERT_TRUE(s->Commit().ok());
  EXPECT_EQ(s->next_seq(), 20u);
  EXPECT_EQ(s->stats().declared_gap_records, 5u);
  EXPECT_FALSE(s->Root().ok());
  EXPECT_EQ(env_.Contents(std::string(kDir) + "/gaps"), "10 14\n");
  EXPECT_EQ(Stored().size(), 15u);
  s.reset();
  auto again = Open();
  EXPECT_EQ(again->next_seq(), 20u);
  EXPECT_EQ(env_.Contents(std::string(kDir) + "/leaves").size(), 20u * 32);
}

TEST_F(StreamStoreTest, PowerLossKeepsExactlyWhatWasCommitted) {
  auto s = Open();
  Append(s.get(), MakeBatch(0, 300));
  ASSERT_TRUE(s->Commit().ok());
  Append(s.get(), MakeBatch(300, 200));  // queued, never committed
  env_.SimulatePowerLoss();
  s.reset();
  OpenReport report;
  auto again = Open(&report);
  EXPECT_EQ(again->next_seq(), 300u);
  EXPECT_EQ(*again->Root(), ExpectedRoot(300));
  // The agent resends what was never acknowledged; it is stored once.
  EXPECT_EQ(Append(again.get(), MakeBatch(250, 250)).appended, 200u);
  ASSERT_TRUE(again->Commit().ok());
  EXPECT_EQ(*again->Root(), ExpectedRoot(500));
  EXPECT_EQ(Stored().size(), 500u);
}

TEST_F(StreamStoreTest, OpenRebuildsALeavesFileThatLagsTheRecords) {
  {
    auto s = Open();
    Append(s.get(), MakeBatch(0, 100));
    ASSERT_TRUE(s->Commit().ok());
  }
  const std::string leaves = std::string(kDir) + "/leaves";
  env_.SetDurableContents(leaves, env_.Contents(leaves).substr(0, 40 * 32 + 7));
  OpenReport report;
  auto s = Open(&report);
  EXPECT_EQ(report.leaves_rebuilt, 60u);
  EXPECT_EQ(env_.Contents(leaves).size(), 100u * 32);
  // Dedupe reads the rebuilt leaves.
  EXPECT_EQ(Append(s.get(), MakeBatch(0, 100)).duplicates, 100u);
}

TEST_F(StreamStoreTest, AFailedSyncIsStickyAndNeverAcknowledged) {
  auto s = Open();
  Append(s.get(), MakeBatch(0, 10));
  env_.SetSyncFailure(true);
  EXPECT_FALSE(s->Commit().ok());
  EXPECT_EQ(s->durable_next(), 0u);
  env_.SetSyncFailure(false);
  EXPECT_FALSE(s->Commit().ok());
  EXPECT_EQ(s->durable_next(), 0u);
  const Batch next = MakeBatch(10, 1);
  auto refused = s->Append(next.at, next.records, next.leaves);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.kind, AppendOutcome::Kind::kStoreFailed);
}

// Issue 21: the disk fills in the middle of a commit (segments rolled over, some bytes
// written): DiscardUnsynced cuts every file back to the last successful commit and a new
// Open holds exactly the acknowledged records; the agent's resend is stored once.
TEST_F(StreamStoreTest, ADiskFullInACommitIsDiscardedAndReopenedWithExactlyTheDurableRecords) {
  auto s = Open();
  Append(s.get(), MakeBatch(0, 100));
  ASSERT_TRUE(s->Commit().ok());
  ASSERT_TRUE(s->Commit().ok());  // nothing new: what is durable stays noted
  const uint64_t used = env_.UsedBytes();
  Append(s.get(), MakeBatch(100, 200));  // several new segments' worth
  env_.SetCapacity(used + 6000);         // part of it fits
  const Status failed = s->Commit();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(s->durable_next(), 100u);
  EXPECT_GT(env_.UsedBytes(), used) << "the commit wrote part of the batch before it failed";
  EXPECT_TRUE(s->failed());
  ASSERT_TRUE(s->DiscardUnsynced().ok());
  EXPECT_EQ(env_.UsedBytes(), used) << "every byte of the failed commit is cut";
  s.reset();
  env_.SetCapacity(~0ull);
  OpenReport report;
  auto again = Open(&report);
  EXPECT_EQ(report.torn_bytes_truncated, 0u);
  EXPECT_EQ(report.damaged_bytes, 0u);
  EXPECT_EQ(again->next_seq(), 100u);
  EXPECT_EQ(Append(again.get(), MakeBatch(50, 250)).appended, 200u);
  ASSERT_TRUE(again->Commit().ok());
  EXPECT_EQ(*again->Root(), ExpectedRoot(300));
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 300u);
  for (uint64_t i = 0; i < 300; ++i) EXPECT_EQ(stored[i], std::make_pair(i, Payload(i)));
  EXPECT_EQ(env_.Contents(std::string(kDir) + "/leaves").size(), 300u * 32);
}

// After a failed fsync the written bytes may be in the page cache only: they are cut, not
// trusted, even though reading them back would find them intact.
TEST_F(StreamStoreTest, AFailedFsyncIsDiscardedNotTrustedFromThePageCache) {
  auto s = Open();
  Append(s.get(), MakeBatch(0, 10));
  ASSERT_TRUE(s->Commit().ok());
  Append(s.get(), MakeBatch(10, 10));
  env_.SetSyncFailure(true);
  ASSERT_FALSE(s->Commit().ok());
  env_.SetSyncFailure(false);
  ASSERT_TRUE(s->DiscardUnsynced().ok());
  s.reset();
  auto again = Open();
  EXPECT_EQ(again->next_seq(), 10u) << "seqs 10..19 were never synced";
  EXPECT_EQ(Stored().size(), 10u);
}

// A checkpoint append that fails part way (disk full) is cut back before the next one, so
// the checkpoints file never holds a torn frame between two good ones.
TEST_F(StreamStoreTest, AFailedCheckpointAppendLeavesNoTornFrame) {
  auto s = Open();
  ASSERT_TRUE(s->AppendCheckpoint("first note\n").ok());
  env_.SetCapacity(env_.UsedBytes() + 10);
  EXPECT_FALSE(s->AppendCheckpoint(std::string(100, 'n')).ok());
  env_.SetCapacity(~0ull);
  ASSERT_TRUE(s->AppendCheckpoint("third note\n").ok());
  std::vector<std::string> notes;
  ASSERT_TRUE(
      ForEachCheckpoint(&env_, kDir, [&](std::string_view n) { notes.emplace_back(n); }).ok());
  EXPECT_EQ(notes, (std::vector<std::string>{"first note\n", "third note\n"}));
}

// Proofs from the stored level files equal proofs computed from the leaves in memory, for
// a tree with three tiers (level-8 and level-16 files), across commits of odd sizes and a
// power loss (the level files are not synced: Open rebuilds them).
TEST_F(StreamStoreTest, ProofsFromStoredLevelsEqualProofsFromTheLeaves) {
  options_.segment_bytes = 4 << 20;
  constexpr uint64_t kN = 70000;  // > 2^16, so level-16 has one entry
  auto s = Open();
  std::vector<Hash256> leaves;
  for (uint64_t first = 0; first < kN;) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kN - first, 1000 + first % 777));
    const Batch b = MakeBatch(first, n);
    leaves.insert(leaves.end(), b.leaves.begin(), b.leaves.end());
    Append(s.get(), b);
    ASSERT_TRUE(s->Commit().ok());
    first += n;
  }
  merkle::MemoryHashSource memory(leaves);
  auto check = [&](const char* when) {
    auto stored = StoredHashSource::Open(&env_, kDir);
    ASSERT_TRUE(stored.ok()) << stored.status().ToString();
    ASSERT_EQ((*stored)->leaves(), kN);
    EXPECT_EQ(env_.Contents(std::string(kDir) + "/level-8").size(), kN / 256 * 32) << when;
    EXPECT_EQ(env_.Contents(std::string(kDir) + "/level-16").size(), 32u) << when;
    EXPECT_FALSE(env_.FileExists(std::string(kDir) + "/level-24")) << when;
    EXPECT_EQ(*merkle::RangeRoot(**stored, 0, kN), ExpectedRoot(kN)) << when;
    for (uint64_t size : {uint64_t{1}, uint64_t{255}, uint64_t{256}, uint64_t{257}, uint64_t{65536},
                          uint64_t{65537}, kN - 1, kN}) {
      for (uint64_t index : {uint64_t{0}, size / 2, size - 1}) {
        auto a = merkle::InclusionProof(**stored, index, size);
        ASSERT_TRUE(a.ok()) << when << ": " << a.status().ToString();
        EXPECT_EQ(*a, *merkle::InclusionProof(memory, index, size)) << when << index << "/" << size;
      }
      auto c = merkle::ConsistencyProof(**stored, size / 3, size);
      ASSERT_TRUE(c.ok()) << when;
      EXPECT_EQ(*c, *merkle::ConsistencyProof(memory, size / 3, size)) << when << size;
    }
  };
  check("while open");
  env_.SimulatePowerLoss();
  s.reset();
  // The power loss kept none of the level entries (never synced); Open rebuilds them.
  EXPECT_LT(env_.Contents(std::string(kDir) + "/level-8").size(), kN / 256 * 32);
  s = Open();
  check("after a power loss and reopen");
  // A damaged level file is rewritten from the records at the next Open.
  env_.SetDurableContents(std::string(kDir) + "/level-8", std::string(64, 'x'));
  s.reset();
  s = Open();
  check("after a damaged level file and reopen");
}

}  // namespace
}  // namespace gapless::store
