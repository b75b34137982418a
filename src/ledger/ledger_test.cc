// The ledger round-trips what the monitors write, upserts by key, and is readable by a
// second (read-only) connection while the writer has it open, as `gapless status` does.
#include "ledger/ledger.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace gapless::ledger {
namespace {

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "ledger_XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    path_ = dir_ + "/ledger.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

TEST_F(LedgerTest, WhatIsWrittenIsReadBackByAnotherConnection) {
  auto w = Ledger::Open(path_);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  Delta d;
  d.streams.push_back({"web-01", "00ff", 10, 20, 21, 500, 400, 19, 4096, 1 << 20});
  d.gaps.push_back({"web-01", "00ff", 400, 449, 30, 0});
  d.losses.push_back({"web-01", "00ff", 7, 19, "spool_full_drop_oldest", 40});
  d.checkpoints.push_back({"web-01", "00ff", 300, 50, true, ""});
  d.checkpoints.push_back({"web-01", "00ff", 400, 60, false, "another root"});
  d.replace_alerts = true;
  d.alerts.push_back({"gap_open", "web-01/00ff/400", "critical", "seqs missing", 31});
  d.counts.push_back({"web-01", "file:/var/log/auth.log", 1000, 12});
  d.counts.push_back({"web-01", "file:/var/log/auth.log", 1001, 3});
  ASSERT_TRUE((*w)->Write(d).ok());

  auto r = Ledger::Open(path_, /*read_only=*/true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto c = (*r)->Read(1001);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->streams.size(), 1u);
  EXPECT_EQ(c->streams[0].head, 500u);
  EXPECT_EQ(c->streams[0].stored, 400u);
  EXPECT_EQ(c->streams[0].spool_quota, 1u << 20);
  ASSERT_EQ(c->gaps.size(), 1u);
  EXPECT_EQ(c->gaps[0].last, 449u);
  EXPECT_EQ(c->gaps[0].closed_ns, 0);
  ASSERT_EQ(c->losses.size(), 1u);
  EXPECT_EQ(c->losses[0].reason, "spool_full_drop_oldest");
  ASSERT_EQ(c->checkpoints.size(), 1u);  // the newest of the stream
  EXPECT_EQ(c->checkpoints[0].size, 400u);
  EXPECT_FALSE(c->checkpoints[0].valid);
  EXPECT_EQ(c->checkpoints[0].detail, "another root");
  ASSERT_EQ(c->alerts.size(), 1u);
  EXPECT_EQ(c->alerts[0].subject, "web-01/00ff/400");
  ASSERT_EQ(c->counts.size(), 1u);  // minutes from 1001
  EXPECT_EQ(c->counts[0].count, 3u);

  // Upserts by key; alerts replaced as a set; old counts forgotten.
  Delta e;
  e.streams.push_back({"web-01", "00ff", 10, 25, 26, 500, 500, 24, 0, 1 << 20});
  e.gaps.push_back({"web-01", "00ff", 400, 449, 30, 24});
  e.replace_alerts = true;
  e.counts.push_back({"web-01", "file:/var/log/auth.log", 1001, 9});
  e.forget_counts_before = 1001;
  ASSERT_TRUE((*w)->Write(e).ok());
  c = (*r)->Read(0);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->streams.size(), 1u);
  EXPECT_EQ(c->streams[0].stored, 500u);
  EXPECT_EQ(c->gaps[0].closed_ns, 24);
  EXPECT_TRUE(c->alerts.empty());
  ASSERT_EQ(c->counts.size(), 1u);
  EXPECT_EQ(c->counts[0].minute, 1001);
  EXPECT_EQ(c->counts[0].count, 9u);

  // It survives a reopen.
  w->reset();
  r->reset();
  auto again = Ledger::Open(path_);
  ASSERT_TRUE(again.ok());
  c = (*again)->Read(0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->streams.size(), 1u);
  EXPECT_EQ(c->losses.size(), 1u);
}

TEST_F(LedgerTest, OutputAccountsAreUpsertedPerOutputAndStream) {
  auto w = Ledger::Open(path_);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Delta d;
  d.outputs.push_back({"siem", "web-01", "00ff", "syslog", false, 100, 40, 3, 1, 2500, true, 7});
  d.outputs.push_back({"lake", "web-01", "00ff", "file", true, 100, 100, 0, 0, 0, false, 7});
  ASSERT_TRUE((*w)->Write(d).ok());
  d.outputs = {{"siem", "web-01", "00ff", "syslog", false, 120, 120, 3, 1, 0, false, 9}};
  ASSERT_TRUE((*w)->Write(d).ok());
  auto r = Ledger::Open(path_, /*read_only=*/true);
  ASSERT_TRUE(r.ok());
  auto c = (*r)->Read(0);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->outputs.size(), 2u);
  EXPECT_EQ(c->outputs[0].output, "lake");
  const OutputRow& siem = c->outputs[1];
  EXPECT_EQ(siem.type, "syslog");
  EXPECT_FALSE(siem.confirmed);
  EXPECT_EQ(siem.signed_size, 120u);
  EXPECT_EQ(siem.delivered, 120u);
  EXPECT_EQ(siem.rejected, 1u);
  EXPECT_FALSE(siem.stalled);
  EXPECT_EQ(siem.updated_ns, 9);
}

TEST_F(LedgerTest, ReadingWhatIsNotALedgerSaysSo) {
  auto missing = Ledger::Open(dir_ + "/none.db", /*read_only=*/true);
  EXPECT_FALSE(missing.ok());
  std::ofstream(dir_ + "/junk.db") << "not sqlite at all, just some bytes of text";
  auto junk = Ledger::Open(dir_ + "/junk.db", /*read_only=*/true);
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.status().message().find("junk.db"), std::string::npos);
}

}  // namespace
}  // namespace gapless::ledger
