// Sender ↔ collector in one process: delivery, acks, authentication, reconfiguration.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <random>

#include "alert/alert.h"
#include "base/coding.h"
#include "base/crc32c.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "collector/raw_client_test_util.h"
#include "collector/transport_fixture.h"
#include "env/fault_injection_env.h"
#include "merkle/proof.h"
#include "store/hash_levels.h"
#include "wire/tls_binding.h"
#include "wire/wire.h"

namespace gapless::transport {
namespace {

using wire::ErrorCode;

uint64_t Rejected(const collector::Collector& c, ErrorCode code) {
  return c.stats().rejected[static_cast<size_t>(code)];
}

TEST_F(TransportFixture, DeliversEverySeqOnceAndAdvancesTheCursorOnlyOnAck) {
  OpenSpool();
  AppendRecords(20000);
  // Nothing acked while the collector is down: the cursor stays at 0.
  Sender* s = StartSender(Destination(), key_);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(s->stats().acked_next, 0u);
  EXPECT_EQ(*spool_->CursorPosition("main"), 0u);
  StartCollector();
  s->Reconfigure(Destination());
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == 20000; }, 20000))
      << s->stats().acked_next;
  AppendRecords(5000);  // more while connected
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == 25000; }, 20000));
  ASSERT_TRUE(WaitFor([&] { return *spool_->CursorPosition("main") == 25000; }, 5000));
  EXPECT_EQ(collector_->stats().records, 25000u);
  senders_.clear();
  ExpectStoredExactly(25000);
}

TEST_F(TransportFixture, ResendsAfterReconnectAreNotStoredTwice) {
  OpenSpool();
  AppendRecords(3000);
  StartCollector();
  Sender* s = StartSender(Destination(), key_);
  for (int i = 0; i < 20; ++i) {
    AppendRecords(500);
    s->Reconfigure(Destination(i % 2));  // switch listeners while batches are in flight
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == 13000; }, 20000));
  // Reconfigure only posts; the last may still be queued behind the final acks.
  EXPECT_TRUE(WaitFor([&] { return s->stats().restarts >= 20; }, 5000));
  senders_.clear();
  ExpectStoredExactly(13000);
}

TEST_F(TransportFixture, UnenrolledAgentIsRejectedWithAReason) {
  OpenSpool();
  AppendRecords(10);
  StartCollector();
  auto stranger = identity::SigningKey::Generate();
  ASSERT_TRUE(stranger.ok());
  Sender* s = StartSender(Destination(), std::move(*stranger), "agent-2");
  ASSERT_TRUE(WaitFor([&] { return Rejected(*collector_, ErrorCode::kUnknownAgent) >= 1; }, 5000));
  // The collector counts a rejection before its ERROR frame reaches the agent.
  EXPECT_TRUE(WaitFor([&] { return s->stats().rejections >= 1; }, 5000));
  EXPECT_EQ(s->stats().acked_next, 0u);
  EXPECT_TRUE(ReadStored("agent-2").empty());
}

// A start that fails after the collector took shape (here: its port is taken) returns the
// error; it once aborted the process instead, joining threads that never started.
TEST_F(TransportFixture, ACollectorWhosePortIsTakenSaysSo) {
  StartCollector();
  collector::CollectorOptions o = copts_;
  o.data_dir = copts_.data_dir + "-second";
  o.listen = {"127.0.0.1:" + std::to_string(collector_->ports()[0])};
  auto second = collector::Collector::Start(env::Env::Posix(), o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("cannot listen on " + o.listen[0]), std::string::npos)
      << second.status().ToString();
}

TEST_F(TransportFixture, AnAgentCannotWriteAnotherAgentsStream) {
  OpenSpool();
  AppendRecords(10);
  StartCollector();
  // A second, enrolled agent claims agent-1's identity with its own key.
  auto other = identity::SigningKey::Generate();
  ASSERT_TRUE(other.ok());
  std::shared_ptr<const identity::SigningKey> other_key(std::move(*other));
  Enroll("agent-2", other_key->public_key());
  Sender* s = StartSender(Destination(), other_key, "agent-1");
  ASSERT_TRUE(WaitFor([&] { return Rejected(*collector_, ErrorCode::kWrongKey) >= 1; }, 5000));
  EXPECT_EQ(s->stats().acked_next, 0u);
  EXPECT_TRUE(ReadStored("agent-1").empty());
}

