#include "store/reader.h"

#include <gtest/gtest.h>

#include "base/crc32c.h"
#include "env/fault_injection_env.h"
#include "event/event.h"
#include "store/stream_store.h"

namespace gapless::store {
namespace {

using Kind = StreamReader::Kind;
using spool::FrameType;
constexpr char kDir[] = "/data/streams/agent/epoch";

class StreamReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = StreamStore::Open(&env_, kDir, epoch_, StoreOptions{.segment_bytes = 1024});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  static std::string Payload(uint64_t seq) {
    const std::string raw = "message " + std::to_string(seq) + " " + std::string(40, 'x');
    event::Event e;
    e.observed_unix_ns = static_cast<int64_t>(seq);
    e.raw = raw;
    std::string out;
    event::EncodeEvent(e, &out);
    return out;
  }

  // Appends and commits seqs [first, first + n).
  void Write(uint64_t first, uint32_t n) {
    std::vector<std::string> payloads;
    for (uint32_t i = 0; i < n; ++i) payloads.push_back(Payload(first + i));
    std::vector<Record> records;
    std::vector<Hash256> leaves;
    for (const std::string& p : payloads) {
      records.push_back(Record{FrameType::kData, crc32c::Value(p), p});
      leaves.push_back(spool::RecordLeafHash(FrameType::kData, p));
    }
    ASSERT_TRUE(store_->Append(BatchPosition{first, false}, records, leaves).ok());
    ASSERT_TRUE(store_->Commit().ok());
  }

  // Reads until kEnd; returns the seqs of the records, and counts the other kinds.
  std::vector<uint64_t> Drain(StreamReader* r, std::map<Kind, int>* others = nullptr) {
    std::vector<uint64_t> seqs;
    for (int guard = 0; guard < 100000; ++guard) {
      auto e = r->Next();
      EXPECT_TRUE(e.ok()) << e.status().ToString();
      if (!e.ok() || e->kind == Kind::kEnd) return seqs;
      if (e->kind == Kind::kRecord) {
        seqs.push_back(e->seq);
        EXPECT_EQ(e->Leaf(), spool::RecordLeafHash(FrameType::kData, Payload(e->seq)));
        event::Event ev;
        EXPECT_TRUE(e->DecodeEvent(&ev).ok());
        EXPECT_EQ(ev.observed_unix_ns, static_cast<int64_t>(e->seq));
      } else if (others != nullptr) {
        ++(*others)[e->kind];
      }
    }
    ADD_FAILURE() << "the reader never reached its end";
    return seqs;
  }

  static std::vector<uint64_t> Seqs(uint64_t from, uint64_t to) {
    std::vector<uint64_t> v;
    for (uint64_t s = from; s < to; ++s) v.push_back(s);
    return v;
  }

  uint64_t SegmentCount() {
    auto segs = ListSegments(&env_, kDir);
    return segs.ok() ? segs->size() : 0;
  }

  env::FaultInjectionEnv env_;
  spool::Epoch epoch_{7, 7, 7};
  std::unique_ptr<StreamStore> store_;
};

TEST_F(StreamReaderTest, ReadsFromASeqWithItsLeafAndEventAcrossSegments) {
  Write(0, 60);
  ASSERT_GT(SegmentCount(), 2u);  // the test is about crossing segments
  auto r = StreamReader::Open(&env_, kDir, 25);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Drain(r->get()), Seqs(25, 60));
}

TEST_F(StreamReaderTest, FollowsTheStreamAsItGrowsAndRolls) {
  auto r = StreamReader::Open(&env_, kDir);  // before anything is stored
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Drain(r->get()).empty());
  std::vector<uint64_t> seen;
  for (uint64_t first = 0; first < 100; first += 7) {
    Write(first, 7);
    for (uint64_t s : Drain(r->get())) seen.push_back(s);
  }
  ASSERT_GT(SegmentCount(), 4u);
  EXPECT_EQ(seen, Seqs(0, 105));
}

TEST_F(StreamReaderTest, TheLimitHoldsRecordsBackUntilRaised) {
  Write(0, 30);
  auto r = StreamReader::Open(&env_, kDir);
  ASSERT_TRUE(r.ok());
  (*r)->set_limit(10);
  EXPECT_EQ(Drain(r->get()), Seqs(0, 10));
  EXPECT_TRUE(Drain(r->get()).empty());
  (*r)->set_limit(30);
  EXPECT_EQ(Drain(r->get()), Seqs(10, 30));
}

