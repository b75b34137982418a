#include "archive/archive.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/coding.h"
#include "base/crc32c.h"
#include "checkpoint/checkpoint.h"
#include "env/env.h"
#include "identity/identity.h"
#include "spool/loss_record.h"
#include "store/signed_store_test_util.h"
#include "store/stream_store.h"

namespace gapless::archive {
namespace {

namespace fs = std::filesystem;
using spool::FrameType;

// A collector data directory with one stream, signed as the collector signs
// (store/signed_store_test_util.h).
class ArchiveTest : public store::SignedDataDirTest {
 protected:
  ArchiveTest() : SignedDataDirTest("archive") {}

  std::string ExportTo(const std::string& name, uint64_t from = 0, uint64_t to = UINT64_MAX) {
    ExportOptions o;
    o.data_dir = data_;
    o.out = (dir_ / name).string();
    o.from_seq = from;
    o.to_seq = to;
    auto r = Export(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return o.out;
  }

  ArchiveReport Check(const std::string& path) {
    auto r = VerifyArchive(path, verifier_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ArchiveReport{};
  }

  static std::string Problems(const ArchiveReport& r) {
    std::string all;
    for (const auto& p : r.problems) all += p + "\n";
    for (const auto& s : r.streams) {
      for (const auto& p : s.report.problems) all += s.agent + ": " + p + "\n";
    }
    return all;
  }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static void Write(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
};

TEST_F(ArchiveTest, AWholeStreamOrARangeExportsAndVerifiesOffline) {
  Store(0, 300);
  Store(300, 200);
  const ArchiveReport all = Check(ExportTo("all.gla"));
  EXPECT_EQ(all.verdict, verify::Verdict::kClean) << Problems(all);
  EXPECT_TRUE(all.sealed);
  ASSERT_EQ(all.streams.size(), 1u);
  EXPECT_EQ(all.streams[0].report.records, 500u);
  EXPECT_EQ(all.streams[0].report.checkpoints_verified, 1u);
  EXPECT_EQ(all.streams[0].report.root, store_->committed_root());
  // A middle range: the hashes around it rebuild the signed root.
  const ArchiveReport part = Check(ExportTo("part.gla", 123, 321));
  EXPECT_EQ(part.verdict, verify::Verdict::kClean) << Problems(part);
  EXPECT_EQ(part.streams[0].report.records, 198u);
  EXPECT_EQ(part.streams[0].from_seq, 123u);
}

TEST_F(ArchiveTest, EveryFlippedByteIsNamed) {
  Store(0, 40);
  const std::string path = ExportTo("a.gla", 5, 30);
  const std::string good = Read(path);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    Write(path, bad);
    auto r = VerifyArchive(path, verifier_);
    if (!r.ok()) continue;  // the magic: "not a gapless archive"
    ASSERT_EQ(r->verdict, verify::Verdict::kTampered) << "byte " << i;
    ASSERT_FALSE(Problems(*r).empty()) << "byte " << i;
  }
}

// A careful forger rewrites the records and fixes every checksum; the seal and the signed
// root still give them away. Truncation loses the seal.
TEST_F(ArchiveTest, RemovedReorderedDuplicatedOrTruncatedRecordsAreFound) {
  Store(0, 60);
  const std::string path = ExportTo("a.gla");
  const std::string good = Read(path);
  // Finds the RECORDS section (type 5) and re-frames it after edit(), with a valid CRC.
  auto forge =
      [&](const std::function<void(std::vector<std::pair<uint64_t, std::string>>*)>& edit) {
        size_t at = 16;
        while (static_cast<uint8_t>(good[at]) != 5) at += 5 + DecodeFixed32(&good[at + 1]) + 4;
        const uint32_t len = DecodeFixed32(&good[at + 1]);
        std::vector<std::pair<uint64_t, std::string>> recs;
        for (uint64_t i = 0; i < 60; ++i) recs.emplace_back(i, "record " + std::to_string(i));
        edit(&recs);
        std::string frames;
        for (auto& [seq, p] : recs)
          spool::AppendFrame(&frames, FrameType::kData, seq, p, crc32c::Value(p));
        std::string head(1, '\x05');
        PutFixed32(&head, static_cast<uint32_t>(frames.size()));
        std::string crc;
        PutFixed32(&crc, crc32c::Extend(crc32c::Value(head), frames.data(), frames.size()));
        return good.substr(0, at) + head + frames + crc + good.substr(at + 5 + len + 4);
      };
  struct Case {
    const char* what;
    std::function<void(std::vector<std::pair<uint64_t, std::string>>*)> edit;
    const char* expect;
  };
  for (const Case& c : std::vector<Case>{
           {"removed", [](auto* r) { r->erase(r->begin() + 7); }, "do not give the signed root"},
           {"reordered", [](auto* r) { std::swap((*r)[7].first, (*r)[8].first); }, "out of order"},
           {"duplicated", [](auto* r) { r->insert(r->begin() + 9, (*r)[8]); }, "repeated"},
           {"rewritten", [](auto* r) { (*r)[3].second = "forged"; }, "do not give the signed root"},
       }) {
    Write(path, forge(c.edit));
    const ArchiveReport r = Check(path);
    EXPECT_EQ(r.verdict, verify::Verdict::kTampered) << c.what;
    EXPECT_NE(Problems(r).find("does not match the archive's contents"), std::string::npos)
        << c.what << "\n"
        << Problems(r);
    EXPECT_NE(Problems(r).find(c.expect), std::string::npos) << c.what << "\n" << Problems(r);
  }
  Write(path, good.substr(0, good.size() - 100));
  const ArchiveReport cut = Check(path);
  EXPECT_EQ(cut.verdict, verify::Verdict::kTampered);
  EXPECT_NE(Problems(cut).find("no seal"), std::string::npos) << Problems(cut);
}

TEST_F(ArchiveTest, MissingRangesAreDeclaredOrTampering) {
  Store(0, 50);
  spool::LossRecord loss;
  loss.reason = spool::LossReason::kSpoolFullDropOldest;
  loss.has_seq_range = true;
  loss.first_seq = 50;
  loss.last_seq = 59;
  loss.record_count = 10;
  Store(60, 20, {{FrameType::kLoss, loss.Encode()}});
  const ArchiveReport r = Check(ExportTo("gap.gla"));
  EXPECT_EQ(r.verdict, verify::Verdict::kIncomplete) << Problems(r);
  ASSERT_EQ(r.streams[0].report.missing.size(), 1u);
  ASSERT_EQ(r.streams[0].report.declared_losses.size(), 1u);
  EXPECT_EQ(r.streams[0].report.declared_losses[0].reason, "spool_full_drop_oldest");
  // Another key: nothing verifies.
  auto other = identity::SigningKey::Generate();
  auto wrong = VerifyArchive((dir_ / "gap.gla").string(),
                             *checkpoint::ParseVerifierKey(checkpoint::FormatVerifierKey(
                                 "gapless/collector/c1", (*other)->public_key())));
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->verdict, verify::Verdict::kTampered);
  EXPECT_FALSE(wrong->sealed);
}

// Encrypted to two recipients: each one's identity decrypts and verifies it; without an
// identity, or with another one, it is not readable; a flipped byte is found.
TEST_F(ArchiveTest, EncryptedArchiveVerifiesForEachRecipientOnly) {
  Store(0, 300);
  auto a = Identity::Generate(), b = Identity::Generate(), stranger = Identity::Generate();
  ASSERT_TRUE(a.ok() && b.ok() && stranger.ok());
  ExportOptions o;
  o.data_dir = data_;
  o.out = (dir_ / "enc.gla").string();
  o.recipients = {a->recipient(), b->recipient()};
  ASSERT_TRUE(Export(o).ok());
  EXPECT_EQ(Read(o.out).find("record 1"), std::string::npos) << "plaintext in the archive";
  for (const Identity* id : {&*a, &*b}) {
    auto r = VerifyArchive(o.out, verifier_, id);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->verdict, verify::Verdict::kClean) << Problems(*r);
    EXPECT_TRUE(r->sealed);
    EXPECT_EQ(r->streams[0].report.records, 300u);
  }
  EXPECT_EQ(VerifyArchive(o.out, verifier_).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(VerifyArchive(o.out, verifier_, &*stranger).status().code(),
            StatusCode::kFailedPrecondition);
  std::string bad = Read(o.out);
  bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 1);
  Write(o.out, bad);
  auto r = VerifyArchive(o.out, verifier_, &*a);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->verdict, verify::Verdict::kTampered);
  EXPECT_NE(Problems(*r).find("fails authentication"), std::string::npos) << Problems(*r);
}

// The agent's own signed tree travels in the archive when its size lies in the exported
// range, and the verifier compares it with the records (its signature with the agent's
// enrolled key).
class ArchiveAgentCheckpointTest : public ArchiveTest {
 protected:
  void SetUp() override {
    ArchiveTest::SetUp();
    auto k = identity::SigningKey::Generate();
    ASSERT_TRUE(k.ok());
    agent_key_ = std::move(*k);
  }
  void KeepAgentCheckpoint(uint64_t size, Hash256 root) {
    checkpoint::Checkpoint c;
    c.origin = checkpoint::AgentOrigin("web-01", "00aa");
    c.size = size;
    c.root = root;
    auto note = checkpoint::SignNote(checkpoint::FormatCheckpoint(c),
                                     checkpoint::AgentKeyName("web-01"), *agent_key_);
    ASSERT_TRUE(note.ok());
    ASSERT_TRUE(
        store::AppendNoteFrame(
            env::Env::Posix(),
            store::StreamFiles(store_->dir()).Notes(store::StreamFiles::NoteLog::kAgentCheckpoints),
            *note, true)
            .ok());
  }
  ArchiveReport CheckWithAgentKey(const std::string& path, const identity::PublicKey& agent) {
    auto r = VerifyArchive(path, verifier_, nullptr, {{"web-01", agent}});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ArchiveReport{};
  }
  std::unique_ptr<identity::SigningKey> agent_key_;
};

TEST_F(ArchiveAgentCheckpointTest, ItIsCarriedWhenInRangeAndVerifies) {
  Store(0, 20);
  KeepAgentCheckpoint(20, store_->committed_root());
  Store(20, 20);
  KeepAgentCheckpoint(40, store_->committed_root());
  Store(40, 20);
  struct Case {
    uint64_t from, to, carried_size;
  };
  for (const Case& c : {Case{0, UINT64_MAX, 40}, Case{25, 50, 40}, Case{5, 30, 20},
                        Case{20, 20, 20}, Case{41, 60, 0}}) {
    const std::string name =
        "a" + std::to_string(c.from) + "-" + std::to_string(c.to % 1000) + ".gla";
    const ArchiveReport r =
        CheckWithAgentKey(ExportTo(name, c.from, c.to), agent_key_->public_key());
    ASSERT_EQ(r.streams.size(), 1u);
    const verify::StreamReport& s = r.streams[0].report;
    EXPECT_EQ(r.verdict, verify::Verdict::kClean) << name << "\n" << Problems(r);
    EXPECT_EQ(s.agent_checkpoints, c.carried_size > 0 ? 1u : 0u) << name;
    EXPECT_EQ(s.agent_checkpoints_verified, s.agent_checkpoints) << name;
    EXPECT_EQ(s.agent_signed_size, c.carried_size) << name;
  }
}

TEST_F(ArchiveAgentCheckpointTest, ADisagreeingRootOrAnotherKeyIsTampering) {
  Store(0, 30);
  Hash256 other = store_->committed_root();
  other[5] ^= 1;
  KeepAgentCheckpoint(30, other);  // as if a record had changed since the agent signed it
  Store(30, 10);
  const std::string path = ExportTo("bad.gla", 10, 40);
  ArchiveReport r = CheckWithAgentKey(path, agent_key_->public_key());
  EXPECT_EQ(r.verdict, verify::Verdict::kTampered);
  EXPECT_NE(Problems(r).find("its agent checkpoint signed a root of size 30 that its records do "
                             "not give"),
            std::string::npos)
      << Problems(r);
  // Without the agent's key the root is still compared.
  r = Check(path);
  EXPECT_EQ(r.verdict, verify::Verdict::kTampered) << Problems(r);

  fs::remove(
      store::StreamFiles(store_->dir()).Notes(store::StreamFiles::NoteLog::kAgentCheckpoints));
  KeepAgentCheckpoint(40, store_->committed_root());
  const std::string good = ExportTo("good.gla");
  EXPECT_EQ(CheckWithAgentKey(good, agent_key_->public_key()).verdict, verify::Verdict::kClean);
  r = CheckWithAgentKey(good, key_->public_key());  // not the agent's key
  EXPECT_EQ(r.verdict, verify::Verdict::kTampered);
  EXPECT_NE(Problems(r).find("its agent checkpoint: "), std::string::npos) << Problems(r);
}

}  // namespace
}  // namespace gapless::archive
