#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <unistd.h>

#include "input/input_test_util.h"

namespace gapless::input {
namespace {

TEST_F(InputTest, TcpNewlineAndOctetCountedConnectionsKeepEveryMessageInOrder) {
  StartInput(NewSyslogTcpInput, Local());
  std::string lf;
  std::string octets;
  for (int i = 0; i < 500; ++i) {
    lf += Numbered(i) + "\n";
    const std::string m = Numbered(1000 + i);
    octets += std::to_string(m.size()) + " " + m;
  }
  SendTcp(input_->port(), lf);
  SendTcp(input_->port(), octets);
  const auto got = WaitForRecords(1000);
  ASSERT_EQ(got.size(), 1000u);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(got[i], Numbered(i));
    EXPECT_EQ(got[500 + i], Numbered(1000 + i));
  }
  EXPECT_EQ(last_source_, "syslog:tcp:" + std::to_string(input_->port()));
  EXPECT_EQ(input_->stats().connections, 2u);
}

TEST_F(InputTest, ConnectionsBeyondMaxConnectionsAreClosedUnread) {
  SyslogOptions o = Local();
  o.max_connections = 1;
  StartInput(NewSyslogTcpInput, o);
  asio::io_context io;
  tcp::socket first(io);
  first.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), input_->port()));
  asio::write(first, asio::buffer(Numbered(0) + "\n"));
  ASSERT_EQ(WaitForRecords(1).size(), 1u);  // the first connection is accepted and read
  tcp::socket second(io);
  second.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), input_->port()));
  char c;
  boost::system::error_code ec;
  second.read_some(asio::buffer(&c, 1), ec);  // the agent closes it without reading
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  asio::write(first, asio::buffer(Numbered(1) + "\n"));
  EXPECT_EQ(WaitForRecords(2), (std::vector<std::string>{Numbered(0), Numbered(1)}));
  EXPECT_EQ(input_->stats().connections, 1u);
}

TEST_F(InputTest, UnterminatedLastLineAndOverlongLineAreKeptAndFlagged) {
  StartInput(NewSyslogTcpInput, Local(100));
  SendTcp(input_->port(), std::string(300, 'x') + "\n<13>last without newline");
  const auto got = WaitForRecords(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::string(100, 'x'));
  EXPECT_EQ(got[1], "<13>last without newline");
  EXPECT_EQ(input_->stats().truncated, 1u);
  EXPECT_EQ(input_->stats().parse_errors, 1u);  // the x's have no PRI
}

TEST_F(InputTest, UdpDatagramsAreMessages) {
  StartInput(NewSyslogUdpInput, Local());
  asio::io_context io;
  udp::socket s(io, udp::v4());
  const udp::endpoint to(asio::ip::make_address("127.0.0.1"), input_->port());
  for (int i = 0; i < 100; ++i) {
    s.send_to(asio::buffer(Numbered(i)), to);
    if (i % 20 == 19) std::this_thread::sleep_for(5ms);  // stay under the default buffer
  }
  const auto got = WaitForRecords(100);
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], Numbered(i));
  EXPECT_EQ(input_->stats().kernel_drops, 0u);
}

