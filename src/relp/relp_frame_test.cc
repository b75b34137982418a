#include "relp/relp_frame.h"

#include <gtest/gtest.h>

#include <vector>

namespace gapless::relp {
namespace {

struct Got {
  uint32_t txnr;
  std::string command;
  std::string data;
  uint64_t length;
  friend bool operator==(const Got&, const Got&) = default;
};

std::ostream& operator<<(std::ostream& os, const Got& g) {
  return os << g.txnr << " " << g.command << " " << g.length << " '" << g.data << "'";
}

// Feeds `stream` in pieces of `chunk` bytes; returns the frames and the final status.
std::vector<Got> Parse(std::string_view stream, size_t chunk, Status* status = nullptr,
                       size_t max = 64) {
  Parser p(max);
  std::vector<Got> out;
  auto sink = [&](const Frame& f) {
    out.push_back({f.txnr, std::string(f.command), std::string(f.data), f.data_length});
  };
  Status s;
  for (size_t i = 0; i < stream.size() && s.ok(); i += chunk)
    s = p.Feed(stream.substr(i, chunk), sink);
  if (status != nullptr) *status = s;
  return out;
}

void ExpectFrames(std::string_view stream, const std::vector<Got>& want) {
  for (size_t chunk : {stream.size() + 1, size_t{1}, size_t{2}, size_t{5}}) {
    Status s;
    EXPECT_EQ(Parse(stream, chunk, &s), want) << "chunk " << chunk;
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
}

TEST(RelpFrame, OpenSyslogClose) {
  ExpectFrames("1 open 16 relp_version=0\nx\n2 syslog 10 <13>hello\n\n3 close 0\n",
               {{1, "open", "relp_version=0\nx", 16},
                {2, "syslog", "<13>hello\n", 10},
                {3, "close", "", 0}});
}

TEST(RelpFrame, DataMayHoldAnyByteIncludingLf) {
  const std::string data("a\nb\0c", 5);
  ExpectFrames(FormatFrame(7, "syslog", data), {{7, "syslog", data, 5}});
}

TEST(RelpFrame, FormatRoundTrips) {
  EXPECT_EQ(FormatFrame(12, "rsp", "200 OK"), "12 rsp 6 200 OK\n");
  EXPECT_EQ(FormatFrame(3, "rsp", ""), "3 rsp 0\n");
}

TEST(RelpFrame, OversizeDataIsCutAndTheRestSkipped) {
  const std::string big(100, 'x');
  Status s;
  const auto got = Parse(FormatFrame(1, "syslog", big) + "2 close 0\n", 3, &s, 10);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], (Got{1, "syslog", std::string(10, 'x'), 100}));
  EXPECT_EQ(got[1], (Got{2, "close", "", 0}));
}

TEST(RelpFrame, ProtocolErrorsSayWhatAndStick) {
  const struct {
    const char* stream;
    const char* error;
  } cases[] = {
      {"x open 0\n", "expected a digit"},
      {"1234567890 open 0\n", "more than 9 digits"},
      {"1 op3n 0\n", "bad command character '3'"},
      {"1  0\n", "bad command character"},
      {"1 syslog 3 abcX", "expected LF after the data, got 'X'"},
      {"1 syslog 3\n", "expected a space before the data"},
      {"1 syslog 0 \n", "expected LF"},
      {"1 syslog x\n", "expected a digit"},
      {"1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0\n", "longer than 32"},
  };
  for (const auto& c : cases) {
    Parser p(64);
    int frames = 0;
    auto sink = [&](const Frame&) { ++frames; };
    const Status s = p.Feed(c.stream, sink);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.stream;
    EXPECT_NE(s.message().find(c.error), std::string::npos) << c.stream << " → " << s.ToString();
    EXPECT_EQ(frames, 0);
    EXPECT_FALSE(p.Feed("2 close 0\n", sink).ok());  // sticky
    EXPECT_EQ(frames, 0);
  }
}

TEST(RelpFrame, ErrorNamesTheOffset) {
  Parser p(64);
  const Status s = p.Feed("1 close 0\n2 syslog 1 ab\n", [](const Frame&) {});
  EXPECT_NE(s.message().find("at byte 22"), std::string::npos) << s.ToString();
}

TEST(RelpFrame, MidFrame) {
  Parser p(64);
  auto sink = [](const Frame&) {};
  EXPECT_FALSE(p.mid_frame());
  ASSERT_TRUE(p.Feed("1 sys", sink).ok());
  EXPECT_TRUE(p.mid_frame());
  ASSERT_TRUE(p.Feed("log 1 a\n", sink).ok());
  EXPECT_FALSE(p.mid_frame());
  EXPECT_EQ(p.frames(), 1u);
}

TEST(RelpFrame, TxnrWraps) {
  EXPECT_EQ(NextTxnr(1), 2u);
  EXPECT_EQ(NextTxnr(kMaxTxnr), 1u);
}

}  // namespace
}  // namespace gapless::relp
