// Encryption of archives to one or more X25519 recipients, streaming, with OpenSSL only.
// Format: docs/formats/archive.md, "Encryption".
//
//   - a random 32-byte file key, wrapped for each recipient: X25519 with a fresh
//     ephemeral key, HKDF-SHA256 to a wrap key, AES-256-GCM;
//   - a header MAC (HMAC-SHA256 under a key derived from the file key) binds the header;
//   - the payload in 64 KiB chunks, each AES-256-GCM under a key derived from the file key
//     and a random salt, with the chunk counter and a last-chunk flag as nonce, so chunks
//     cannot be reordered, dropped or cut off at a chunk boundary unnoticed.
//
// Memory is one chunk, whatever the archive's size.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "env/env.h"

namespace gapless::archive {

using X25519Key = std::array<uint8_t, 32>;

// An X25519 private key: who may decrypt. Files hold "gapless-x25519-identity <base64>\n",
// mode 0600 (Load refuses anything others can read).
class Identity {
 public:
  static StatusOr<Identity> Generate();
  static StatusOr<Identity> Load(const std::string& path);
  Status Save(const std::string& path) const;  // new file, mode 0600
  const X25519Key& recipient() const { return public_; }
  const X25519Key& secret() const { return private_; }

 private:
  X25519Key private_{};
  X25519Key public_{};
};

// A recipient (public key) as text: "gapless-x25519:<base64>".
std::string FormatRecipient(const X25519Key& key);
StatusOr<X25519Key> ParseRecipient(std::string_view text);

// True if the file starts with the encrypted archive's magic.
bool IsEncrypted(const env::RandomAccessFile& file);

// A WritableFile that encrypts everything appended to `out`. Sync does nothing until
// Close, which writes the last chunk, syncs and closes `out`.
StatusOr<std::unique_ptr<env::WritableFile>> NewEncryptingFile(
    std::unique_ptr<env::WritableFile> out, const std::vector<X25519Key>& recipients);

// The decrypted view of an encrypted file of `size` bytes (which must outlive it), with
// its plaintext size. kPermissionDenied-like kFailedPrecondition if the identity is not a
// recipient; kDataLoss if the header was altered. A read of a chunk that fails its
// authentication returns kDataLoss.
StatusOr<std::unique_ptr<env::RandomAccessFile>> OpenDecrypted(const env::RandomAccessFile& file,
                                                               uint64_t size,
                                                               const Identity& identity,
                                                               uint64_t* plaintext_size);

}  // namespace gapless::archive
