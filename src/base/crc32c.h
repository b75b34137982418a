// CRC32C (Castagnoli), as used by iSCSI (RFC 3720) and LevelDB.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise; both give
// identical results (tested). Stored CRCs are masked (see Mask) because computing the
// CRC of a string that contains embedded CRCs is otherwise prone to degenerate cases.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gapless::crc32c {

// Returns the CRC32C of concat(A, data[0,n)) where init_crc is the CRC32C of A.
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

// The two implementations, exposed so tests can check they agree.
uint32_t ExtendPortable(uint32_t init_crc, const char* data, size_t n);
uint32_t ExtendHardware(uint32_t init_crc, const char* data, size_t n);  // needs SSE4.2

inline constexpr uint32_t kMaskDelta = 0xa282ead8u;

// A rotated-and-offset CRC, the form that is stored on disk.
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace gapless::crc32c
