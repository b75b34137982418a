#include "syslog/syslog_parser.h"

#include <gtest/gtest.h>

namespace gapless::syslog {
namespace {

using event::Event;

constexpr int64_t kSecond = 1'000'000'000;
// 2026-11-22T12:00:00Z, the "now" of these tests.
const int64_t kNow = (DaysFromCivil(2026, 11, 22) * 86400 + 12 * 3600) * kSecond;

struct Parsed {
  Event e;
  FieldStorage storage;
};

std::unique_ptr<Parsed> Parse(std::string_view raw, int64_t now = kNow) {
  auto p = std::make_unique<Parsed>();
  ParseSyslog(raw, now, &p->e, &p->storage);
  return p;
}

int64_t Utc(int64_t y, unsigned mo, unsigned d, int h, int mi, int s) {
  return ((DaysFromCivil(y, mo, d) * 24 + h) * 60 + mi) * 60 * kSecond + s * kSecond;
}

TEST(DaysFromCivil, KnownDates) {
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(2000, 3, 1), 11017);
  EXPECT_EQ(DaysFromCivil(1969, 12, 31), -1);
}

TEST(Rfc5424, ExampleWithBomFromTheRfc) {
  const std::string raw =
      "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF"
      "'su root' failed for lonvick on /dev/pts/8";
  auto p = Parse(raw);
  const Event& e = p->e;
  EXPECT_EQ(e.format, event::Format::kRfc5424);
  EXPECT_EQ(e.facility, 4);
  EXPECT_EQ(e.severity, 2);
  EXPECT_TRUE(e.has(event::kEventTime));
  EXPECT_TRUE(e.has(event::kBom));
  EXPECT_FALSE(e.has(event::kParseError));
  EXPECT_EQ(e.event_unix_ns, Utc(2003, 10, 11, 22, 14, 15) + 3'000'000);
  EXPECT_EQ(e.host, "mymachine.example.com");
  EXPECT_EQ(e.app, "su");
  EXPECT_EQ(e.procid, "");
  EXPECT_EQ(e.msgid, "ID47");
  EXPECT_EQ(e.message, "'su root' failed for lonvick on /dev/pts/8");
  EXPECT_EQ(e.raw, raw);
}

TEST(Rfc5424, OffsetAndMicroseconds) {
  auto p = Parse("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time");
  EXPECT_EQ(p->e.event_unix_ns, Utc(2003, 8, 24, 12, 14, 15) + 3000);
  EXPECT_EQ(p->e.procid, "8710");
  EXPECT_EQ(p->e.message, "%% It's time");
  EXPECT_FALSE(p->e.has(event::kZoneAssumed));
}

// A year a 64-bit nanosecond count cannot reach is a parse error, kept raw, not an
// overflow (found by fuzz/query_args_fuzzer.cc through ParseRfc3339; the ASan+UBSan build
// fails this test on the old code).
TEST(Rfc5424, AYearOutsideWhatNanosecondsReachIsAParseErrorNotAnOverflow) {
  for (const char* raw :
       {"<13>1 9999-12-31T23:59:59Z h a - - - far", "<13>1 1600-01-01T00:00:00Z h a - - - old"}) {
    auto p = Parse(raw);
    EXPECT_TRUE(p->e.has(event::kParseError)) << raw;
    EXPECT_FALSE(p->e.has(event::kEventTime)) << raw;
    EXPECT_EQ(p->e.raw, raw);
  }
  auto edge = Parse("<13>1 2261-12-31T23:59:59Z h a - - - edge");
  EXPECT_TRUE(edge->e.has(event::kEventTime));
  EXPECT_EQ(edge->e.event_unix_ns, Utc(2261, 12, 31, 23, 59, 59));
  auto bsd = Parse("<13>Dec 31 9999 23:59:59 h app: far");
  EXPECT_FALSE(bsd->e.has(event::kEventTime));
  int64_t t = 0;
  bool has_offset = false;
  EXPECT_EQ(ParseRfc3339("9999-01-01T00:00:00Z", &t, &has_offset), 0u);
}

TEST(Rfc5424, StructuredDataWithEscapes) {
  auto p = Parse(
      "<165>1 2003-10-11T22:14:15.003Z host app - ID47 "
      "[exampleSDID@32473 iut=\"3\" eventSource=\"App \\\"q\\\" \\] x\\y\"][origin]"
      " An application event");
  const Event& e = p->e;
  EXPECT_FALSE(e.has(event::kParseError));
  ASSERT_EQ(e.fields.size(), 3u);
  EXPECT_EQ(e.fields[0].key, "exampleSDID@32473.iut");
  EXPECT_EQ(e.fields[0].value, "3");
  EXPECT_EQ(e.fields[1].key, "exampleSDID@32473.eventSource");
  EXPECT_EQ(e.fields[1].value, "App \"q\" ] x\\y");
  EXPECT_EQ(e.fields[2].key, "origin");
  EXPECT_EQ(e.fields[2].value, "");
  EXPECT_EQ(e.message, "An application event");
}

TEST(Rfc5424, AllNilAndNoMessage) {
  auto p = Parse("<13>1 - - - - - -");
  EXPECT_EQ(p->e.format, event::Format::kRfc5424);
  EXPECT_FALSE(p->e.has(event::kEventTime));
  EXPECT_FALSE(p->e.has(event::kParseError));
  EXPECT_EQ(p->e.message, "");
}

TEST(Rfc5424, BrokenStructuredDataIsFlaggedAndKept) {
  auto p = Parse("<13>1 - h a - - [id x=\"unterminated] rest of it");
  EXPECT_TRUE(p->e.has(event::kParseError));
  EXPECT_EQ(p->e.host, "h");
  EXPECT_EQ(p->e.message, "[id x=\"unterminated] rest of it");
}

TEST(Rfc5424, BadTimestampIsFlagged) {
  auto p = Parse("<13>1 2003-13-11T22:14:15Z h a - - - msg");
  EXPECT_TRUE(p->e.has(event::kParseError));
  EXPECT_FALSE(p->e.has(event::kEventTime));
  EXPECT_EQ(p->e.message, "msg");
}

TEST(Rfc3164, ClassicBsdWithHostAndTag) {
  auto p = Parse("<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed\n");
  const Event& e = p->e;
  EXPECT_EQ(e.format, event::Format::kRfc3164);
  EXPECT_EQ(e.severity, 2);
  EXPECT_EQ(e.host, "mymachine");
  EXPECT_EQ(e.app, "su");
  EXPECT_EQ(e.procid, "123");
  EXPECT_EQ(e.message, "'su root' failed");
  EXPECT_TRUE(e.has(event::kYearInferred));
  EXPECT_TRUE(e.has(event::kZoneAssumed));
  EXPECT_EQ(e.event_unix_ns, Utc(2026, 10, 11, 22, 14, 15));
}

TEST(Rfc3164, MissingYearPicksTheClosestYear) {
  // A December message seen on 2 January belongs to the year before.
  const int64_t jan2 = Utc(2027, 1, 2, 0, 0, 0);
  auto p = Parse("<13>Dec 31 23:59:59 host app: m", jan2);
  EXPECT_EQ(p->e.event_unix_ns, Utc(2026, 12, 31, 23, 59, 59));
  // A January message seen on 31 December (sender clock ahead) belongs to the next year.
  auto q = Parse("<13>Jan  1 00:00:01 host app: m", Utc(2026, 12, 31, 23, 59, 0));
  EXPECT_EQ(q->e.event_unix_ns, Utc(2027, 1, 1, 0, 0, 1));
}

TEST(Rfc3164, NoHostnameTagFollowsTimestamp) {
  auto p = Parse("<13>Nov 22 10:00:00 sshd[42]: Accepted publickey");
  EXPECT_EQ(p->e.host, "");
  EXPECT_EQ(p->e.app, "sshd");
  EXPECT_EQ(p->e.procid, "42");
  EXPECT_EQ(p->e.message, "Accepted publickey");
}

TEST(Rfc3164, IsoTimestampAsRsyslogSendsIt) {
  auto p = Parse("<86>2026-11-22T10:00:00.123456+01:00 gw sudo: pam_unix opened");
  EXPECT_EQ(p->e.event_unix_ns, Utc(2026, 11, 22, 9, 0, 0) + 123'456'000);
  EXPECT_FALSE(p->e.has(event::kYearInferred));
  EXPECT_FALSE(p->e.has(event::kZoneAssumed));
  EXPECT_EQ(p->e.host, "gw");
  EXPECT_EQ(p->e.app, "sudo");
}

TEST(Rfc3164, YearAndMillisecondVariant) {
  auto p = Parse("<13>Mar  1 2025 08:00:00.250 fw01 kernel: drop");
  EXPECT_EQ(p->e.event_unix_ns, Utc(2025, 3, 1, 8, 0, 0) + 250'000'000);
  EXPECT_FALSE(p->e.has(event::kYearInferred));
  EXPECT_EQ(p->e.host, "fw01");
}

TEST(Rfc3164, NoTimestampKeepsEverythingAsMessage) {
  auto p = Parse("<189>: %SYS-5-CONFIG_I: Configured from console");
  EXPECT_FALSE(p->e.has(event::kEventTime));
  EXPECT_FALSE(p->e.has(event::kParseError));
  EXPECT_EQ(p->e.facility, 23);
  EXPECT_EQ(p->e.message, ": %SYS-5-CONFIG_I: Configured from console");
}

TEST(Syslog, NoPriIsRawWithParseError) {
  for (std::string_view raw : {"just a line", "<999>too big", "<>x", "", "<13"}) {
    auto p = Parse(raw);
    EXPECT_EQ(p->e.format, event::Format::kRaw) << raw;
    EXPECT_TRUE(p->e.has(event::kParseError)) << raw;
    EXPECT_EQ(p->e.raw, raw);
    EXPECT_EQ(p->e.severity, event::kNoValue);
  }
}

TEST(Syslog, ReusedEventIsFullyReset) {
  Event e;
  FieldStorage storage;
  ParseSyslog("<13>1 2003-10-11T22:14:15Z h a p m [x y=\"z\"] one", kNow, &e, &storage);
  ASSERT_EQ(e.fields.size(), 1u);
  ParseSyslog("no pri", kNow, &e, &storage);
  EXPECT_TRUE(e.fields.empty());
  EXPECT_EQ(e.host, "");
  EXPECT_FALSE(e.has(event::kEventTime));
}

}  // namespace
}  // namespace gapless::syslog
