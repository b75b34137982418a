#include "syslog/framer.h"

#include <gtest/gtest.h>

#include "event/event.h"

namespace gapless::syslog {
namespace {

struct Out {
  std::string bytes;
  uint16_t flags;
  friend bool operator==(const Out&, const Out&) = default;
};

std::ostream& operator<<(std::ostream& os, const Out& o) {
  return os << "{\"" << o.bytes << "\", " << o.flags << "}";
}

// Feeds `stream` in pieces of `chunk` bytes (0: all at once) and collects the frames.
std::vector<Out> Split(std::string_view stream, size_t chunk, Framing framing = Framing::kAuto,
                       size_t max = 64) {
  Framer f(framing, max);
  std::vector<Out> out;
  auto sink = [&](const Framer::Frame& fr) { out.push_back({std::string(fr.bytes), fr.flags}); };
  if (chunk == 0) chunk = stream.size() + 1;
  for (size_t i = 0; i < stream.size(); i += chunk) f.Feed(stream.substr(i, chunk), sink);
  f.Finish(sink);
  return out;
}

// Every chunking of the stream must give the same frames.
void ExpectFrames(std::string_view stream, const std::vector<Out>& want, size_t max = 64) {
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{7}}) {
    EXPECT_EQ(Split(stream, chunk, Framing::kAuto, max), want) << "chunk " << chunk;
  }
}

TEST(Framer, NewlineFraming) {
  ExpectFrames("<13>one\n<13>two\r\n\n<13>three",
               {{"<13>one", 0}, {"<13>two\r", 0}, {"<13>three", 0}});
}

TEST(Framer, OctetCounting) {
  ExpectFrames("7 <13>one9 <13>two\nx8 <13>four",
               {{"<13>one", 0}, {"<13>two\nx", 0}, {"<13>four", 0}});
}

TEST(Framer, OctetCountingDetectedFromFirstByteAndToleratesLineEndsBetweenFrames) {
  Framer f(Framing::kAuto, 100);
  std::vector<std::string> got;
  f.Feed("3 abc\n3 def\r\n", [&](const Framer::Frame& fr) { got.emplace_back(fr.bytes); });
  EXPECT_EQ(f.framing(), Framing::kOctetCounted);
  EXPECT_EQ(got, (std::vector<std::string>{"abc", "def"}));
}

TEST(Framer, OverlongLineIsTruncatedAndTheRestSkipped) {
  const std::string longline(100, 'x');
  ExpectFrames("<13>a\n" + longline + "\n<13>b\n",
               {{"<13>a", 0}, {std::string(64, 'x'), event::kTruncated}, {"<13>b", 0}});
}

TEST(Framer, OverlongOctetFrameIsTruncated) {
  const std::string body(100, 'y');
  ExpectFrames("100 " + body + "5 <13>z",
               {{std::string(64, 'y'), event::kTruncated}, {"<13>z", 0}});
}

TEST(Framer, TruncationIsCounted) {
  Framer f(Framing::kNewline, 10);
  int frames = 0;
  f.Feed(std::string(25, 'a') + "\nshort\n", [&](const Framer::Frame&) { ++frames; });
  EXPECT_EQ(frames, 2);
  EXPECT_EQ(f.truncated_messages(), 1u);
  EXPECT_EQ(f.truncated_bytes(), 15u);
}

TEST(Framer, BrokenOctetCountBecomesFlaggedLineAndNewlineModeContinues) {
  ExpectFrames("12x garbage\n<13>next\n", {{"12x garbage", event::kFramingError}, {"<13>next", 0}});
  ExpectFrames("1234567890 too many digits\n",
               {{"1234567890 too many digits", event::kFramingError}});
}

TEST(Framer, EndOfStreamInsideAnOctetFrameKeepsWhatArrived) {
  ExpectFrames("10 <13>ab", {{"<13>ab", event::kTruncated}});
  ExpectFrames("3 abc12", {{"abc", 0}, {"12", event::kFramingError}});
}

TEST(Framer, ForcedNewlineModeDoesNotTreatDigitsAsLength) {
  EXPECT_EQ(Split("5 hello\n", 0, Framing::kNewline), (std::vector<Out>{{"5 hello", 0}}));
}

}  // namespace
}  // namespace gapless::syslog
