// The rolling archive destination over a store the collector is filling: archives tile
// each stream with no gap and no overlap and each verifies alone; a missing volume and
// an archive that fails verification are errors, and the next round catches up.
#include "collector/archiving.h"

#include <filesystem>
#include <fstream>

#include "archive/archive.h"
#include "archive/encryption.h"
#include "checkpoint/checkpoint.h"
#include "collector/transport_fixture.h"

namespace gapless::transport {
namespace {

namespace fs = std::filesystem;

class ArchivingTest : public TransportFixture {
 protected:
  void SetUp() override {
    TransportFixture::SetUp();
    copts_.checkpoint_interval_ms = 50;
    dest_.dir = dir_ + "/offsite";
    dest_.interval_ms = 3'600'000;  // rounds are run by the test
    fs::create_directories(dest_.dir);
  }
  // A collector fed by a sender from a new spool, and an archiver over its store whose
  // rounds the test runs.
  std::unique_ptr<collector::Archiving> StartAll() {
    OpenSpool();
    StartCollector();
    StartSender(Destination(), key_);
    return StartArchiving();
  }
  std::unique_ptr<collector::Archiving> StartArchiving() {
    alert::AlertOptions ao;
    ao.journal = dir_ + "/alerts.jsonl";
    auto alerts = alert::Alerts::Open(env::Env::Posix(), ao);
    EXPECT_TRUE(alerts.ok());
    alerts_ = std::move(*alerts);
    auto a = collector::Archiving::Start(copts_.data_dir, copts_.signing_key,
                                         collector_->verifier_key(), dest_, alerts_.get());
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? std::move(*a) : nullptr;
  }
  uint64_t SignedSize() {
    uint64_t size = 0;
    (void)store::ForEachCheckpoint(env::Env::Posix(), StreamDir(), [&](std::string_view n) {
      auto note = checkpoint::ParseNote(n);
      if (note.ok()) size = checkpoint::ParseCheckpoint(note->text)->size;
    });
    return size;
  }
  // Sends n more records and waits until the collector signed them.
  void Ship(uint64_t n) {
    AppendRecords(n);
    const uint64_t upto = spool_->next_seq();
    ASSERT_TRUE(WaitFor([&] { return SignedSize() == upto; }, 20000));
  }
  // The archives of the stream, by name, verified one by one; checks they tile [0, upto).
  void ExpectArchivesTile(uint64_t upto, const archive::Identity* identity = nullptr) {
    const fs::path folder = fs::path(dest_.dir) / "agent-1" / fs::path(StreamDir()).filename();
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(folder)) {
      if (e.path().extension() == ".gapless-archive") names.push_back(e.path());
    }
    std::sort(names.begin(), names.end());
    ASSERT_FALSE(names.empty());
    uint64_t next = 0, records = 0;
    const auto key = *checkpoint::ParseVerifierKey(collector_->verifier_key());
    for (const std::string& path : names) {
      auto r = archive::VerifyArchive(path, key, identity);
      ASSERT_TRUE(r.ok()) << path << ": " << r.status().ToString();
      EXPECT_TRUE(r->sealed) << path;
      EXPECT_EQ(r->verdict, verify::Verdict::kClean) << path;
      ASSERT_EQ(r->streams.size(), 1u);
      EXPECT_EQ(r->streams[0].from_seq, next) << path;  // no gap, no overlap
      next = r->streams[0].to_seq;
      records += r->streams[0].report.records;
    }
    EXPECT_EQ(next, upto);
    EXPECT_EQ(records, upto);
  }

