#include <gtest/gtest.h>
#include <unistd.h>

#include <set>

#include "output/fake_elasticsearch.h"
#include "output/output_test_fixture.h"

namespace gapless::output {
namespace {

using namespace std::chrono_literals;
using namespace testing_fixture;
using spool::FrameType;

TEST_F(OutputsTest, DeliversEverySignedRecordInOrderAndNothingUnsigned) {
  Store("a", 0, 100);
  StartOutputs({FileOutput()});
  Sign("a", 60);
  ASSERT_TRUE(WaitFor([&] { return FileSeqs().size() >= 60; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(FileSeqs(), Range(0, 60)) << "only what a signed checkpoint covers";
  Sign("a", 100);
  ASSERT_TRUE(WaitFor([&] { return FileSeqs().size() >= 100; }));
  EXPECT_EQ(FileSeqs(), Range(0, 100));
  ASSERT_TRUE(WaitFor([&] {
    auto a = Account(outputs_->stats(), "siem");
    return a != nullptr && a->delivered == 100 && a->signed_size == 100;
  }));
}

TEST_F(OutputsTest, ARestartResumesAtTheCursorWithoutResending) {
  Store("a", 0, 50);
  StartOutputs({FileOutput()});
  Sign("a", 50);
  ASSERT_TRUE(WaitFor([&] { return FileSeqs().size() >= 50; }));
  outputs_->Stop();
  outputs_.reset();
  EXPECT_TRUE(env_.FileExists(store::Layout(kData).OutputCursor("siem", "a", kEpoch)));
  Store("a", 50, 50);
  StartOutputs({FileOutput()});
  Sign("a", 100);
  ASSERT_TRUE(WaitFor([&] { return FileSeqs().size() >= 100; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(FileSeqs(), Range(0, 100));
  outputs_->Stop();
  // The report reads the same cursor from disk (no checkpoints file here: signed 0).
  auto report = ReadReport(&env_, kData);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->size(), 1u);
  EXPECT_EQ((*report)[0].name, "siem");
  ASSERT_EQ((*report)[0].streams.size(), 1u);
  EXPECT_TRUE((*report)[0].streams[0].has_cursor);
  EXPECT_EQ((*report)[0].streams[0].delivered, 100u);
}

TEST_F(OutputsTest, ADamagedCursorMeansResendingNeverSkipping) {
  Store("a", 0, 20);
  ASSERT_TRUE(env_.CreateDir("/data/outputs").ok());
  ASSERT_TRUE(env_.CreateDir("/data/outputs/siem").ok());
  ASSERT_TRUE(env_.CreateDir("/data/outputs/siem/a").ok());
  ASSERT_TRUE(env::WriteFileAtomically(&env_,
                                       store::Layout(kData).OutputCursor("siem", "a", kEpoch),
                                       "gapless-output-cursor 1\n1x\n")
                  .ok());
  auto report = ReadReport(&env_, kData);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->size(), 1u);
  EXPECT_NE((*report)[0].streams[0].problem.find("cannot be read"), std::string::npos);
  StartOutputs({FileOutput()});
  Sign("a", 20);
  ASSERT_TRUE(WaitFor([&] { return FileSeqs().size() >= 20; }));
  EXPECT_EQ(FileSeqs(), Range(0, 20));
}

TEST_F(OutputsTest, AFailedFsyncDeliversNothingUntilItSucceeds) {
  Store("a", 0, 30);
  StartOutputs({FileOutput()});
  env_.SetSyncFailure(true);
  Sign("a", 30);
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& s : outputs_->stats()) {
      if (s.failures >= 3) return true;
    }
    return false;
  }));
  auto a = Account(outputs_->stats(), "siem");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->delivered, 0u) << "nothing counts as delivered before its fsync";
  env_.SetSyncFailure(false);
  ASSERT_TRUE(WaitFor([&] {
    auto acc = Account(outputs_->stats(), "siem");
    return acc != nullptr && acc->delivered == 30;
  }));
  // Every record is there at least once, in order of first appearance.
  std::set<uint64_t> seen;
  for (uint64_t s : FileSeqs()) seen.insert(s);
  EXPECT_EQ(seen.size(), 30u);
}

TEST_F(OutputsTest, OnlyTheItemsToRetryAreSentAgainAndRefusedOnesAreWrittenDown) {
  // Like an Elasticsearch _bulk answer: seq 3 is throttled twice, seq 5 refused for good.
  auto fake = std::make_shared<FakeSink>([](const Item& item, int attempt) -> ItemResult {
    if (item.seq == 3 && attempt <= 2) return {ItemResult::State::kRetry, "429 too many requests"};
    if (item.seq == 5) return {ItemResult::State::kRejected, "400 mapper_parsing_exception"};
    return Delivered();
  });
  Store("a", 0, 10);
  StartOutputs({FakeOutput("bulk")}, {{"bulk", fake}});
  Sign("a", 10);
  ASSERT_TRUE(WaitFor([&] {
    auto a = Account(outputs_->stats(), "bulk");
    return a != nullptr && a->delivered == 10;
  }));
  EXPECT_EQ(fake->attempts(3), 3);
  EXPECT_EQ(fake->attempts(4), 1) << "a delivered item is not sent again";
  EXPECT_EQ(fake->attempts(5), 1);
  std::vector<uint64_t> delivered = fake->delivered();
  std::sort(delivered.begin(), delivered.end());
  EXPECT_EQ(delivered, (std::vector<uint64_t>{0, 1, 2, 3, 4, 6, 7, 8, 9}));
  auto a = Account(outputs_->stats(), "bulk");
  EXPECT_EQ(a->rejected, 1u);
  EXPECT_EQ(a->retried, 2u);
  auto rejected =
      env::ReadFileToString(&env_, store::Layout(kData).OutputRejected("bulk", "a", kEpoch));
  ASSERT_TRUE(rejected.ok());
  EXPECT_NE(rejected->find("\"seq\":5"), std::string::npos) << *rejected;
  EXPECT_NE(rejected->find("mapper_parsing_exception"), std::string::npos) << *rejected;
  EXPECT_TRUE(Firing("output_rejected"));
}

TEST_F(OutputsTest, ADownstreamThatIsDownStallsAlertsAndRecovers) {
  auto fake = std::make_shared<FakeSink>([](const Item&, int) { return Delivered(); });
  fake->set_down(true);
  OutputOptions o = FakeOutput("down");  // stall_after: the default 60 s
  Store("a", 0, 10);
  StartOutputs({o}, {{"down", fake}});
  Sign("a", 10);
  // An hour of the downstream being down, in simulated time.
  ASSERT_TRUE(WaitFor([&] {
    env_.fake_clock()->Advance(60'000'000'000);
    return Firing("output_stalled");
  }));
  auto a = Account(outputs_->stats(), "down");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->stalled);
  EXPECT_EQ(a->delivered, 0u);
  fake->set_down(false);
  ASSERT_TRUE(WaitFor([&] { return !Firing("output_stalled"); }));
  ASSERT_TRUE(WaitFor([&] {
    auto acc = Account(outputs_->stats(), "down");
    return acc != nullptr && acc->delivered == 10;
  }));
}

TEST_F(OutputsTest, AnOutputThatIsDownNeverHoldsUpAnother) {
  auto fake = std::make_shared<FakeSink>([](const Item&, int) { return Delivered(); });
  fake->set_down(true);
  Store("a", 0, 200);
  StartOutputs({FakeOutput("down"), FileOutput()}, {{"down", fake}});
  Sign("a", 200);
  ASSERT_TRUE(WaitFor([&] { return FileSeqs().size() >= 200; }));
  EXPECT_EQ(FileSeqs(), Range(0, 200));
  EXPECT_TRUE(fake->delivered().empty());
}

TEST_F(OutputsTest, StreamsAreSelectedByAgentGlobs) {
  Store("web-1", 0, 5);
  Store("db-1", 0, 7);
  OutputOptions o = FileOutput();
  o.streams = {"web-*"};
  StartOutputs({o});
  Sign("web-1", 5);
  Sign("db-1", 7);
  ASSERT_TRUE(WaitFor([&] { return FileSeqs().size() >= 5; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(FileSeqs().size(), 5u);
  auto text = env::ReadFileToString(&env_, "/out/siem.ndjson");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->find("db-1"), std::string::npos);
}

TEST_F(OutputsTest, StreamsStoredBeforeStartAreDeliveredFromTheirSignedCheckpoint) {
  // Without a checkpoints file nothing is signed: nothing may go out.
  Store("a", 0, 10);
  StartOutputs({FileOutput()});
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(FileSeqs().empty());
}

TEST_F(OutputsTest, TheFileRotatesPastItsSizeAndKeepsEveryRecord) {
  OutputOptions o = FileOutput();
  o.max_file_bytes = 4096;
  o.batch_records = 8;
  Store("a", 0, 200);
  StartOutputs({o});
  Sign("a", 200);
  ASSERT_TRUE(WaitFor([&] {
    auto a = Account(outputs_->stats(), "siem");
    return a != nullptr && a->delivered == 200;
  }));
  auto names = env_.GetChildren("/out");
  ASSERT_TRUE(names.ok());
  EXPECT_GT(names->size(), 3u);
  std::vector<uint64_t> all;
  std::sort(names->begin(), names->end());  // siem.ndjson, then siem.ndjson.<time>...
  for (const std::string& n : *names) {
    for (uint64_t s : FileSeqs("/out/" + n)) all.push_back(s);
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, Range(0, 200));
}

// --- elasticsearch, against the fake (fake_elasticsearch.h) ---

class ElasticsearchOutputTest : public OutputsTest {
 protected:
  OutputOptions Es() {
    OutputOptions o;
    o.name = "es";
    o.type = "elasticsearch";
    o.url = es_.url();
    o.index = "logs-gapless";
    o.retry_min_ms = 5;
    o.retry_max_ms = 20;
    return o;
  }
  bool AllDelivered(uint64_t n) {
    return WaitFor([&] {
      auto a = Account(outputs_->stats(), "es");
      return a != nullptr && a->delivered == n;
    });
  }
  static std::string Id(uint64_t seq) {
    return std::string("a/") + kEpoch + "/" + std::to_string(seq);
  }
  testing::FakeElasticsearch es_;
};

TEST_F(ElasticsearchOutputTest, PerItem429sAnd400sInsideA200AreRetriedOrWrittenDownOneByOne) {
  // The answer Vector drops: HTTP 200, errors:true, some items 429, one 400.
  es_.set_items([](const std::string& id, int attempt) -> testing::FakeElasticsearch::ItemAnswer {
    if (id == Id(3) && attempt <= 2) return {429, "es_rejected_execution_exception", "queue full"};
    if (id == Id(5)) return {400, "mapper_parsing_exception", "failed to parse field [time]"};
    return {};
  });
  Store("a", 0, 10);
  StartOutputs({Es()});
  Sign("a", 10);
  ASSERT_TRUE(AllDelivered(10));
  const auto docs = es_.docs("logs-gapless");
  EXPECT_EQ(docs.size(), 9u);
  EXPECT_EQ(docs.count(Id(5)), 0u);
  EXPECT_EQ(es_.attempts(Id(3)), 3);
  EXPECT_EQ(es_.attempts(Id(4)), 1) << "an item indexed in the same request is not sent again";
  auto a = Account(outputs_->stats(), "es");
  EXPECT_EQ(a->rejected, 1u);
  auto rejected =
      env::ReadFileToString(&env_, store::Layout(kData).OutputRejected("es", "a", kEpoch));
  ASSERT_TRUE(rejected.ok());
  EXPECT_NE(rejected->find("\"seq\":5"), std::string::npos) << *rejected;
  EXPECT_NE(rejected->find("mapper_parsing_exception: failed to parse field [time]"),
            std::string::npos)
      << *rejected;
  EXPECT_TRUE(Firing("output_rejected"));
  // Each document carries its provenance, and its _id is the idempotency key.
  ASSERT_EQ(docs.count(Id(7)), 1u);
  EXPECT_NE(docs.at(Id(7)).find("\"gapless.seq\":7"), std::string::npos);
}

TEST_F(ElasticsearchOutputTest, A503StormDeliversNothingThenEverythingOnce) {
  es_.set_plan([](int request) {
    return request <= 6 ? testing::FakeElasticsearch::Plan::kStatus503
                        : testing::FakeElasticsearch::Plan::kAnswer;
  });
  Store("a", 0, 50);
  StartOutputs({Es()});
  Sign("a", 50);
  ASSERT_TRUE(AllDelivered(50));
  EXPECT_EQ(es_.docs("logs-gapless").size(), 50u);
  EXPECT_GE(es_.requests(), 7);
  uint64_t failures = 0;
  for (const auto& s : outputs_->stats()) failures += s.failures;
  EXPECT_GE(failures, 6u);
}

TEST_F(ElasticsearchOutputTest, AResetMidAnswerIsSentAgainAndMakesNoSecondDocument) {
  // The first answer is cut after the documents were indexed: nothing was confirmed, so
  // all are sent again, and ES answers 409 for each, which counts as delivered.
  es_.set_plan([](int request) {
    return request == 1 ? testing::FakeElasticsearch::Plan::kResetMidAnswer
                        : testing::FakeElasticsearch::Plan::kAnswer;
  });
  Store("a", 0, 20);
  StartOutputs({Es()});
  Sign("a", 20);
  ASSERT_TRUE(AllDelivered(20));
  EXPECT_EQ(es_.docs("logs-gapless").size(), 20u);
  EXPECT_EQ(es_.attempts(Id(0)), 2) << "sent twice";
  auto a = Account(outputs_->stats(), "es");
  EXPECT_EQ(a->rejected, 0u) << "a 409 for our own _id is a delivery, not a refusal";
}

TEST_F(ElasticsearchOutputTest, TheApiKeyIsSentAndRefusedCredentialsSaySo) {
  const std::string dir = ::testing::TempDir() + "/gapless_es_key_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string key_file = dir + "/api.key";
  std::ofstream(key_file) << "c2VjcmV0LWtleQ==\n";
  std::filesystem::permissions(
      key_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  es_.set_plan([](int) { return testing::FakeElasticsearch::Plan::kUnauthorized; });
  OutputOptions o = Es();
  o.api_key_file = key_file;
  Store("a", 0, 3);
  StartOutputs({o});
  Sign("a", 3);
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& s : outputs_->stats()) {
      if (s.last_error.find("credentials") != std::string::npos) return true;
    }
    return false;
  }));
  EXPECT_EQ(es_.last_authorization(), "ApiKey c2VjcmV0LWtleQ==");
  for (const auto& s : outputs_->stats()) {
    EXPECT_EQ(s.last_error.find("c2VjcmV0"), std::string::npos) << "no secret in errors";
  }
  EXPECT_EQ(Account(outputs_->stats(), "es")->delivered, 0u);
  std::filesystem::remove_all(dir);
}

