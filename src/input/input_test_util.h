// Internal to src/input tests: an input on its own io thread over an in-memory spool.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include "env/fault_injection_env.h"
#include "input/input.h"
#include "spool/spool_test_util.h"

namespace gapless::input {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using namespace std::chrono_literals;

// An input running on its own io thread over an in-memory spool.
class InputTest : public ::testing::Test {
 protected:
  void OpenSpool(spool::Options o = spool::testing::SmallOptions()) {
    o.max_record_bytes = 2048;
    o.segment_bytes = 16384;
    o.quota_bytes = std::max<uint64_t>(o.quota_bytes, 4 * o.segment_bytes);
    spool_ = spool::testing::OpenOrDie(&env_, o);
    ASSERT_TRUE(spool_->AddCursor("dest", true).ok());
    ingest_ = std::make_unique<ingest::Ingest>(spool_.get(), commit_delay_us_);
  }
  void StartInput(std::unique_ptr<Input> (*factory)(const Context&, const SyslogOptions&),
                  SyslogOptions o) {
    if (!spool_) OpenSpool();
    Context ctx{&io_, ingest_.get(), env::Env::Posix()->clock(), ""};
    input_ = factory(ctx, o);
    const Status s = input_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    work_.emplace(asio::make_work_guard(io_));
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override { StopAll(); }
  void StopAll() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] { input_->Stop(); });
    work_.reset();
    thread_.join();
    ingest_->Stop();
  }
  // Waits until `n` records are durable (10 s at most); returns every event's raw bytes.
  std::vector<std::string> WaitForRecords(uint64_t n) {
    for (int i = 0; i < 1000 && spool_->durable_size() < n; ++i) std::this_thread::sleep_for(10ms);
    std::vector<std::string> out;
    for (const spool::Record& r : spool::testing::ReadAll(spool_.get())) {
      if (r.type != spool::FrameType::kData) continue;
      event::Event e;
      EXPECT_TRUE(event::DecodeEvent(r.payload, &e).ok());
      out.emplace_back(e.raw);
      last_source_ = std::string(e.source);
    }
    return out;
  }
  // Consumes the spool in small steps, advancing the cursor like a slow destination,
  // until n events were read or 6 s passed; returns the raw bytes (or the message) of each.
  std::vector<std::string> Drain(size_t n, bool messages = false) {
    std::vector<std::string> got;
    auto reader = spool_->NewReader(0);
    EXPECT_TRUE(reader.ok());
    if (!reader.ok()) return got;
    for (int round = 0; round < 3000 && got.size() < n; ++round) {
      std::this_thread::sleep_for(2ms);
      spool::Record r;
      while (true) {
        StatusOr<bool> more = (*reader)->Next(&r);
        EXPECT_TRUE(more.ok()) << more.status().ToString();
        if (!more.ok() || !*more) break;
        event::Event e;
        EXPECT_TRUE(event::DecodeEvent(r.payload, &e).ok());
        got.emplace_back(messages ? e.message : e.raw);
      }
      EXPECT_TRUE(spool_->AdvanceCursor("dest", (*reader)->next_seq()).ok());
    }
    return got;
  }
  std::string Numbered(int i) {
    return "<13>Nov 22 10:00:00 host app: message " + std::to_string(i);
  }

  int64_t commit_delay_us_ = 0;
  env::FaultInjectionEnv env_;
  std::unique_ptr<spool::Spool> spool_;
  std::unique_ptr<ingest::Ingest> ingest_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::unique_ptr<Input> input_;
  std::string last_source_;
};

inline SyslogOptions Local(int max = 1024) {
  SyslogOptions o;
  o.listen = "127.0.0.1:0";
  o.max_message_bytes = static_cast<size_t>(max);
  return o;
}

inline void SendTcp(uint16_t port, const std::string& bytes) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(s, asio::buffer(bytes));
  s.shutdown(tcp::socket::shutdown_send);
  char c;
  boost::system::error_code ec;
  s.read_some(asio::buffer(&c, 1), ec);  // wait for the agent to close after EOF
}

// A self-signed certificate made with the openssl command line tool for one test.
struct TestCert {
  std::string dir = ::testing::TempDir() + "/gapless_tls_" + std::to_string(::getpid());
  std::string cert = dir + "/cert.pem";
  std::string key = dir + "/key.pem";
  bool Make() {
    std::filesystem::create_directories(dir);
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout " +
        key + " -out " + cert + " >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0 && ::chmod(key.c_str(), 0600) == 0;
  }
};

}  // namespace gapless::input
