#include "json/json_events.h"

#include <gtest/gtest.h>

namespace gapless::json {
namespace {

constexpr int64_t kObserved = 1'700'000'000'000'000'000;

class JsonEventsTest : public ::testing::Test {
 protected:
  StatusOr<BodyResult> Parse(std::string_view body, BodyFormat format, size_t max = 4096) {
    events_.clear();
    storage_.Clear();
    return ParseBody(body, format, max, kObserved, &events_, &storage_);
  }
  std::string Field(const event::Event& e, std::string_view key) {
    for (const event::Field& f : e.fields) {
      if (f.key == key) return std::string(f.value);
    }
    return "<none>";
  }
  std::vector<event::Event> events_;
  syslog::FieldStorage storage_;
};

TEST_F(JsonEventsTest, ObjectMembersMapToTheEventAndRawIsExact) {
  const std::string line =
      R"({"@timestamp":"2026-11-22T10:00:00.5Z","host":"web-01","service":"nginx",)"
      R"("level":"warning","message":"disk \"/\" at 91%","user":{"id":7},"n":1.5e3,"ok":true})";
  const std::string body = line + "\n";
  auto r = Parse(body, BodyFormat::kNdjson);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(events_.size(), 1u);
  const event::Event& e = events_[0];
  EXPECT_EQ(e.raw, line);
  EXPECT_EQ(e.format, event::Format::kJson);
  EXPECT_EQ(e.host, "web-01");
  EXPECT_EQ(e.app, "nginx");
  EXPECT_EQ(e.severity, 4);
  EXPECT_EQ(e.message, "disk \"/\" at 91%");
  EXPECT_TRUE(e.has(event::kEventTime));
  EXPECT_EQ(e.event_unix_ns, 1'795'341'600'500'000'000);
  EXPECT_EQ(e.observed_unix_ns, kObserved);
  EXPECT_EQ(Field(e, "user"), R"({"id":7})");
  EXPECT_EQ(Field(e, "n"), "1.5e3");
  EXPECT_EQ(Field(e, "ok"), "true");
  EXPECT_EQ(r->parse_errors, 0u);
}

TEST_F(JsonEventsTest, NdjsonKeepsBadLinesRawAndSaysWhichIsFirst) {
  auto r =
      Parse("{\"msg\":\"a\"}\r\n\n{\"msg\": broken\n\"just a string\"\n42\n[1,2]\n{\"a\":1} x\n",
            BodyFormat::kNdjson);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(events_.size(), 6u);
  EXPECT_EQ(events_[0].message, "a");
  EXPECT_EQ(events_[0].raw, "{\"msg\":\"a\"}");
  EXPECT_TRUE(events_[1].has(event::kParseError));
  EXPECT_EQ(events_[1].raw, "{\"msg\": broken");
  EXPECT_EQ(events_[2].message, "just a string");
  EXPECT_FALSE(events_[2].has(event::kParseError));
  EXPECT_EQ(events_[3].message, "42");
  EXPECT_EQ(events_[4].message, "[1,2]");
  EXPECT_TRUE(events_[5].has(event::kParseError)) << "trailing content after the object";
  EXPECT_EQ(r->parse_errors, 2u);
  EXPECT_EQ(r->first_error.rfind("line 3: not valid JSON", 0), 0u) << r->first_error;
}

TEST_F(JsonEventsTest, JsonArrayElementsKeepTheirExactText) {
  auto r = Parse(" [ {\"msg\":\"a\", \"x\" : [1, 2]} ,\"b\", 3 ]\n", BodyFormat::kJson);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(events_.size(), 3u);
  EXPECT_EQ(events_[0].raw, "{\"msg\":\"a\", \"x\" : [1, 2]}");
  EXPECT_EQ(Field(events_[0], "x"), "[1, 2]");
  EXPECT_EQ(events_[1].raw, "\"b\"");
  EXPECT_EQ(events_[1].message, "b");
  EXPECT_EQ(events_[2].raw, "3");
}

TEST_F(JsonEventsTest, SingleObjectBodyIsOneEvent) {
  auto r = Parse("{\"message\":\"one\"}", BodyFormat::kJson);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].message, "one");
}

TEST_F(JsonEventsTest, InvalidJsonBodyIsRefusedWholeWithWhere) {
  const struct {
    const char* body;
    const char* says;
  } cases[] = {
      {"", "empty"},
      {"[{\"a\":1}, {\"b\":}]", "not valid JSON"},
      {"[{\"a\":1}, {\"b\" 1}]", "not valid JSON"},
      {"[1, 2", "not valid JSON"},
      {"[1] [2]", "not valid JSON"},
      {"{\"a\":", "not valid JSON"},
  };
  for (const auto& c : cases) {
    events_.push_back(event::Event());  // must stay untouched
    auto r = ParseBody(c.body, BodyFormat::kJson, 4096, kObserved, &events_, &storage_);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.says), std::string::npos)
        << c.body << " → " << r.status().message();
    EXPECT_EQ(events_.size(), 1u) << c.body;
    events_.clear();
  }
}

TEST_F(JsonEventsTest, OversizeValueIsKeptCutAndFlagged) {
  const std::string big = "{\"msg\":\"" + std::string(200, 'x') + "\"}";
  const std::string body = big + "\n{\"msg\":\"small\"}\n";
  auto r = Parse(body, BodyFormat::kNdjson, 100);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_TRUE(events_[0].has(event::kTruncated));
  EXPECT_EQ(events_[0].raw, big.substr(0, 100));
  EXPECT_TRUE(events_[0].fields.empty());
  EXPECT_EQ(events_[1].message, "small");
  EXPECT_EQ(r->truncated, 1u);
}

TEST_F(JsonEventsTest, TimesAndSeverities) {
  auto r = Parse(
      "{\"ts\":1700000000.25,\"severity\":3}\n"
      "{\"time\":\"2026-11-22T10:00:00\",\"level\":\"INFO\"}\n"
      "{\"time\":\"yesterday\",\"level\":\"chatty\"}\n",
      BodyFormat::kNdjson);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(events_.size(), 3u);
  EXPECT_EQ(events_[0].event_unix_ns, 1'700'000'000'250'000'000);
  EXPECT_EQ(events_[0].severity, 3);
  EXPECT_TRUE(events_[1].has(event::kZoneAssumed));
  EXPECT_EQ(events_[1].severity, 6);
  EXPECT_FALSE(events_[2].has(event::kEventTime));
  EXPECT_EQ(Field(events_[2], "time"), "yesterday") << "unparsable times stay as fields";
  EXPECT_EQ(Field(events_[2], "level"), "chatty");
}

}  // namespace
}  // namespace gapless::json
