#include "wire/wire.h"

#include <gtest/gtest.h>

#include "base/crc32c.h"

namespace gapless::wire {
namespace {

using spool::FrameType;

// Splits one encoded frame into its header and body, checking the header.
std::string_view BodyOf(const std::string& frame, MessageType want) {
  auto h = DecodeFrameHeader(frame, kMaxFrameBytes);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->type, want);
  EXPECT_EQ(h->body_bytes + kFrameHeaderSize, frame.size());
  return std::string_view(frame).substr(kFrameHeaderSize);
}

TEST(Wire, HandshakeMessagesRoundTrip) {
  Challenge c;
  c.nonce[0] = 7;
  c.nonce[31] = 9;
  c.collector = "collector-1";
  auto c2 = DecodeChallenge(EncodeChallenge(c));
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->nonce, c.nonce);
  EXPECT_EQ(c2->collector, "collector-1");

  Hello h;
  h.agent_id = "web-1";
  h.public_key[3] = 1;
  h.epoch[15] = 2;
  h.enroll_token = "tok";
  h.server_name = "collector.test";
  h.signature = std::string(64, 's');
  auto h2 = DecodeHello(EncodeHello(h));
  ASSERT_TRUE(h2.ok()) << h2.status().ToString();
  EXPECT_EQ(h2->agent_id, "web-1");
  EXPECT_EQ(h2->public_key, h.public_key);
  EXPECT_EQ(h2->epoch, h.epoch);
  EXPECT_EQ(h2->enroll_token, "tok");
  EXPECT_EQ(h2->server_name, "collector.test");
  EXPECT_EQ(h2->signature, h.signature);

  auto w = DecodeWelcome(EncodeWelcome(Welcome{12345, 1u << 20}));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->next_seq, 12345u);
  auto a = DecodeAck(EncodeAck(99));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, 99u);
  auto e = DecodeError(EncodeError({ErrorCode::kWrongKey, "no"}));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->code, ErrorCode::kWrongKey);
  EXPECT_EQ(e->message, "no");
}

TEST(Wire, SignedBytesBindTheNonceTheTlsSessionAndEveryField) {
  Hello h;
  h.agent_id = "a";
  h.server_name = "collector.test";
  std::array<uint8_t, kNonceSize> n1{}, n2{};
  n2[0] = 1;
  TlsBinding b1{}, b2{};
  b2[31] = 1;
  const std::string base = SignedHelloBytes(n1, b1, h);
  EXPECT_NE(base, SignedHelloBytes(n2, b1, h));
  EXPECT_NE(base, SignedHelloBytes(n1, b2, h));
  Hello other = h;
  other.agent_id = "b";
  EXPECT_NE(base, SignedHelloBytes(n1, b1, other));
  other = h;
  other.epoch[0] = 1;
  EXPECT_NE(base, SignedHelloBytes(n1, b1, other));
  other = h;
  other.public_key[0] = 1;
  EXPECT_NE(base, SignedHelloBytes(n1, b1, other));
  other = h;
  other.server_name = "collector.test.";
  EXPECT_NE(base, SignedHelloBytes(n1, b1, other));
  other = h;
  other.enroll_token = "t";
  EXPECT_NE(base, SignedHelloBytes(n1, b1, other));
}