TEST_F(TransportFixture, OneTimeEnrollmentTokenRegistersAKeyOnce) {
  OpenSpool();
  AppendRecords(10);
  const std::string tokens = dir_ + "/tokens";
  std::ofstream(tokens) << "tok-0123456789abcdef\n";
  ASSERT_EQ(chmod(tokens.c_str(), 0600), 0);
  copts_.enroll_tokens = tokens;
  StartCollector();
  auto k3 = identity::SigningKey::Generate();
  ASSERT_TRUE(k3.ok());
  std::shared_ptr<const identity::SigningKey> key3(std::move(*k3));
  auto s = Sender::Start(spool_.get(), AgentIdentity{"agent-3", key3, "tok-0123456789abcdef"},
                         Destination());
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(WaitFor([&] { return (*s)->stats().acked_next == 10; }, 5000));
  EXPECT_EQ(collector_->stats().enrolled, 1u);
  std::ifstream enrolled(dir_ + "/enrolled");
  std::string all((std::istreambuf_iterator<char>(enrolled)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("agent-3 " + identity::FormatPublicKey(key3->public_key())),
            std::string::npos);
  (*s)->Stop();
  // The token is used up: another new agent presenting it is refused.
  auto k4 = identity::SigningKey::Generate();
  ASSERT_TRUE(k4.ok());
  auto s4 = Sender::Start(spool_.get(),
                          AgentIdentity{"agent-4", std::move(*k4), "tok-0123456789abcdef"}, [&] {
                            auto d = Destination();
                            d.name = "other";
                            return d;
                          }());
  ASSERT_TRUE(s4.ok());
  ASSERT_TRUE(WaitFor([&] { return Rejected(*collector_, ErrorCode::kUnknownAgent) >= 1; }, 5000));
  EXPECT_EQ(collector_->stats().enrolled, 1u);
}

TEST_F(TransportFixture, AShortEnrollmentTokenIsNeverAccepted) {
  OpenSpool();
  AppendRecords(10);
  const std::string tokens = dir_ + "/tokens";
  std::ofstream(tokens) << "tok-12345\n";  // 9 bytes: guessable online
  ASSERT_EQ(chmod(tokens.c_str(), 0600), 0);
  copts_.enroll_tokens = tokens;
  StartCollector();
  auto k = identity::SigningKey::Generate();
  ASSERT_TRUE(k.ok());
  auto s = Sender::Start(spool_.get(), AgentIdentity{"agent-3", std::move(*k), "tok-12345"},
                         Destination());
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(WaitFor([&] { return Rejected(*collector_, ErrorCode::kUnknownAgent) >= 1; }, 5000));
  EXPECT_EQ(collector_->stats().enrolled, 0u);
  EXPECT_TRUE(ReadStored("agent-3").empty());
}

// An authenticated agent that sends other bytes for seqs the collector stored: both
// versions are kept, the stream is flagged, and an `equivocation` alert fires.
TEST_F(TransportFixture, AnEquivocatingAgentRaisesAnAlert) {
  alert::AlertOptions ao;
  ao.journal = dir_ + "/alerts.jsonl";
  auto alerts = alert::Alerts::Open(env::Env::Posix(), ao);
  ASSERT_TRUE(alerts.ok());
  copts_.alerts = alerts->get();
  OpenSpool();
  StartCollector();
  Sender* s = StartSender(Destination(), key_);
  AppendRecords(20);
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == 20; }, 10000));
  senders_.clear();
  EXPECT_TRUE((*alerts)->Firing().empty());

  RawClient c(dir_ + "/tls.crt", collector_->ports()[0]);
  auto [type, body] = c.Read();
  ASSERT_EQ(type, wire::MessageType::kChallenge);
  wire::Hello hello;
  hello.agent_id = "agent-1";
  hello.public_key = key_->public_key();
  hello.epoch = spool_->epoch();
  c.Sign(&hello, *key_, body);
  c.Write(wire::MessageType::kHello, wire::EncodeHello(hello));
  ASSERT_EQ(c.Read().first, wire::MessageType::kWelcome);
  wire::BatchEncoder enc;
  enc.Reset(5, 0);
  for (int i = 0; i < 3; ++i) {
    const std::string p = "another history " + std::to_string(i);
    enc.Add(spool::FrameType::kData, crc32c::Value(p), p);
  }
  std::string frame;
  ASSERT_TRUE(enc.Finish(&frame).ok());
  c.WriteRaw(frame);
  ASSERT_TRUE(WaitFor([&] { return collector_->stats().equivocations == 3; }, 10000));
  const auto firing = (*alerts)->Firing();
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_EQ(firing[0].name, "equivocation");
  EXPECT_EQ(firing[0].subject, "agent-1/" + store::EpochHex(spool_->epoch()));
  collector_->Stop();
  collector_.reset();
}