TEST(OutputOptionsTest, MistakesAreExplained) {
  OutputOptions o;
  o.name = "bad name";
  o.type = "file";
  o.path = "/x";
  EXPECT_NE(ValidateOutput(o).message().find("letters, digits"), std::string::npos);
  o.name = "ok";
  o.path = "relative.ndjson";
  EXPECT_NE(ValidateOutput(o).message().find("absolute"), std::string::npos);
  o.path = "/x";
  o.shape = Shape::kRaw;
  EXPECT_NE(ValidateOutput(o).message().find("shape must be json"), std::string::npos);
  o.shape = Shape::kEcs;
  EXPECT_TRUE(ValidateOutput(o).ok()) << "a file holds ECS objects too";
  EXPECT_EQ(*ParseShape("ocsf"), Shape::kOcsf);
  EXPECT_NE(ParseShape("cef").status().message().find("ecs, ocsf"), std::string::npos);
  o.shape = Shape::kJson;
  EXPECT_TRUE(ValidateOutput(o).ok());
  o.type = "relp";
  o.address = "rsyslog.example";
  EXPECT_NE(ValidateOutput(o).message().find("host:port"), std::string::npos);
  o.address = "rsyslog.example:2514";
  EXPECT_TRUE(ValidateOutput(o).ok());
  o.type = "mqtt";
  EXPECT_NE(ValidateOutput(o).message().find("is not one of"), std::string::npos);
  o.type = "kafka";
  o.address = "k1:9092,k2";
  EXPECT_NE(ValidateOutput(o).message().find("bootstrap brokers"), std::string::npos);
  o.address = "k1:9092,k2:9092";
  EXPECT_NE(ValidateOutput(o).message().find("needs topic"), std::string::npos);
  o.topic = "security logs";
  EXPECT_NE(ValidateOutput(o).message().find("needs topic"), std::string::npos);
  o.topic = "security-logs";
  EXPECT_TRUE(ValidateOutput(o).ok());
  o.type = "relp";
  EXPECT_NE(ValidateOutput(o).message().find("host:port"), std::string::npos) << "one address";
  o.type = "splunk_hec";
  o.url = "splunk:8088";
  EXPECT_NE(ValidateOutput(o).message().find("https://splunk:8088"), std::string::npos);
  o.url = "https://splunk:8088";
  EXPECT_NE(ValidateOutput(o).message().find("token_file"), std::string::npos);
  o.token_file = "/etc/gapless/hec.token";
  EXPECT_TRUE(ValidateOutput(o).ok());
  o.type = "elasticsearch";
  o.url = "es:9200";
  EXPECT_NE(ValidateOutput(o).message().find("needs url"), std::string::npos);
  o.url = "https://es:9200";
  o.index = "Logs";
  EXPECT_NE(ValidateOutput(o).message().find("lower-case"), std::string::npos);
  o.index = "logs-gapless";
  EXPECT_TRUE(ValidateOutput(o).ok());
  o.type = "nats";
  o.url = "127.0.0.1:4222";
  EXPECT_NE(ValidateOutput(o).message().find("nats://host:4222"), std::string::npos);
  o.url = "nats://127.0.0.1:4222";
  o.subject = "logs.>";
  EXPECT_NE(ValidateOutput(o).message().find("wildcards"), std::string::npos);
  o.subject = "logs..gapless";
  EXPECT_NE(ValidateOutput(o).message().find("dot-separated"), std::string::npos);
  o.subject = "logs.gapless";
  EXPECT_TRUE(ValidateOutput(o).ok());
}

}  // namespace
}  // namespace gapless::output
