#include "ingest/ingest.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "env/fault_injection_env.h"
#include "spool/spool_test_util.h"

namespace gapless::ingest {
namespace {

event::Event Line(const std::string& text) {
  event::Event e;
  e.format = event::Format::kLine;
  e.source = "test";
  e.raw = text;
  e.message = e.raw;
  return e;
}

class IngestTest : public ::testing::Test {
 protected:
  void Open(spool::Options o) {
    spool_ = spool::testing::OpenOrDie(&env_, o);
    ingest_ = std::make_unique<Ingest>(spool_.get());
  }
  void TearDown() override {
    if (ingest_) ingest_->Stop();
  }
  env::FaultInjectionEnv env_;
  std::unique_ptr<spool::Spool> spool_;
  std::unique_ptr<Ingest> ingest_;
};

TEST_F(IngestTest, AppendedRecordsBecomeDurableWithoutAnyoneAsking) {
  Open(spool::testing::SmallOptions());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(ingest_->Append(Line("m" + std::to_string(i))).ok());
  // The committer syncs on its own; wait for it through the public callback.
  std::promise<Status> done;
  ingest_->OnDurable(50, [&](const Status& s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());
  EXPECT_GE(spool_->durable_size(), 50u);
  const auto records = spool::testing::ReadAll(spool_.get());
  ASSERT_EQ(records.size(), 50u);
  event::Event e;
  ASSERT_TRUE(event::DecodeEvent(records[7].payload, &e).ok());
  EXPECT_EQ(e.raw, "m7");
}

TEST_F(IngestTest, ConcurrentAppendersShareCommitsAndEveryCallbackFiresOnce) {
  Open(spool::testing::SmallOptions());
  std::atomic<int> fired{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto r = ingest_->Append(Line(std::to_string(t) + ":" + std::to_string(i)));
        ASSERT_TRUE(r.ok());
        const uint64_t seq = r->seq;
        ingest_->OnDurable(seq + 1, [&, seq](const Status& s) {
          EXPECT_TRUE(s.ok());
          EXPECT_GT(spool_->durable_size(), seq);  // never called before it is true
          fired.fetch_add(1);
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  std::promise<void> all;
  ingest_->OnDurable(800, [&](const Status&) { all.set_value(); });
  all.get_future().wait();
  ingest_->Stop();
  EXPECT_EQ(fired.load(), 800);
  EXPECT_LT(ingest_->stats().commits, 800u);  // group commit: far fewer syncs than records
  EXPECT_EQ(ingest_->stats().appended, 800u);
}

TEST_F(IngestTest, CommitDelayGathersAppendsIntoOneFsync) {
  spool_ = spool::testing::OpenOrDie(&env_, spool::testing::SmallOptions());
  ingest_ = std::make_unique<Ingest>(spool_.get(), /*commit_delay_us=*/300'000);
  const uint64_t syncs_before = env_.sync_count();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(ingest_->Append(Line("m")).ok());
  std::promise<void> done;
  ingest_->OnDurable(100, [&](const Status&) { done.set_value(); });
  done.get_future().wait();
  EXPECT_EQ(ingest_->stats().commits, 1u);
  EXPECT_LE(env_.sync_count() - syncs_before, 3u);  // segment + directory + data, once
}

TEST_F(IngestTest, FullSpoolRefusesThenCallsBackWhenRoomReturns) {
  spool::Options o = spool::testing::SmallOptions();
  o.quota_bytes = 8 * o.segment_bytes;
  Open(o);
  ASSERT_TRUE(spool_->AddCursor("dest", true).ok());
  const std::string big(200, 'x');
  Status refused = Status::Ok();
  for (int i = 0; i < 10000 && refused.ok(); ++i) refused = ingest_->Append(Line(big)).status();
  ASSERT_EQ(refused.code(), StatusCode::kResourceExhausted);
  std::promise<void> room;
  ingest_->OnRoom(300, [&] { room.set_value(); });
  auto f = room.get_future();
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(150)), std::future_status::timeout);
  ASSERT_TRUE(spool_->Sync().ok());
  ASSERT_TRUE(spool_->AdvanceCursor("dest", spool_->durable_size()).ok());
  EXPECT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(ingest_->Append(Line(big)).ok());
  EXPECT_GE(ingest_->stats().refused_full, 1u);
}

TEST_F(IngestTest, SyncFailureHoldsTheCallbackUntilHealNeverAFalseAck) {
  Open(spool::testing::SmallOptions());
  env_.SetSyncFailure(true);
  auto r = ingest_->Append(Line("kept"));
  ASSERT_TRUE(r.ok());
  std::promise<Status> done;
  ingest_->OnDurable(r->seq + 1, [&](const Status& s) { done.set_value(s); });
  auto f = done.get_future();
  // The sync fails: no acknowledgement, and no failure either (the record is still pending).
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  EXPECT_EQ(spool_->durable_size(), 0u);
  ASSERT_FALSE(spool_->sticky_error().ok());
  // Sticky: later appends are refused as waitable (the input holds them), not accepted.
  const Status later = ingest_->Append(Line("later")).status();
  EXPECT_EQ(later.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(later.message().find("heal"), std::string::npos) << later.ToString();
  EXPECT_EQ(ingest_->stats().refused_failed, 1u);
  std::promise<void> room;
  ingest_->OnRoom(100, [&] { room.set_value(); });
  auto room_f = room.get_future();
  EXPECT_EQ(room_f.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  // Still failing: the heal fails and nothing is acknowledged.
  EXPECT_FALSE(ingest_->Heal().ok());
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  // The disk works again: the heal writes the record, the callback says Ok, inputs go on.
  env_.SetSyncFailure(false);
  ASSERT_TRUE(ingest_->Heal().ok());
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(spool_->durable_size(), r->seq + 1);
  EXPECT_EQ(room_f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(ingest_->Append(Line("later")).ok());
}

TEST_F(IngestTest, StopFailsCallbacksThatCanNoLongerComplete) {
  Open(spool::testing::SmallOptions());
  std::promise<Status> done;
  ingest_->OnDurable(1000, [&](const Status& s) { done.set_value(s); });  // never appended
  ingest_->Stop();
  EXPECT_EQ(done.get_future().get().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace gapless::ingest
