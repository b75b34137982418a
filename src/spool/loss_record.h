// LossRecord: the payload of a kLoss frame — an explicit, in-stream statement that
// records were lost, how many, and why. It is a Merkle leaf like any record, so once a
// checkpoint over it is signed, the statement of loss is signed too.
//
// Encoding, version 1 (docs/formats/spool.md, "Loss records"):
//   version u8 (1) | reason u8 | flags u8 (bit 0: seq range present) |
//   first_seq u64 | last_seq u64 | record_count u64 | bytes u64 |
//   time_from_unix_ns u64 | time_to_unix_ns u64 | detail_len u16 | detail
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace gapless::spool {

// Values are stored: append new reasons, never renumber.
enum class LossReason : uint8_t {
  kSpoolFullDropOldest = 1,
  kSpoolFullDropNewest = 2,
  kCorruptSegment = 3,
  kUdpKernelDrop = 4,       // the kernel dropped datagrams (receive buffer full)
  kFileRotatedUnread = 5,   // a tailed file went away with bytes not yet read
  kInputStopped = 6,        // an input stopped holding messages a full spool had refused
  kDestinationSkipped = 7,  // an optional destination fell behind: these seqs were removed
                            // before it sent them (the required destinations have them)
};

std::string_view LossReasonName(LossReason r);

struct LossRecord {
  LossReason reason = LossReason::kCorruptSegment;
  bool has_seq_range = false;
  uint64_t first_seq = 0;  // inclusive; only if has_seq_range
  uint64_t last_seq = 0;   // inclusive; only if has_seq_range
  uint64_t record_count = 0;
  uint64_t bytes = 0;
  int64_t time_from_unix_ns = 0;
  int64_t time_to_unix_ns = 0;
  std::string detail;  // at most 65535 bytes; longer is cut

  std::string Encode() const;
  static StatusOr<LossRecord> Decode(std::string_view payload);
  // One line for logs and tools.
  std::string ToString() const;

  friend bool operator==(const LossRecord&, const LossRecord&) = default;
};

}  // namespace gapless::spool