TEST_F(TransportFixture, AReplayedHelloIsRejected) {
  OpenSpool();
  StartCollector();
  wire::Hello hello;
  hello.agent_id = "agent-1";
  hello.public_key = key_->public_key();
  hello.epoch = spool_->epoch();
  {
    RawClient first(dir_ + "/tls.crt", collector_->ports()[0]);
    auto [type, body] = first.Read();
    ASSERT_EQ(type, wire::MessageType::kChallenge);
    first.Sign(&hello, *key_, body);
    first.Write(wire::MessageType::kHello, wire::EncodeHello(hello));
    EXPECT_EQ(first.Read().first, wire::MessageType::kWelcome);  // genuine: accepted
  }
  RawClient replay(dir_ + "/tls.crt", collector_->ports()[0]);
  EXPECT_EQ(replay.Read().first, wire::MessageType::kChallenge);
  replay.Write(wire::MessageType::kHello, wire::EncodeHello(hello));  // the old signature
  auto [type, body] = replay.Read();
  ASSERT_EQ(type, wire::MessageType::kError);
  auto e = wire::DecodeError(body);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->code, ErrorCode::kBadSignature);
  EXPECT_EQ(Rejected(*collector_, ErrorCode::kBadSignature), 1u);
}

// An unknown agent is told how to get in but not where the server keeps its files; and a
// stream of hellos with self-made keys does not make the collector re-read enrolled_keys
// for each one.
TEST_F(TransportFixture, UnknownAgentsLearnNoServerPathsAndCannotForceReReads) {
  OpenSpool();
  StartCollector();
  const uint64_t reads_at_start = collector_->stats().enrolled_keys_reads;
  for (int i = 0; i < 20; ++i) {
    auto stranger = identity::SigningKey::Generate();
    ASSERT_TRUE(stranger.ok());
    RawClient c(dir_ + "/tls.crt", collector_->ports()[0]);
    auto [type, body] = c.Read();
    ASSERT_EQ(type, wire::MessageType::kChallenge);
    wire::Hello hello;
    hello.agent_id = "stranger-" + std::to_string(i);
    hello.public_key = (*stranger)->public_key();
    hello.epoch = spool_->epoch();
    c.Sign(&hello, **stranger, body);
    c.Write(wire::MessageType::kHello, wire::EncodeHello(hello));
    auto [etype, ebody] = c.Read();
    ASSERT_EQ(etype, wire::MessageType::kError);
    auto e = wire::DecodeError(ebody);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->code, ErrorCode::kUnknownAgent);
    EXPECT_NE(e->message.find(identity::FormatPublicKey(hello.public_key)), std::string::npos)
        << e->message;
    EXPECT_EQ(e->message.find(dir_), std::string::npos) << e->message;
  }
  // At most one re-read (the 5 s interval may pass once on a slow machine), not 20.
  EXPECT_LE(collector_->stats().enrolled_keys_reads - reads_at_start, 1u);
  // A change to the file is seen at the next unknown hello.
  auto late = identity::SigningKey::Generate();
  ASSERT_TRUE(late.ok());
  std::shared_ptr<const identity::SigningKey> late_key(std::move(*late));
  Enroll("agent-late", late_key->public_key());
  Sender* s = StartSender(Destination(), late_key, "agent-late");
  AppendRecords(5);
  EXPECT_TRUE(WaitFor([&] { return s->stats().acked_next == 5; }, 10000));
}

// Issue 16 item 10: a collector the agent trusts relays another collector's challenge. The
// agent signs for its own TLS session (with the relay), so the hello does not verify on
// the relay's session with the real collector.
TEST_F(TransportFixture, AHelloSignedForAnotherTlsSessionIsRefused) {
  OpenSpool();
  StartCollector();
  RawClient real(dir_ + "/tls.crt", collector_->ports()[0]);   // the relay's own session
  RawClient agent(dir_ + "/tls.crt", collector_->ports()[0]);  // the agent's session
  auto [type, body] = real.Read();
  ASSERT_EQ(type, wire::MessageType::kChallenge);
  EXPECT_EQ(agent.Read().first, wire::MessageType::kChallenge);
  wire::Hello hello;
  hello.agent_id = "agent-1";
  hello.public_key = key_->public_key();
  hello.epoch = spool_->epoch();
  real.Sign(&hello, *key_, body, agent.Binding());  // the right nonce, the other session
  real.Write(wire::MessageType::kHello, wire::EncodeHello(hello));
  auto [etype, ebody] = real.Read();
  ASSERT_EQ(etype, wire::MessageType::kError);
  EXPECT_EQ(wire::DecodeError(ebody)->code, ErrorCode::kBadSignature);
  EXPECT_TRUE(ReadStored("agent-1").empty());
}

TEST_F(TransportFixture, AHelloSignedForAnotherServerNameIsRefused) {
  OpenSpool();
  StartCollector();
  RawClient c(dir_ + "/tls.crt", collector_->ports()[0]);
  auto [type, body] = c.Read();
  ASSERT_EQ(type, wire::MessageType::kChallenge);
  wire::Hello hello;
  hello.agent_id = "agent-1";
  hello.public_key = key_->public_key();
  hello.epoch = spool_->epoch();
  hello.server_name = "other-collector.test";
  c.Sign(&hello, *key_, body);
  c.Write(wire::MessageType::kHello, wire::EncodeHello(hello));
  auto [etype, ebody] = c.Read();
  ASSERT_EQ(etype, wire::MessageType::kError);
  auto e = wire::DecodeError(ebody);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->code, ErrorCode::kBadSignature);
  EXPECT_NE(e->message.find("other-collector.test"), std::string::npos) << e->message;
}

