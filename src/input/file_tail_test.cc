#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <thread>

#include "env/fault_injection_env.h"
#include "input/input.h"
#include "spool/spool_test_util.h"

namespace gapless::input {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A file input on its own io thread over an in-memory spool; files are real.
class FileTailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("gapless_tail_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "logs");
    fs::create_directories(dir_ / "state");
    spool::Options o = spool::testing::SmallOptions();
    o.quota_bytes = 64 << 20;  // in memory; large enough that no test fills it by accident
    OpenSpool(o);
  }
  void TearDown() override {
    StopInput();
    if (ingest_) ingest_->Stop();
    fs::remove_all(dir_);
  }
  void OpenSpool(spool::Options o) {
    o.segment_bytes = 16384;
    o.max_record_bytes = 2048;
    o.quota_bytes = std::max<uint64_t>(o.quota_bytes, 4 * o.segment_bytes);
    spool_ = spool::testing::OpenOrDie(&env_, o);
    ASSERT_TRUE(spool_->AddCursor("dest", true).ok());
    ingest_ = std::make_unique<ingest::Ingest>(spool_.get());
  }
  void StartInput(FileOptions o, int64_t poll_ms = 20) {
    o.poll_interval_ms = poll_ms;
    o.max_line_bytes = 1024;
    io_ = std::make_unique<asio::io_context>();
    Context ctx{io_.get(), ingest_.get(), env::Env::Posix()->clock(), (dir_ / "state").string()};
    input_ = NewFileInput(ctx, o);
    ASSERT_TRUE(input_->Start().ok());
    work_.emplace(asio::make_work_guard(*io_));
    thread_ = std::thread([this] { io_->run(); });
  }
  void StopInput() {
    if (!thread_.joinable()) return;
    std::promise<void> done;
    asio::post(*io_, [&] {
      input_->Stop();
      done.set_value();
    });
    done.get_future().wait();
    work_.reset();
    io_->stop();
    thread_.join();
    input_.reset();
  }
  std::string Log(const std::string& name) { return (dir_ / "logs" / name).string(); }
  static void Append(const std::string& path, int from, int to, const std::string& tag = "line") {
    std::ofstream f(path, std::ios::app);
    for (int i = from; i < to; ++i) f << tag << " " << i << "\n";
  }
  // Every stored line (DATA records) and the LOSS records, once `n` lines are there
  // (10 s at most).
  std::vector<std::string> Lines(size_t n, std::vector<spool::LossRecord>* losses = nullptr) {
    std::vector<std::string> out;
    for (int i = 0; i < 1000; ++i) {
      out.clear();
      if (losses) losses->clear();
      auto reader = spool_->NewReader(spool_->oldest_seq());
      spool::Record r;
      while (reader.ok() && *(*reader)->Next(&r)) {
        if (r.type == spool::FrameType::kLoss && losses) {
          losses->push_back(*spool::LossRecord::Decode(r.payload));
        }
        if (r.type != spool::FrameType::kData) continue;
        event::Event e;
        EXPECT_TRUE(event::DecodeEvent(r.payload, &e).ok());
        out.emplace_back(e.raw);
      }
      if (out.size() >= n) break;
      std::this_thread::sleep_for(10ms);
    }
    return out;
  }
  static std::vector<std::string> Numbered(int from, int to, const std::string& tag = "line") {
    std::vector<std::string> v;
    for (int i = from; i < to; ++i) v.push_back(tag + " " + std::to_string(i));
    return v;
  }

  static FileOptions Tail(std::vector<std::string> paths, StartAt start = StartAt::kBeginning,
                          std::string name = "") {
    FileOptions o;
    o.paths = std::move(paths);
    o.start_at = start;
    o.name = std::move(name);
    return o;
  }

  fs::path dir_;
  env::FaultInjectionEnv env_;
  std::unique_ptr<spool::Spool> spool_;
  std::unique_ptr<ingest::Ingest> ingest_;
  std::unique_ptr<asio::io_context> io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::unique_ptr<Input> input_;
};

