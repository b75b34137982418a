// The collector's own audit over a store it is filling: rounds run beside a sender that
// keeps writing find nothing wrong; one changed byte of a stored record raises
// store_tampered with the problem as evidence; the stream verifying again resolves it.
#include "collector/auditing.h"

#include <filesystem>
#include <fstream>

#include "collector/transport_fixture.h"

namespace gapless::transport {
namespace {

namespace fs = std::filesystem;

class AuditingTest : public TransportFixture {
 protected:
  void SetUp() override {
    TransportFixture::SetUp();
    copts_.checkpoint_interval_ms = 20;  // checkpoints race the audit as often as possible
    alert::AlertOptions ao;
    ao.journal = dir_ + "/alerts.jsonl";
    auto alerts = alert::Alerts::Open(env::Env::Posix(), ao);
    ASSERT_TRUE(alerts.ok());
    alerts_ = std::move(*alerts);
  }
  std::vector<std::string> Firing() {
    std::vector<std::string> out;
    for (const auto& e : alerts_->Firing()) out.push_back(e.name + " " + e.subject);
    return out;
  }
  std::unique_ptr<alert::Alerts> alerts_;
};

TEST_F(AuditingTest, AuditsBesideWritesFindNothingAndAChangedRecordIsTampering) {
  OpenSpool();
  StartCollector();
  Sender* s = StartSender(Destination(), key_);
  auto audit = collector::Auditing::Start(copts_.data_dir, collector_->verifier_key(), 3'600'000,
                                          alerts_.get());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  // Rounds while records, leaves and checkpoints are being written.
  for (int round = 0; round < 30; ++round) {
    AppendRecords(200);
    (*audit)->RunOnce();
  }
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == 6000; }, 20000));
  (*audit)->RunOnce();
  for (const auto& e : alerts_->Firing()) {
    ADD_FAILURE() << "while writing: " << alert::FormatEvent(e);
  }
  EXPECT_EQ((*audit)->stats().streams_tampered, 0u);
  EXPECT_EQ((*audit)->stats().rounds, 31u);

  senders_.clear();
  collector_->Stop();
  std::string segment;
  for (const auto& e : fs::directory_iterator(StreamDir())) {
    if (e.path().extension() == ".seg") segment = e.path().string();
  }
  ASSERT_FALSE(segment.empty());
  char was = 0;
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(5000);
    f.get(was);
    f.seekp(5000);
    f.put(static_cast<char>(was ^ 0x01));
  }
  (*audit)->RunOnce();
  const std::string subject = "agent-1/" + store::EpochHex(spool_->epoch());
  ASSERT_EQ(Firing(), std::vector<std::string>{"store_tampered " + subject});
  bool has_problem = false;
  const auto firing = alerts_->Firing();
  for (const auto& [k, v] : firing[0].evidence) {
    has_problem = has_problem || (k == "problem_1" && !v.empty());
  }
  EXPECT_TRUE(has_problem);
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5000);
    f.put(was);
  }
  (*audit)->RunOnce();
  EXPECT_TRUE(Firing().empty()) << "resolved once the stream verifies again";
}

}  // namespace
}  // namespace gapless::transport