// A scripted collector, to see what the agent's sender sends: it answers each connection
// with a challenge, reads the hello, and then does what `script` says for that connection.
class ScriptedCollector {
 public:
  enum class Then { kUnknownAgent, kWelcomeThenClose, kSecondChallenge };
  ScriptedCollector(const std::string& dir, std::vector<Then> script)
      : ctx_(boost::asio::ssl::context::tls_server),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}),
        port_(acceptor_.local_endpoint().port()),
        script_(std::move(script)) {
    ctx_.use_certificate_chain_file(dir + "/tls.crt");
    ctx_.use_private_key_file(dir + "/tls.key", boost::asio::ssl::context::pem);
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedCollector() {
    if (!done_) {  // unblock the accept with a connection that fails its handshake
      boost::asio::io_context io;
      boost::asio::ip::tcp::socket s(io);
      boost::system::error_code ignored;
      s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ignored);
      s.close(ignored);
    }
    thread_.join();
  }
  uint16_t port() const { return port_; }
  bool done() const { return done_; }
  // Once done(): what each connection's hello carried as its enrollment token, and how
  // often the agent closed the connection when challenged a second time.
  std::vector<std::string> tokens;
  int closed_after_second_challenge = 0;

 private:
  void Run() {
    RunScript();
    done_ = true;
  }
  void RunScript() {
    namespace asio = boost::asio;
    for (Then then : script_) {
      boost::system::error_code ec;
      asio::ssl::stream<asio::ip::tcp::socket> s(io_, ctx_);
      acceptor_.accept(s.lowest_layer(), ec);
      if (ec) return;
      s.handshake(asio::ssl::stream_base::server, ec);
      if (ec) return;
      wire::Challenge ch;
      ch.nonce[0] = 7;
      WriteFrame(&s, wire::MessageType::kChallenge, wire::EncodeChallenge(ch));
      auto [type, body] = ReadFrame(&s);
      if (type != wire::MessageType::kHello) return;
      auto hello = wire::DecodeHello(body);
      if (!hello.ok()) return;
      tokens.push_back(hello->enroll_token);
      switch (then) {
        case Then::kUnknownAgent:
          WriteFrame(&s, wire::MessageType::kError,
                     wire::EncodeError({ErrorCode::kUnknownAgent, "not enrolled"}));
          break;
        case Then::kWelcomeThenClose: {
          wire::Welcome w;
          w.max_frame = wire::kMaxFrameBytes;
          WriteFrame(&s, wire::MessageType::kWelcome, wire::EncodeWelcome(w));
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          break;
        }
        case Then::kSecondChallenge: {
          WriteFrame(&s, wire::MessageType::kChallenge, wire::EncodeChallenge(ch));
          // The agent must close rather than sign again.
          auto [t2, b2] = ReadFrame(&s);
          if (t2 == wire::MessageType::kError && b2 == "closed") ++closed_after_second_challenge;
          break;
        }
      }
      s.lowest_layer().close(ec);
    }
  }
  template <typename S>
  static void WriteFrame(S* s, wire::MessageType type, const std::string& body) {
    std::string f;
    wire::AppendFrame(&f, type, body);
    boost::system::error_code ec;
    boost::asio::write(*s, boost::asio::buffer(f), ec);
  }
  // (kError, "closed") when the peer closed the connection.
  template <typename S>
  static std::pair<wire::MessageType, std::string> ReadFrame(S* s) {
    char h[wire::kFrameHeaderSize];
    boost::system::error_code ec;
    boost::asio::read(*s, boost::asio::buffer(h), ec);
    if (ec) return {wire::MessageType::kError, "closed"};
    auto fh = wire::DecodeFrameHeader(std::string_view(h, sizeof(h)), wire::kMaxFrameBytes);
    if (!fh.ok()) return {wire::MessageType::kError, "bad header"};
    std::string body(fh->body_bytes, '\0');
    boost::asio::read(*s, boost::asio::buffer(body), ec);
    if (ec) return {wire::MessageType::kError, "closed"};
    return {fh->type, body};
  }
  boost::asio::io_context io_;
  boost::asio::ssl::context ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  const uint16_t port_;
  std::vector<Then> script_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// The enrollment token goes only to a collector that said it does not know the agent, and
