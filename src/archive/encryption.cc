#include "archive/encryption.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <cstring>
#include <optional>

#include "base/coding.h"
#include "identity/identity.h"

namespace gapless::archive {
namespace {

constexpr std::string_view kMagic = "gapless-encrypted-archive/1\n";
constexpr std::string_view kIdentityPrefix = "gapless-x25519-identity ";
constexpr std::string_view kRecipientPrefix = "gapless-x25519:";
constexpr size_t kChunk = 64 << 10;
constexpr size_t kTag = 16;
constexpr size_t kStanza = 32 + 32 + kTag;  // ephemeral public key, wrapped file key
constexpr size_t kSalt = 16;
constexpr size_t kMac = 32;
constexpr uint16_t kMaxRecipients = 1024;

using Key32 = std::array<uint8_t, 32>;

std::string_view View(const Key32& k) { return {reinterpret_cast<const char*>(k.data()), 32}; }

StatusOr<Key32> Hkdf(std::string_view ikm, std::string_view salt, std::string_view info) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf != nullptr ? EVP_KDF_CTX_new(kdf) : nullptr;
  Key32 out{};
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(ikm.data()),
                                        ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  const bool ok = ctx != nullptr && EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (!ok) return InternalError("HKDF failed (OpenSSL)");
  return out;
}

StatusOr<Key32> Hmac(const Key32& key, std::string_view data) {
  Key32 out{};
  size_t len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
                out.size(), &len) == nullptr) {
    return InternalError("HMAC failed (OpenSSL)");
  }
  return out;
}

// AES-256-GCM of `in` with a 12-byte nonce into *out, the 16-byte tag appended. *out is
// reused from chunk to chunk (no allocation per chunk).
Status Seal(const Key32& key, const uint8_t* nonce, std::string_view in, std::string* out,
            EVP_CIPHER_CTX* reuse = nullptr) {
  EVP_CIPHER_CTX* ctx = reuse != nullptr ? reuse : EVP_CIPHER_CTX_new();
  out->resize(in.size() + kTag);
  auto* o = reinterpret_cast<unsigned char*>(out->data());
  int len = 0, fin = 0;
  const bool ok = ctx != nullptr &&
                  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nonce) == 1 &&
                  EVP_EncryptUpdate(ctx, o, &len, reinterpret_cast<const unsigned char*>(in.data()),
                                    static_cast<int>(in.size())) == 1 &&
                  EVP_EncryptFinal_ex(ctx, o + len, &fin) == 1 &&
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTag, o + in.size()) == 1;
  if (reuse == nullptr) EVP_CIPHER_CTX_free(ctx);
  if (!ok) return InternalError("AES-256-GCM failed (OpenSSL)");
  return Status::Ok();
}

// The inverse; kDataLoss if the tag does not authenticate.
Status Open(const Key32& key, const uint8_t* nonce, std::string_view in, std::string* out,
            EVP_CIPHER_CTX* reuse = nullptr) {
  if (in.size() < kTag) return DataLossError("ciphertext shorter than its tag");
  const size_t n = in.size() - kTag;
  EVP_CIPHER_CTX* ctx = reuse != nullptr ? reuse : EVP_CIPHER_CTX_new();
  out->resize(n);
  auto* o = reinterpret_cast<unsigned char*>(out->data());
  int len = 0, fin = 0;
  bool ok =
      ctx != nullptr &&
      EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nonce) == 1 &&
      EVP_DecryptUpdate(ctx, o, &len, reinterpret_cast<const unsigned char*>(in.data()),
                        static_cast<int>(n)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTag, const_cast<char*>(in.data() + n)) == 1;
  ok = ok && EVP_DecryptFinal_ex(ctx, o + len, &fin) == 1;
  if (reuse == nullptr) EVP_CIPHER_CTX_free(ctx);
  if (!ok) return DataLossError("authentication failed");
  return Status::Ok();
}

StatusOr<Key32> X25519(const Key32& secret, const Key32& peer) {
  EVP_PKEY* priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, secret.data(), 32);
  EVP_PKEY* pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer.data(), 32);
  EVP_PKEY_CTX* ctx = priv != nullptr ? EVP_PKEY_CTX_new(priv, nullptr) : nullptr;
  Key32 out{};
  size_t len = out.size();
  const bool ok = ctx != nullptr && pub != nullptr && EVP_PKEY_derive_init(ctx) == 1 &&
                  EVP_PKEY_derive_set_peer(ctx, pub) == 1 &&
                  EVP_PKEY_derive(ctx, out.data(), &len) == 1 && len == out.size();
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(pub);
  EVP_PKEY_free(priv);
  if (!ok) return InvalidArgumentError("X25519 failed (a bad public key?)");
  return out;
}