// Under the block policy a full spool must stop the reader, and every message must
// arrive once room returns: the sender is held back by TCP, nothing is dropped.
TEST_F(InputTest, FullSpoolPausesTcpAndLosesNothing) {
  spool::Options o = spool::testing::SmallOptions();
  o.quota_bytes = 8 * o.segment_bytes;  // ~32 KiB: a few hundred messages
  OpenSpool(o);
  StartInput(NewSyslogTcpInput, Local());
  const int n = 5000;
  std::string all;
  for (int i = 0; i < n; ++i) all += Numbered(i) + "\n";
  std::thread sender([&] { SendTcp(input_->port(), all); });
  // Nothing is consumed until the input has paused on the full spool; then a consumer
  // frees space in small steps, so the input pauses and resumes many times.
  for (int i = 0; i < 1000 && input_->stats().paused == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GT(input_->stats().paused, 0u) << "the spool never filled";
  const std::vector<std::string> got = Drain(n);
  sender.join();
  ASSERT_EQ(static_cast<int>(got.size()), n);
  for (int i = 0; i < n; ++i) ASSERT_EQ(got[i], Numbered(i));
  EXPECT_GT(input_->stats().paused, 0u);
  EXPECT_EQ(spool_->stats().dropped_records, 0u);
}

// UDP cannot be held back: what the kernel drops while we are paused must be accounted
// for exactly — stored datagrams + udp_kernel_drop counts == datagrams sent.
TEST_F(InputTest, UdpKernelDropsBecomeLossRecordsThatAccountForEveryDatagram) {
  spool::Options o = spool::testing::SmallOptions();
  o.quota_bytes = 8 * o.segment_bytes;
  OpenSpool(o);
  SyslogOptions opts = Local();
  opts.receive_buffer_bytes = 4096;  // the kernel doubles it; still tiny
  StartInput(NewSyslogUdpInput, opts);
  asio::io_context io;
  udp::socket s(io, udp::v4());
  const udp::endpoint to(asio::ip::make_address("127.0.0.1"), input_->port());
  // GAPLESS_UDP_DATAGRAMS: 300,000 in `make test-long`.
  const char* env_n = std::getenv("GAPLESS_UDP_DATAGRAMS");
  const int n = env_n != nullptr ? std::max(1, std::atoi(env_n)) : 3000;
  for (int i = 0; i < n; ++i) s.send_to(asio::buffer(Numbered(i)), to);
  // Then silence: no datagram brings the kernel's last drop count; the input reads it
  // from the socket's counter by itself (each second), so the account closes anyway.
  uint64_t stored = 0;
  uint64_t lost = 0;
  auto reader = spool_->NewReader(0);
  ASSERT_TRUE(reader.ok());
  auto caught_up = std::chrono::steady_clock::time_point::max();
  for (int round = 0; round < 20000; ++round) {
    std::this_thread::sleep_for(2ms);
    spool::Record r;
    while (*(*reader)->Next(&r)) {
      if (r.type == spool::FrameType::kLoss) {
        auto loss = spool::LossRecord::Decode(r.payload);
        ASSERT_TRUE(loss.ok());
        ASSERT_EQ(loss->reason, spool::LossReason::kUdpKernelDrop);
        lost += loss->record_count;
      } else if (r.type == spool::FrameType::kData) {
        ++stored;
      }
    }
    ASSERT_TRUE(spool_->AdvanceCursor("dest", (*reader)->next_seq()).ok());
    if (stored + lost == static_cast<uint64_t>(n)) break;
    // Once nothing more is read, the account must close within the poll interval.
    if (input_->stats().messages != stored) {
      caught_up = caught_up.max();
    } else if (caught_up == caught_up.max()) {
      caught_up = std::chrono::steady_clock::now();
    }
    if (std::chrono::steady_clock::now() - caught_up > 5s) break;
  }
  EXPECT_GT(lost, 0u) << "the test did not make the kernel drop anything";
  EXPECT_EQ(stored + lost, static_cast<uint64_t>(n))
      << "stored " << stored << ", declared " << lost;
  EXPECT_EQ(input_->stats().kernel_drops, lost);
}

TEST(ProcNetUdp, TheDropsColumnOfTheSocketsLine) {
  const std::string table =
      "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
      "timeout inode ref pointer drops\n"
      "  123: 0100007F:0202 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        "
      "0 4711 2 0000000000000000 0\n"
      "  124: 0100007F:0203 00000000:0000 07 00000000:00004400 00:00000000 00000000     0        "
      "0 4712 2 0000000000000000 138967\n";
  EXPECT_EQ(ProcNetUdpDrops(table, 4712), 138967u);
  EXPECT_EQ(ProcNetUdpDrops(table, 4711), 0u);
  EXPECT_EQ(ProcNetUdpDrops(table, 99), std::nullopt);
  EXPECT_EQ(ProcNetUdpDrops("", 4711), std::nullopt);
  EXPECT_EQ(ProcNetUdpDrops("header\n 1: a b c d e f g h 4711 j k x1\n", 4711), std::nullopt);
  EXPECT_EQ(ProcNetUdpDrops("header\n 1: a b\n\n\n", 1), std::nullopt);
}

TEST_F(InputTest, StopWithHeldMessagesWritesAnInputStoppedLossRecord) {
  spool::Options o = spool::testing::SmallOptions();
  o.quota_bytes = 8 * o.segment_bytes;
  OpenSpool(o);
  StartInput(NewSyslogTcpInput, Local());
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), input_->port()));
  std::string all;
  for (int i = 0; i < 2000; ++i) all += Numbered(i) + "\n";
  asio::write(s, asio::buffer(all));
  for (int i = 0; i < 500 && input_->stats().paused == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GT(input_->stats().paused, 0u);
  StopAll();
  ASSERT_TRUE(spool_->Sync().ok());
  uint64_t lost = 0;
  for (const auto& l : spool::testing::LossRecords(spool::testing::ReadAll(spool_.get()))) {
    EXPECT_EQ(l.reason, spool::LossReason::kInputStopped);
    lost += l.record_count;
  }
  EXPECT_GT(lost, 0u);
  EXPECT_EQ(lost, input_->stats().lost_at_stop);
}

