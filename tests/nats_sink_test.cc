// The nats output's sink against a real nats-server -js started by the test: a record
// counts as delivered only on its JetStream PubAck, never on the publish alone, and a
// resend (after a kill -9 of the collector, say) makes no second message because the
// Nats-Msg-Id is the record's idempotency key.
#include <gtest/gtest.h>
#include <unistd.h>

#include "nats_peer.h"
#include "output/sink.h"

namespace gapless::output {
namespace {

namespace fs = std::filesystem;

class NatsSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("gapless_nats_sink_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    peer_ = std::make_unique<testing::NatsPeer>(dir_);
    ASSERT_TRUE(peer_->Start());
    ASSERT_TRUE(peer_->Connect()) << "see " << (dir_ / "nats-server.log");
    for (int i = 0; i < 100; ++i) {
      items_.push_back(Item{static_cast<uint64_t>(i), "a/00ff/" + std::to_string(i),
                            "{\"message\":\"event " + std::to_string(i) + "\"}"});
    }
    for (const Item& i : items_) batch_.push_back(&i);
  }
  void TearDown() override {
    peer_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::unique_ptr<Sink> NewSink() {
    OutputOptions o;
    o.name = "js";
    o.type = "nats";
    o.url = peer_->url();
    o.subject = "logs.gapless";
    o.stream = "GAPLESS";
    o.timeout_ms = 2000;
    o.retry_min_ms = 20;
    EXPECT_TRUE(ValidateOutput(o).ok());
    auto sink = NewNatsSink(o);
    EXPECT_TRUE(sink.ok()) << sink.status().ToString();
    return sink.ok() ? std::move(*sink) : nullptr;
  }
  static size_t Delivered(const std::vector<ItemResult>& results) {
    size_t n = 0;
    for (const ItemResult& r : results) n += r.state == ItemResult::State::kDelivered;
    return n;
  }

  fs::path dir_;
  std::unique_ptr<testing::NatsPeer> peer_;
  std::vector<Item> items_;
  std::vector<const Item*> batch_;
};

TEST_F(NatsSinkTest, APublishWithoutAPubAckDeliversNothing) {
  auto sink = NewSink();
  ASSERT_NE(sink, nullptr);
  // No stream holds the subject yet: the server takes every publish, nobody stores it.
  std::vector<ItemResult> results;
  (void)sink->Send(batch_, &results);
  ASSERT_EQ(results.size(), items_.size());
  EXPECT_EQ(Delivered(results), 0u);
  EXPECT_FALSE(results[0].reason.empty()) << "the reason a record waits is given";
  std::printf("without a stream: %s\n", results[0].reason.c_str());

  ASSERT_TRUE(peer_->AddStream("GAPLESS", "logs.gapless"));
  ASSERT_TRUE(sink->Send(batch_, &results).ok());
  EXPECT_EQ(Delivered(results), items_.size());
  EXPECT_EQ(peer_->Count("GAPLESS"), 100);
}

TEST_F(NatsSinkTest, AnotherStreamOnTheSubjectIsRefusedWhenAStreamIsExpected) {
  ASSERT_TRUE(peer_->AddStream("OTHER", "logs.gapless"));
  auto sink = NewSink();
  ASSERT_NE(sink, nullptr);
  std::vector<ItemResult> results;
  (void)sink->Send(batch_, &results);
  EXPECT_EQ(Delivered(results), 0u);
  ASSERT_FALSE(results.empty());
  EXPECT_NE(results[0].reason.find("stream"), std::string::npos) << results[0].reason;
  std::printf("another stream: %s\n", results[0].reason.c_str());
  EXPECT_EQ(peer_->Count("OTHER"), 0);
}

TEST_F(NatsSinkTest, AResendAcrossAServerRestartMakesNoSecondMessage) {
  ASSERT_TRUE(peer_->AddStream("GAPLESS", "logs.gapless"));
  auto sink = NewSink();
  ASSERT_NE(sink, nullptr);
  std::vector<const Item*> first(batch_.begin(), batch_.begin() + 60);
  std::vector<ItemResult> results;
  ASSERT_TRUE(sink->Send(first, &results).ok());
  ASSERT_EQ(Delivered(results), 60u);

  // The server goes away: nothing is confirmed while it is gone.
  ASSERT_EQ(peer_->Stop(), 0);
  (void)sink->Send(batch_, &results);
  EXPECT_EQ(Delivered(results), 0u);

  // Back: everything sent again (the first 60 too, as after a lost cursor) is stored once.
  ASSERT_TRUE(peer_->Start());
  ASSERT_TRUE(peer_->Connect());
  size_t delivered = 0;
  for (int attempt = 0; attempt < 50 && delivered < items_.size(); ++attempt) {
    (void)sink->Send(batch_, &results);
    delivered = Delivered(results);
    if (delivered < items_.size()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(delivered, items_.size());
  EXPECT_EQ(peer_->Count("GAPLESS"), 100);
  const auto ids = peer_->MsgIds("GAPLESS", "logs.gapless");
  EXPECT_EQ(ids.size(), 100u);
  for (const auto& [id, n] : ids) EXPECT_EQ(n, 1) << id;
}

}  // namespace
}  // namespace gapless::output
