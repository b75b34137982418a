#include "spool/spool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "env/fault_injection_env.h"
#include "merkle/merkle.h"
#include "spool/spool_test_util.h"

namespace gapless::spool {
namespace {

using testing::kDir;
using testing::Payload;

class SpoolTest : public ::testing::Test {
 protected:
  std::unique_ptr<Spool> Open(const Options& o, RecoveryReport* report = nullptr) {
    return testing::OpenOrDie(&env_, o, report);
  }
  std::set<uint64_t> SegmentBases() {
    std::set<uint64_t> out;
    const std::vector<std::string> names = *env_.GetChildren(kDir);
    for (const std::string& name : names) {
      uint64_t base = 0;
      if (ParseSegmentFileName(name, &base)) out.insert(base);
    }
    return out;
  }
  // Closes the spool, loses power, and opens it again through recovery.
  std::unique_ptr<Spool> ReopenAfterPowerLoss(std::unique_ptr<Spool> spool,
                                              RecoveryReport* report) {
    spool.reset();
    env_.SimulatePowerLoss();
    return Open(testing::SmallOptions(), report);
  }
  env::FaultInjectionEnv env_;
};

TEST_F(SpoolTest, AppendSyncReadBack) {
  auto spool = Open(testing::SmallOptions());
  for (uint64_t i = 0; i < 100; ++i) {
    auto r = spool->Append(Payload(i));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->seq, i);
    EXPECT_FALSE(r->dropped);
  }
  EXPECT_EQ(spool->durable_size(), 0u);  // nothing is durable before a sync
  ASSERT_TRUE(spool->Sync().ok());
  EXPECT_EQ(spool->durable_size(), 100u);
  auto records = testing::ReadAll(spool.get());
  ASSERT_EQ(records.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i) EXPECT_EQ(records[i].payload, Payload(i));
  EXPECT_GT(SegmentBases().size(), 1u);  // 4 KiB segments: it rolled
}

TEST_F(SpoolTest, ReaderSeesOnlyDurableRecords) {
  auto spool = Open(testing::SmallOptions());
  ASSERT_TRUE(spool->Append("a").ok());
  ASSERT_TRUE(spool->Sync().ok());
  ASSERT_TRUE(spool->Append("b").ok());
  auto reader = spool->NewReader(0);
  ASSERT_TRUE(reader.ok());
  Record r;
  ASSERT_TRUE(*(*reader)->Next(&r));
  EXPECT_EQ(r.payload, "a");
  EXPECT_FALSE(*(*reader)->Next(&r));  // "b" is not durable yet
  ASSERT_TRUE(spool->WaitDurable(1).ok());
  ASSERT_TRUE(*(*reader)->Next(&r));
  EXPECT_EQ(r.payload, "b");
}

TEST_F(SpoolTest, SecondOpenOfSameDirectoryIsRefused) {
  auto spool = Open(testing::SmallOptions());
  EXPECT_EQ(Spool::Open(&env_, kDir, testing::SmallOptions()).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(SpoolTest, BadOptionsAreExplained) {
  Options o = testing::SmallOptions();
  o.quota_bytes = o.segment_bytes;
  auto s = Spool::Open(&env_, kDir, o);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("quota_bytes"), std::string::npos);
  EXPECT_EQ(ParseFullPolicy("ring_buffer").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseFullPolicy("drop_oldest"), FullPolicy::kDropOldest);
}

TEST_F(SpoolTest, OversizeRecordIsRejectedNotTruncated) {
  auto spool = Open(testing::SmallOptions());
  EXPECT_EQ(spool->Append(std::string(1025, 'x')).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(spool->next_seq(), 0u);
}

TEST_F(SpoolTest, MerkleRootOfDurableSizeMatchesLeavesReadBack) {
  auto spool = Open(testing::SmallOptions());
  for (uint64_t i = 0; i < 300; ++i) {
    ASSERT_TRUE(spool->Append(Payload(i)).ok());
    if (i % 37 == 0) {
      ASSERT_TRUE(spool->Sync().ok());
      merkle::CompactRange expect;
      for (const Record& r : testing::ReadAll(spool.get())) {
        expect.Append(RecordLeafHash(r.type, r.payload));
      }
      auto cp = spool->DurableCheckpoint();
      ASSERT_TRUE(cp.ok());
      EXPECT_EQ(cp->size, expect.size());
      EXPECT_EQ(cp->root, expect.Root());
    }
  }
}

TEST_F(SpoolTest, FailedSyncIsStickyUntilReopen) {
  auto spool = Open(testing::SmallOptions());
  ASSERT_TRUE(spool->Append("kept").ok());
  ASSERT_TRUE(spool->Sync().ok());
  ASSERT_TRUE(spool->Append("maybe").ok());
  EXPECT_TRUE(spool->sticky_error().ok());
  env_.SetSyncFailure(true);
  EXPECT_FALSE(spool->Sync().ok());
  env_.SetSyncFailure(false);
  // What the agent's spool_error alert reads (agent/agent_alerts.h).
  EXPECT_EQ(spool->sticky_error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(spool->sticky_error().message().find("spool write failed"), std::string::npos);
  // The disk may be fine again, but the spool does not pretend the write happened.
  EXPECT_EQ(spool->Append("refused").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(spool->Sync().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(spool->durable_size(), 1u);
  spool.reset();
  env_.SimulatePowerLoss();
  spool = Open(testing::SmallOptions());
  auto records = testing::ReadAll(spool.get());
  ASSERT_GE(records.size(), 1u);
  EXPECT_EQ(records[0].payload, "kept");
  EXPECT_TRUE(spool->Append("works again").ok());
  EXPECT_TRUE(spool->sticky_error().ok());
}

// Issue 16 item 1: an input's position is durable exactly with the records before it.
// After a power loss the position that survives is the one written after the last
// record that survived, never one ahead of what the spool holds.
TEST_F(SpoolTest, PositionsAreDurableWithTheRecordsBeforeThem) {
  auto spool = Open(testing::SmallOptions());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->SetPosition("file 1:2 in", "1000").ok());
  ASSERT_TRUE(spool->SetPosition("journald j", "cursor-a").ok());
  ASSERT_TRUE(spool->Sync().ok());
  for (int i = 10; i < 15; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->SetPosition("file 1:2 in", "1500").ok());  // never synced
  EXPECT_EQ(spool->Position("file 1:2 in"), "1500");
  env_.SimulatePowerLoss();
  spool.reset();  // its Close fails: its handles are dead
  spool = Open(testing::SmallOptions());
  EXPECT_EQ(spool->next_seq(), 10u);
  EXPECT_EQ(spool->Position("file 1:2 in"), "1000");
  EXPECT_EQ(spool->Position("journald j"), "cursor-a");
  EXPECT_EQ(spool->Position("nothing"), std::nullopt);
  EXPECT_EQ(testing::ReadAll(spool.get()).size(), 10u);  // positions are not records
}

// Positions outlive the segments they were written in: every new segment starts with
// all of them, so removing consumed segments loses none; a forgotten one is not carried.
// Reopening again and again with nothing appended keeps them too.
TEST_F(SpoolTest, PositionsSurviveSegmentRemovalAndRepeatedReopening) {
  Options o = testing::SmallOptions();
  auto spool = Open(o);
  ASSERT_TRUE(spool->AddCursor("dest", true).ok());
  ASSERT_TRUE(spool->SetPosition("a", "1").ok());
  ASSERT_TRUE(spool->SetPosition("gone", "7").ok());
  spool->ForgetPosition("gone");
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->Sync().ok());
  ASSERT_TRUE(spool->AdvanceCursor("dest", 200).ok());
  ASSERT_GT(*SegmentBases().begin(), 0u) << "the first segments were removed";
  ASSERT_TRUE(spool->Close().ok());
  for (int k = 0; k < 3; ++k) {
    spool = Open(o);
    EXPECT_EQ(spool->Position("a"), "1") << k;
    env_.SimulateProcessCrash();
    spool.reset();
  }
  spool = Open(o);
  EXPECT_EQ(spool->Position("a"), "1");
  EXPECT_EQ(spool->Position("gone"), std::nullopt);
  EXPECT_EQ(spool->next_seq(), 200u);
  EXPECT_TRUE(spool->Append("after").ok());
  EXPECT_EQ(spool->SetPosition("", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(spool->SetPosition("k", std::string(kMaxPositionValueBytes + 1, 'v')).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SpoolTest, DiskFullIsStickyAndLosesNothingDurable) {
  auto spool = Open(testing::SmallOptions());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->Sync().ok());
  env_.SetCapacity(env_.UsedBytes() + 100);
  for (int i = 5; i < 20; ++i) (void)spool->Append(Payload(i));
  EXPECT_FALSE(spool->Sync().ok());
  EXPECT_EQ(spool->Append("x").status().code(), StatusCode::kFailedPrecondition);
  spool.reset();
  env_.SetCapacity(~0ull);
  env_.SimulatePowerLoss();
  RecoveryReport report;
  spool = Open(testing::SmallOptions(), &report);
  EXPECT_TRUE(report.damage.empty());
  auto records = testing::ReadAll(spool.get());
  ASSERT_GE(records.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(records[i].payload, Payload(i));
}

// Issue 21: a full disk is survived without a reopen. While the disk is full, Heal fails
// and the error stays; once there is room, Heal writes the unsynced records again with
// their seqs, and the spool holds every record once, in order, also after a power loss.
TEST_F(SpoolTest, DiskFullHealsWithoutAReopenAndKeepsEveryRecordOnce) {
  auto spool = Open(testing::SmallOptions());
  ASSERT_TRUE(spool->SetPosition("file", "0").ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->Sync().ok());
  env_.SetCapacity(env_.UsedBytes() + 100);
  // Enough to roll segments (4 KiB each): the failed commit began new segment files.
  for (int i = 5; i < 60; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->SetPosition("file", "60").ok());
  EXPECT_FALSE(spool->Sync().ok());
  EXPECT_EQ(spool->Append("x").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(spool->Heal().ok()) << "the disk is still full";
  EXPECT_EQ(spool->Append("x").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(spool->durable_size(), 5u);
  env_.SetCapacity(~0ull);
  ASSERT_TRUE(spool->Heal().ok());
  EXPECT_TRUE(spool->sticky_error().ok());
  EXPECT_EQ(spool->durable_size(), 60u);
  EXPECT_EQ(spool->stats().heals, 1u);
  EXPECT_GE(spool->stats().write_failures, 2u);
  for (int i = 60; i < 70; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->Sync().ok());
  auto live = testing::ReadAll(spool.get());
  ASSERT_EQ(live.size(), 70u);
  for (uint64_t i = 0; i < 70; ++i) {
    EXPECT_EQ(live[i].seq, i);
    EXPECT_EQ(live[i].payload, Payload(i));
  }
  auto cp = spool->DurableCheckpoint();
  ASSERT_TRUE(cp.ok());
  RecoveryReport report;
  spool = ReopenAfterPowerLoss(std::move(spool), &report);
  EXPECT_TRUE(report.damage.empty());
  EXPECT_EQ(report.frontier_mismatches, 0u);
  EXPECT_EQ(report.next_seq, 70u);
  EXPECT_EQ(spool->Position("file"), "60");
  auto records = testing::ReadAll(spool.get());
  ASSERT_EQ(records.size(), 70u);
  for (uint64_t i = 0; i < 70; ++i) EXPECT_EQ(records[i].payload, Payload(i));
  auto again = spool->DurableCheckpoint();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->root, cp->root);
}

// After a failed fsync the bytes written before it may be in the page cache and not on
// the disk. Heal does not trust them: it cuts them and writes them again, so a power loss
// after the heal keeps them (and no seq is written twice).
TEST_F(SpoolTest, AFailedFsyncIsHealedByRewritingNotByTrustingThePageCache) {
  auto spool = Open(testing::SmallOptions());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->Sync().ok());
  for (int i = 3; i < 30; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  env_.SetSyncFailure(true);
  EXPECT_FALSE(spool->Sync().ok());
  EXPECT_FALSE(spool->Heal().ok());
  env_.SetSyncFailure(false);
  ASSERT_TRUE(spool->Heal().ok());
  EXPECT_EQ(spool->durable_size(), 30u);
  RecoveryReport report;
  spool = ReopenAfterPowerLoss(std::move(spool), &report);
  EXPECT_TRUE(report.damage.empty());
  EXPECT_EQ(report.next_seq, 30u);
  auto records = testing::ReadAll(spool.get());
  ASSERT_EQ(records.size(), 30u);
  for (uint64_t i = 0; i < 30; ++i) EXPECT_EQ(records[i].seq, i);
}

// A consumer that reads to the end of a segment and advances its cursor there removes
// that segment; the same reader must go on into the next one (found by the TCP
// backpressure test under ASan timing).
TEST_F(SpoolTest, ReaderContinuesAfterItsFinishedSegmentIsRemoved) {
  auto spool = Open(testing::SmallOptions());
  ASSERT_TRUE(spool->AddCursor("dest", true).ok());
  for (uint64_t i = 0; i < 200; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->Sync().ok());
  ASSERT_GT(SegmentBases().size(), 2u);
  const uint64_t second = *std::next(SegmentBases().begin());
  auto reader = spool->NewReader(0);
  ASSERT_TRUE(reader.ok());
  Record r;
  while ((*reader)->next_seq() < second) ASSERT_TRUE(*(*reader)->Next(&r));
  ASSERT_TRUE(spool->AdvanceCursor("dest", second).ok());
  ASSERT_EQ(SegmentBases().count(0), 0u) << "the first segment should be gone";
  for (uint64_t i = second; i < 200; ++i) {
    StatusOr<bool> more = (*reader)->Next(&r);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    ASSERT_TRUE(*more);
    ASSERT_EQ(r.seq, i);
    ASSERT_EQ(r.payload, Payload(i));
  }
}

TEST_F(SpoolTest, CursorsSurviveCrashAndHoldSegments) {
  auto spool = Open(testing::SmallOptions());
  ASSERT_TRUE(spool->AddCursor("a", true).ok());
  ASSERT_TRUE(spool->AddCursor("b", true).ok());
  ASSERT_TRUE(spool->AddCursor("optional", false).ok());
  for (uint64_t i = 0; i < 200; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->Sync().ok());
  const std::set<uint64_t> before = SegmentBases();
  ASSERT_GT(before.size(), 5u);

  EXPECT_EQ(spool->AdvanceCursor("a", 201).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(spool->AdvanceCursor("a", 200).ok());
  EXPECT_EQ(SegmentBases(), before);  // b has not moved: nothing may go
  ASSERT_TRUE(spool->AdvanceCursor("b", 120).ok());
  for (uint64_t base : SegmentBases()) {
    // Every remaining segment either holds seq >= 120 or is the one containing 120.
    auto it = before.upper_bound(base);
    EXPECT_TRUE(it == before.end() || *it > 120) << base;
  }
  EXPECT_LT(SegmentBases().size(), before.size());
  EXPECT_LE(spool->oldest_seq(), 120u);

  env_.SimulatePowerLoss();
  spool.reset();
  spool = Open(testing::SmallOptions());
  EXPECT_EQ(*spool->CursorPosition("a"), 200u);
  EXPECT_EQ(*spool->CursorPosition("b"), 120u);
  // The optional cursor held nothing back: it is now behind the oldest retained seq, and
  // reading from it says so instead of silently skipping.
  EXPECT_LT(*spool->CursorPosition("optional"), spool->oldest_seq());
  EXPECT_EQ(spool->NewReader(*spool->CursorPosition("optional")).status().code(),
            StatusCode::kNotFound);
  auto reader = spool->NewReader(120);
  ASSERT_TRUE(reader.ok());
  Record r;
  ASSERT_TRUE(*(*reader)->Next(&r));
  EXPECT_EQ(r.seq, 120u);
  EXPECT_EQ(r.payload, Payload(120));
}

TEST_F(SpoolTest, NoRequiredCursorMeansNothingIsRemoved) {
  auto spool = Open(testing::SmallOptions());
  ASSERT_TRUE(spool->AddCursor("optional", false).ok());
  for (uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->Sync().ok());
  auto before = SegmentBases();
  ASSERT_TRUE(spool->AdvanceCursor("optional", 100).ok());
  EXPECT_EQ(SegmentBases(), before);
}

// A destination taken out of the configuration must stop holding segments, and stay
// gone after a crash.
TEST_F(SpoolTest, RemovedCursorNoLongerHoldsSegments) {
  auto spool = Open(testing::SmallOptions());
  ASSERT_TRUE(spool->AddCursor("kept", true).ok());
  ASSERT_TRUE(spool->AddCursor("gone", true).ok());
  for (uint64_t i = 0; i < 200; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->Sync().ok());
  ASSERT_TRUE(spool->AdvanceCursor("kept", 200).ok());
  const size_t held = SegmentBases().size();
  ASSERT_GT(held, 5u);  // "gone" is at 0
  EXPECT_EQ(spool->RemoveCursor("nobody").code(), StatusCode::kNotFound);
  ASSERT_TRUE(spool->RemoveCursor("gone").ok());
  EXPECT_LT(SegmentBases().size(), held);
  EXPECT_EQ(spool->CursorNames(), std::vector<std::string>{"kept"});
  env_.SimulatePowerLoss();
  spool.reset();
  spool = Open(testing::SmallOptions());
  EXPECT_EQ(spool->CursorNames(), std::vector<std::string>{"kept"});
  EXPECT_EQ(spool->CursorPosition("gone").status().code(), StatusCode::kNotFound);
}

Options TinyQuota(FullPolicy policy) {
  Options o = testing::SmallOptions();
  o.quota_bytes = 8 * o.segment_bytes;
  o.full_policy = policy;
  return o;
}

TEST_F(SpoolTest, BlockPolicyRefusesAndLosesNothing) {
  auto spool = Open(TinyQuota(FullPolicy::kBlock));
  ASSERT_TRUE(spool->AddCursor("dest", true).ok());
  uint64_t accepted = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    auto r = spool->Append(Payload(accepted));
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
      break;
    }
    ASSERT_EQ(r->seq, accepted);
    ++accepted;
  }
  ASSERT_LT(accepted, 1000u) << "quota never reached";
  ASSERT_TRUE(spool->Sync().ok());
  EXPECT_FALSE(spool->WaitForRoom(Payload(accepted).size(), 10));
  EXPECT_EQ(spool->stats().full_refusals, 1u);

  // A consumer frees space while a producer waits for room.
  std::thread consumer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(spool->AdvanceCursor("dest", spool->durable_size()).ok());
  });
  EXPECT_TRUE(spool->WaitForRoom(Payload(accepted).size(), 10'000));
  consumer.join();
  auto r = spool->Append(Payload(accepted));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->seq, accepted);
  ASSERT_TRUE(spool->Sync().ok());
  EXPECT_EQ(spool->stats().dropped_records, 0u);
  EXPECT_TRUE(testing::LossRecords(testing::ReadAll(spool.get())).empty());
}

TEST_F(SpoolTest, InputLossRecordFitsWhenDataIsRefused) {
  auto spool = Open(TinyQuota(FullPolicy::kBlock));
  ASSERT_TRUE(spool->AddCursor("dest", true).ok());
  uint64_t accepted = 0;
  while (spool->Append(Payload(accepted)).ok()) ++accepted;
  LossRecord udp;
  udp.reason = LossReason::kUdpKernelDrop;
  udp.record_count = 17;
  udp.detail = "syslog:udp:5514";
  auto seq = spool->AppendLoss(udp);
  ASSERT_TRUE(seq.ok()) << seq.status().ToString();
  EXPECT_EQ(*seq, accepted);
  ASSERT_TRUE(spool->Sync().ok());
  const auto losses = testing::LossRecords(testing::ReadAll(spool.get()));
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_EQ(losses[0], udp);
  // The reserve is finite: once it is used up the caller is told, not ignored.
  Status last = Status::Ok();
  for (int i = 0; i < 1000 && last.ok(); ++i) last = spool->AppendLoss(udp).status();
  EXPECT_EQ(last.code(), StatusCode::kResourceExhausted);
}

TEST_F(SpoolTest, DropOldestWritesLossRecordsForExactlyTheDroppedSeqs) {
  auto spool = Open(TinyQuota(FullPolicy::kDropOldest));
  ASSERT_TRUE(spool->AddCursor("dest", true).ok());  // never advances: collector is down
  std::set<uint64_t> data_seqs;
  for (uint64_t i = 0; i < 2000; ++i) {
    auto r = spool->Append(Payload(i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_FALSE(r->dropped);  // drop_oldest never refuses the newest
    data_seqs.insert(r->seq);
    if (i % 10 == 0) {
      ASSERT_TRUE(spool->Sync().ok());
    }
  }
  ASSERT_TRUE(spool->Sync().ok());
  auto records = testing::ReadAll(spool.get());
  std::set<uint64_t> present;
  for (const Record& r : records) {
    if (r.type == FrameType::kData) present.insert(r.seq);
  }
  // The consumer never advanced, so every seq below the oldest retained one is lost to
  // it, and the newest LOSS record alone must name all of them: earlier LOSS records
  // were themselves dropped with their segments.
  const auto losses = testing::LossRecords(records);
  ASSERT_FALSE(losses.empty());
  const uint64_t oldest = spool->oldest_seq();
  ASSERT_GT(oldest, 0u);
  for (const LossRecord& l : losses) {
    EXPECT_EQ(l.reason, LossReason::kSpoolFullDropOldest);
    ASSERT_TRUE(l.has_seq_range);
    EXPECT_EQ(l.first_seq, 0u);
    EXPECT_EQ(l.record_count, l.last_seq - l.first_seq + 1);
  }
  EXPECT_EQ(losses.back().last_seq + 1, oldest);
  EXPECT_EQ(spool->stats().dropped_records, oldest);
  // Every seq at or above the oldest is present: a data record or a LOSS record.
  std::set<uint64_t> present_any;
  for (const Record& r : records) present_any.insert(r.seq);
  for (uint64_t s = oldest; s < spool->next_seq(); ++s) EXPECT_EQ(present_any.count(s), 1u) << s;
  for (uint64_t s : data_seqs) {
    EXPECT_TRUE(s < oldest ? present.count(s) == 0 : present.count(s) == 1) << s;
  }
  EXPECT_LE(spool->stats().bytes_used, TinyQuota(FullPolicy::kDropOldest).quota_bytes);

  // A consumer that was half-way through gets a LOSS range starting at its cursor.
  const uint64_t cursor = oldest + 5;
  ASSERT_TRUE(spool->AdvanceCursor("dest", cursor).ok());
  for (uint64_t i = 0; i < 400; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  ASSERT_TRUE(spool->Sync().ok());
  const auto later = testing::LossRecords(testing::ReadAll(spool.get()));
  ASSERT_FALSE(later.empty());
  EXPECT_EQ(later.back().first_seq, cursor);
  EXPECT_EQ(later.back().last_seq + 1, spool->oldest_seq());
}

TEST_F(SpoolTest, DropNewestLossRecordsCountExactlyWhatWasDropped) {
  const Options o = TinyQuota(FullPolicy::kDropNewest);
  auto spool = Open(o);
  ASSERT_TRUE(spool->AddCursor("dest", true).ok());  // never advances: nothing removed
  uint64_t dropped = 0;
  uint64_t dropped_bytes = 0;
  for (uint64_t i = 0; i < 3000; ++i) {
    auto r = spool->Append(Payload(i));
    ASSERT_TRUE(r.ok());
    if (r->dropped) {
      ++dropped;
      dropped_bytes += Payload(i).size();
    }
    env_.fake_clock()->Advance(10'000'000);  // 10 ms a record: LOSS records every second
  }
  ASSERT_GT(dropped, 100u);
  ASSERT_TRUE(spool->Close().ok());  // writes down the drops not yet recorded
  spool = Open(o);
  const auto losses = testing::LossRecords(testing::ReadAll(spool.get()));
  ASSERT_GT(losses.size(), 1u);  // written during the episode, not only at its end
  uint64_t declared = 0;
  uint64_t declared_bytes = 0;
  for (const LossRecord& l : losses) {
    EXPECT_EQ(l.reason, LossReason::kSpoolFullDropNewest);
    EXPECT_FALSE(l.has_seq_range);  // dropped records never got seqs
    EXPECT_LE(l.time_from_unix_ns, l.time_to_unix_ns);
    declared += l.record_count;
    declared_bytes += l.bytes;
  }
  EXPECT_EQ(declared, dropped);
  EXPECT_EQ(declared_bytes, dropped_bytes);
}

TEST_F(SpoolTest, ManyAppendsShareOneFsync) {
  Options o = testing::SmallOptions();
  o.segment_bytes = 1 << 20;  // no segment roll in this test
  o.quota_bytes = 8 << 20;
  auto spool = Open(o);
  for (uint64_t i = 0; i < 1000; ++i) ASSERT_TRUE(spool->Append(Payload(i)).ok());
  const uint64_t before = env_.sync_count();
  ASSERT_TRUE(spool->Sync().ok());
  EXPECT_EQ(env_.sync_count() - before, 1u);
  EXPECT_EQ(spool->durable_size(), 1000u);
  // Waiting for a record that is already durable costs no fsync at all.
  ASSERT_TRUE(spool->WaitDurable(500).ok());
  EXPECT_EQ(env_.sync_count() - before, 1u);
}

TEST_F(SpoolTest, ConcurrentAppendersAndWaitersKeepOrderAndDurability) {
  auto spool = Open(testing::SmallOptions());
  const uint64_t syncs_before = env_.sync_count();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = spool->Append("t" + std::to_string(t) + "-" + std::to_string(i));
        if (!r.ok() || !spool->WaitDurable(r->seq).ok() || spool->durable_size() <= r->seq) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto records = testing::ReadAll(spool.get());
  ASSERT_EQ(records.size(), size_t{kThreads * kPerThread});
  // Per thread, records appear in the order that thread appended them.
  std::vector<int> next(kThreads, 0);
  for (const Record& r : records) {
    int t = r.payload[1] - '0';
    EXPECT_EQ(r.payload, "t" + std::to_string(t) + "-" + std::to_string(next[t]++));
  }
  // Never more than one fsync per record plus segment rolls; how much fewer depends on
  // scheduling, so the sharing itself is checked deterministically above.
  EXPECT_LE(env_.sync_count() - syncs_before, uint64_t{kThreads * kPerThread} + 200);
}

TEST_F(SpoolTest, BackgroundFlusherMakesRecordsDurableWithoutCallers) {
  Options o = testing::SmallOptions();
  o.sync_interval_ms = 5;
  auto spool = Open(o);
  ASSERT_TRUE(spool->Append("x").ok());
  for (int i = 0; i < 2000 && spool->durable_size() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(spool->durable_size(), 1u);
}

TEST_F(SpoolTest, TailingReaderWhileWriting) {
  auto spool = Open(testing::SmallOptions());
  constexpr uint64_t kTotal = 3000;
  std::thread writer([&] {
    for (uint64_t i = 0; i < kTotal; ++i) {
      ASSERT_TRUE(spool->Append(Payload(i)).ok());
      if (i % 50 == 0) {
        ASSERT_TRUE(spool->Sync().ok());
      }
    }
    ASSERT_TRUE(spool->Sync().ok());
  });
  auto reader = spool->NewReader(0);
  ASSERT_TRUE(reader.ok());
  uint64_t seen = 0;
  Record r;
  while (seen < kTotal) {
    auto more = (*reader)->Next(&r);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) {
      std::this_thread::yield();
      continue;
    }
    ASSERT_EQ(r.seq, seen);
    ASSERT_EQ(r.payload, Payload(seen));
    ++seen;
  }
  writer.join();
  EXPECT_EQ((*reader)->records_skipped(), 0u);
}

}  // namespace
}  // namespace gapless::spool