// never again once a hello with it was welcomed; and a second challenge on one connection
// is refused, not signed.
TEST_F(TransportFixture, TheEnrollmentTokenIsSentOnlyWhereNeededAndOnlyOnce) {
  OpenSpool();
  using Then = ScriptedCollector::Then;
  auto fake = std::make_unique<ScriptedCollector>(
      dir_, std::vector<Then>{Then::kUnknownAgent, Then::kWelcomeThenClose, Then::kSecondChallenge,
                              Then::kSecondChallenge});
  DestinationOptions d = Destination();
  d.address = "127.0.0.1:" + std::to_string(fake->port());
  auto s = Sender::Start(spool_.get(), AgentIdentity{"agent-3", key_, "tok-0123456789abcdef"}, d);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(WaitFor([&] { return fake->done(); }, 20000));
  (*s)->Stop();
  EXPECT_EQ(fake->tokens, (std::vector<std::string>{"", "tok-0123456789abcdef", "", ""}));
  EXPECT_EQ(fake->closed_after_second_challenge, 2);
  EXPECT_GE((*s)->stats().rejections, 1u);
}

TEST_F(TransportFixture, OversizedFrameIsRefusedBeforeItsBodyIsRead) {
  OpenSpool();
  StartCollector();
  RawClient c(dir_ + "/tls.crt", collector_->ports()[0]);
  EXPECT_EQ(c.Read().first, wire::MessageType::kChallenge);
  // Only the header of a 1 GiB frame: the collector must answer without waiting for it.
  std::string header;
  PutFixed32(&header, 1u << 30);
  header.push_back(static_cast<char>(wire::MessageType::kHello));
  c.WriteRaw(header);
  auto [type, body] = c.Read();
  ASSERT_EQ(type, wire::MessageType::kError);
  EXPECT_EQ(wire::DecodeError(body)->code, ErrorCode::kTooLarge);
}

TEST_F(TransportFixture, ABatchBeforeTheHelloIsRefused) {
  OpenSpool();
  StartCollector();
  RawClient c(dir_ + "/tls.crt", collector_->ports()[0]);
  EXPECT_EQ(c.Read().first, wire::MessageType::kChallenge);
  c.Write(wire::MessageType::kAck, wire::EncodeAck(5));
  auto [type, body] = c.Read();
  ASSERT_EQ(type, wire::MessageType::kError);
  EXPECT_EQ(wire::DecodeError(body)->code, ErrorCode::kUnexpectedMessage);
}

spool::Options SmallQuota(spool::FullPolicy policy) {
  spool::Options o;
  o.segment_bytes = 64 << 10;
  o.quota_bytes = 256 << 10;
  o.full_policy = policy;
  o.max_record_bytes = 16 << 10;
  return o;
}

TEST_F(TransportFixture, CollectorDownPastTheQuotaWithBlockLosesNothing) {
  OpenSpool(SmallQuota(spool::FullPolicy::kBlock));
  Sender* s = StartSender(Destination(), key_);  // nothing listens yet
  uint64_t appended = 0;
  for (;;) {  // the agent's inputs would stop reading here
    auto r = spool_->Append("record " + std::to_string(appended) + std::string(200, 'x'));
    if (!r.ok()) {
      ASSERT_EQ(r.status().code(), StatusCode::kResourceExhausted);
      break;
    }
    ++appended;
  }
  ASSERT_TRUE(spool_->Sync().ok());
  EXPECT_GT(appended, 500u);
  StartCollector();
  s->Reconfigure(Destination());
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == appended; }, 20000));
  // Room again once the collector has acknowledged: the blocked input resumes.
  ASSERT_TRUE(WaitFor([&] { return spool_->WaitForRoom(300, 10); }, 5000));
  AppendRecords(100);
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == appended + 100; }, 20000));
  senders_.clear();
  ExpectStoredExactly(appended + 100);
}

