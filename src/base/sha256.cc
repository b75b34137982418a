#include "base/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace gapless {
namespace {

// Fetched once: EVP_sha256() would look the implementation up on every init.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// OpenSSL failures here mean a broken library installation, not bad input; there is no
// sane way to continue hashing the log.
void CheckOpenSsl(int rc) {
  if (rc != 1) std::abort();
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || Sha256Md() == nullptr) std::abort();
  CheckOpenSsl(EVP_DigestInit_ex2(ctx_, Sha256Md(), nullptr));
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

Sha256& Sha256::Update(const void* data, size_t n) {
  CheckOpenSsl(EVP_DigestUpdate(ctx_, data, n));
  return *this;
}

Sha256& Sha256::Update(std::string_view data) { return Update(data.data(), data.size()); }

Hash256 Sha256::Finish() {
  Hash256 out;
  unsigned int len = 0;
  CheckOpenSsl(EVP_DigestFinal_ex(ctx_, out.data(), &len));
  CheckOpenSsl(EVP_DigestInit_ex2(ctx_, Sha256Md(), nullptr));
  return out;
}

Hash256 Sha256::Digest(std::string_view data) {
  thread_local Sha256 hasher;
  return hasher.Update(data).Finish();
}

std::string HexEncode(const uint8_t* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(2 * n, '\0');  // written in place: every output hexes a leaf per record
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[data[i] >> 4];
    s[2 * i + 1] = kDigits[data[i] & 15];
  }
  return s;
}

}  // namespace gapless
