// The CURSORS file: each consumer's position, replaced atomically on every change.
//
// Encoding, version 1 (docs/formats/spool.md, "Cursors"):
//   magic[8] "GLCURS01" | count u32 |
//   count × (name_len u16 | name | next_seq u64 | flags u8 (bit 0: required)) |
//   crc u32 (masked CRC32C of everything before it)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace gapless::spool {

struct CursorState {
  std::string name;
  uint64_t next_seq = 0;  // every record below this seq has been consumed
  bool required = true;   // a required cursor holds segments until it has passed them

  friend bool operator==(const CursorState&, const CursorState&) = default;
};

std::string EncodeCursors(const std::vector<CursorState>& cursors);
// kDataLoss if the bytes are damaged or not a cursor file.
StatusOr<std::vector<CursorState>> DecodeCursors(std::string_view bytes);

}  // namespace gapless::spool
