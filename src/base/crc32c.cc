#include "base/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace gapless::crc32c {
namespace {

constexpr uint32_t kPolyReflected = 0x82f63b78u;

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolyReflected : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kTable = MakeTable();

bool DetectHardware() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}
const bool kHaveHardware = DetectHardware();

}  // namespace

uint32_t ExtendPortable(uint32_t init_crc, const char* data, size_t n) {
  uint32_t c = ~init_crc;
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) c = kTable[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t ExtendHardware(uint32_t init_crc, const char* data,
                                                          size_t n) {
  uint64_t c = ~init_crc;
  const char* p = data;
  const char* end = data + n;
  while (p < end && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), static_cast<uint8_t>(*p++));
  }
  while (end - p >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);  // CRC32C is defined over bytes in memory order (LE here).
    c = _mm_crc32_u64(c, word);
    p += 8;
  }
  while (p < end) c = _mm_crc32_u8(static_cast<uint32_t>(c), static_cast<uint8_t>(*p++));
  return ~static_cast<uint32_t>(c);
}
#else
uint32_t ExtendHardware(uint32_t init_crc, const char* data, size_t n) {
  return ExtendPortable(init_crc, data, n);
}
#endif

uint32_t Extend(uint32_t init_crc, const char* data, size_t n) {
  return kHaveHardware ? ExtendHardware(init_crc, data, n) : ExtendPortable(init_crc, data, n);
}

}  // namespace gapless::crc32c
