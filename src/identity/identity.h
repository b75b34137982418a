// Identity: Ed25519 keys for agents and collectors, base64, and the self-signed TLS
// certificate of the embedded default. All crypto goes through OpenSSL.
//
// Key files hold a PKCS#8 PEM private key and must be mode 0600 (owner only): Load
// refuses anything group- or world-readable, and Save creates files with that mode.
//
// Thread contract: a SigningKey may sign from many threads at once (each call uses its
// own OpenSSL context); everything else is a pure function.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

struct evp_pkey_st;

namespace gapless::identity {

inline constexpr size_t kPublicKeySize = 32;
inline constexpr size_t kSignatureSize = 64;

using PublicKey = std::array<uint8_t, kPublicKeySize>;

class SigningKey {
 public:
  static StatusOr<std::unique_ptr<SigningKey>> Generate();
  // Reads a PEM Ed25519 private key. kPermissionDenied-like kFailedPrecondition if the
  // file is readable by anyone but its owner.
  static StatusOr<std::unique_ptr<SigningKey>> Load(const std::string& path);
  ~SigningKey();
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  // Writes the key as PEM to a new file of mode 0600; fails if the file exists.
  Status Save(const std::string& path) const;
  const PublicKey& public_key() const { return public_key_; }
  std::string Sign(std::string_view message) const;  // kSignatureSize bytes
  evp_pkey_st* pkey() const { return pkey_; }

 private:
  explicit SigningKey(evp_pkey_st* pkey);
  evp_pkey_st* pkey_;
  PublicKey public_key_{};
};

bool Verify(const PublicKey& key, std::string_view message, std::string_view signature);

// Standard base64 with padding (RFC 4648 §4).
std::string Base64Encode(std::string_view bytes);
StatusOr<std::string> Base64Decode(std::string_view text);

StatusOr<PublicKey> ParsePublicKey(std::string_view base64);
inline std::string FormatPublicKey(const PublicKey& key) {
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
}

// Agent ids are path components: 1-64 of [A-Za-z0-9._-], not starting with '.'.
bool ValidAgentId(std::string_view id);

// The enrolled agents' keys: "agent_id base64-public-key" lines (as gapless keygen prints
// them), '#' comments and blank lines. The numbers of lines that are neither go to
// bad_lines; they are skipped.
using EnrolledKeys = std::map<std::string, PublicKey>;  // by agent id
EnrolledKeys ParseEnrolledKeys(std::string_view text, std::vector<int>* bad_lines);

// Writes a new file of mode 0600 and syncs it; fails if it exists (secrets are never
// overwritten).
Status WriteSecretFile(const std::string& path, std::string_view bytes);

// Checks that path is a regular file owned by this process's user (or root) and not
// readable or writable by group or others. The check is made on the opened file (fstat),
// so a symlink is judged by its target.
Status CheckOwnerOnly(const std::string& path);

// Reads a secret (key, token, API key) with the same check made on the descriptor it reads
// from, so nothing can be swapped between the check and the read. At most
// kMaxSecretFileBytes.
inline constexpr size_t kMaxSecretFileBytes = 1 << 20;

// Enrollment tokens shorter than this are refused (the agent will not start with one; the
// collector never matches one): a short token could be guessed online.
inline constexpr size_t kMinEnrollTokenBytes = 16;
StatusOr<std::string> ReadSecretFile(const std::string& path);

// Parses a PEM private key (of any type) from memory; nullptr if it is not one. The caller
// frees it with EVP_PKEY_free.
evp_pkey_st* ParsePemPrivateKey(std::string_view pem);

// Writes a new Ed25519 TLS key (mode 0600) and a self-signed certificate for
// `common_name` (valid 10 years, subjectAltName DNS:common_name). For the embedded
// default and tests; production deployments bring their own PKI.
Status MakeSelfSignedTls(const std::string& key_path, const std::string& cert_path,
                         const std::string& common_name);

}  // namespace gapless::identity
