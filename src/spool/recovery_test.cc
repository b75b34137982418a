// Recovery against damage: a byte flipped at every offset of a segment, and the tail cut
// at every offset of its last record. Offsets are computed from the documented layout,
// not from the reader under test.
#include <gtest/gtest.h>

#include <bit>

#include "base/coding.h"
#include "base/crc32c.h"
#include "env/fault_injection_env.h"
#include "spool/spool_test_util.h"

namespace gapless::spool {
namespace {

using testing::kDir;
using testing::Payload;

constexpr uint64_t kRecords = 10;
const std::string kSeg0 = std::string(kDir) + "/" + SegmentFileName(0);

struct Layout {
  std::string bytes;                 // the pristine segment
  std::vector<uint64_t> record_at;   // frame start of record i
  std::vector<uint64_t> record_end;  // one past its last byte
  uint64_t final_frontier_at = 0;
};

// Writes kRecords records and closes: header | frontier(0) | records | frontier(10).
Layout MakeSegment() {
  env::FaultInjectionEnv env;
  auto spool = testing::OpenOrDie(&env, testing::SmallOptions());
  for (uint64_t i = 0; i < kRecords; ++i) EXPECT_TRUE(spool->Append(Payload(i)).ok());
  EXPECT_TRUE(spool->Close().ok());
  Layout l;
  l.bytes = env.Contents(kSeg0);
  uint64_t off = kSegmentHeaderSize + kFrameHeaderSize;  // frontier of an empty tree
  for (uint64_t i = 0; i < kRecords; ++i) {
    l.record_at.push_back(off);
    off += kFrameHeaderSize + Payload(i).size();
    l.record_end.push_back(off);
  }
  l.final_frontier_at = off;
  EXPECT_EQ(l.bytes.size(), off + kFrameHeaderSize + 32 * std::popcount(kRecords));
  return l;
}

struct Reopened {
  RecoveryReport report;
  std::vector<Record> records;
  std::vector<LossRecord> losses;
};

Reopened Reopen(const std::string& segment) {
  env::FaultInjectionEnv env;
  EXPECT_TRUE(env.CreateDir(kDir).ok());
  env.SetDurableContents(kSeg0, segment);
  Reopened r;
  auto spool = testing::OpenOrDie(&env, testing::SmallOptions(), &r.report);
  if (spool == nullptr) return r;
  r.records = testing::ReadAll(spool.get());
  r.losses = testing::LossRecords(r.records);
  return r;
}

// Data records found, by seq.
std::map<uint64_t, std::string> DataBySeq(const std::vector<Record>& records) {
  std::map<uint64_t, std::string> out;
  for (const Record& r : records) {
    if (r.type == FrameType::kData) out[r.seq] = r.payload;
  }
  return out;
}

TEST(Recovery, CleanSegmentHasNoDamage) {
  Layout l = MakeSegment();
  Reopened r = Reopen(l.bytes);
  EXPECT_TRUE(r.report.damage.empty());
  EXPECT_EQ(r.report.torn_bytes_truncated, 0u);
  EXPECT_EQ(r.report.next_seq, kRecords);
  EXPECT_TRUE(r.report.merkle_known);
  EXPECT_EQ(r.report.frontier_mismatches, 0u);
  EXPECT_EQ(DataBySeq(r.records).size(), kRecords);
}

TEST(Recovery, ByteFlipAtEveryOffsetKeepsUndamagedRecordsAndReportsExactRange) {
  const Layout l = MakeSegment();
  for (uint64_t at = 0; at < l.bytes.size(); ++at) {
    SCOPED_TRACE("flipped byte at offset " + std::to_string(at));
    std::string bad = l.bytes;
    bad[at] ^= 0x5a;
    Reopened r = Reopen(bad);

    // Which frame (or header) holds the flipped byte?
    int victim = -1;
    for (uint64_t i = 0; i < kRecords; ++i) {
      if (at >= l.record_at[i] && at < l.record_end[i]) victim = static_cast<int>(i);
    }
    std::map<uint64_t, std::string> data = DataBySeq(r.records);
    for (uint64_t i = 0; i < kRecords; ++i) {
      if (static_cast<int>(i) == victim) {
        EXPECT_EQ(data.count(i), 0u);
      } else {
        ASSERT_EQ(data.count(i), 1u) << "lost undamaged record " << i;
        EXPECT_EQ(data[i], Payload(i));
      }
    }

    ASSERT_EQ(r.report.damage.size(), 1u);
    const Damage& d = r.report.damage[0];
    EXPECT_EQ(r.report.torn_bytes_truncated, 0u);
    EXPECT_EQ(d.segment, SegmentFileName(0));
    if (victim >= 0) {
      EXPECT_EQ(d.offset, l.record_at[victim]);
      EXPECT_EQ(d.bytes, l.record_end[victim] - l.record_at[victim]);
      ASSERT_TRUE(d.has_seqs);
      EXPECT_EQ(d.first_seq, static_cast<uint64_t>(victim));
      EXPECT_EQ(d.last_seq, static_cast<uint64_t>(victim));
      EXPECT_EQ(r.report.next_seq, kRecords);
      // The final frontier frame re-anchors the Merkle tree after the lost leaf.
      EXPECT_TRUE(r.report.merkle_known);
    } else if (at < kSegmentHeaderSize) {
      EXPECT_EQ(d.offset, 0u);
      EXPECT_EQ(d.bytes, kSegmentHeaderSize);
      EXPECT_FALSE(d.has_seqs);
    } else if (at < l.record_at[0]) {  // the frontier of the empty tree
      EXPECT_EQ(d.offset, kSegmentHeaderSize);
      EXPECT_EQ(d.bytes, kFrameHeaderSize);
      EXPECT_FALSE(d.has_seqs);
    } else {  // the final frontier: trailing damage whose contents are unknowable
      EXPECT_EQ(d.offset, l.final_frontier_at);
      EXPECT_EQ(d.bytes, l.bytes.size() - l.final_frontier_at);
      // It might have held records that were shipped, so their seqs are skipped and
      // declared lost rather than reused.
      ASSERT_TRUE(d.has_seqs);
      EXPECT_EQ(d.first_seq, kRecords);
      EXPECT_EQ(r.report.next_seq, d.last_seq + 1);
    }

    // The damage is written into the stream as exactly one LOSS record.
    ASSERT_EQ(r.losses.size(), 1u);
    EXPECT_EQ(r.losses[0].reason, LossReason::kCorruptSegment);
    EXPECT_EQ(r.losses[0].bytes, d.bytes);
    EXPECT_EQ(r.losses[0].has_seq_range, d.has_seqs);
    if (d.has_seqs) {
      EXPECT_EQ(r.losses[0].first_seq, d.first_seq);
      EXPECT_EQ(r.losses[0].last_seq, d.last_seq);
    }
  }
}

TEST(Recovery, CutTailAtEveryOffsetOfLastRecordIsATornWriteNotCorruption) {
  const Layout l = MakeSegment();
  const uint64_t last = kRecords - 1;
  for (uint64_t cut = l.record_at[last]; cut < l.bytes.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    Reopened r = Reopen(l.bytes.substr(0, cut));
    EXPECT_TRUE(r.report.damage.empty());
    EXPECT_TRUE(r.losses.empty());
    const bool last_complete = cut >= l.record_end[last];
    const uint64_t kept = last_complete ? kRecords : kRecords - 1;
    EXPECT_EQ(r.report.next_seq, kept);
    EXPECT_EQ(r.report.torn_bytes_truncated,
              cut - (last_complete ? l.record_end[last] : l.record_at[last]));
    EXPECT_EQ(DataBySeq(r.records).size(), kept);
    EXPECT_TRUE(r.report.merkle_known);
  }
}

TEST(Recovery, DamageIsReportedOnceAcrossReopens) {
  Layout l = MakeSegment();
  std::string bad = l.bytes;
  bad[l.record_at[3] + kFrameHeaderSize + 1] ^= 1;  // payload of record 3
  env::FaultInjectionEnv env;
  ASSERT_TRUE(env.CreateDir(kDir).ok());
  env.SetDurableContents(kSeg0, bad);
  for (int round = 0; round < 3; ++round) {
    RecoveryReport report;
    auto spool = testing::OpenOrDie(&env, testing::SmallOptions(), &report);
    ASSERT_NE(spool, nullptr);
    EXPECT_EQ(report.damage.size(), round == 0 ? 1u : 0u) << "round " << round;
    EXPECT_EQ(report.already_recorded, round == 0 ? 0u : 1u);
    EXPECT_EQ(testing::LossRecords(testing::ReadAll(spool.get())).size(), 1u);
  }
}

TEST(Recovery, ZeroFilledTailIsTornNotCorrupt) {
  Layout l = MakeSegment();
  Reopened r = Reopen(l.bytes + std::string(300, '\0'));
  EXPECT_TRUE(r.report.damage.empty());
  EXPECT_EQ(r.report.torn_bytes_truncated, 300u);
  EXPECT_EQ(r.report.next_seq, kRecords);
}

TEST(Recovery, SegmentFromNewerFormatIsRefusedNotDeleted) {
  Layout l = MakeSegment();
  std::string newer = l.bytes;
  newer[8] = 2;  // version 2, with a header CRC that is valid for it
  EncodeFixed32(newer.data() + kSegmentHeaderSize - 4,
                crc32c::Mask(crc32c::Value(newer.data(), kSegmentHeaderSize - 4)));
  env::FaultInjectionEnv env;
  ASSERT_TRUE(env.CreateDir(kDir).ok());
  env.SetDurableContents(kSeg0, newer);
  auto spool = Spool::Open(&env, kDir, testing::SmallOptions());
  EXPECT_EQ(spool.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(spool.status().message().find("newer"), std::string::npos);
  EXPECT_EQ(env.Contents(kSeg0), newer);
}

}  // namespace
}  // namespace gapless::spool
