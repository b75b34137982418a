// The journald input reading journal files written by systemd-journal-remote (Debian
// package systemd-journal-remote, installed by scripts/install-deps.sh): there is no
// journald in CI containers, and these files are real journal files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "input/input_test_util.h"

namespace gapless::input {
namespace {

namespace fs = std::filesystem;
constexpr const char* kJournalRemote = "/lib/systemd/systemd-journal-remote";

class JournaldTest : public InputTest {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("gapless_journal_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "journal");
    fs::create_directories(dir_ / "state");
    ASSERT_TRUE(fs::exists(kJournalRemote))
        << kJournalRemote << " is missing: run scripts/install-deps.sh (systemd-journal-remote)";
    OpenSpool();
  }
  void TearDown() override {
    Stop();
    fs::remove_all(dir_);
  }
  // Appends entries "hello <from..to-1>" to the journal file; `binary` adds a field whose
  // value has a newline (the export format's binary form).
  void Write(int from, int to, bool binary = false) {
    const std::string text = (dir_ / "export.txt").string();
    {
      std::ofstream f(text, std::ios::binary);
      for (int i = from; i < to; ++i) {
        f << "__REALTIME_TIMESTAMP=" << 1'795'341'600'000'000 + i << "\n"
          << "__MONOTONIC_TIMESTAMP=" << 1000 + i << "\n"
          << "_BOOT_ID=0123456789abcdef0123456789abcdef\n"
          << "MESSAGE=hello " << i << "\nPRIORITY=4\nSYSLOG_IDENTIFIER=sshd\n_HOSTNAME=h1\n"
          << "_PID=42\nSYSLOG_FACILITY=10\n";
        if (binary) {
          const std::string v = "two\nlines";
          f << "DETAIL\n";
          uint64_t n = v.size();
          for (int b = 0; b < 8; ++b, n >>= 8) f << static_cast<char>(n & 0xff);
          f << v << "\n";
        }
        f << "\n";
      }
    }
    const std::string cmd = std::string(kJournalRemote) + " -o " +
                            (dir_ / "journal" / "remote.journal").string() + " " + text +
                            " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  void Start() {
    JournaldOptions o;
    o.directory = (dir_ / "journal").string();
    Context ctx{&io_, ingest_.get(), env::Env::Posix()->clock(), (dir_ / "state").string()};
    input_ = NewJournaldInput(ctx, o);
    const Status s = input_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void Stop() {
    if (input_) input_->Stop();
  }
  // Decoded events once n are durable (10 s at most).
  std::vector<event::Event> Events(uint64_t n) {
    for (int i = 0; i < 1000 && spool_->durable_size() < n; ++i) std::this_thread::sleep_for(10ms);
    records_ = spool::testing::ReadAll(spool_.get());
    std::vector<event::Event> out;
    for (const spool::Record& r : records_) {
      event::Event e;
      EXPECT_TRUE(event::DecodeEvent(r.payload, &e).ok());
      out.push_back(e);
    }
    return out;
  }

  fs::path dir_;
  std::vector<spool::Record> records_;
};

TEST_F(JournaldTest, EntriesBecomeEventsAndNewOnesAreFollowed) {
  Write(0, 5);
  Start();
  auto got = Events(5);
  ASSERT_EQ(got.size(), 5u);
  const event::Event& e = got[0];
  EXPECT_EQ(e.format, event::Format::kJournal);
  EXPECT_EQ(e.message, "hello 0");
  EXPECT_EQ(e.host, "h1");
  EXPECT_EQ(e.app, "sshd");
  EXPECT_EQ(e.procid, "42");
  EXPECT_EQ(e.severity, 4);
  EXPECT_EQ(e.facility, 10);
  EXPECT_TRUE(e.has(event::kEventTime));
  EXPECT_EQ(e.event_unix_ns, 1'795'341'600'000'000'000);
  EXPECT_NE(e.raw.find("MESSAGE=hello 0\n"), std::string_view::npos) << e.raw;
  EXPECT_EQ(e.source, "journald:" + (dir_ / "journal").string());
  Write(5, 8);
  got = Events(8);
  ASSERT_EQ(got.size(), 8u);
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(got[static_cast<size_t>(i)].message, "hello " + std::to_string(i));
}

TEST_F(JournaldTest, RestartResumesAfterTheDurableCursor) {
  Write(0, 5);
  Start();
  ASSERT_EQ(Events(5).size(), 5u);
  std::this_thread::sleep_for(300ms);  // the idle reader saves the durable cursor
  Stop();
  ASSERT_FALSE(fs::is_empty(dir_ / "state")) << "no cursor saved";
  Write(5, 8);
  Start();
  ASSERT_GE(Events(8).size(), 8u);
  std::this_thread::sleep_for(300ms);  // anything read twice would show up now
  const auto all = Events(8);
  ASSERT_EQ(all.size(), 8u) << "entries read twice or missing";
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(all[static_cast<size_t>(i)].message, "hello " + std::to_string(i));
}

// Issue 16 item 1: the cursor of each stored entry is in the spool right behind it, so a
// crash that leaves no saved cursor behind (here: none at all) re-reads nothing.
TEST_F(JournaldTest, RestartWithoutASavedCursorResumesAfterTheSpoolsLastEntry) {
  Write(0, 5);
  Start();
  ASSERT_EQ(Events(5).size(), 5u);
  Stop();
  fs::remove_all(dir_ / "state");  // as if killed before the cursor was ever saved
  fs::create_directories(dir_ / "state");
  Write(5, 8);
  Start();
  ASSERT_GE(Events(8).size(), 8u);
  std::this_thread::sleep_for(300ms);  // anything read twice would show up now
  const auto all = Events(8);
  ASSERT_EQ(all.size(), 8u) << "entries read twice or missing";
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(all[static_cast<size_t>(i)].message, "hello " + std::to_string(i));
}

TEST_F(JournaldTest, BinaryFieldsKeepTheirBytes) {
  Write(0, 1, /*binary=*/true);
  Start();
  const auto got = Events(1);
  ASSERT_EQ(got.size(), 1u);
  bool found = false;
  for (const event::Field& f : got[0].fields) {
    if (f.key == "DETAIL") {
      found = true;
      EXPECT_EQ(f.value, "two\nlines");
    }
  }
  EXPECT_TRUE(found);
  EXPECT_NE(got[0].raw.find(std::string("DETAIL\n\x09\0\0\0\0\0\0\0two\nlines\n", 24)),
            std::string_view::npos);
}

}  // namespace
}  // namespace gapless::input