TEST_F(FileTailTest, ReadsFromTheBeginningAndFollowsAppends) {
  Append(Log("a.log"), 0, 100);
  StartInput(Tail({Log("a.log")}));
  EXPECT_EQ(Lines(100), Numbered(0, 100));
  Append(Log("a.log"), 100, 150);
  EXPECT_EQ(Lines(150), Numbered(0, 150));
}

TEST_F(FileTailTest, MultilineJoinsContinuationLinesIntoOneRecord) {
  FileOptions o = Tail({Log("app.log")});
  o.multiline_start = "^[0-9]{4}-";
  o.multiline_timeout_ms = 300;
  {
    std::ofstream f(Log("app.log"));
    f << "2026-11-22 one\n"
         "2026-11-22 boom\n"
         "java.lang.Exception: x\n"
         "\tat A.b(A.java:1)\r\n"
         "2026-11-22 three\n";
  }
  StartInput(o);
  // "three" has no successor yet: it is stored only after the timeout.
  const auto got = Lines(3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "2026-11-22 one");
  EXPECT_EQ(got[1], "2026-11-22 boom\njava.lang.Exception: x\n\tat A.b(A.java:1)\r");
  EXPECT_EQ(got[2], "2026-11-22 three");
  // A continuation written later after its start line was already waiting joins it.
  {
    std::ofstream f(Log("app.log"), std::ios::app);
    f << "2026-11-22 four\n";
    f.flush();
    std::this_thread::sleep_for(50ms);
    f << "  more of four\n2026-11-22 five\n";
  }
  const auto later = Lines(5);
  ASSERT_EQ(later.size(), 5u);
  EXPECT_EQ(later[3], "2026-11-22 four\n  more of four");
  EXPECT_EQ(later[4], "2026-11-22 five");
}

TEST_F(FileTailTest, MultilineRecordsAreCappedByLinesAndBytes) {
  FileOptions o = Tail({Log("app.log")});
  o.multiline_start = "^START";
  o.multiline_max_lines = 3;
  {
    std::ofstream f(Log("app.log"));
    f << "START a\n1\n2\n3\n4\nSTART b\n"
      << std::string(600, 'x') << "\n"
      << std::string(600, 'y') << "\nSTART c\n";
  }
  StartInput(o);  // max_line_bytes is 1024 in these tests
  const auto got = Lines(4);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], "START a\n1\n2");
  EXPECT_EQ(got[1], "3\n4") << "the lines after the cap form the next record";
  EXPECT_EQ(got[2].size(), 1024u) << "cut at max_line_bytes";
  EXPECT_EQ(got[2].substr(0, 8), "START b\n");
  EXPECT_EQ(got[3], "START c");
}

TEST_F(FileTailTest, StartAtEndSkipsOldContentOnlyOnTheFirstStart) {
  Append(Log("a.log"), 0, 10);
  StartInput(Tail({Log("a.log")}, StartAt::kEnd));
  std::this_thread::sleep_for(100ms);
  Append(Log("a.log"), 10, 20);
  EXPECT_EQ(Lines(10), Numbered(10, 20));
  // After a restart the saved offset wins over start_at: lines written meanwhile count.
  std::this_thread::sleep_for(100ms);  // the offset becomes durable and is saved
  StopInput();
  Append(Log("a.log"), 20, 30);
  StartInput(Tail({Log("a.log")}, StartAt::kEnd));
  EXPECT_EQ(Lines(20), Numbered(10, 30));
}

TEST_F(FileTailTest, RestartResumesAtTheSavedOffsetWithoutDuplicates) {
  Append(Log("a.log"), 0, 50);
  StartInput(Tail({Log("a.log")}));
  ASSERT_EQ(Lines(50).size(), 50u);
  std::this_thread::sleep_for(100ms);
  StopInput();
  Append(Log("a.log"), 50, 80);
  StartInput(Tail({Log("a.log")}));
  EXPECT_EQ(Lines(80), Numbered(0, 80));
}

