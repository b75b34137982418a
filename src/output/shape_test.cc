#include "output/shape.h"

#include <gtest/gtest.h>

#include <simdjson.h>

#include "event/event.h"
#include "identity/identity.h"
#include "json/json_events.h"
#include "spool/loss_record.h"
#include "spool/spool_format.h"
#include "syslog/syslog_parser.h"

namespace gapless::output {
namespace {

using spool::FrameType;

constexpr int64_t kObserved = 1'764'763'200'000'000'000;  // 2025-12-03T12:00:00Z

Provenance Prov(uint64_t seq, std::string_view payload) {
  return Provenance{"web-01", "00112233445566778899aabbccddeeff", seq,
                    spool::RecordLeafHash(FrameType::kData, payload)};
}

std::string Encode(const event::Event& e) {
  std::string out;
  event::EncodeEvent(e, &out);
  return out;
}

std::string Syslog(std::string_view raw) {
  event::Event e;
  syslog::FieldStorage storage;
  e.observed_unix_ns = kObserved;
  e.source = "syslog:tcp:6514";
  e.peer = "10.0.0.7:41234";
  syslog::ParseSyslog(raw, kObserved, &e, &storage);
  return Encode(e);
}

// Parses the JSON shape of payload; fails the test if it is not one valid JSON object.
simdjson::dom::element Json(simdjson::dom::parser& parser, std::string_view payload,
                            FrameType type = FrameType::kData, uint64_t seq = 42) {
  const Formatted f = FormatRecord(Shape::kJson, Prov(seq, payload), type, payload);
  EXPECT_EQ(f.body.find('\n'), std::string::npos) << "one record, one line: " << f.body;
  auto doc = parser.parse(f.body);
  EXPECT_EQ(doc.error(), simdjson::SUCCESS) << f.body;
  return doc.value_unsafe();
}

std::string Str(simdjson::dom::element e, const char* key) {
  auto v = e[key].get_string();
  return v.error() ? "<missing>" : std::string(v.value_unsafe());
}

TEST(ShapeJson, Rfc5424CarriesItsFieldsAndTheProvenance) {
  const std::string payload = Syslog(
      "<86>1 2025-12-03T11:59:58.120Z web-01 sshd 4711 AUTH [origin@123 ip=\"10.1.1.1\" "
      "user=\"b\"][x@1 user=\"c\"] Accepted publickey for b");
  simdjson::dom::parser parser;
  auto j = Json(parser, payload);
  EXPECT_EQ(Str(j, "gapless.agent"), "web-01");
  EXPECT_EQ(Str(j, "gapless.epoch"), "00112233445566778899aabbccddeeff");
  EXPECT_EQ(j["gapless.seq"].get_uint64().value_unsafe(), 42u);
  EXPECT_EQ(Str(j, "gapless.leaf"), HexEncode(spool::RecordLeafHash(FrameType::kData, payload)));
  EXPECT_EQ(Str(j, "gapless.id"), "web-01/00112233445566778899aabbccddeeff/42");
  EXPECT_EQ(Str(j, "format"), "rfc5424");
  EXPECT_EQ(Str(j, "time"), "2025-12-03T11:59:58.120Z");
  EXPECT_EQ(Str(j, "observed"), "2025-12-03T12:00:00.000Z");
  EXPECT_EQ(j["severity"].get_uint64().value_unsafe(), 6u);
  EXPECT_EQ(j["facility"].get_uint64().value_unsafe(), 10u);
  EXPECT_EQ(Str(j, "host"), "web-01");
  EXPECT_EQ(Str(j, "app"), "sshd");
  EXPECT_EQ(Str(j, "procid"), "4711");
  EXPECT_EQ(Str(j, "msgid"), "AUTH");
  EXPECT_EQ(Str(j, "peer"), "10.0.0.7:41234");
  EXPECT_EQ(Str(j, "message"), "Accepted publickey for b");
  EXPECT_NE(Str(j, "raw").find("<86>1 2025"), std::string::npos);  // the exact original
  // Every structured field is there; nothing is dropped when two share a name.
  size_t members = 0;
  simdjson::dom::object fields;
  ASSERT_EQ(j["fields"].get(fields), simdjson::SUCCESS);
  for (auto kv : fields) {
    ++members;
    (void)kv;
  }
  EXPECT_GE(members, 2u);
}

TEST(ShapeJson, Rfc3164WithoutAYearSaysSo) {
  const std::string payload =
      Syslog("<38>Dec  3 11:59:58 fw01 sudo[991]: alice : TTY=pts/0 ; COMMAND=/bin/rm -rf /x");
  simdjson::dom::parser parser;
  auto j = Json(parser, payload);
  EXPECT_EQ(Str(j, "format"), "rfc3164");
  EXPECT_EQ(Str(j, "host"), "fw01");
  EXPECT_EQ(Str(j, "app"), "sudo");
  EXPECT_EQ(Str(j, "procid"), "991");
  std::string flags;
  simdjson::dom::array list;
  ASSERT_EQ(j["flags"].get(list), simdjson::SUCCESS);
  for (auto f : list) flags += std::string(f.get_string().value_unsafe()) + " ";
  EXPECT_NE(flags.find("year_inferred"), std::string::npos) << flags;
  EXPECT_NE(flags.find("zone_assumed"), std::string::npos) << flags;
}

TEST(ShapeJson, JsonIngestKeepsItsMembersAsFields) {
  std::vector<event::Event> events;
  syslog::FieldStorage storage;
  auto r = json::ParseBody(
      R"({"message":"role assigned","actor":"bob","target":"alice","action":"grant admin"})",
      json::BodyFormat::kJson, 65536, kObserved, &events, &storage);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(events.size(), 1u);
  const std::string payload = Encode(events[0]);
  simdjson::dom::parser parser;
  auto j = Json(parser, payload);
  EXPECT_EQ(Str(j, "format"), "json");
  EXPECT_EQ(Str(j["fields"].value_unsafe(), "actor"), "bob");
  EXPECT_EQ(Str(j["fields"].value_unsafe(), "action"), "grant admin");
}

TEST(ShapeJson, JournalFieldsAndRepeatedKeysKeepEveryValue) {
  event::Event e;
  e.format = event::Format::kJournal;
  e.observed_unix_ns = kObserved;
  e.source = "journald";
  e.fields = {{"_SYSTEMD_UNIT", "sshd.service"}, {"TAG", "a"}, {"TAG", "b"}};
  e.message = "Failed password for root";
  e.raw = "MESSAGE=Failed password for root";
  simdjson::dom::parser parser;
  auto j = Json(parser, Encode(e));
  EXPECT_EQ(Str(j, "format"), "journal");
  EXPECT_EQ(Str(j["fields"].value_unsafe(), "_SYSTEMD_UNIT"), "sshd.service");
  auto tags = j["fields"]["TAG"].get_array();
  ASSERT_FALSE(tags.error());
  std::vector<std::string> values;
  for (auto v : tags.value_unsafe()) values.emplace_back(v.get_string().value_unsafe());
  EXPECT_EQ(values, (std::vector<std::string>{"a", "b"}));
}

TEST(ShapeJson, BytesThatAreNotUtf8StayValidJsonAndTravelExactly) {
  event::Event e;
  e.observed_unix_ns = kObserved;
  const std::string raw = std::string("login \xff\xfe from \xc0\xaf", 17);
  e.raw = raw;
  e.message = raw;
  simdjson::dom::parser parser;
  auto j = Json(parser, Encode(e));  // simdjson refuses invalid UTF-8: this parses
  EXPECT_NE(Str(j, "message").find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(Str(j, "message_base64"), identity::Base64Encode(raw));
}

TEST(ShapeJson, LossRecordsAreDeliveredAsLossEvents) {
  spool::LossRecord l;
  l.reason = spool::LossReason::kFileRotatedUnread;
  l.has_seq_range = false;
  l.record_count = 0;
  l.bytes = 4096;
  l.detail = "auth.log rotated away unread";
  const std::string payload = l.Encode();
  simdjson::dom::parser parser;
  auto j = Json(parser, payload, FrameType::kLoss);
  EXPECT_EQ(Str(j, "kind"), "loss");
  EXPECT_EQ(Str(j, "reason"), std::string(spool::LossReasonName(l.reason)));
  EXPECT_EQ(j["bytes"].get_uint64().value_unsafe(), 4096u);
  EXPECT_EQ(Str(j, "detail"), "auth.log rotated away unread");
}

TEST(ShapeJson, APayloadThatIsNoEventIsStillDeliveredWhole) {
  const std::string payload = "not an encoded event";
  simdjson::dom::parser parser;
  auto j = Json(parser, payload);
  EXPECT_EQ(Str(j, "kind"), "undecodable");
  EXPECT_EQ(Str(j, "payload_base64"), identity::Base64Encode(payload));
}

// Parses a schema shape of payload; fails the test if it is not one valid JSON object.
simdjson::dom::element Schema(simdjson::dom::parser& parser, Shape shape, std::string_view payload,
                              FrameType type = FrameType::kData) {
  const Formatted f = FormatRecord(shape, Prov(42, payload), type, payload);
  EXPECT_EQ(f.body.find('\n'), std::string::npos) << f.body;
  auto doc = parser.parse(f.body);
  EXPECT_EQ(doc.error(), simdjson::SUCCESS) << f.body;
  return doc.value_unsafe();
}

std::string At(simdjson::dom::element e, std::string_view pointer) {
  auto v = e.at_pointer(pointer).get_string();
  return v.error() ? "<missing>" : std::string(v.value_unsafe());
}
uint64_t NumberAt(simdjson::dom::element e, std::string_view pointer) {
  auto v = e.at_pointer(pointer).get_uint64();
  return v.error() ? 999999 : v.value_unsafe();
}

TEST(ShapeEcs, Rfc5424MapsToEcsFieldsWithTheProvenance) {
  const std::string payload = Syslog(
      "<86>1 2025-12-03T11:59:58.120Z web-01 sshd 4711 AUTH [origin@123 ip=\"10.1.1.1\"] "
      "Accepted publickey for b");
  simdjson::dom::parser parser;
  auto j = Schema(parser, Shape::kEcs, payload);
  EXPECT_EQ(At(j, "/@timestamp"), "2025-12-03T11:59:58.120Z");
  EXPECT_EQ(At(j, "/ecs/version"), "8.11.0");
  EXPECT_EQ(At(j, "/message"), "Accepted publickey for b");
  EXPECT_EQ(At(j, "/event/kind"), "event");
  EXPECT_EQ(At(j, "/event/created"), "2025-12-03T12:00:00.000Z");
  EXPECT_NE(At(j, "/event/original").find("<86>1 2025-12-03"), std::string::npos);
  EXPECT_EQ(At(j, "/host/name"), "web-01");
  EXPECT_EQ(At(j, "/process/name"), "sshd");
  EXPECT_EQ(NumberAt(j, "/process/pid"), 4711u);
  EXPECT_EQ(At(j, "/log/level"), "info");
  EXPECT_EQ(NumberAt(j, "/log/syslog/facility/code"), 10u);
  EXPECT_EQ(At(j, "/log/syslog/facility/name"), "authpriv");
  EXPECT_EQ(NumberAt(j, "/log/syslog/severity/code"), 6u);
  EXPECT_EQ(At(j, "/log/syslog/severity/name"), "Informational");
  EXPECT_EQ(At(j, "/log/syslog/msgid"), "AUTH");
  EXPECT_EQ(NumberAt(j, "/log/syslog/version"), 1u);
  EXPECT_EQ(At(j, "/log/source/address"), "10.0.0.7:41234");
  EXPECT_EQ(At(j, "/agent/type"), "gapless");
  EXPECT_EQ(At(j, "/gapless/id"), "web-01/00112233445566778899aabbccddeeff/42");
  EXPECT_EQ(NumberAt(j, "/gapless/seq"), 42u);
  EXPECT_EQ(At(j, "/gapless/leaf"), HexEncode(spool::RecordLeafHash(FrameType::kData, payload)));
  EXPECT_EQ(At(j, "/gapless/format"), "rfc5424");
  EXPECT_EQ(At(j, "/gapless/fields/origin@123.ip"), "10.1.1.1") << simdjson::to_string(j);
}

TEST(ShapeEcs, Rfc3164FileJsonAndJournalInput) {
  simdjson::dom::parser parser;
  // RFC 3164 from sudo: no year, so @timestamp is the parsed time in the year inferred.
  auto j = Schema(parser, Shape::kEcs,
                  Syslog("<38>Dec  3 11:59:58 fw01 sudo[991]: alice : COMMAND=/bin/rm -rf /x"));
  EXPECT_EQ(At(j, "/host/name"), "fw01");
  EXPECT_EQ(NumberAt(j, "/process/pid"), 991u);
  EXPECT_EQ(At(j, "/log/syslog/facility/name"), "auth");
  EXPECT_EQ(At(j, "/log/level"), "info");
  EXPECT_EQ(At(j, "/gapless/format"), "rfc3164");
  // A file line: log.file.path from the source.
  event::Event line;
  line.format = event::Format::kLine;
  line.observed_unix_ns = kObserved;
  line.source = "file:/var/log/auth.log";
  line.raw = line.message = "Dec  3 sshd[1]: Failed password for root";
  j = Schema(parser, Shape::kEcs, Encode(line));
  EXPECT_EQ(At(j, "/log/file/path"), "/var/log/auth.log");
  EXPECT_EQ(At(j, "/@timestamp"), "2025-12-03T12:00:00.000Z") << "no parsed time: observed";
  EXPECT_TRUE(j.at_pointer("/log/syslog").error()) << "not syslog: no log.syslog";
  // JSON ingest: the members stay under gapless.fields.
  std::vector<event::Event> events;
  syslog::FieldStorage storage;
  ASSERT_TRUE(json::ParseBody(R"({"message":"role assigned","actor":"bob"})",
                              json::BodyFormat::kJson, 65536, kObserved, &events, &storage)
                  .ok());
  j = Schema(parser, Shape::kEcs, Encode(events[0]));
  EXPECT_EQ(At(j, "/gapless/fields/actor"), "bob");
  EXPECT_EQ(At(j, "/gapless/format"), "json");
  // journald: its fields too.
  event::Event journal;
  journal.format = event::Format::kJournal;
  journal.observed_unix_ns = kObserved;
  journal.source = "journald";
  journal.fields = {{"_SYSTEMD_UNIT", "sshd.service"}};
  journal.raw = journal.message = "Failed password for root";
  j = Schema(parser, Shape::kEcs, Encode(journal));
  EXPECT_EQ(At(j, "/gapless/fields/_SYSTEMD_UNIT"), "sshd.service");
}

TEST(ShapeEcs, LossAndUndecodableArePipelineErrors) {
  spool::LossRecord l;
  l.reason = spool::LossReason::kFileRotatedUnread;
  l.bytes = 4096;
  l.detail = "auth.log rotated away unread";
  simdjson::dom::parser parser;
  auto j = Schema(parser, Shape::kEcs, l.Encode(), FrameType::kLoss);
  EXPECT_EQ(At(j, "/event/kind"), "pipeline_error");
  EXPECT_EQ(NumberAt(j, "/gapless/loss/bytes"), 4096u);
  EXPECT_EQ(At(j, "/gapless/loss/detail"), "auth.log rotated away unread");
  j = Schema(parser, Shape::kEcs, "not an encoded event");
  EXPECT_EQ(At(j, "/event/kind"), "pipeline_error");
  EXPECT_EQ(At(j, "/gapless/undecodable/payload_base64"),
            identity::Base64Encode("not an encoded event"));
}

TEST(ShapeOcsf, SyslogIsABaseEventWithTheRestUnmapped) {
  const std::string payload = Syslog(
      "<83>1 2025-12-03T11:59:58.120Z web-01 sshd 4711 AUTH - error: maximum authentication "
      "attempts exceeded for root");
  simdjson::dom::parser parser;
  auto j = Schema(parser, Shape::kOcsf, payload);
  EXPECT_EQ(NumberAt(j, "/class_uid"), 0u);
  EXPECT_EQ(NumberAt(j, "/category_uid"), 0u);
  EXPECT_EQ(NumberAt(j, "/activity_id"), 99u);
  EXPECT_EQ(NumberAt(j, "/type_uid"), 99u);
  EXPECT_EQ(NumberAt(j, "/time"), 1'764'763'198'120u);  // milliseconds
  EXPECT_EQ(NumberAt(j, "/severity_id"), 4u) << "syslog err is OCSF High";
  EXPECT_EQ(At(j, "/severity"), "High");
  EXPECT_NE(At(j, "/message").find("maximum authentication attempts"), std::string::npos);
  EXPECT_NE(At(j, "/raw_data").find("<83>1 2025"), std::string::npos);
  EXPECT_EQ(At(j, "/metadata/version"), "1.1.0");
  EXPECT_EQ(At(j, "/metadata/product/name"), "gapless");
  EXPECT_EQ(At(j, "/metadata/uid"), "web-01/00112233445566778899aabbccddeeff/42");
  EXPECT_EQ(NumberAt(j, "/metadata/logged_time"), 1'764'763'200'000u);
  EXPECT_EQ(At(j, "/metadata/log_name"), "syslog:tcp:6514");
  EXPECT_EQ(At(j, "/unmapped/host"), "web-01");
  EXPECT_EQ(At(j, "/unmapped/app"), "sshd");
  EXPECT_EQ(NumberAt(j, "/unmapped/syslog_facility"), 10u);
  EXPECT_EQ(NumberAt(j, "/unmapped/gapless/seq"), 42u);
  EXPECT_EQ(At(j, "/unmapped/gapless/leaf"),
            HexEncode(spool::RecordLeafHash(FrameType::kData, payload)));
  // A LOSS record: High, with the loss under unmapped.gapless.loss.
  spool::LossRecord l;
  l.reason = spool::LossReason::kFileRotatedUnread;
  l.bytes = 10;
  j = Schema(parser, Shape::kOcsf, l.Encode(), FrameType::kLoss);
  EXPECT_EQ(NumberAt(j, "/severity_id"), 4u);
  EXPECT_EQ(NumberAt(j, "/unmapped/gapless/loss/bytes"), 10u);
}

TEST(ShapeSchemas, BytesThatAreNotUtf8StayValidJson) {
  event::Event e;
  e.observed_unix_ns = kObserved;
  const std::string raw = std::string("login \xff\xfe from \xc0\xaf", 17);
  e.raw = raw;
  e.message = raw;
  e.host = raw;
  simdjson::dom::parser parser;
  auto ecs = Schema(parser, Shape::kEcs, Encode(e));
  EXPECT_EQ(At(ecs, "/message_base64"), identity::Base64Encode(raw));
  EXPECT_EQ(At(ecs, "/host/name_base64"), identity::Base64Encode(raw));
  auto ocsf = Schema(parser, Shape::kOcsf, Encode(e));
  EXPECT_EQ(At(ocsf, "/raw_data_base64"), identity::Base64Encode(raw));
}

TEST(ShapeRaw, IsTheOriginalBytes) {
  const std::string raw = "<13>1 - - - - - - plain";
  const std::string payload = Syslog(raw);
  EXPECT_EQ(FormatRecord(Shape::kRaw, Prov(1, payload), FrameType::kData, payload).body, raw);
}

TEST(ShapeRfc5424, HeaderMessageAndProvenanceAsStructuredData) {
  const std::string payload =
      Syslog("<38>Dec  3 11:59:58 fw01 sudo[991]: alice : COMMAND=/bin/rm \"x\"");
  const std::string out =
      FormatRecord(Shape::kRfc5424, Prov(7, payload), FrameType::kData, payload).body;
  EXPECT_EQ(out.rfind("<38>1 ", 0), 0u) << out;
  EXPECT_NE(
      out.find(" fw01 sudo 991 - [gapless@32473 id=\"web-01/00112233445566778899aabbccddeeff/7\""),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("seq=\"7\" leaf=\"" +
                     HexEncode(spool::RecordLeafHash(FrameType::kData, payload)) + "\"]"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("] alice : COMMAND=/bin/rm \"x\""), std::string::npos) << out;
  // It parses back as RFC 5424 with the same header.
  event::Event back;
  syslog::FieldStorage storage;
  syslog::ParseSyslog(out, kObserved, &back, &storage);
  EXPECT_EQ(back.format, event::Format::kRfc5424);
  EXPECT_FALSE(back.has(event::kParseError)) << out;
  EXPECT_EQ(back.host, "fw01");
  EXPECT_EQ(back.app, "sudo");
}

TEST(ShapeRfc5424, APayloadThatIsNoEventIsStillAMessageWithItsBytes) {
  // Found by fuzz/output_fuzzer: this shape used to fall back to JSON.
  const std::string payload = "not an encoded event";
  const std::string out =
      FormatRecord(Shape::kRfc5424, Prov(3, payload), FrameType::kData, payload).body;
  EXPECT_EQ(out.rfind("<12>1 ", 0), 0u) << out;
  EXPECT_NE(out.find(" UNDECODABLE [gapless@32473 "), std::string::npos) << out;
  EXPECT_NE(out.find("payload_base64=" + identity::Base64Encode(payload)), std::string::npos)
      << out;
}

TEST(Utf8, WellFormedOnly) {
  EXPECT_TRUE(IsUtf8("plain"));
  EXPECT_TRUE(IsUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsUtf8("\xe2\x82"));          // cut short
}

}  // namespace
}  // namespace gapless::output