StatusOr<std::pair<Key32, Key32>> NewX25519() {  // {private, public}
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr);
  if (ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1) EVP_PKEY_keygen(ctx, &pkey);
  EVP_PKEY_CTX_free(ctx);
  std::pair<Key32, Key32> k;
  size_t a = 32, b = 32;
  const bool ok = pkey != nullptr && EVP_PKEY_get_raw_private_key(pkey, k.first.data(), &a) == 1 &&
                  EVP_PKEY_get_raw_public_key(pkey, k.second.data(), &b) == 1;
  EVP_PKEY_free(pkey);
  if (!ok) return InternalError("X25519 key generation failed (OpenSSL)");
  return k;
}

StatusOr<Key32> PublicOf(const Key32& secret) {
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, secret.data(), 32);
  Key32 pub{};
  size_t len = 32;
  const bool ok = pkey != nullptr && EVP_PKEY_get_raw_public_key(pkey, pub.data(), &len) == 1;
  EVP_PKEY_free(pkey);
  if (!ok) return InvalidArgumentError("not an X25519 private key");
  return pub;
}

struct FreeCipherCtx {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, FreeCipherCtx>;

// Nonce of chunk i: 11-byte big-endian counter, then 1 for the last chunk, 0 otherwise.
std::array<uint8_t, 12> ChunkNonce(uint64_t i, bool last) {
  std::array<uint8_t, 12> n{};
  for (int b = 0; b < 8; ++b) n[10 - b] = static_cast<uint8_t>(i >> (8 * b));
  n[11] = last ? 1 : 0;
  return n;
}

class EncryptingFile : public env::WritableFile {
 public:
  EncryptingFile(std::unique_ptr<env::WritableFile> out, Key32 payload_key)
      : out_(std::move(out)), key_(payload_key) {}
  Status Append(std::string_view data) override {
    while (!data.empty()) {
      // A full chunk is written only once more data follows: the last one is marked.
      if (buf_.size() == kChunk) RETURN_IF_ERROR(Flush(false));
      const size_t take = std::min(kChunk - buf_.size(), data.size());
      buf_.append(data.substr(0, take));
      data.remove_prefix(take);
      plain_bytes_ += take;
    }
    return Status::Ok();
  }
  Status Sync() override { return Status::Ok(); }          // the last chunk is known only at Close
  uint64_t Size() const override { return plain_bytes_; }  // plaintext appended
  Status Close() override {
    if (closed_) return Status::Ok();
    closed_ = true;
    RETURN_IF_ERROR(Flush(true));
    RETURN_IF_ERROR(out_->Sync());
    return out_->Close();
  }

 private:
  Status Flush(bool last) {
    const auto nonce = ChunkNonce(chunk_++, last);
    RETURN_IF_ERROR(Seal(key_, nonce.data(), buf_, &sealed_, ctx_.get()));
    buf_.clear();
    return out_->Append(sealed_);
  }
  std::unique_ptr<env::WritableFile> out_;
  Key32 key_;
  std::string buf_;
  std::string sealed_;  // reused for every chunk
  CipherCtx ctx_{EVP_CIPHER_CTX_new()};
  uint64_t chunk_ = 0;
  uint64_t plain_bytes_ = 0;
  bool closed_ = false;
};

class DecryptedFile : public env::RandomAccessFile {
 public:
  DecryptedFile(const env::RandomAccessFile& file, uint64_t payload_at, uint64_t size, Key32 key)
      : file_(file), at_(payload_at), key_(key) {
    const uint64_t body = size - payload_at;
    chunks_ = body == 0 ? 0 : (body + kChunk + kTag - 1) / (kChunk + kTag);
    plain_ = body - chunks_ * kTag;
  }
  uint64_t plaintext_size() const { return plain_; }
  bool valid() const { return chunks_ > 0; }

  StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    size_t done = 0;
    while (done < n && offset + done < plain_) {
      const uint64_t pos = offset + done;
      const uint64_t chunk = pos / kChunk;
      if (chunk != cached_ || cache_.empty()) RETURN_IF_ERROR(Load(chunk));
      const size_t in_chunk = static_cast<size_t>(pos - chunk * kChunk);
      const size_t take = std::min(n - done, cache_.size() - in_chunk);
      std::memcpy(scratch + done, cache_.data() + in_chunk, take);
      done += take;
    }
    return done;
  }