// Issue 16 item 1: the spool holds each file's position right behind the lines it covers,
// so a restart after a crash that left the state file behind (here: none at all, the
// worst case: start_at beginning would read the whole file again) re-reads nothing the
// spool holds, and after a power loss nothing it lost is skipped.
TEST_F(FileTailTest, RestartAfterACrashReReadsNothingTheSpoolHolds) {
  Append(Log("a.log"), 0, 50);
  StartInput(Tail({Log("a.log")}));
  ASSERT_EQ(Lines(50).size(), 50u);
  StopInput();
  ingest_->Stop();
  env_.SimulateProcessCrash();
  ingest_.reset();
  spool_.reset();
  fs::remove_all(dir_ / "state");
  fs::create_directories(dir_ / "state");
  spool::Options o = spool::testing::SmallOptions();
  o.quota_bytes = 64 << 20;
  OpenSpool(o);
  Append(Log("a.log"), 50, 80);
  StartInput(Tail({Log("a.log")}));
  ASSERT_EQ(Lines(80).size(), 80u);
  std::this_thread::sleep_for(200ms);  // anything read twice would show up now
  EXPECT_EQ(Lines(80), Numbered(0, 80));
}

// A commit cut short (here: the disk takes only a prefix of the write, as a kill -9 in the
// middle of write() also leaves one) holds lines without the position frame that would
// follow them. The lines carry their own position, so the restart resumes after them.
TEST_F(FileTailTest, ACommitCutShortIsResumedAfterItsLastWholeLine) {
  Append(Log("a.log"), 0, 50);
  StartInput(Tail({Log("a.log")}));
  ASSERT_EQ(Lines(50).size(), 50u);
  std::this_thread::sleep_for(100ms);        // committed, its position frame too
  env_.SetCapacity(env_.UsedBytes() + 700);  // about half of the next commit
  Append(Log("a.log"), 50, 80);
  std::this_thread::sleep_for(300ms);  // read, and the commit fails part way
  StopInput();
  ingest_->Stop();
  env_.SimulateProcessCrash();  // the prefix stays, as after a kill -9
  ingest_.reset();
  spool_.reset();
  env_.SetCapacity(~0ull);
  spool::Options o = spool::testing::SmallOptions();
  o.quota_bytes = 64 << 20;
  OpenSpool(o);
  const size_t kept = Lines(0).size();
  ASSERT_GT(kept, 50u) << "the cut commit kept no whole line: the test proves nothing";
  ASSERT_LT(kept, 80u) << "the commit was not cut";
  StartInput(Tail({Log("a.log")}));
  ASSERT_EQ(Lines(80).size(), 80u);
  std::this_thread::sleep_for(200ms);  // anything read twice would show up now
  EXPECT_EQ(Lines(80), Numbered(0, 80));
}

TEST_F(FileTailTest, RenameRotationLosesNothingWrittenToEitherFile) {
  const std::string path = Log("app.log");
  std::ofstream writer(path);  // one writer fd, like a daemon's
  for (int i = 0; i < 50; ++i) writer << "line " << i << "\n" << std::flush;
  StartInput(Tail({path}));
  ASSERT_EQ(Lines(50).size(), 50u);
  fs::rename(path, Log("app.log.1"));
  for (int i = 50; i < 60; ++i) writer << "line " << i << "\n" << std::flush;  // before reopen
  writer.close();
  writer.open(path);
  for (int i = 60; i < 100; ++i) writer << "line " << i << "\n" << std::flush;
  EXPECT_EQ(Lines(100), Numbered(0, 100));
  EXPECT_GE(input_->stats().rotations, 1u);
}

