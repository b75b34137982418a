// Test helper: fills a StreamStore the way the collector does — one batch (a hole before
// it declared), one commit, then a checkpoint of everything stored, signed with the
// collector's key. Used by the verify and archive tests. And SignedDataDirTest: a whole
// collector data directory around one such stream (the archive and prover tests).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/crc32c.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "identity/identity.h"
#include "store/stream_store.h"

namespace gapless::store {

inline void StoreAndSign(StreamStore* store, uint64_t first,
                         const std::vector<std::pair<spool::FrameType, std::string>>& records,
                         const identity::SigningKey& key, const std::string& origin,
                         const std::string& key_name) {
  const BatchPosition at{first, first > store->next_seq()};
  std::vector<Record> wire;
  std::vector<Hash256> leaves;
  for (const auto& [type, payload] : records) {
    wire.push_back({type, crc32c::Value(payload), payload});
    leaves.push_back(spool::RecordLeafHash(type, payload));
  }
  ASSERT_TRUE(store->Append(at, wire, leaves).ok());
  ASSERT_TRUE(store->Commit().ok());
  checkpoint::Checkpoint c;
  c.origin = origin;
  c.size = store->committed_size();
  c.root = store->committed_root();
  auto note = checkpoint::SignNote(checkpoint::FormatCheckpoint(c), key_name, key);
  ASSERT_TRUE(note.ok());
  ASSERT_TRUE(store->AppendCheckpoint(*note).ok());
}

// A collector data directory (data_, under a fresh temporary dir_) with one stream,
// web-01 epoch 00aa, filled through StreamStore and signed as collector c1 signs, with its
// key files where the collector keeps them (collector.key, collector.vkey).
class SignedDataDirTest : public ::testing::Test {
 protected:
  explicit SignedDataDirTest(std::string name) : name_(std::move(name)) {}
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("gapless_" + name_ + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    data_ = (dir_ / "collector").string();
    std::filesystem::create_directories(data_);
    auto k = identity::SigningKey::Generate();
    ASSERT_TRUE(k.ok());
    key_ = std::move(*k);
    ASSERT_TRUE(key_->Save(data_ + "/collector.key").ok());
    vkey_ = checkpoint::FormatVerifierKey("gapless/collector/c1", key_->public_key());
    std::ofstream(data_ + "/collector.vkey") << vkey_ << "\n";
    verifier_ = *checkpoint::ParseVerifierKey(vkey_);
    auto s = StreamStore::Open(env::Env::Posix(), data_ + "/streams/web-01/00aa",
                               spool::Epoch{0xaa}, {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  // Records "record <seq>" for seqs first..first+n-1, then `extra`, stored and signed.
  void Store(uint64_t first, uint64_t n,
             std::vector<std::pair<spool::FrameType, std::string>> extra = {}) {
    std::vector<std::pair<spool::FrameType, std::string>> records;
    for (uint64_t i = 0; i < n; ++i) {
      records.emplace_back(spool::FrameType::kData, "record " + std::to_string(first + i));
    }
    records.insert(records.end(), extra.begin(), extra.end());
    StoreAndSign(store_.get(), first, records, *key_,
                 checkpoint::CollectorOrigin("c1", "web-01", "00aa"), "gapless/collector/c1");
  }

  const std::string name_;
  std::filesystem::path dir_;
  std::string data_;
  std::unique_ptr<identity::SigningKey> key_;
  std::string vkey_;
  checkpoint::Verifier verifier_;
  std::unique_ptr<StreamStore> store_;
};

}  // namespace gapless::store