 private:
  Status Load(uint64_t chunk) const {
    const uint64_t start = at_ + chunk * (kChunk + kTag);
    const bool last = chunk + 1 == chunks_;
    const size_t len = last ? static_cast<size_t>(plain_ - chunk * kChunk + kTag) : kChunk + kTag;
    sealed_.resize(len);
    ASSIGN_OR_RETURN(size_t got, file_.Read(start, len, sealed_.data()));
    if (got != len) return DataLossError("encrypted archive: short read");
    const auto nonce = ChunkNonce(chunk, last);
    if (!Open(key_, nonce.data(), sealed_, &cache_, ctx_.get()).ok()) {
      cache_.clear();
      return DataLossError("encrypted archive: chunk " + std::to_string(chunk) +
                           " fails authentication (altered, reordered, or the archive was cut)");
    }
    cached_ = chunk;
    return Status::Ok();
  }
  const env::RandomAccessFile& file_;
  const uint64_t at_;
  const Key32 key_;
  uint64_t chunks_ = 0;
  uint64_t plain_ = 0;
  mutable std::string cache_;   // one decrypted chunk
  mutable std::string sealed_;  // its ciphertext; both reused for every chunk
  CipherCtx ctx_{EVP_CIPHER_CTX_new()};
  mutable uint64_t cached_ = 0;
};

}  // namespace

StatusOr<Identity> Identity::Generate() {
  ASSIGN_OR_RETURN(auto k, NewX25519());
  Identity id;
  id.private_ = k.first;
  id.public_ = k.second;
  return id;
}

StatusOr<Identity> Identity::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, identity::ReadSecretFile(path));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.rfind(kIdentityPrefix, 0) != 0) {
    return InvalidArgumentError(path + " is not a gapless X25519 identity");
  }
  auto raw = identity::Base64Decode(std::string_view(text).substr(kIdentityPrefix.size()));
  if (!raw.ok() || raw->size() != 32) {
    return InvalidArgumentError(path + ": the identity is not base64 of 32 bytes");
  }
  Identity id;
  std::memcpy(id.private_.data(), raw->data(), 32);
  ASSIGN_OR_RETURN(id.public_, PublicOf(id.private_));
  return id;
}

Status Identity::Save(const std::string& path) const {
  return identity::WriteSecretFile(
      path, std::string(kIdentityPrefix) + identity::Base64Encode(View(private_)) + "\n");
}

std::string FormatRecipient(const X25519Key& key) {
  return std::string(kRecipientPrefix) + identity::Base64Encode(View(key));
}

StatusOr<X25519Key> ParseRecipient(std::string_view text) {
  if (text.rfind(kRecipientPrefix, 0) != 0) {
    return InvalidArgumentError(
        "a recipient is \"gapless-x25519:<base64>\" (gapless keygen "
        "--recipient prints one)");
  }
  auto raw = identity::Base64Decode(text.substr(kRecipientPrefix.size()));
  if (!raw.ok() || raw->size() != 32) {
    return InvalidArgumentError("recipient key is not base64 of 32 bytes");
  }
  X25519Key k;
  std::memcpy(k.data(), raw->data(), 32);
  return k;
}

bool IsEncrypted(const env::RandomAccessFile& file) {
  std::string head(kMagic.size(), '\0');
  auto got = file.Read(0, head.size(), head.data());
  return got.ok() && *got == head.size() && head == kMagic;
}

