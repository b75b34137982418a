#include "store/layout.h"

#include <gtest/gtest.h>

#include "env/fault_injection_env.h"

namespace gapless::store {
namespace {

class LayoutTest : public ::testing::Test {
 protected:
  void MakeStream(const std::string& agent, const std::string& epoch) {
    ASSERT_TRUE(env_.CreateDir(layout_.StreamDir(agent, epoch)).ok());
    ASSERT_TRUE(env::WriteFileAtomically(&env_, layout_.Stream(agent, epoch).Leaves(), "").ok());
  }

  env::FaultInjectionEnv env_;
  Layout layout_{"/data"};
};

TEST_F(LayoutTest, ListsEveryStreamSortedThroughTheEnv) {
  MakeStream("web-2", "bb");
  MakeStream("web-1", "cc");
  MakeStream("web-1", "aa");
  // A stray file beside the agents is not a stream.
  ASSERT_TRUE(env::WriteFileAtomically(&env_, layout_.StreamsDir() + "/README", "x").ok());
  auto streams = layout_.ListStreams(&env_);
  ASSERT_TRUE(streams.ok()) << streams.status().ToString();
  ASSERT_EQ(streams->size(), 3u);
  EXPECT_EQ((*streams)[0], (StreamRef{"web-1", "aa", "/data/streams/web-1/aa"}));
  EXPECT_EQ((*streams)[1], (StreamRef{"web-1", "cc", "/data/streams/web-1/cc"}));
  EXPECT_EQ((*streams)[2], (StreamRef{"web-2", "bb", "/data/streams/web-2/bb"}));
  auto epochs = layout_.ListEpochs(&env_, "web-1");
  ASSERT_TRUE(epochs.ok());
  EXPECT_EQ(*epochs, (std::vector<std::string>{"aa", "cc"}));
}

TEST_F(LayoutTest, ADirectoryWithoutStreamsSaysItIsNotACollectorDataDirectory) {
  auto streams = layout_.ListStreams(&env_);
  ASSERT_FALSE(streams.ok());
  EXPECT_EQ(streams.status().code(), StatusCode::kNotFound);
  EXPECT_NE(streams.status().message().find("/data is not a collector data directory"),
            std::string::npos)
      << streams.status().message();
  auto epochs = layout_.ListEpochs(&env_, "nobody");
  ASSERT_FALSE(epochs.ok());
  EXPECT_NE(epochs.status().message().find("no stream of agent \"nobody\""), std::string::npos);
}

TEST_F(LayoutTest, EveryStoreFileHasItsOwnName) {
  const StreamFiles f = layout_.Stream("a", "e");
  const std::vector<std::string> paths = {
      f.Segment(0),
      f.Leaves(),
      f.Level(1),
      f.Level(2),
      f.Gaps(),
      f.Evidence(),
      f.Flagged(),
      f.Notes(StreamFiles::NoteLog::kCheckpoints),
      f.Notes(StreamFiles::NoteLog::kWitnessed),
      f.Notes(StreamFiles::NoteLog::kAgentCheckpoints),
  };
  for (size_t i = 0; i < paths.size(); ++i) {
    EXPECT_EQ(paths[i].rfind("/data/streams/a/e/", 0), 0u) << paths[i];
    for (size_t j = i + 1; j < paths.size(); ++j) EXPECT_NE(paths[i], paths[j]);
  }
  // The names on disk are a format: these are the ones docs/formats/store.md gives.
  EXPECT_EQ(f.Leaves(), "/data/streams/a/e/leaves");
  EXPECT_EQ(f.Level(2), "/data/streams/a/e/level-16");
  EXPECT_EQ(f.Segment(7), "/data/streams/a/e/00000000000000000007.seg");
  uint64_t base = 0;
  EXPECT_FALSE(ParseSegmentName("evidence.seg", &base));  // evidence is not a record segment
}

TEST_F(LayoutTest, OutputStateLivesApartFromTheStreams) {
  // docs/formats/store.md: outputs/<output>/<agent>/<epoch>.cursor and .rejected.
  EXPECT_EQ(layout_.OutputCursor("siem", "a", "e"), "/data/outputs/siem/a/e.cursor");
  EXPECT_EQ(layout_.OutputRejected("siem", "a", "e"), "/data/outputs/siem/a/e.rejected");
  EXPECT_EQ(layout_.OutputAgentDir("siem", "a"), "/data/outputs/siem/a");
  EXPECT_EQ(layout_.OutputCursor("siem", "a", "e").rfind(layout_.StreamsDir(), 0),
            std::string::npos);
}

TEST_F(LayoutTest, TheFormatFileIsWrittenOnceAndAnotherVersionIsRefused) {
  // No file: a store from before the version existed, read as version 1.
  EXPECT_TRUE(layout_.CheckFormat(&env_).ok());
  ASSERT_TRUE(layout_.EnsureFormat(&env_).ok());
  EXPECT_EQ(env_.Contents(layout_.FormatFile()), "gapless-store 1\n");
  ASSERT_TRUE(layout_.EnsureFormat(&env_).ok());  // idempotent

  env_.SetDurableContents(layout_.FormatFile(), "gapless-store 2\n");
  Status s = layout_.CheckFormat(&env_);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("format 2"), std::string::npos) << s.message();
  EXPECT_EQ(layout_.EnsureFormat(&env_).code(), StatusCode::kFailedPrecondition);

  for (const char* bad : {"", "gapless-store \n", "gapless-store x1\n", "other 1\n",
                          "gapless-store 0\n", "gapless-store 99999999999\n"}) {
    env_.SetDurableContents(layout_.FormatFile(), bad);
    EXPECT_EQ(layout_.CheckFormat(&env_).code(), StatusCode::kDataLoss) << bad;
  }
}

}  // namespace
}  // namespace gapless::store