TEST_F(InputTest, TlsConnectionDeliversVerifiedMessages) {
  TestCert cert;
  ASSERT_TRUE(cert.Make()) << "openssl command failed";
  SyslogOptions o = Local();
  o.tls = TlsServerOptions{cert.cert, cert.key, "", false};
  StartInput(NewSyslogTcpInput, o);
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(cert.cert);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  asio::ssl::stream<tcp::socket> s(io, ctx);
  s.lowest_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), input_->port()));
  s.handshake(asio::ssl::stream_base::client);  // fails the test (throws) if unverified
  std::string all;
  for (int i = 0; i < 200; ++i) {
    const std::string m = Numbered(i);
    all += std::to_string(m.size()) + " " + m;
  }
  asio::write(s, asio::buffer(all));
  boost::system::error_code ec;
  s.shutdown(ec);
  const auto got = WaitForRecords(200);
  ASSERT_EQ(got.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(got[i], Numbered(i));
  EXPECT_EQ(last_source_, "syslog:tls:" + std::to_string(input_->port()));
  std::filesystem::remove_all(cert.dir);
}

TEST_F(InputTest, TlsWithAMissingKeyFileFailsToStartWithTheFileNamed) {
  OpenSpool();
  SyslogOptions o = Local();
  o.tls = TlsServerOptions{"/nonexistent/cert.pem", "/nonexistent/key.pem", "", false};
  Context ctx{&io_, ingest_.get(), env::Env::Posix()->clock(), ""};
  auto input = NewSyslogTcpInput(ctx, o);
  const Status s = input->Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/cert.pem"), std::string::npos) << s.ToString();
}

// The input's TLS key is a secret like every other: a key others can read is refused.
TEST_F(InputTest, TlsWithAKeyOthersCanReadFailsToStart) {
  OpenSpool();
  TestCert cert;
  ASSERT_TRUE(cert.Make()) << "openssl command failed";
  ASSERT_EQ(::chmod(cert.key.c_str(), 0644), 0);
  SyslogOptions o = Local();
  o.tls = TlsServerOptions{cert.cert, cert.key, "", false};
  Context ctx{&io_, ingest_.get(), env::Env::Posix()->clock(), ""};
  auto input = NewSyslogTcpInput(ctx, o);
  const Status s = input->Start();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("chmod 600 " + cert.key), std::string::npos) << s.ToString();
  std::filesystem::remove_all(cert.dir);
}

TEST(ListenAddress, ParsesAndExplainsMistakes) {
  std::string a;
  uint16_t p = 0;
  ASSERT_TRUE(ParseListenAddress("127.0.0.1:6514", &a, &p).ok());
  EXPECT_EQ(a, "127.0.0.1");
  EXPECT_EQ(p, 6514);
  ASSERT_TRUE(ParseListenAddress("[::1]:514", &a, &p).ok());
  EXPECT_EQ(a, "::1");
  EXPECT_NE(ParseListenAddress("localhost:514", &a, &p).message().find("numeric"),
            std::string::npos);
  EXPECT_FALSE(ParseListenAddress("127.0.0.1", &a, &p).ok());
  EXPECT_FALSE(ParseListenAddress("127.0.0.1:70000", &a, &p).ok());
  EXPECT_FALSE(ParseListenAddress("::1:514", &a, &p).ok());
}

}  // namespace
}  // namespace gapless::input