TEST_F(TransportFixture, CollectorDownPastTheQuotaWithDropOldestIsAccountedExactly) {
  OpenSpool(SmallQuota(spool::FullPolicy::kDropOldest));
  Sender* s = StartSender(Destination(), key_);
  for (int i = 0; i < 5000; ++i) {  // synced in small groups, as the ingest committer does
    ASSERT_TRUE(spool_->Append("record " + std::to_string(i) + std::string(200, 'x')).ok());
    if (i % 16 == 15) {
      ASSERT_TRUE(spool_->Sync().ok());
    }
  }
  ASSERT_TRUE(spool_->Sync().ok());
  const uint64_t n = spool_->next_seq();
  ASSERT_GT(spool_->stats().dropped_records, 0u);
  // The collector's monitors raise a declared_loss alert per LOSS record.
  alert::AlertOptions ao;
  ao.journal = dir_ + "/alerts.jsonl";
  auto alerts = alert::Alerts::Open(env::Env::Posix(), ao);
  ASSERT_TRUE(alerts.ok());
  monitor::Monitors monitors(alerts->get(), env::Env::Posix()->clock());
  copts_.alerts = alerts->get();
  copts_.monitors = &monitors;
  StartCollector();
  s->Reconfigure(Destination());
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == n; }, 20000));
  senders_.clear();
  collector_->Stop();
  std::vector<bool> alerted(n, false);
  for (const auto& e : (*alerts)->Firing()) {
    if (e.name != "declared_loss" ||
        e.summary.find("spool_full_drop_oldest") == std::string::npos) {
      continue;
    }
    uint64_t first = 0, last = 0;
    for (const auto& [k, v] : e.evidence) {
      if (k == "first") first = std::stoull(v);
      if (k == "last") last = std::stoull(v);
    }
    for (uint64_t q = first; q <= last && q < n; ++q) alerted[q] = true;
  }
  const auto stored = ReadStored();
  std::vector<bool> have(n, false), declared(n, false);
  for (const auto& r : stored) {
    ASSERT_LT(r.seq, n);
    ASSERT_FALSE(have[r.seq]) << "seq " << r.seq << " stored twice";
    have[r.seq] = true;
    if (r.type != spool::FrameType::kLoss) continue;
    auto loss = spool::LossRecord::Decode(r.payload);
    ASSERT_TRUE(loss.ok());
    if (loss->reason == spool::LossReason::kSpoolFullDropNewest) {
      continue;  // records refused before they got a seq (nothing durable to drop yet)
    }
    ASSERT_EQ(loss->reason, spool::LossReason::kSpoolFullDropOldest);
    ASSERT_TRUE(loss->has_seq_range);
    for (uint64_t q = loss->first_seq; q <= loss->last_seq; ++q) declared[q] = true;
  }
  uint64_t missing = 0;
  for (uint64_t q = 0; q < n; ++q) {
    EXPECT_NE(have[q], declared[q])
        << "seq " << q
        << (have[q] ? " stored but declared lost" : " missing without a LOSS record");
    EXPECT_EQ(alerted[q], declared[q]) << "seq " << q << ": the declared_loss alerts disagree";
    missing += have[q] ? 0 : 1;
  }
  EXPECT_GT(missing, 0u);
}

// A required destination holds segments until it has acked; an optional one does not,
// and when it finds its next seqs removed it writes a destination_skipped LOSS record
// naming exactly them. The required destination gets every record, the LOSS included.
TEST_F(TransportFixture, OptionalDestinationThatFellBehindDeclaresWhatItSkipped) {
  spool::Options o = SmallQuota(spool::FullPolicy::kBlock);
  o.quota_bytes = 1 << 20;
  OpenSpool(o);
  StartCollector();
  Sender* main = StartSender(Destination(), key_);
  DestinationOptions backup_options = Destination();
  backup_options.name = "backup";
  backup_options.required = false;
  backup_options.address = "127.0.0.1:1";  // down
  Sender* backup = StartSender(backup_options, key_);
  AppendRecords(3000, 200);
  ASSERT_TRUE(WaitFor([&] { return main->stats().acked_next == 3000; }, 20000));
  ASSERT_TRUE(WaitFor([&] { return spool_->oldest_seq() > 0; }, 5000))
      << "the optional destination held the spool's segments";
  const uint64_t skipped_to = spool_->oldest_seq();

  collector::CollectorOptions b = copts_;
  b.data_dir = dir_ + "/backup";
  b.listen = {"127.0.0.1:0"};
  auto backup_collector = collector::Collector::Start(env::Env::Posix(), b);
  ASSERT_TRUE(backup_collector.ok()) << backup_collector.status().ToString();
  backup_options.address = "127.0.0.1:" + std::to_string((*backup_collector)->ports()[0]);
  backup->Reconfigure(backup_options);
  // The skip appends one LOSS record, which both destinations then carry.
  ASSERT_TRUE(WaitFor([&] { return backup->stats().acked_next == 3001; }, 20000))
      << backup->stats().acked_next;
  ASSERT_TRUE(WaitFor([&] { return main->stats().acked_next == 3001; }, 20000));
  senders_.clear();
  (*backup_collector)->Stop();

  std::vector<bool> have(3001, false);
  int losses = 0;
  ASSERT_TRUE(store::ForEachStoredRecord(
                  env::Env::Posix(), collector::StreamDir(b.data_dir, "agent-1", spool_->epoch()),
                  [&](uint64_t seq, spool::FrameType t, std::string_view p) {
                    ASSERT_LT(seq, have.size());
                    ASSERT_FALSE(have[seq]) << "seq " << seq << " stored twice";
                    have[seq] = true;
                    if (t != spool::FrameType::kLoss) return;
                    auto loss = spool::LossRecord::Decode(p);
                    ASSERT_TRUE(loss.ok());
                    EXPECT_EQ(loss->reason, spool::LossReason::kDestinationSkipped);
                    EXPECT_EQ(loss->first_seq, 0u);
                    EXPECT_EQ(loss->last_seq, skipped_to - 1);
                    EXPECT_EQ(loss->record_count, skipped_to);
                    ++losses;
                  })
                  .ok());
  EXPECT_EQ(losses, 1);
  for (uint64_t q = 0; q < have.size(); ++q) {
    EXPECT_EQ(have[q], q >= skipped_to) << "seq " << q;
  }
  ExpectStoredExactly(3001);  // the required destination: everything, the LOSS too
}