TEST(Wire, FrameHeaderEnforcesLimitsAndTypes) {
  std::string f;
  AppendFrame(&f, MessageType::kAck, EncodeAck(1));
  EXPECT_TRUE(DecodeFrameHeader(f, kMaxFrameBytes).ok());
  EXPECT_EQ(DecodeFrameHeader(f, 4).status().code(), StatusCode::kResourceExhausted);
  f[4] = 9;
  EXPECT_EQ(DecodeFrameHeader(f, kMaxFrameBytes).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(DecodeFrameHeader(std::string(5, '\0'), kMaxFrameBytes).ok());
  EXPECT_FALSE(DecodeFrameHeader("abc", kMaxFrameBytes).ok());
}

TEST(Wire, HeartbeatsRoundTripAndTruncationsAreRejected) {
  Heartbeat h;
  h.agent_wall_ns = -5;  // a clock before 1970 is a value, not an error
  h.head_seq = 12345;
  h.spool_bytes = 1 << 20;
  h.spool_quota = 1 << 30;
  h.dropped_records = 7;
  h.destinations = {{"main", 12000}, {"backup", 11000}};
  h.checkpoint = "gapless/agent/a/00\n3\nAAAA\n\n\xE2\x80\x94 k AAAA\n";
  h.to = "main";
  const std::string body = EncodeHeartbeat(h);
  auto back = DecodeHeartbeat(body);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, h);
  for (size_t cut = 0; cut < body.size(); ++cut) {
    EXPECT_FALSE(DecodeHeartbeat(body.substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(DecodeHeartbeat(body + "x").ok());
  std::string f;
  AppendFrame(&f, MessageType::kHeartbeat, body);
  EXPECT_EQ(DecodeFrameHeader(f, kMaxFrameBytes)->type, MessageType::kHeartbeat);
}

TEST(Wire, TruncatedOrPaddedMessagesAreRejected) {
  Hello h;
  h.agent_id = "web-1";
  h.signature = std::string(64, 's');
  const std::string hello = EncodeHello(h);
  for (size_t cut = 0; cut < hello.size(); ++cut) {
    EXPECT_FALSE(DecodeHello(hello.substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(DecodeHello(hello + "x").ok());
  EXPECT_FALSE(DecodeAck(EncodeAck(1) + "x").ok());
  EXPECT_FALSE(DecodeWelcome(EncodeWelcome(Welcome{1, 100})).ok());  // max_frame too small
}

TEST(Wire, BatchesRoundTripWithLeavesAndChecks) {
  BatchEncoder enc;
  enc.Reset(1000, 0);
  std::vector<std::string> payloads;
  for (int i = 0; i < 500; ++i)
    payloads.push_back("record " + std::to_string(i) + std::string(i % 50, 'x'));
  for (const auto& p : payloads) enc.Add(FrameType::kData, crc32c::Value(p), p);
  enc.Add(FrameType::kLoss, crc32c::Value("loss"), "loss");
  std::string frame;
  ASSERT_TRUE(enc.Finish(&frame).ok());
  EXPECT_LT(frame.size(), enc.raw_bytes());  // compressed

  BatchDecoder dec;
  BatchHeader h;
  std::vector<WireRecord> recs;
  std::vector<Hash256> leaves;
  ASSERT_TRUE(dec.Decode(BodyOf(frame, MessageType::kBatch), &h, &recs, &leaves).ok());
  EXPECT_EQ(h.first_seq, 1000u);
  ASSERT_EQ(recs.size(), 501u);
  for (size_t i = 0; i < payloads.size(); ++i) {
    EXPECT_EQ(recs[i].payload, payloads[i]);
    EXPECT_EQ(leaves[i], spool::RecordLeafHash(FrameType::kData, payloads[i]));
  }
  EXPECT_EQ(recs[500].type, FrameType::kLoss);
}

TEST(Wire, BatchWithAWrongCrcOrDigestIsDataLoss) {
  BatchEncoder enc;
  enc.Reset(0, 0);
  enc.Add(FrameType::kData, crc32c::Value("abc") ^ 1, "abc");
  std::string frame;
  ASSERT_TRUE(enc.Finish(&frame).ok());
  BatchDecoder dec;
  BatchHeader h;
  std::vector<WireRecord> recs;
  std::vector<Hash256> leaves;
  EXPECT_EQ(dec.Decode(BodyOf(frame, MessageType::kBatch), &h, &recs, &leaves).code(),
            StatusCode::kDataLoss);

  frame.clear();
  enc.Reset(0, 0);
  enc.Add(FrameType::kData, crc32c::Value("abc"), "abc");
  ASSERT_TRUE(enc.Finish(&frame).ok());
  frame[kFrameHeaderSize + 20] ^= 1;  // inside the leaves digest
  EXPECT_EQ(dec.Decode(BodyOf(frame, MessageType::kBatch), &h, &recs, &leaves).code(),
            StatusCode::kDataLoss);
  // Any cut of the body is rejected, never read past.
  frame[kFrameHeaderSize + 20] ^= 1;
  const std::string body(BodyOf(frame, MessageType::kBatch));
  for (size_t cut = 0; cut < body.size(); ++cut) {
    EXPECT_FALSE(dec.Decode(body.substr(0, cut), &h, &recs, &leaves).ok()) << cut;
  }
  EXPECT_TRUE(dec.Decode(body, &h, &recs, &leaves).ok());
}

TEST(Wire, TheLargestHelloFitsTheLimitBeforeAuthentication) {
  Hello h;
  h.agent_id = std::string(kMaxStringBytes, 'a');
  h.enroll_token = std::string(kMaxStringBytes, 't');
  h.signature = std::string(kMaxStringBytes, 's');
  const std::string body = EncodeHello(h);
  EXPECT_LE(body.size(), kMaxHelloBytes);
  EXPECT_TRUE(DecodeHello(body).ok());
  // One byte more in any string is not a hello.
  h.signature.push_back('s');
  EXPECT_FALSE(DecodeHello(EncodeHello(h)).ok());
}

TEST(Wire, ADecodeFaultSaysWhichCheckFailed) {
  BatchEncoder enc;
  BatchDecoder dec;
  BatchHeader h;
  std::vector<WireRecord> recs;
  std::vector<Hash256> leaves;
  BatchFault fault = BatchFault::kNone;
  std::string frame;
  enc.Reset(0, 0);
  enc.Add(FrameType::kData, crc32c::Value("abc") ^ 1, "abc");
  ASSERT_TRUE(enc.Finish(&frame).ok());
  EXPECT_FALSE(dec.Decode(BodyOf(frame, MessageType::kBatch), &h, &recs, &leaves, &fault).ok());
  EXPECT_EQ(fault, BatchFault::kChecksumMismatch);

  frame.clear();
  enc.Reset(0, 0);
  enc.Add(FrameType::kData, crc32c::Value("abc"), "abc");
  ASSERT_TRUE(enc.Finish(&frame).ok());
  frame[kFrameHeaderSize + 20] ^= 1;  // inside the leaves digest
  EXPECT_FALSE(dec.Decode(BodyOf(frame, MessageType::kBatch), &h, &recs, &leaves, &fault).ok());
  EXPECT_EQ(fault, BatchFault::kDigestMismatch);
  frame[kFrameHeaderSize + 20] ^= 1;

  const std::string body(BodyOf(frame, MessageType::kBatch));
  EXPECT_FALSE(dec.Decode(body.substr(0, 10), &h, &recs, &leaves, &fault).ok());
  EXPECT_EQ(fault, BatchFault::kMalformed);
  EXPECT_TRUE(dec.Decode(body, &h, &recs, &leaves, &fault).ok());
  EXPECT_EQ(fault, BatchFault::kNone);
}

// A batch may carry the agent's signed checkpoint ahead of its records; every cut of such
// a body is refused, and a batch without one decodes with none (the decoder is reused).
TEST(Wire, ABatchCarriesTheAgentsCheckpoint) {
  const std::string note = "gapless/agent/web-01/0102\n40\nroot=\n\n\u2014 sig\n";
  BatchEncoder enc;
  enc.Reset(7, kBatchGapBefore);
  EXPECT_FALSE(enc.SetCheckpoint(std::string(4097, 'n')));  // too long: not carried
  ASSERT_TRUE(enc.SetCheckpoint(note));
  enc.Add(FrameType::kData, crc32c::Value("abc"), "abc");
  std::string frame;
  ASSERT_TRUE(enc.Finish(&frame).ok());
  BatchDecoder dec;
  BatchHeader h;
  std::vector<WireRecord> recs;
  std::vector<Hash256> leaves;
  const std::string body(BodyOf(frame, MessageType::kBatch));
  ASSERT_TRUE(dec.Decode(body, &h, &recs, &leaves).ok());
  EXPECT_EQ(h.flags, kBatchGapBefore | kBatchCheckpoint);
  EXPECT_EQ(h.checkpoint, note);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].payload, "abc");
  for (size_t cut = 0; cut < body.size(); ++cut) {
    EXPECT_FALSE(dec.Decode(body.substr(0, cut), &h, &recs, &leaves).ok()) << cut;
  }
  // The next batch of the encoder carries none unless asked again.
  frame.clear();
  enc.Reset(8, 0);
  enc.Add(FrameType::kData, crc32c::Value("def"), "def");
  ASSERT_TRUE(enc.Finish(&frame).ok());
  ASSERT_TRUE(dec.Decode(BodyOf(frame, MessageType::kBatch), &h, &recs, &leaves).ok());
  EXPECT_EQ(h.flags, 0);
  EXPECT_TRUE(h.checkpoint.empty());
  EXPECT_EQ(recs[0].payload, "def");
}

}  // namespace
}  // namespace gapless::wire
