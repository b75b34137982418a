#include "event/event.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace gapless::event {
namespace {

Event Sample(std::string_view raw) {
  Event e;
  e.format = Format::kRfc5424;
  e.flags = kEventTime | kBom;
  e.severity = 6;
  e.facility = 4;
  e.observed_unix_ns = 1'700'000'000'123'456'789;
  e.event_unix_ns = 1'700'000'000'000'000'000;
  e.source = "syslog:tcp:6514";
  e.peer = "127.0.0.1:40000";
  e.host = "web-01";
  e.app = "sshd";
  e.procid = "4242";
  e.msgid = "ID47";
  e.fields = {{"origin.ip", "10.0.0.1"}, {"meta.sequenceId", "7"}};
  e.raw = raw;
  e.message = raw.substr(raw.size() - 5);
  return e;
}

TEST(Event, RoundTripKeepsEveryFieldAndTheRawBytes) {
  const std::string raw = "<38>1 2023-11-14T22:13:20Z web-01 sshd 4242 ID47 - hello";
  const Event in = Sample(raw);
  std::string payload;
  EncodeEvent(in, &payload);
  Event out;
  ASSERT_TRUE(DecodeEvent(payload, &out).ok());
  EXPECT_EQ(out.format, Format::kRfc5424);
  EXPECT_EQ(out.flags, in.flags);
  EXPECT_EQ(out.severity, 6);
  EXPECT_EQ(out.facility, 4);
  EXPECT_EQ(out.observed_unix_ns, in.observed_unix_ns);
  EXPECT_EQ(out.event_unix_ns, in.event_unix_ns);
  EXPECT_EQ(out.source, "syslog:tcp:6514");
  EXPECT_EQ(out.peer, "127.0.0.1:40000");
  EXPECT_EQ(out.host, "web-01");
  EXPECT_EQ(out.app, "sshd");
  EXPECT_EQ(out.procid, "4242");
  EXPECT_EQ(out.msgid, "ID47");
  ASSERT_EQ(out.fields.size(), 2u);
  EXPECT_EQ(out.fields[1].key, "meta.sequenceId");
  EXPECT_EQ(out.fields[1].value, "7");
  EXPECT_EQ(out.raw, raw);
  EXPECT_EQ(out.message, "hello");
  // The message is stored as a range of raw, not a second copy.
  EXPECT_EQ(out.message.data(), out.raw.data() + raw.size() - 5);
}

TEST(Event, MessageOutsideRawIsStoredOnItsOwn) {
  const std::string raw = "{\"msg\":\"a\\nb\"}";
  const std::string unescaped = "a\nb";
  Event in;
  in.format = Format::kJson;
  in.raw = raw;
  in.message = unescaped;
  std::string payload;
  EncodeEvent(in, &payload);
  Event out;
  ASSERT_TRUE(DecodeEvent(payload, &out).ok());
  EXPECT_EQ(out.message, "a\nb");
  EXPECT_EQ(out.raw, raw);
  EXPECT_FALSE(out.has(kEventTime));
}

TEST(Event, EveryTruncationOfAnEncodingIsRefusedOrDecodesToAPrefixOfRaw) {
  const std::string raw = "<38>1 - h a p m - hello world";
  std::string payload;
  EncodeEvent(Sample(raw), &payload);
  for (size_t n = 0; n < payload.size(); ++n) {
    Event out;
    const Status s = DecodeEvent(std::string_view(payload).substr(0, n), &out);
    if (s.ok()) {
      // Raw is the unframed tail, so only a shorter raw can decode; it must be a prefix
      // and the message range must still lie inside it.
      EXPECT_EQ(raw.substr(0, out.raw.size()), out.raw) << n;
      EXPECT_LT(out.raw.size(), raw.size());
    } else {
      EXPECT_EQ(s.code(), StatusCode::kDataLoss) << n;
    }
  }
}

TEST(Event, RefusesUnknownVersionFormatAndFlags) {
  std::string payload;
  EncodeEvent(Sample("<38>1 - - - - - - hello"), &payload);
  Event out;
  std::string bad = payload;
  bad[0] = 2;
  EXPECT_NE(DecodeEvent(bad, &out).message().find("version 2"), std::string::npos);
  bad = payload;
  bad[1] = 99;
  EXPECT_EQ(DecodeEvent(bad, &out).code(), StatusCode::kDataLoss);
  bad = payload;
  bad[3] = static_cast<char>(0x80);
  EXPECT_EQ(DecodeEvent(bad, &out).code(), StatusCode::kDataLoss);
  bad = payload;
  bad[4] = 9;  // severity 9
  EXPECT_EQ(DecodeEvent(bad, &out).code(), StatusCode::kDataLoss);
}

TEST(Event, DescribeFlagsParseErrors) {
  Event e;
  e.raw = "garbage";
  e.message = e.raw;
  e.flags = kParseError;
  EXPECT_EQ(DescribeEvent(e), "1970-01-01T00:00:00.000Z - - -: garbage [parse-error]");
  e.observed_unix_ns = 1'700'000'000'123'000'000;
  EXPECT_EQ(FormatUnixNanos(e.observed_unix_ns), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatUnixNanos(-1), "1969-12-31T23:59:59.999Z");
  // The fast formatting equals gmtime_r + snprintf around every boundary that matters
  // (days, leap years, centuries, the epoch, the ends of int64) and at random times.
  std::mt19937_64 rng(7);
  std::vector<int64_t> times = {0,
                                -1,
                                1,
                                951'782'400'000'000'000,     // 2000-02-29
                                951'868'799'999'999'999,     // 2000-02-29T23:59:59.999
                                4'107'542'400'000'000'000,   // 2100-03-01
                                -2'208'988'800'000'000'000,  // 1900-01-01
                                INT64_MAX,
                                INT64_MIN};
  for (int i = 0; i < 200'000; ++i) times.push_back(static_cast<int64_t>(rng()));  // ±292 y
  for (int64_t t : times) EXPECT_EQ(FormatUnixNanos(t), FormatUnixNanosSlow(t)) << t;
}

}  // namespace
}  // namespace gapless::event