StatusOr<std::unique_ptr<env::WritableFile>> NewEncryptingFile(
    std::unique_ptr<env::WritableFile> out, const std::vector<X25519Key>& recipients) {
  if (recipients.empty() || recipients.size() > kMaxRecipients) {
    return InvalidArgumentError("an encrypted archive needs 1 to 1024 recipients");
  }
  Key32 file_key{};
  std::array<uint8_t, kSalt> salt{};
  if (RAND_bytes(file_key.data(), 32) != 1 || RAND_bytes(salt.data(), kSalt) != 1) {
    return InternalError("no randomness (OpenSSL)");
  }
  std::string header(kMagic);
  PutFixed32(&header, static_cast<uint32_t>(recipients.size()));
  const std::array<uint8_t, 12> zero_nonce{};  // each wrap key is used once
  for (const X25519Key& r : recipients) {
    ASSIGN_OR_RETURN(auto eph, NewX25519());
    ASSIGN_OR_RETURN(Key32 shared, X25519(eph.first, r));
    ASSIGN_OR_RETURN(Key32 wrap,
                     Hkdf(View(shared), std::string(View(eph.second)) + std::string(View(r)),
                          "gapless-archive/1 wrap"));
    std::string wrapped;
    RETURN_IF_ERROR(Seal(wrap, zero_nonce.data(), View(file_key), &wrapped));
    header.append(View(eph.second));
    header += wrapped;
  }
  header.append(reinterpret_cast<const char*>(salt.data()), kSalt);
  ASSIGN_OR_RETURN(Key32 mac_key, Hkdf(View(file_key), "", "gapless-archive/1 header"));
  ASSIGN_OR_RETURN(Key32 mac, Hmac(mac_key, header));
  header.append(View(mac));
  RETURN_IF_ERROR(out->Append(header));
  ASSIGN_OR_RETURN(
      Key32 payload_key,
      Hkdf(View(file_key), std::string_view(reinterpret_cast<const char*>(salt.data()), kSalt),
           "gapless-archive/1 payload"));
  return std::unique_ptr<env::WritableFile>(new EncryptingFile(std::move(out), payload_key));
}

StatusOr<std::unique_ptr<env::RandomAccessFile>> OpenDecrypted(const env::RandomAccessFile& file,
                                                               uint64_t size,
                                                               const Identity& identity,
                                                               uint64_t* plaintext_size) {
  if (!IsEncrypted(file)) return InvalidArgumentError("not an encrypted gapless archive");
  std::string head(kMagic.size() + 4, '\0');
  ASSIGN_OR_RETURN(size_t got, file.Read(0, head.size(), head.data()));
  if (got != head.size()) return DataLossError("encrypted archive: header cut off");
  const uint32_t count = DecodeFixed32(head.data() + kMagic.size());
  if (count == 0 || count > kMaxRecipients) {
    return DataLossError("encrypted archive: recipient count " + std::to_string(count));
  }
  const uint64_t header_len = head.size() + uint64_t{count} * kStanza + kSalt;
  if (header_len + kMac > size) return DataLossError("encrypted archive: header cut off");
  std::string header(header_len + kMac, '\0');
  ASSIGN_OR_RETURN(got, file.Read(0, header.size(), header.data()));
  if (got != header.size()) return DataLossError("encrypted archive: header cut off");
  const std::array<uint8_t, 12> zero_nonce{};
  std::optional<Key32> file_key;
  for (uint32_t i = 0; i < count && !file_key; ++i) {
    const char* stanza = header.data() + head.size() + size_t{i} * kStanza;
    Key32 eph;
    std::memcpy(eph.data(), stanza, 32);
    auto shared = X25519(identity.secret(), eph);
    if (!shared.ok()) continue;
    ASSIGN_OR_RETURN(
        Key32 wrap,
        Hkdf(View(*shared), std::string(View(eph)) + std::string(View(identity.recipient())),
             "gapless-archive/1 wrap"));
    std::string key;
    if (Open(wrap, zero_nonce.data(), std::string_view(stanza + 32, 32 + kTag), &key).ok() &&
        key.size() == 32) {
      Key32 k;
      std::memcpy(k.data(), key.data(), 32);
      file_key = k;
    }
  }
  if (!file_key) {
    return FailedPreconditionError("this identity is not a recipient of the archive (its key is " +
                                   FormatRecipient(identity.recipient()) + ")");
  }
  ASSIGN_OR_RETURN(Key32 mac_key, Hkdf(View(*file_key), "", "gapless-archive/1 header"));
  ASSIGN_OR_RETURN(Key32 mac, Hmac(mac_key, std::string_view(header).substr(0, header_len)));
  if (std::memcmp(mac.data(), header.data() + header_len, kMac) != 0) {
    return DataLossError("encrypted archive: the header was altered (its MAC does not match)");
  }
  ASSIGN_OR_RETURN(Key32 payload_key,
                   Hkdf(View(*file_key), std::string_view(header).substr(header_len - kSalt, kSalt),
                        "gapless-archive/1 payload"));
  auto d = std::make_unique<DecryptedFile>(file, header_len + kMac, size, payload_key);
  if (!d->valid()) return DataLossError("encrypted archive: no payload");
  *plaintext_size = d->plaintext_size();
  return std::unique_ptr<env::RandomAccessFile>(std::move(d));
}

}  // namespace gapless::archive