// A file that lives at its name only between two polls: with a 60 s poll interval only
// inotify can see it, and the rename must be followed to its new name.
TEST_F(FileTailTest, FileRenamedBeforeAnyPollIsFollowedThroughInotify) {
  StartInput(Tail({Log("quick.log")}), /*poll_ms=*/60'000);
  std::this_thread::sleep_for(50ms);  // the first scan has run: nothing there yet
  std::ofstream f(Log("quick.log"));
  f << "line 0\n" << std::flush;
  fs::rename(Log("quick.log"), Log("quick.log.1"));
  for (int i = 1; i < 20; ++i) f << "line " << i << "\n" << std::flush;
  EXPECT_EQ(Lines(20), Numbered(0, 20));
}

// The tail's thread stalls while the file it reads at a name is renamed away, a second
// file lives at the name and is renamed away too, and a third takes the name: when the
// queued renames are handled, the second file is read after the first (which still has
// unread lines) and before the third. CI (TSan) once stored the second file first: the
// first was not yet known to be rotated, and was taken for the file now at the name.
TEST_F(FileTailTest, FilesRenamedWhileTheTailStalledAreReadInTheOrderWritten) {
  const std::string path = Log("stall.log");
  Append(path, 0, 10);
  StartInput(Tail({path}), /*poll_ms=*/60'000);  // only inotify wakes the tail
  ASSERT_EQ(Lines(10), Numbered(0, 10));
  std::promise<void> stalled, release;
  asio::post(*io_, [&] {
    stalled.set_value();
    release.get_future().wait();
  });
  stalled.get_future().wait();
  Append(path, 10, 20);  // unread when the tail wakes
  fs::rename(path, Log("stall.log.1"));
  Append(path, 20, 30);  // lives at the name only while the tail is stalled
  fs::rename(path, Log("stall.log.2"));
  Append(path, 30, 40);
  release.set_value();
  EXPECT_EQ(Lines(40), Numbered(0, 40));
}

TEST_F(FileTailTest, CopyTruncateStartsAgainAtZero) {
  const std::string path = Log("ct.log");
  Append(path, 0, 30);
  StartInput(Tail({path}));
  ASSERT_EQ(Lines(30).size(), 30u);
  fs::copy_file(path, Log("ct.log.1"));
  fs::resize_file(path, 0);
  std::this_thread::sleep_for(100ms);
  Append(path, 30, 40);
  std::vector<spool::LossRecord> losses;
  EXPECT_EQ(Lines(40, &losses), Numbered(0, 40));
  // Everything was read before the truncation: no unread bytes, so no loss claimed.
  EXPECT_TRUE(losses.empty());
}

TEST_F(FileTailTest, SymlinkedPathFollowsItsTarget) {
  Append(Log("real1.log"), 0, 10, "one");
  fs::create_symlink(Log("real1.log"), Log("current.log"));
  StartInput(Tail({Log("current.log")}));
  ASSERT_EQ(Lines(10), Numbered(0, 10, "one"));
  Append(Log("real2.log"), 0, 10, "two");
  fs::remove(Log("current.log"));
  fs::create_symlink(Log("real2.log"), Log("current.log"));
  auto all = Lines(20);
  ASSERT_EQ(all.size(), 20u);
  EXPECT_EQ(std::vector<std::string>(all.begin() + 10, all.end()), Numbered(0, 10, "two"));
}

TEST_F(FileTailTest, GlobFollowsManyFilesIncludingNewOnes) {
  for (int f = 0; f < 20; ++f)
    Append(Log("svc" + std::to_string(f) + ".log"), 0, 10, "f" + std::to_string(f));
  StartInput(Tail({Log("svc*.log")}));
  ASSERT_EQ(Lines(200).size(), 200u);
  Append(Log("svc99.log"), 0, 5, "late");  // appears after the start: read from its start
  auto all = Lines(205);
  EXPECT_EQ(std::count(all.begin(), all.end(), "late 0"), 1);
  EXPECT_EQ(input_->stats().files, 21u);
}

TEST_F(FileTailTest, FullSpoolPausesTheTailAndLosesNothing) {
  StopInput();
  ingest_->Stop();
  ingest_.reset();
  spool_.reset();
  env_.~FaultInjectionEnv();
  new (&env_) env::FaultInjectionEnv();
  spool::Options o = spool::testing::SmallOptions();
  o.quota_bytes = 4 * 16384;
  OpenSpool(o);
  Append(Log("big.log"), 0, 3000);
  StartInput(Tail({Log("big.log")}));
  for (int i = 0; i < 1000 && input_->stats().paused == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GT(input_->stats().paused, 0u) << "the spool never filled";
  std::vector<std::string> got;
  auto reader = spool_->NewReader(0);
  for (int round = 0; round < 3000 && got.size() < 3000; ++round) {
    std::this_thread::sleep_for(2ms);
    spool::Record r;
    while (*(*reader)->Next(&r)) {
      event::Event e;
      ASSERT_TRUE(event::DecodeEvent(r.payload, &e).ok());
      got.emplace_back(e.raw);
    }
    ASSERT_TRUE(spool_->AdvanceCursor("dest", (*reader)->next_seq()).ok());
  }
  EXPECT_EQ(got, Numbered(0, 3000));
}

TEST_F(FileTailTest, FileThatVanishedWhileStoppedWithUnreadBytesIsALossRecord) {
  // A state file from an earlier run: a file (inode 999999999) read to byte 100 of 250,
  // which no longer exists anywhere.
  std::ofstream(dir_ / "state" / "file__tmp_gone_log.offsets")
      << "gapless-file-offsets 1\n1 999999999 100 250 /tmp/gone.log\n";
  Append(Log("a.log"), 0, 1);
  StartInput(Tail({Log("a.log")}, StartAt::kBeginning, "file:/tmp/gone.log"));
  std::vector<spool::LossRecord> losses;
  Lines(1, &losses);
  ASSERT_EQ(losses.size(), 1u);
  EXPECT_EQ(losses[0].reason, spool::LossReason::kFileRotatedUnread);
  EXPECT_EQ(losses[0].bytes, 150u);
  EXPECT_NE(losses[0].detail.find("/tmp/gone.log"), std::string::npos);
}

TEST_F(FileTailTest, OverlongLineIsKeptCutAndTheNextLineIsIntact) {
  {
    std::ofstream f(Log("long.log"));
    f << std::string(5000, 'x') << "\nshort\n";
  }
  StartInput(Tail({Log("long.log")}));
  auto all = Lines(2);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], std::string(1024, 'x'));
  EXPECT_EQ(all[1], "short");
  EXPECT_EQ(input_->stats().truncated, 1u);
}

// The rotation storm: a writer keeps writing while the file is renamed away every 50 ms
// and the writer reopens after each rename, as logrotate + a daemon's SIGHUP do.
TEST_F(FileTailTest, RotationStormLosesNoLine) {
  const std::string path = Log("storm.log");
  { std::ofstream touch(path); }
  StartInput(Tail({path}));
  std::atomic<bool> reopen{false};
  std::atomic<bool> done{false};
  const int n = 20000;
  std::thread writer([&] {
    std::ofstream f(path, std::ios::app);
    for (int i = 0; i < n; ++i) {
      if (reopen.exchange(false)) {
        f.close();
        f.open(path, std::ios::app);
      }
      f << "line " << i << "\n";
      if (i % 20 == 0) {
        f.flush();
        std::this_thread::sleep_for(1ms);
      }
    }
    f.flush();
    done = true;
  });
  int rotations = 0;
  while (!done) {
    std::this_thread::sleep_for(50ms);
    fs::rename(path, Log("storm.log." + std::to_string(++rotations)));
    reopen = true;
  }
  writer.join();
  auto all = Lines(n);
  for (size_t i = 1; i < all.size(); ++i) {
    if (all[i].rfind("line ", 0) != 0 || all[i - 1].rfind("line ", 0) != 0 ||
        std::stoi(all[i].substr(5)) != std::stoi(all[i - 1].substr(5)) + 1) {
      ADD_FAILURE() << "record " << i << ": \"" << all[i - 1] << "\" then \"" << all[i] << "\"";
    }
  }
  std::map<std::string, int> count;
  for (const auto& l : all) ++count[l];
  for (const auto& line : Numbered(0, n))
    ASSERT_EQ(count[line], 1) << line << " after " << rotations << " rotations";
  EXPECT_GE(rotations, 10);
}

}  // namespace
}  // namespace gapless::input
