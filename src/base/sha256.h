// SHA-256 through OpenSSL (which uses SHA-NI / AVX2 when the CPU has them).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace gapless {

using Hash256 = std::array<uint8_t, 32>;

// Incremental hasher. Not thread-safe; one per thread. Reusable after Finish().
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& Update(std::string_view data);
  Sha256& Update(const void* data, size_t n);
  // Writes the digest and resets the hasher for the next message.
  Hash256 Finish();

  static Hash256 Digest(std::string_view data);

 private:
  evp_md_ctx_st* ctx_;
};

std::string HexEncode(const uint8_t* data, size_t n);
inline std::string HexEncode(const Hash256& h) { return HexEncode(h.data(), h.size()); }

}  // namespace gapless
