#include "store/stream_store.h"

#include <gtest/gtest.h>

#include "base/crc32c.h"
#include "env/fault_injection_env.h"
#include "merkle/merkle.h"

namespace gapless::store {
namespace {

using spool::FrameType;
constexpr char kDir[] = "/store/agent/epoch";

// A batch decoded as the collector sees it: payloads owned here, records view them.
struct Batch {
  wire::BatchHeader header;
  std::vector<std::string> payloads;
  std::vector<wire::WireRecord> records;
  std::vector<Hash256> leaves;
};

std::string Payload(uint64_t seq, char variant = 'a') {
  return "record " + std::to_string(seq) + " " + std::string(20 + seq % 30, variant);
}

Batch MakeBatch(uint64_t first, uint32_t n, char variant = 'a', uint8_t flags = 0) {
  Batch b;
  b.header.first_seq = first;
  b.header.count = n;
  b.header.flags = flags;
  for (uint32_t i = 0; i < n; ++i) b.payloads.push_back(Payload(first + i, variant));
  for (const std::string& p : b.payloads) {
    b.records.push_back(wire::WireRecord{FrameType::kData, crc32c::Value(p), p});
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
    auto r = s->Append(b.header, b.records, b.leaves);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
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
  auto refused =
      s->Append(MakeBatch(15, 5).header, MakeBatch(15, 5).records, MakeBatch(15, 5).leaves);
  EXPECT_EQ(refused.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->next_seq(), 10u);
  const Batch declared = MakeBatch(15, 5, 'a', wire::kBatchGapBefore);
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
  EXPECT_FALSE(
      s->Append(MakeBatch(10, 1).header, MakeBatch(10, 1).records, MakeBatch(10, 1).leaves).ok());
}

}  // namespace
}  // namespace gapless::store
