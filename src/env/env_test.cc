#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "env/env.h"
#include "env/fault_injection_env.h"

namespace gapless::env {
namespace {

// The behaviour every Env must share, run against both implementations.
class EnvContract : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      env_ = Env::Posix();
      char tmpl[] = "/tmp/gapless_env_test_XXXXXX";
      ASSERT_NE(mkdtemp(tmpl), nullptr);
      dir_ = tmpl;
    } else {
      mem_ = std::make_unique<FaultInjectionEnv>();
      env_ = mem_.get();
      dir_ = "/mem/dir";
      ASSERT_TRUE(env_->CreateDir(dir_).ok());
    }
  }
  void TearDown() override {
    if (GetParam()) (void)std::system(("rm -rf " + dir_).c_str());
  }

  Env* env_ = nullptr;
  std::unique_ptr<FaultInjectionEnv> mem_;
  std::string dir_;
};

TEST_P(EnvContract, WriteAppendReadRenameRemove) {
  const std::string a = JoinPath(dir_, "a");
  {
    auto f = env_->NewWritableFile(a);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Append("hello ").ok());
    ASSERT_TRUE((*f)->Sync().ok());
    EXPECT_EQ((*f)->Size(), 6u);
  }
  {
    auto f = env_->NewAppendableFile(a);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ((*f)->Size(), 6u);
    ASSERT_TRUE((*f)->Append("world").ok());
  }
  auto contents = ReadFileToString(env_, a);
  ASSERT_TRUE(contents.ok());
  EXPECT_EQ(*contents, "hello world");
  EXPECT_EQ(*env_->GetFileSize(a), 11u);

  ASSERT_TRUE(env_->TruncateFile(a, 5).ok());
  EXPECT_EQ(*ReadFileToString(env_, a), "hello");

  const std::string b = JoinPath(dir_, "b");
  ASSERT_TRUE(env_->RenameFile(a, b).ok());
  EXPECT_FALSE(env_->FileExists(a));
  auto children = env_->GetChildren(dir_);
  ASSERT_TRUE(children.ok());
  EXPECT_EQ(*children, std::vector<std::string>{"b"});
  ASSERT_TRUE(env_->RemoveFile(b).ok());
  EXPECT_EQ(env_->RemoveFile(b).code(), StatusCode::kNotFound);
  EXPECT_EQ(env_->NewRandomAccessFile(b).status().code(), StatusCode::kNotFound);
}

TEST_P(EnvContract, LockIsExclusiveUntilReleased) {
  const std::string l = JoinPath(dir_, "LOCK");
  auto first = env_->LockFile(l);
  ASSERT_TRUE(first.ok());
  // flock locks belong to an open file description, so a second open conflicts even
  // inside one process — which is what keeps two spools off one directory.
  EXPECT_EQ(env_->LockFile(l).status().code(), StatusCode::kFailedPrecondition);
  first->reset();
  EXPECT_TRUE(env_->LockFile(l).ok());
}

TEST_P(EnvContract, AtomicWriteReplaces) {
  const std::string p = JoinPath(dir_, "state");
  ASSERT_TRUE(WriteFileAtomically(env_, p, "one").ok());
  ASSERT_TRUE(WriteFileAtomically(env_, p, "two").ok());
  EXPECT_EQ(*ReadFileToString(env_, p), "two");
  EXPECT_FALSE(env_->FileExists(p + ".tmp"));
}

INSTANTIATE_TEST_SUITE_P(Both, EnvContract, ::testing::Values(true, false),
                         [](const auto& p) { return p.param ? "Posix" : "FaultInjection"; });

TEST(PosixEnv, NewFilesAreOwnerOnly) {
  char tmpl[] = "/tmp/gapless_env_mode_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string p = JoinPath(tmpl, "f");
  ASSERT_TRUE(Env::Posix()->NewWritableFile(p).ok());
  struct stat st {};
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  (void)std::system((std::string("rm -rf ") + tmpl).c_str());
}

class FaultInjection : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.CreateDir("/d").ok()); }
  FaultInjectionEnv env_;
};

TEST_F(FaultInjection, PowerLossDropsUnsyncedBytes) {
  auto f = env_.NewWritableFile("/d/f");
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  ASSERT_TRUE((*f)->Append("durable").ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Append(" lost").ok());
  env_.SimulatePowerLoss();
  EXPECT_EQ(env_.Contents("/d/f"), "durable");
  // The dead process's handle no longer works.
  EXPECT_FALSE((*f)->Append("x").ok());
}

TEST_F(FaultInjection, PowerLossForgetsUnsyncedDirectoryEntries) {
  auto f = env_.NewWritableFile("/d/new");
  ASSERT_TRUE((*f)->Append("data").ok());
  ASSERT_TRUE((*f)->Sync().ok());  // data synced, but the entry is not
  env_.SimulatePowerLoss();
  EXPECT_FALSE(env_.FileExists("/d/new"));
}

TEST_F(FaultInjection, RenameIsUndoneWithoutDirSync) {
  env_.SetDurableContents("/d/a", "A");
  ASSERT_TRUE(env_.RenameFile("/d/a", "/d/b").ok());
  env_.SimulatePowerLoss();
  EXPECT_TRUE(env_.FileExists("/d/a"));
  EXPECT_FALSE(env_.FileExists("/d/b"));
  ASSERT_TRUE(env_.RenameFile("/d/a", "/d/b").ok());
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  env_.SimulatePowerLoss();
  EXPECT_FALSE(env_.FileExists("/d/a"));
  EXPECT_EQ(env_.Contents("/d/b"), "A");
}

TEST_F(FaultInjection, SyncFailureIsReportedAndKeepsDataUnsynced) {
  auto f = env_.NewWritableFile("/d/f");
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  ASSERT_TRUE((*f)->Append("abc").ok());
  env_.SetSyncFailure(true);
  EXPECT_EQ((*f)->Sync().code(), StatusCode::kInternal);
  env_.SetSyncFailure(false);
  env_.SimulatePowerLoss();
  EXPECT_EQ(env_.Contents("/d/f"), "");
}

TEST_F(FaultInjection, DiskFullWritesPrefixThenFails) {
  env_.SetCapacity(4);
  auto f = env_.NewWritableFile("/d/f");
  Status s = (*f)->Append("abcdef");
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(env_.Contents("/d/f"), "abcd");
}

}  // namespace
}  // namespace gapless::env
