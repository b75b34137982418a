// The archive's format constants: one place, beside the grammar in
// docs/formats/archive.md. Format stability: section types are stored; append new ones,
// never renumber or reuse one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gapless::archive {

inline constexpr std::string_view kMagic = "gapless-archive\n";  // 16 bytes
inline constexpr std::string_view kSealFormat = "gapless-archive/1";
inline constexpr size_t kSectionHeader = 5;  // type u8 | body length u32
inline constexpr uint32_t kMaxSectionBody = 16u << 20;
inline constexpr size_t kRecordsPerSection = 1u << 20;  // bytes of frames per RECORDS section

enum Section : uint8_t {
  kManifest = 1,
  kStream = 2,
  kCheckpoint = 3,
  kLeft = 4,
  kRecords = 5,
  kRight = 6,
  kGaps = 7,
  kStreamEnd = 8,
  kSeal = 9,
  kAgentCheckpoint = 10,
};

}  // namespace gapless::archive
