#include "identity/identity.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace gapless::identity {
namespace {

std::string OpenSslError(const std::string& what) { return what + " failed (OpenSSL)"; }

// Writes bytes to path with `mode` and syncs it. `exclusive`: fail if the file exists
// (keys are never overwritten); otherwise replace its contents.
Status WriteFileWithMode(const std::string& path, std::string_view bytes, mode_t mode,
                         bool exclusive) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC);
  const int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return AlreadyExistsError(path + " exists; refusing to overwrite a key (remove it first)");
    }
    return UnavailableError("cannot create " + path + ": " + std::strerror(errno));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      return UnavailableError("cannot write " + path + ": " + err);
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return UnavailableError("cannot sync " + path);
  return Status::Ok();
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

EVP_PKEY* GenerateEd25519() {
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  if (ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1) EVP_PKEY_keygen(ctx, &pkey);
  EVP_PKEY_CTX_free(ctx);
  return pkey;
}

Status SavePrivateKeyPem(EVP_PKEY* pkey, const std::string& path) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    BIO_free(bio);
    return InternalError(OpenSslError("encoding the private key"));
  }
  const std::string pem = BioToString(bio);
  BIO_free(bio);
  return WriteFileWithMode(path, pem, 0600, /*exclusive=*/true);
}

}  // namespace

SigningKey::SigningKey(EVP_PKEY* pkey) : pkey_(pkey) {
  size_t n = public_key_.size();
  EVP_PKEY_get_raw_public_key(pkey_, public_key_.data(), &n);
}

SigningKey::~SigningKey() { EVP_PKEY_free(pkey_); }

StatusOr<std::unique_ptr<SigningKey>> SigningKey::Generate() {
  EVP_PKEY* pkey = GenerateEd25519();
  if (pkey == nullptr) return InternalError(OpenSslError("generating an Ed25519 key"));
  return std::unique_ptr<SigningKey>(new SigningKey(pkey));
}

Status WriteSecretFile(const std::string& path, std::string_view bytes) {
  return WriteFileWithMode(path, bytes, 0600, /*exclusive=*/true);
}

namespace {

// Opens path for reading and checks the opened file itself (fstat, so what is checked is
// what is read): a regular file, owned by this process's user (or root), with no group or
// other permission bits. Returns the descriptor; the caller closes it.
StatusOr<int> OpenOwnerOnly(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return NotFoundError("cannot read " + path + ": " + std::strerror(errno));
  struct stat st {};
  std::string problem;
  if (::fstat(fd, &st) != 0) {
    problem = std::string("cannot stat it: ") + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "is not a regular file";
  } else if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    problem = std::string("has mode ") + mode +
              "; a secret must be readable by its owner only (chmod 600 " + path + ")";
  } else if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    problem = "is owned by uid " + std::to_string(st.st_uid) +
              ", not by this process's user (uid " + std::to_string(::geteuid()) +
              ") or root; another user could change it (chown it)";
  }
  if (!problem.empty()) {
    ::close(fd);
    return FailedPreconditionError(path + " " + problem);
  }
  return fd;
}

}  // namespace

Status CheckOwnerOnly(const std::string& path) {
  ASSIGN_OR_RETURN(int fd, OpenOwnerOnly(path));
  ::close(fd);
  return Status::Ok();
}

StatusOr<std::string> ReadSecretFile(const std::string& path) {
  ASSIGN_OR_RETURN(int fd, OpenOwnerOnly(path));
  std::string bytes;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return InternalError("cannot read " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
    if (bytes.size() > kMaxSecretFileBytes) {
      ::close(fd);
      return InvalidArgumentError(path + " is larger than " + std::to_string(kMaxSecretFileBytes) +
                                  " bytes; it is not a key or token file");
    }
  }
  ::close(fd);
  return bytes;
}

EVP_PKEY* ParsePemPrivateKey(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return nullptr;
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return pkey;
}

