// C2SP tlog-witness add-checkpoint request bodies:
//
//   old <size>\n                  decimal, no leading zeroes
//   <base64 hash>\n ...           0..63 lines: the RFC 9162 consistency proof
//   \n
//   <signed checkpoint note>
//
// Pure functions; thread-safe. Fuzzed by fuzz/witness_fuzzer.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"

namespace gapless::witness {

inline constexpr size_t kMaxProofLines = 63;
inline constexpr size_t kMaxRequestBytes = 64 * 1024;

struct AddCheckpointRequest {
  uint64_t old_size = 0;
  std::vector<Hash256> proof;
  std::string checkpoint;  // the note, signature lines included
};

std::string FormatAddCheckpoint(const AddCheckpointRequest& r);
// kInvalidArgument naming what is malformed. The note itself is not parsed here.
StatusOr<AddCheckpointRequest> ParseAddCheckpoint(std::string_view body);

}  // namespace gapless::witness
