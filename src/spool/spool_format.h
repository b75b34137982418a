// The spool's on-disk format, version 1. Grammar and rationale: docs/formats/spool.md.
//
// Format stability: do not reorder, resize or reuse any field or type value below. A
// change of layout is a new kFormatVersion, and readers must keep reading version 1.
//
// A spool directory holds segment files named by the seq of their first record,
// "%020llu.seg", plus CURSORS (consumer positions) and LOCK.
//
// segment := segment_header frame*
// segment_header (kSegmentHeaderSize = 48 bytes):
//   magic[8] "GLSPOOL1" | version u32 | epoch[16] | base_seq u64 | created_unix_ns u64 |
//   header_crc u32 (masked CRC32C of the 44 bytes before it)
// frame := frame_header payload
// frame_header (kFrameHeaderSize = 4 + 1 + 8 + 4 + 4 = 21 bytes):
//   length u32 (payload bytes) | type u8 | seq u64 |
//   header_crc u32 (masked CRC32C of length, type and seq) |
//   payload_crc u32 (masked CRC32C of the payload)
// All integers little-endian.
//
// The header has its own CRC so that recovery can tell a torn tail (the header is
// intact and the payload runs past end of file: the writer died) from a damaged length
// (the header CRC fails: corruption), and so that resynchronising after damage costs
// one 13-byte CRC per byte offset.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/sha256.h"

namespace gapless::spool {

inline constexpr char kSegmentMagic[8] = {'G', 'L', 'S', 'P', 'O', 'O', 'L', '1'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kSegmentHeaderSize = 8 + 4 + 16 + 8 + 8 + 4;
inline constexpr size_t kFrameHeaderSize = 4 + 1 + 8 + 4 + 4;
// Largest payload a frame may carry; larger lengths are treated as damage.
inline constexpr uint32_t kMaxFramePayload = 16u << 20;

using Epoch = std::array<uint8_t, 16>;

enum class FrameType : uint8_t {
  // 0 is never written, so zero-filled space is never a valid frame.
  kData = 1,      // a log record; carries a seq and is a Merkle leaf
  kLoss = 2,      // a loss record (loss_record.h); carries a seq and is a Merkle leaf
  kFrontier = 3,  // not a record: the Merkle compact range after `seq` records; the
                  // payload is popcount(seq) hashes of 32 bytes, largest subtree first
  kPosition = 4,  // not a record: an input's read position once every record before this
                  // frame is in the spool; payload: key_len varint | key | value
                  // (EncodePosition). `seq` is the next seq, for reading only.
};

inline bool IsRecord(FrameType t) { return t == FrameType::kData || t == FrameType::kLoss; }
inline bool IsKnownFrameType(uint8_t t) { return t >= 1 && t <= 4; }

// Position frames (kPosition): an input's key (its name and what it reads, e.g. a file's
// device and inode) and its opaque position (an offset, a journal cursor).
inline constexpr size_t kMaxPositionKeyBytes = 1024;
inline constexpr size_t kMaxPositionValueBytes = 4096;
std::string EncodePosition(std::string_view key, std::string_view value);
// False if the payload is not a position frame's.
bool DecodePosition(std::string_view payload, std::string* key, std::string* value);

struct SegmentHeader {
  Epoch epoch{};
  uint64_t base_seq = 0;
  int64_t created_unix_ns = 0;
};

std::string EncodeSegmentHeader(const SegmentHeader& h);
// False if the magic, version or CRC does not match (`*version_mismatch` says which).
bool DecodeSegmentHeader(std::string_view bytes, SegmentHeader* out, bool* version_mismatch);

// Appends one frame (header and payload) to *dst. payload_crc is the unmasked CRC32C of
// the payload, computed by the caller so it can be done outside a lock.
void AppendFrame(std::string* dst, FrameType type, uint64_t seq, std::string_view payload,
                 uint32_t payload_crc);

// The Merkle leaf of a record: SHA-256(0x00 || type || payload) — the exact record bytes
// a collector stores (docs/formats/spool.md, "Merkle leaves").
Hash256 RecordLeafHash(FrameType type, std::string_view payload);

std::string SegmentFileName(uint64_t base_seq);
// Parses "%020llu.seg"; false for any other name.
bool ParseSegmentFileName(std::string_view name, uint64_t* base_seq);

}  // namespace gapless::spool
