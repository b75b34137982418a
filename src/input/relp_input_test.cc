// The RELP input against a small blocking RELP client written for these tests; the real
// client (rsyslog's omrelp) is driven in tests/peers_test.cc and tests/agent_kill_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>

#include "input/input_test_util.h"
#include "relp/relp_frame.h"

namespace gapless::input {
namespace {

struct Reply {
  uint32_t txnr = 0;
  std::string command;
  std::string data;
};

class RelpClient {
 public:
  explicit RelpClient(uint16_t port) : socket_(io_), parser_(1 << 20) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  void Send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // For a sender the server may cut off.
  void SendIgnoringErrors(std::string_view bytes) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(bytes), ec);
  }
  void SendFrame(std::string_view command, std::string_view data) {
    Send(relp::FormatFrame(txnr_, command, data));
    txnr_ = relp::NextTxnr(txnr_);
  }
  void Open() {
    SendFrame("open", "relp_version=0\nrelp_software=test\ncommands=syslog");
    const std::optional<Reply> r = Next();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->command, "rsp");
    EXPECT_TRUE(r->data.starts_with("200 OK\n")) << r->data;
    EXPECT_NE(r->data.find("\ncommands=syslog"), std::string::npos) << r->data;
  }
  // The next frame from the server; nullopt once it closed the connection.
  std::optional<Reply> Next() {
    while (replies_.empty()) {
      char buf[4096];
      boost::system::error_code ec;
      const size_t n = socket_.read_some(asio::buffer(buf), ec);
      const Status s = parser_.Feed(std::string_view(buf, n), [&](const relp::Frame& f) {
        replies_.push_back({f.txnr, std::string(f.command), std::string(f.data)});
      });
      EXPECT_TRUE(s.ok()) << s.ToString();
      if (ec || !s.ok()) break;
    }
    if (replies_.empty()) return std::nullopt;
    Reply r = replies_.front();
    replies_.pop_front();
    return r;
  }
  uint32_t txnr() const { return txnr_; }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  relp::Parser parser_;
  std::deque<Reply> replies_;
  uint32_t txnr_ = 1;
};

class RelpTest : public InputTest {
 protected:
  void StartRelp(SyslogOptions o = Local()) { StartInput(NewRelpInput, std::move(o)); }
};

// The promise: "200 OK" for a message means it is durable. The committer waits 20 ms
// before each fsync, so an acknowledgement sent on append would be seen before it.
TEST_F(RelpTest, EveryMessageIsAcknowledgedOnlyOnceDurable) {
  commit_delay_us_ = 20'000;
  StartRelp();
  RelpClient c(input_->port());
  c.Open();
  const int n = 300;
  std::string frames;
  for (int i = 0; i < n; ++i) frames += relp::FormatFrame(2 + i, "syslog", Numbered(i));
  frames += relp::FormatFrame(2 + n, "close", "");
  c.Send(frames);
  for (int i = 0; i < n; ++i) {
    const std::optional<Reply> r = c.Next();
    ASSERT_TRUE(r.has_value()) << "closed after " << i << " acks";
    ASSERT_EQ(r->txnr, static_cast<uint32_t>(2 + i));
    ASSERT_EQ(r->command, "rsp");
    ASSERT_EQ(r->data, "200 OK");
    ASSERT_GE(spool_->durable_size(), static_cast<uint64_t>(i + 1))
        << "message " << i << " acknowledged before it was durable";
  }
  const std::optional<Reply> close = c.Next();
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->txnr, static_cast<uint32_t>(2 + n));
  EXPECT_EQ(close->data, "200 OK");  // librelp requires a status code in every rsp
  EXPECT_FALSE(c.Next().has_value()) << "the server closes after answering close";
  const auto got = WaitForRecords(n);
  ASSERT_EQ(got.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(got[i], Numbered(i));
  EXPECT_EQ(last_source_, "relp:" + std::to_string(input_->port()));
  EXPECT_EQ(input_->stats().acked, static_cast<uint64_t>(n));
}

