// The fixture the output tests share (outputs_test.cc, splunk_hec_test.cc): a store in
// the fault-injecting Env, the alerts, and a downstream played by the test (FakeSink) or
// a real sink against a fake server.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <simdjson.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "alert/alert.h"
#include "base/crc32c.h"
#include "env/fault_injection_env.h"
#include "event/event.h"
#include "output/output.h"
#include "output/sink.h"
#include "spool/spool_format.h"
#include "store/layout.h"
#include "store/stream_store.h"

namespace gapless::output::testing_fixture {

using namespace std::chrono_literals;
using spool::FrameType;

constexpr char kData[] = "/data";

// A downstream played by the test: `answer` decides each item's fate per call.
class FakeSink final : public Sink {
 public:
  using Answer = std::function<ItemResult(const Item&, int attempt)>;
  explicit FakeSink(Answer answer) : answer_(std::move(answer)) {}
  Status Send(const std::vector<const Item*>& items, std::vector<ItemResult>* results) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (down_) return UnavailableError("the fake downstream is down");
    results->clear();
    for (const Item* item : items) {
      const int attempt = ++attempts_[item->seq];
      results->push_back(answer_(*item, attempt));
      if (results->back().state == ItemResult::State::kDelivered) delivered_.push_back(item->seq);
    }
    return Status::Ok();
  }
  void set_down(bool down) {
    std::lock_guard<std::mutex> lock(mu_);
    down_ = down;
  }
  std::vector<uint64_t> delivered() {
    std::lock_guard<std::mutex> lock(mu_);
    return delivered_;
  }
  int attempts(uint64_t seq) {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_[seq];
  }

 private:
  std::mutex mu_;
  Answer answer_;
  bool down_ = false;
  std::map<uint64_t, int> attempts_;
  std::vector<uint64_t> delivered_;
};

inline ItemResult Delivered() { return {ItemResult::State::kDelivered, ""}; }

class OutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.CreateDir(kData).ok());
    ASSERT_TRUE(env_.CreateDir("/out").ok());
    alert::AlertOptions o;
    o.journal = "/data/alerts.jsonl";
    auto a = alert::Alerts::Open(&env_, o);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    alerts_ = std::move(*a);
  }
  void TearDown() override {
    if (outputs_) outputs_->Stop();
  }

  std::string Dir(const std::string& agent) const {
    return store::Layout(kData).StreamDir(agent, kEpoch);
  }
  // Stores seqs [first, first + n) of agent's stream.
  void Store(const std::string& agent, uint64_t first, uint32_t n) {
    auto& st = stores_[agent];
    if (st == nullptr) {
      auto s = store::StreamStore::Open(&env_, Dir(agent), epoch_,
                                        store::StoreOptions{.segment_bytes = 4096});
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      st = std::move(*s);
    }
    std::vector<std::string> payloads;
    for (uint32_t i = 0; i < n; ++i) {
      const std::string raw = "event " + std::to_string(first + i) + " of " + agent;
      event::Event e;
      e.observed_unix_ns = env_.clock()->NowNanos();
      e.raw = raw;
      e.message = raw;
      payloads.emplace_back();
      event::EncodeEvent(e, &payloads.back());
    }
    std::vector<store::Record> records;
    std::vector<Hash256> leaves;
    for (const std::string& p : payloads) {
      records.push_back(store::Record{FrameType::kData, crc32c::Value(p), p});
      leaves.push_back(spool::RecordLeafHash(FrameType::kData, p));
    }
    ASSERT_TRUE(st->Append(store::BatchPosition{first, false}, records, leaves).ok());
    ASSERT_TRUE(st->Commit().ok());
  }
  void Sign(const std::string& agent, uint64_t size) {
    outputs_->Signed(agent, kEpoch, Dir(agent), size);
  }

  OutputOptions FileOutput(const std::string& name = "siem") {
    OutputOptions o;
    o.name = name;
    o.type = "file";
    o.path = "/out/" + name + ".ndjson";
    o.retry_min_ms = 5;
    o.retry_max_ms = 20;
    return o;
  }
  OutputOptions FakeOutput(const std::string& name) {
    OutputOptions o;
    o.name = name;
    o.type = "relp";  // validated as a relp output; the fake replaces its sink
    o.address = "127.0.0.1:1";
    o.retry_min_ms = 5;
    o.retry_max_ms = 20;
    return o;
  }
  void StartOutputs(std::vector<OutputOptions> o,
                    std::map<std::string, std::shared_ptr<FakeSink>> fakes = {}) {
    auto out =
        Outputs::Start(&env_, kData, o, alerts_.get(),
                       [this, fakes](const OutputOptions& opt) -> StatusOr<std::unique_ptr<Sink>> {
                         auto it = fakes.find(opt.name);
                         if (it != fakes.end()) return std::unique_ptr<Sink>(new Proxy(it->second));
                         if (opt.type == "elasticsearch") return NewElasticsearchSink(opt);
                         if (opt.type == "splunk_hec") return NewSplunkHecSink(opt);
                         if (opt.type == "kafka") return NewKafkaSink(opt);
                         return NewFileSink(&env_, opt);
                       });
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    outputs_ = std::move(*out);
  }

  // The seqs in the file output's NDJSON file, in order.
  std::vector<uint64_t> FileSeqs(const std::string& path = "/out/siem.ndjson") {
    std::vector<uint64_t> seqs;
    auto text = env::ReadFileToString(&env_, path);
    if (!text.ok()) return seqs;
    simdjson::dom::parser parser;
    size_t pos = 0;
    while (pos < text->size()) {
      const size_t nl = text->find('\n', pos);
      if (nl == std::string::npos) break;
      auto doc = parser.parse(std::string_view(*text).substr(pos, nl - pos));
      EXPECT_EQ(doc.error(), simdjson::SUCCESS);
      if (!doc.error())
        seqs.push_back(doc.value_unsafe()["gapless.seq"].get_uint64().value_unsafe());
      pos = nl + 1;
    }
    return seqs;
  }
  bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds within = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
  static std::vector<uint64_t> Range(uint64_t from, uint64_t to) {
    std::vector<uint64_t> v;
    for (uint64_t i = from; i < to; ++i) v.push_back(i);
    return v;
  }
  bool Firing(const std::string& name) {
    for (const auto& a : alerts_->Firing()) {
      if (a.name == name) return true;
    }
    return false;
  }
  const StreamAccount* Account(const std::vector<OutputStats>& stats, const std::string& output) {
    for (const auto& s : stats) {
      if (s.name == output && !s.streams.empty()) {
        account_ = s.streams[0];
        return &account_;
      }
    }
    return nullptr;
  }

  // Forwards to a shared fake, so that the test keeps a handle on it.
  class Proxy final : public Sink {
   public:
    explicit Proxy(std::shared_ptr<FakeSink> f) : f_(std::move(f)) {}
    Status Send(const std::vector<const Item*>& items, std::vector<ItemResult>* results) override {
      return f_->Send(items, results);
    }

   private:
    std::shared_ptr<FakeSink> f_;
  };

  static constexpr char kEpoch[] = "00112233445566778899aabbccddeeff";
  env::FaultInjectionEnv env_;
  spool::Epoch epoch_{};
  std::unique_ptr<alert::Alerts> alerts_;
  std::map<std::string, std::unique_ptr<store::StreamStore>> stores_;
  std::unique_ptr<Outputs> outputs_;
  StreamAccount account_;
};

// A file only its owner can read, holding `secret` (an API key, a token), in a fresh
// temporary directory; removed by the caller with that directory.
inline std::string SecretFile(const std::string& name, const std::string& secret) {
  const std::string dir = ::testing::TempDir() + "/gapless_secret_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + name;
  std::ofstream(path) << secret << "\n";
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return path;
}

}  // namespace gapless::output::testing_fixture