StatusOr<std::unique_ptr<SigningKey>> SigningKey::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadSecretFile(path));
  EVP_PKEY* pkey = ParsePemPrivateKey(pem);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (pkey == nullptr) {
    return InvalidArgumentError(path + " is not a PEM private key (make one with gapless keygen)");
  }
  if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(pkey);
    return InvalidArgumentError(path + " is not an Ed25519 key (make one with gapless keygen)");
  }
  return std::unique_ptr<SigningKey>(new SigningKey(pkey));
}

Status SigningKey::Save(const std::string& path) const { return SavePrivateKeyPem(pkey_, path); }

std::string SigningKey::Sign(std::string_view message) const {
  std::string sig(kSignatureSize, '\0');
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t n = sig.size();
  const bool ok =
      ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, pkey_) == 1 &&
      EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) sig.clear();  // verification of an empty signature always fails
  return sig;
}

bool Verify(const PublicKey& key, std::string_view message, std::string_view signature) {
  if (signature.size() != kSignatureSize) return false;
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size());
  if (pkey == nullptr) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pkey) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  return ok;
}

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16 |
                       static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8 |
                       static_cast<uint8_t>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

StatusOr<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return InvalidArgumentError("base64 length is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = text[i + static_cast<size_t>(j)];
      if (c == '=' && last && j >= 2) {
        v[j] = 0;
        ++pad;
        continue;
      }
      v[j] = pad > 0 ? -1 : Base64Value(c);
      if (v[j] < 0) return InvalidArgumentError("invalid base64 character");
    }
    const uint32_t n = static_cast<uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    // Canonical only: the bits a padded group leaves unused must be zero, or two texts
    // would decode to the same bytes (a signature line could change and still verify).
    if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) {
      return InvalidArgumentError("non-canonical base64 (unused bits set)");
    }
    out.push_back(static_cast<char>(n >> 16));
    if (pad < 2) out.push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(n & 0xff));
  }
  return out;
}

StatusOr<PublicKey> ParsePublicKey(std::string_view base64) {
  auto raw = Base64Decode(base64);
  if (!raw.ok() || raw->size() != kPublicKeySize) {
    return InvalidArgumentError("not an Ed25519 public key (44 characters of base64 expected)");
  }
  PublicKey key;
  std::memcpy(key.data(), raw->data(), key.size());
  return key;
}

bool ValidAgentId(std::string_view id) {
  if (id.empty() || id.size() > 64 || id[0] == '.') return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

EnrolledKeys ParseEnrolledKeys(std::string_view text, std::vector<int>* bad_lines) {
  EnrolledKeys out;
  std::istringstream in{std::string(text)};
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string id, key;
    fields >> id >> key;
    auto parsed = ParsePublicKey(key);
    if (!ValidAgentId(id) || !parsed.ok()) {
      bad_lines->push_back(n);
      continue;
    }
    out[id] = *parsed;
  }
  return out;
}

Status MakeSelfSignedTls(const std::string& key_path, const std::string& cert_path,
                         const std::string& common_name) {
  EVP_PKEY* pkey = GenerateEd25519();
  X509* cert = X509_new();
  Status status;
  bool ok = pkey != nullptr && cert != nullptr;
  if (ok) {
    X509_set_version(cert, 2);
    unsigned char serial[16];
    const size_t n = sizeof(serial);
    ok = RAND_bytes(serial, static_cast<int>(n)) == 1;
    serial[0] &= 0x7f;  // a positive serial number
    BIGNUM* bn = BN_bin2bn(serial, static_cast<int>(n), nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
    X509_set_pubkey(cert, pkey);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    const std::string san = "DNS:" + common_name;
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    if (ext != nullptr) {
      X509_add_ext(cert, ext, -1);
      X509_EXTENSION_free(ext);
    }
    ok = X509_sign(cert, pkey, nullptr) > 0;
  }
  if (!ok) {
    status = InternalError(OpenSslError("making a self-signed certificate"));
  } else {
    status = SavePrivateKeyPem(pkey, key_path);
  }
  if (status.ok()) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert);
    const std::string pem = BioToString(bio);
    BIO_free(bio);
    status = WriteFileWithMode(cert_path, pem, 0644, /*exclusive=*/false);
  }
  X509_free(cert);
  EVP_PKEY_free(pkey);
  return status;
}

}  // namespace gapless::identity