// Under the block policy a full spool holds the acknowledgements back (the sender's
// window fills and it waits); every message is stored once room returns.
TEST_F(RelpTest, FullSpoolWithholdsAcknowledgementsAndLosesNothing) {
  spool::Options o = spool::testing::SmallOptions();
  o.quota_bytes = 8 * o.segment_bytes;
  OpenSpool(o);
  StartRelp();
  RelpClient c(input_->port());
  c.Open();
  const int n = 3000;
  std::atomic<int> acked{0};
  std::atomic<bool> early_ack{false};
  std::thread replies([&] {
    for (int i = 0; i < n; ++i) {
      const std::optional<Reply> r = c.Next();
      if (!r || r->txnr != static_cast<uint32_t>(2 + i) || r->data != "200 OK") return;
      // Not a proof of ordering between threads, but acks ahead of durability show up.
      if (spool_->durable_size() < static_cast<uint64_t>(i + 1)) early_ack = true;
      acked = i + 1;
    }
  });
  std::string frames;
  for (int i = 0; i < n; ++i) frames += relp::FormatFrame(2 + i, "syslog", Numbered(i));
  std::thread sender([&] { c.SendIgnoringErrors(frames); });
  for (int i = 0; i < 1000 && input_->stats().paused == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GT(input_->stats().paused, 0u) << "the spool never filled";
  std::this_thread::sleep_for(50ms);
  EXPECT_LT(acked.load(), n) << "messages the spool refused were acknowledged";
  const std::vector<std::string> got = Drain(n);
  sender.join();
  replies.join();
  ASSERT_EQ(static_cast<int>(got.size()), n);
  for (int i = 0; i < n; ++i) ASSERT_EQ(got[i], Numbered(i));
  EXPECT_EQ(acked.load(), n);
  EXPECT_FALSE(early_ack.load());
}

// A protocol violation ends the session after what is durable was answered, with a
// serverclose notice; the sender resends the rest.
TEST_F(RelpTest, ProtocolErrorsEndTheSessionAfterAnsweringWhatIsStored) {
  StartRelp();
  const struct {
    const char* name;
    std::string after_two_messages;
  } cases[] = {
      {"garbage", "this is not RELP\n"},
      {"wrong txnr", relp::FormatFrame(9, "syslog", "<13>x")},
      {"bad trailer", "4 syslog 3 abcX"},
  };
  uint64_t stored = 0;
  for (const auto& k : cases) {
    RelpClient c(input_->port());
    c.Open();
    c.SendFrame("syslog", Numbered(1));
    c.SendFrame("syslog", Numbered(2));
    c.Send(k.after_two_messages);
    for (uint32_t txnr : {2u, 3u}) {
      const std::optional<Reply> r = c.Next();
      ASSERT_TRUE(r.has_value()) << k.name;
      EXPECT_EQ(r->txnr, txnr) << k.name;
      EXPECT_EQ(r->data, "200 OK") << k.name;
    }
    const std::optional<Reply> bye = c.Next();
    ASSERT_TRUE(bye.has_value()) << k.name;
    EXPECT_EQ(bye->txnr, 0u) << k.name;
    EXPECT_EQ(bye->command, "serverclose") << k.name;
    EXPECT_FALSE(c.Next().has_value()) << k.name;
    stored += 2;
  }
  EXPECT_EQ(WaitForRecords(stored).size(), stored);
}

TEST_F(RelpTest, SessionRulesAreEnforced) {
  StartRelp();
  {
    RelpClient c(input_->port());
    c.SendFrame("syslog", Numbered(1));  // before open
    const std::optional<Reply> r = c.Next();
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->data.starts_with("500 ")) << r->data;
    EXPECT_EQ(c.Next()->command, "serverclose");
  }
  {
    RelpClient c(input_->port());
    c.SendFrame("open", "relp_version=0\ncommands=somethingelse");
    const std::optional<Reply> r = c.Next();
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->data.starts_with("500 ")) << r->data;
    EXPECT_EQ(c.Next()->command, "serverclose");
  }
  {
    RelpClient c(input_->port());
    c.Open();
    c.SendFrame("starttls", "");  // not offered, so not supported
    const std::optional<Reply> r = c.Next();
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->data.starts_with("500 command not supported")) << r->data;
    c.SendFrame("syslog", Numbered(7));  // the session goes on
    EXPECT_EQ(c.Next()->data, "200 OK");
  }
  const auto got = WaitForRecords(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], Numbered(7));
}