// Acks are sent only after the collector's fsync. The collector writes to a simulated
// disk whose every sync takes 20 ms; under load, the power fails at random moments.
// After each loss every seq the agent ever saw acknowledged must still be in the store.
// (A kill -9 cannot show this: the page cache outlives the process.)
TEST_F(TransportFixture, AcknowledgedRecordsSurviveCollectorPowerLosses) {
  env::FaultInjectionEnv disk;
  disk.SetSyncDelay(20);
  ASSERT_TRUE(disk.CreateDir(dir_).ok());
  auto enrolled = env::ReadFileToString(env::Env::Posix(), copts_.enrolled_keys);
  ASSERT_TRUE(enrolled.ok());
  ASSERT_TRUE(env::WriteFileAtomically(&disk, copts_.enrolled_keys, *enrolled).ok());
  copts_.listen = {"127.0.0.1:0"};
  OpenSpool();
  const std::string stream_dir = collector::StreamDir(copts_.data_dir, "agent-1", spool_->epoch());
  auto stored_seqs = [&] {
    std::vector<uint64_t> seqs;
    EXPECT_TRUE(store::ForEachStoredRecord(
                    &disk, stream_dir,
                    [&](uint64_t seq, spool::FrameType, std::string_view) { seqs.push_back(seq); })
                    .ok());
    return seqs;
  };
  std::mt19937 rng(9);
  Sender* sender = nullptr;
  auto start_collector = [&] {
    auto c = collector::Collector::Start(&disk, copts_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    DestinationOptions d = Destination();
    d.address = "127.0.0.1:" + std::to_string((*c)->ports()[0]);
    d.batch_records = 200;
    if (sender == nullptr) {
      sender = StartSender(d, key_);
    } else {
      sender->Reconfigure(d);
    }
    collector_ = std::move(*c);
  };
  for (int loss = 0; loss < 6; ++loss) {
    start_collector();
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(150 + rng() % 300);
    while (std::chrono::steady_clock::now() < until) {
      AppendRecords(50);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    disk.SimulatePowerLoss();
    collector_->Stop();
    collector_.reset();
    // Every ack the agent will ever see from that collector was sent before the loss.
    const uint64_t acked = sender->stats().acked_next;
    const std::vector<uint64_t> seqs = stored_seqs();
    ASSERT_GE(seqs.size(), acked) << "power loss " << loss << ": acknowledged records lost";
    for (uint64_t i = 0; i < acked; ++i) ASSERT_EQ(seqs[i], i) << "power loss " << loss;
  }
  start_collector();
  const uint64_t n = spool_->next_seq();
  ASSERT_TRUE(WaitFor([&] { return sender->stats().acked_next == n; }, 30000));
  senders_.clear();
  collector_->Stop();
  const std::vector<uint64_t> seqs = stored_seqs();
  ASSERT_EQ(seqs.size(), n);
  for (uint64_t i = 0; i < n; ++i) ASSERT_EQ(seqs[i], i) << "a seq is missing or stored twice";
}

// Issue 21: the collector's disk fills while an agent sends. Nothing unsynced is
// acknowledged, store_write_failed fires and health names the store; once space returns
// the collector reopens the store by itself (no restart) and acknowledgements resume
// within seconds; every seq is stored exactly once.
TEST_F(TransportFixture, ACollectorWhoseDiskFillsHealsByItselfAndStoresEveryRecordOnce) {
  env::FaultInjectionEnv disk;
  // The collector's backoffs run on the env's clock: let it follow the real one.
  std::atomic<bool> ticking{true};
  std::thread ticker([&] {
    while (ticking) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      disk.fake_clock()->Advance(20'000'000);
    }
  });
  struct Join {
    std::atomic<bool>* on;
    std::thread* t;
    ~Join() {
      *on = false;
      t->join();
    }
  } join{&ticking, &ticker};
  ASSERT_TRUE(disk.CreateDir(dir_).ok());
  auto enrolled = env::ReadFileToString(env::Env::Posix(), copts_.enrolled_keys);
  ASSERT_TRUE(enrolled.ok());
  ASSERT_TRUE(env::WriteFileAtomically(&disk, copts_.enrolled_keys, *enrolled).ok());
  alert::AlertOptions ao;
  ao.journal = dir_ + "/alerts.jsonl";
  auto alerts = alert::Alerts::Open(&disk, ao);
  ASSERT_TRUE(alerts.ok()) << alerts.status().ToString();
  copts_.alerts = alerts->get();
  copts_.listen = {"127.0.0.1:0"};
  OpenSpool();
  auto c = collector::Collector::Start(&disk, copts_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  collector_ = std::move(*c);
  DestinationOptions d = Destination();
  d.address = "127.0.0.1:" + std::to_string(collector_->ports()[0]);
  d.batch_records = 100;
  Sender* sender = StartSender(d, key_);
  AppendRecords(200);
  ASSERT_TRUE(WaitFor([&] { return sender->stats().acked_next == 200; }, 10000));

  disk.SetCapacity(disk.UsedBytes() + 30000);  // room for part of what comes next
  AppendRecords(3000);
  ASSERT_TRUE(WaitFor([&] { return !collector_->stats().failing_stores.empty(); }, 10000));
  auto firing = [&] {
    for (const alert::AlertEvent& e : (*alerts)->Firing()) {
      if (e.name == "store_write_failed") return true;
    }
    return false;
  };
  EXPECT_TRUE(firing());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const uint64_t acked_while_full = sender->stats().acked_next;
  EXPECT_LT(acked_while_full, 3200u) << "acknowledged although the disk is full";
  EXPECT_FALSE(collector_->stats().failing_stores.empty()) << "healed while still full";

  disk.SetCapacity(~0ull);
  const auto freed = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return sender->stats().acked_next == 3200; }, 10000))
      << "acknowledgements did not resume within 10 s of space returning (acked "
      << sender->stats().acked_next << ")";
  EXPECT_LT(std::chrono::steady_clock::now() - freed, std::chrono::seconds(10));
  EXPECT_TRUE(collector_->stats().failing_stores.empty());
  EXPECT_FALSE(firing()) << "store_write_failed is resolved once the store writes again";
  senders_.clear();
  collector_->Stop();
  collector_.reset();
  std::vector<uint64_t> seqs;
  ASSERT_TRUE(store::ForEachStoredRecord(
                  &disk, collector::StreamDir(copts_.data_dir, "agent-1", spool_->epoch()),
                  [&](uint64_t seq, spool::FrameType, std::string_view) { seqs.push_back(seq); })
                  .ok());
  ASSERT_EQ(seqs.size(), 3200u);
  for (uint64_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i) << "missing or stored twice";
  (*alerts)->Stop();
}