  collector::ArchiveDestination dest_;
  std::unique_ptr<alert::Alerts> alerts_;
};

TEST_F(ArchivingTest, RollingArchivesTileTheStreamAndEachVerifiesAlone) {
  auto archiving = StartAll();
  ASSERT_NE(archiving, nullptr);
  Ship(300);
  archiving->RunOnce();
  Ship(200);
  archiving->RunOnce();
  archiving->RunOnce();  // nothing new: no empty archive
  const collector::ArchivingStats st = archiving->stats();
  EXPECT_EQ(st.archives, 2u);
  EXPECT_EQ(st.records, 500u);
  EXPECT_EQ(st.failed, 0u);
  ExpectArchivesTile(500);
}

TEST_F(ArchivingTest, AMissingVolumeIsAnErrorAndTheNextRoundCatchesUp) {
  dest_.dir = dir_ + "/not-mounted";
  auto archiving = StartAll();
  ASSERT_NE(archiving, nullptr);
  Ship(250);
  archiving->RunOnce();
  EXPECT_EQ(archiving->stats().failed, 1u);
  EXPECT_NE(archiving->stats().last_error.find("does not exist"), std::string::npos);
  EXPECT_FALSE(fs::exists(dest_.dir));  // never made on the local disk
  ASSERT_EQ(alerts_->Firing().size(), 1u);
  EXPECT_EQ(alerts_->Firing()[0].name, "archive_failed");
  EXPECT_EQ(alerts_->Firing()[0].subject, dest_.dir);
  Ship(250);
  fs::create_directories(dest_.dir);  // the volume is back
  archiving->RunOnce();
  EXPECT_EQ(archiving->stats().archives, 1u);
  EXPECT_TRUE(alerts_->Firing().empty());  // resolved
  ExpectArchivesTile(500);
}

TEST_F(ArchivingTest, AnArchiveThatFailsVerificationIsKeptAsFailedAndRedone) {
  auto archiving = StartAll();
  ASSERT_NE(archiving, nullptr);
  Ship(300);
  std::string damaged;
  archiving->after_write_for_test = [&](const std::string& path) {
    damaged = path;
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(path) / 2));
    f.put('\x5a');
  };
  archiving->RunOnce();
  EXPECT_EQ(archiving->stats().failed, 1u);
  EXPECT_EQ(archiving->stats().archives, 0u);
  ASSERT_EQ(alerts_->Firing().size(), 1u);
  EXPECT_NE(alerts_->Firing()[0].summary.find("failed verification"), std::string::npos);
  ASSERT_EQ(damaged.substr(damaged.size() - 11), ".unverified");
  const std::string name = damaged.substr(0, damaged.size() - 11);
  EXPECT_TRUE(fs::exists(name + ".failed"));
  EXPECT_FALSE(fs::exists(name));
  EXPECT_FALSE(fs::exists(damaged));
  archiving->after_write_for_test = nullptr;
  archiving->RunOnce();
  EXPECT_EQ(archiving->stats().archives, 1u);
  ExpectArchivesTile(300);
}

TEST_F(ArchivingTest, TheCollectorArchivesEncryptedOnItsOwnAndAtStop) {
  auto id = archive::Identity::Generate();
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(id->Save(dir_ + "/archive.identity").ok());
  dest_.recipients = {archive::FormatRecipient(id->recipient())};
  dest_.identity = dir_ + "/archive.identity";
  dest_.interval_ms = 100;
  copts_.archive = dest_;
  OpenSpool();
  StartCollector();
  StartSender(Destination(), key_);
  Ship(300);
  ASSERT_TRUE(WaitFor([&] { return collector_->stats().archiving.records == 300; }, 20000));
  AppendRecords(100);
  ASSERT_TRUE(WaitFor([&] { return senders_[0]->stats().acked_next == 400; }, 20000));
  senders_.clear();
  collector_->Stop();  // the last round archives the final checkpoint
  EXPECT_EQ(collector_->stats().archiving.records, 400u);
  EXPECT_EQ(collector_->stats().archiving.failed, 0u);
  ExpectArchivesTile(400, &*id);
  // Without the identity, nothing can be read.
  const fs::path folder = fs::path(dest_.dir) / "agent-1" / fs::path(StreamDir()).filename();
  for (const auto& e : fs::directory_iterator(folder)) {
    EXPECT_FALSE(
        archive::VerifyArchive(e.path(), *checkpoint::ParseVerifierKey(collector_->verifier_key()))
            .ok());
  }
}

}  // namespace
}  // namespace gapless::transport