TEST_F(RelpTest, OversizeMessageIsStoredCutFlaggedAndAcknowledged) {
  StartRelp(Local(100));
  RelpClient c(input_->port());
  c.Open();
  const std::string big = "<13>" + std::string(500, 'x');
  c.SendFrame("syslog", big);
  c.SendFrame("syslog", Numbered(1));
  EXPECT_EQ(c.Next()->data, "200 OK");
  EXPECT_EQ(c.Next()->data, "200 OK");
  const auto got = WaitForRecords(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], big.substr(0, 100));
  EXPECT_EQ(got[1], Numbered(1));
  EXPECT_EQ(input_->stats().truncated, 1u);
}

TEST_F(RelpTest, TlsSessionDeliversAndAcknowledges) {
  TestCert cert;
  ASSERT_TRUE(cert.Make()) << "openssl command failed";
  SyslogOptions o = Local();
  o.tls = TlsServerOptions{cert.cert, cert.key, "", false};
  StartRelp(o);
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(cert.cert);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  asio::ssl::stream<tcp::socket> s(io, ctx);
  s.lowest_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), input_->port()));
  s.handshake(asio::ssl::stream_base::client);
  std::string frames = relp::FormatFrame(1, "open", "relp_version=0\ncommands=syslog");
  for (int i = 0; i < 50; ++i) frames += relp::FormatFrame(2 + i, "syslog", Numbered(i));
  frames += relp::FormatFrame(52, "close", "");
  asio::write(s, asio::buffer(frames));
  relp::Parser parser(4096);
  std::vector<uint32_t> acked;
  boost::system::error_code ec;
  while (!ec) {
    char buf[4096];
    const size_t n = s.read_some(asio::buffer(buf), ec);
    ASSERT_TRUE(parser
                    .Feed(std::string_view(buf, n),
                          [&](const relp::Frame& f) {
                            if (f.data.starts_with("200 OK")) acked.push_back(f.txnr);
                          })
                    .ok());
  }
  ASSERT_EQ(acked.size(), 52u);  // open, 50 messages, close
  for (uint32_t i = 0; i < 52; ++i) EXPECT_EQ(acked[i], i + 1);
  const auto got = WaitForRecords(50);
  ASSERT_EQ(got.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(got[i], Numbered(i));
  std::filesystem::remove_all(cert.dir);
}

TEST_F(RelpTest, StopWithHeldMessagesWritesAnInputStoppedLossRecord) {
  spool::Options o = spool::testing::SmallOptions();
  o.quota_bytes = 8 * o.segment_bytes;
  OpenSpool(o);
  StartRelp();
  RelpClient c(input_->port());
  c.Open();
  std::string frames;
  for (int i = 0; i < 3000; ++i) frames += relp::FormatFrame(2 + i, "syslog", Numbered(i));
  std::thread sender([&] { c.SendIgnoringErrors(frames); });
  for (int i = 0; i < 1000 && input_->stats().paused == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GT(input_->stats().paused, 0u);
  StopAll();
  sender.join();
  EXPECT_GT(input_->stats().lost_at_stop, 0u);
  uint64_t lost = 0;
  for (const spool::Record& r : spool::testing::ReadAll(spool_.get())) {
    if (r.type != spool::FrameType::kLoss) continue;
    StatusOr<spool::LossRecord> loss = spool::LossRecord::Decode(r.payload);
    ASSERT_TRUE(loss.ok()) << loss.status().ToString();
    EXPECT_EQ(loss->reason, spool::LossReason::kInputStopped);
    lost += loss->record_count;
  }
  EXPECT_EQ(lost, input_->stats().lost_at_stop);
}

}  // namespace
}  // namespace gapless::input
