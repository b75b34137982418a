// Test helper: fills a StreamStore the way the collector does — one batch (a hole before
// it declared), one commit, then a checkpoint of everything stored, signed with the
// collector's key. Used by the verify and archive tests.
#pragma once

#include <gtest/gtest.h>

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

}  // namespace gapless::store