TEST_F(StreamReaderTest, DamageIsReportedAndTheRecordsAfterItAreStillRead) {
  Write(0, 60);
  auto segs = ListSegments(&env_, kDir);
  ASSERT_TRUE(segs.ok());
  const std::string first = env::JoinPath(kDir, segs->begin()->second);
  std::string bytes = env_.Contents(first);
  bytes[spool::kSegmentHeaderSize + spool::kFrameHeaderSize + 3] ^= 0x40;  // seq 0's payload
  env_.SetDurableContents(first, bytes);
  auto r = StreamReader::Open(&env_, kDir);
  ASSERT_TRUE(r.ok());
  std::map<Kind, int> others;
  EXPECT_EQ(Drain(r->get(), &others), Seqs(1, 60));
  EXPECT_EQ(others[Kind::kDamage], 1);
}

TEST_F(StreamReaderTest, ACutOffTailIsUnfinishedInTheNewestSegmentAndDamageInASealedOne) {
  Write(0, 60);
  auto segs = ListSegments(&env_, kDir);
  ASSERT_TRUE(segs.ok());
  const std::string newest = env::JoinPath(kDir, segs->rbegin()->second);
  std::string tail = env_.Contents(newest);
  env_.SetDurableContents(newest, tail.substr(0, tail.size() - 5));
  auto r = StreamReader::Open(&env_, kDir);
  ASSERT_TRUE(r.ok());
  std::map<Kind, int> others;
  EXPECT_EQ(Drain(r->get(), &others), Seqs(0, 59));
  EXPECT_TRUE(others.empty());
  EXPECT_GT((*r)->unfinished_bytes(), 0u);  // a writer at work, not damage

  // Once a newer segment exists, nobody will finish that record: damage.
  const uint64_t next_base = segs->rbegin()->first + 1000;
  ASSERT_TRUE(env::WriteFileAtomically(
                  &env_, StreamFiles(kDir).Segment(next_base),
                  spool::EncodeSegmentHeader(spool::SegmentHeader{epoch_, next_base, 0}))
                  .ok());
  others.clear();
  EXPECT_TRUE(Drain(r->get(), &others).empty());
  EXPECT_EQ(others[Kind::kTornTail], 1);
  EXPECT_EQ((*r)->unfinished_bytes(), 0u);
}

TEST_F(StreamReaderTest, ADamagedHeaderIsReportedOnceAndItsSegmentSkipped) {
  Write(0, 60);
  auto segs = ListSegments(&env_, kDir);
  ASSERT_TRUE(segs.ok());
  ASSERT_GT(segs->size(), 2u);
  const auto second = std::next(segs->begin());
  const std::string path = env::JoinPath(kDir, second->second);
  std::string bytes = env_.Contents(path);
  bytes[1] ^= 0x01;
  env_.SetDurableContents(path, bytes);
  auto r = StreamReader::Open(&env_, kDir);
  ASSERT_TRUE(r.ok());
  std::map<Kind, int> others;
  const std::vector<uint64_t> seqs = Drain(r->get(), &others);
  EXPECT_EQ(others[Kind::kBadHeader], 1);
  ASSERT_FALSE(seqs.empty());
  EXPECT_EQ(seqs.back(), 59u);  // the segments after it are read
  for (uint64_t s : seqs) EXPECT_TRUE(s < second->first || s >= std::next(second)->first) << s;
  EXPECT_TRUE(Drain(r->get(), &others).empty());  // and it is not reported again
  EXPECT_EQ(others[Kind::kBadHeader], 1);
}

TEST_F(StreamReaderTest, ANewestSegmentStillBeingCreatedIsNotDamage) {
  Write(0, 5);
  ASSERT_TRUE(env::WriteFileAtomically(&env_, StreamFiles(kDir).Segment(5), "GPL").ok());
  auto r = StreamReader::Open(&env_, kDir);
  ASSERT_TRUE(r.ok());
  std::map<Kind, int> others;
  EXPECT_EQ(Drain(r->get(), &others), Seqs(0, 5));
  EXPECT_TRUE(others.empty());
  EXPECT_TRUE((*r)->creating_segment());
}

}  // namespace
}  // namespace gapless::store
