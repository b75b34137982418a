// The splunk_hec output against a FAKE HEC (fake_splunk_hec.h; no Splunk exists here):
// a record is delivered only when its ackId is acknowledged, never on the POST's 200.
#include <gtest/gtest.h>

#include "output/fake_splunk_hec.h"
#include "output/output_test_fixture.h"

namespace gapless::output {
namespace {

using namespace std::chrono_literals;
using namespace testing_fixture;

constexpr char kToken[] = "5e1f0c7a-hec-token";

class SplunkHecOutputTest : public OutputsTest {
 protected:
  void SetUp() override {
    OutputsTest::SetUp();
    token_file_ = SecretFile("hec.token", kToken);
  }
  void TearDown() override {
    OutputsTest::TearDown();
    std::filesystem::remove_all(std::filesystem::path(token_file_).parent_path());
  }
  OutputOptions Hec() {
    OutputOptions o;
    o.name = "splunk";
    o.type = "splunk_hec";
    o.url = hec_.url();
    o.token_file = token_file_;
    o.index = "security";
    o.retry_min_ms = 5;
    o.retry_max_ms = 20;
    o.ack_poll_ms = 5;
    o.ack_timeout_ms = 300;
    return o;
  }
  bool AllDelivered(uint64_t n) {
    return WaitFor([&] {
      auto a = Account(outputs_->stats(), "splunk");
      return a != nullptr && a->delivered == n;
    });
  }
  static std::string Id(uint64_t seq) {
    return std::string("a/") + kEpoch + "/" + std::to_string(seq);
  }
  std::string LastError() {
    for (const auto& s : outputs_->stats()) {
      if (s.name == "splunk") return s.last_error;
    }
    return "";
  }
  // Every seq in [0, n) indexed at least once; the number indexed more than once.
  int ExpectAllIndexed(uint64_t n) {
    const auto indexed = hec_.indexed();
    int twice = 0;
    for (uint64_t s = 0; s < n; ++s) {
      auto it = indexed.find(Id(s));
      if (it == indexed.end()) {
        ADD_FAILURE() << "seq " << s << " never indexed";
      } else {
        twice += it->second > 1;
      }
    }
    return twice;
  }

  std::string token_file_;
  testing::FakeSplunkHec hec_{kToken};
};

TEST_F(SplunkHecOutputTest, ABatchWhoseAckNeverComesIsSentAgainNotCountedOnThe200) {
  // The first batch is taken (HTTP 200, ackId 0) and lost in HEC's pipeline: its ack
  // never comes. Counting the 200 would lose those records for good.
  hec_.set_acks([](int ack_id) { return ack_id == 0 ? -1 : 0; });
  Store("a", 0, 10);
  StartOutputs({Hec()});
  Sign("a", 10);
  ASSERT_TRUE(AllDelivered(10));
  EXPECT_EQ(ExpectAllIndexed(10), 0);
  EXPECT_EQ(hec_.event_requests(), 2) << "sent again after ack_timeout_ms";
  EXPECT_NE(LastError().find("not acknowledged within 300 ms"), std::string::npos) << LastError();
}

TEST_F(SplunkHecOutputTest, LateAcksAreWaitedForAndNothingIsSentTwice) {
  hec_.set_acks([](int) { return 6; });  // true only at the sixth poll (~300 ms)
  Store("a", 0, 30);
  OutputOptions o = Hec();
  o.ack_timeout_ms = 5000;
  StartOutputs({o});
  Sign("a", 30);
  ASSERT_TRUE(AllDelivered(30));
  EXPECT_EQ(ExpectAllIndexed(30), 0);
  EXPECT_EQ(hec_.event_requests(), 1);
  EXPECT_GE(hec_.ack_polls(), 6);
  // What HEC got: the event with its provenance, the index, and the id as a field.
  const std::string e = hec_.last_event();
  EXPECT_NE(e.find("\"gapless.seq\":29"), std::string::npos) << e;
  EXPECT_NE(e.find("\"index\":\"security\""), std::string::npos) << e;
  EXPECT_NE(e.find("\"sourcetype\":\"gapless\""), std::string::npos) << e;
}

TEST_F(SplunkHecOutputTest, A503StormAndAResetAfterTakingEndWithEverythingIndexed) {
  hec_.set_plan([](int request) {
    if (request <= 4) return testing::FakeSplunkHec::Plan::kBusy503;
    if (request == 5) return testing::FakeSplunkHec::Plan::kResetAfterTaking;
    return testing::FakeSplunkHec::Plan::kAnswer;
  });
  Store("a", 0, 20);
  StartOutputs({Hec()});
  Sign("a", 20);
  ASSERT_TRUE(AllDelivered(20));
  // HEC cannot deduplicate: the batch whose answer was cut is indexed twice, and each
  // copy carries the same gapless.id to find it by.
  EXPECT_EQ(ExpectAllIndexed(20), 20);
  uint64_t failures = 0;
  for (const auto& s : outputs_->stats()) failures += s.failures;
  EXPECT_GE(failures, 5u);
}

TEST_F(SplunkHecOutputTest, AnEventRefusedAsInvalidIsWrittenDownAndTheRestDelivered) {
  hec_.set_bad({Id(4)});
  Store("a", 0, 10);
  StartOutputs({Hec()});
  Sign("a", 10);
  ASSERT_TRUE(AllDelivered(10));
  const auto indexed = hec_.indexed();
  EXPECT_EQ(indexed.count(Id(4)), 0u);
  EXPECT_EQ(indexed.size(), 9u);
  EXPECT_EQ(Account(outputs_->stats(), "splunk")->rejected, 1u);
  auto rejected =
      env::ReadFileToString(&env_, store::Layout(kData).OutputRejected("splunk", "a", kEpoch));
  ASSERT_TRUE(rejected.ok());
  EXPECT_NE(rejected->find("\"seq\":4"), std::string::npos) << *rejected;
  EXPECT_NE(rejected->find("Invalid data format"), std::string::npos) << *rejected;
}

TEST_F(SplunkHecOutputTest, ARefusedTokenIsSaidAndNeverLogged) {
  const std::string other = SecretFile("wrong.token", "not-the-token");
  OutputOptions o = Hec();
  o.token_file = other;
  Store("a", 0, 3);
  StartOutputs({o});
  Sign("a", 3);
  ASSERT_TRUE(WaitFor([&] { return LastError().find("was refused") != std::string::npos; }))
      << LastError();
  EXPECT_EQ(LastError().find("not-the-token"), std::string::npos) << "no secret in errors";
  EXPECT_EQ(Account(outputs_->stats(), "splunk")->delivered, 0u);
}

TEST_F(SplunkHecOutputTest, ATokenWithoutIndexerAcknowledgementConfirmsNothing) {
  hec_.set_use_ack(false);
  Store("a", 0, 3);
  StartOutputs({Hec()});
  Sign("a", 3);
  ASSERT_TRUE(WaitFor([&] { return LastError().find("useACK") != std::string::npos; }))
      << LastError();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(Account(outputs_->stats(), "splunk")->delivered, 0u)
      << "events HEC took without an ackId are never counted as delivered";
}

}  // namespace
}  // namespace gapless::output