// The collector signs checkpoints of what it stored: the last one, checked with the
// collector's verifier key, names the stream and commits to every record, with the root
// the agent computed, and an inclusion proof from the store verifies against it.
TEST_F(TransportFixture, CollectorSignsCheckpointsOfWhatItStored) {
  OpenSpool();
  copts_.checkpoint_interval_ms = 100;
  StartCollector();
  Sender* s = StartSender(Destination(), key_);
  AppendRecords(300);
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == 300; }, 10000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // one interval at least
  AppendRecords(700);
  ASSERT_TRUE(WaitFor([&] { return s->stats().acked_next == 1000; }, 10000));
  const std::string vkey = collector_->verifier_key();
  senders_.clear();
  collector_->Stop();  // signs the rest

  auto verifier = checkpoint::ParseVerifierKey(vkey);
  ASSERT_TRUE(verifier.ok()) << vkey;
  std::vector<checkpoint::Checkpoint> seen;
  ASSERT_TRUE(store::ForEachCheckpoint(env::Env::Posix(), StreamDir(), [&](std::string_view n) {
                auto note = checkpoint::ParseNote(n);
                ASSERT_TRUE(note.ok()) << note.status().ToString();
                ASSERT_TRUE(checkpoint::VerifyNote(*note, *verifier).ok());
                auto body = checkpoint::ParseCheckpoint(note->text);
                ASSERT_TRUE(body.ok());
                seen.push_back(*body);
              }).ok());
  ASSERT_GE(seen.size(), 2u) << "one during the run, one at the end";
  const checkpoint::Checkpoint& last = seen.back();
  EXPECT_EQ(last.origin,
            checkpoint::CollectorOrigin(copts_.name, "agent-1", store::EpochHex(spool_->epoch())));
  EXPECT_EQ(last.size, 1000u);
  auto cp = spool_->DurableCheckpoint();
  ASSERT_TRUE(cp.ok());
  EXPECT_EQ(last.root, cp->root) << "the collector signed another tree than the agent's";
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i].size, seen[i - 1].size);
  auto source = store::StoredHashSource::Open(env::Env::Posix(), StreamDir());
  ASSERT_TRUE(source.ok());
  auto proof = merkle::InclusionProof(**source, 777, last.size);
  ASSERT_TRUE(proof.ok());
  const std::vector<Stored> stored = ReadStored();
  EXPECT_TRUE(merkle::VerifyInclusion(spool::RecordLeafHash(stored[777].type, stored[777].payload),
                                      777, last.size, *proof, last.root)
                  .ok());
}

}  // namespace
}  // namespace gapless::transport
