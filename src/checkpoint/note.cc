#include "checkpoint/note.h"

#include <cstring>

#include "base/sha256.h"

namespace gapless::checkpoint {
namespace {

constexpr std::string_view kSigPrefix = "\xE2\x80\x94 ";  // U+2014 EM DASH, then a space
constexpr uint8_t kEd25519 = 0x01;
constexpr uint8_t kCosignatureV1 = 0x04;
constexpr std::string_view kCosignatureHeader = "cosignature/v1\n";

bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const bool overlong =
        (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

Status ValidText(std::string_view text) {
  if (text.empty() || text.back() != '\n') {
    return InvalidArgumentError("note text must be non-empty and end in a newline");
  }
  if (!ValidUtf8(text)) return InvalidArgumentError("note text is not valid UTF-8");
  for (char c : text) {
    if (static_cast<uint8_t>(c) < 0x20 && c != '\n') {
      return InvalidArgumentError("note text has a control character");
    }
  }
  return Status::Ok();
}

std::string KeyIdBytes(uint32_t id) {
  std::string b(4, '\0');
  for (int i = 0; i < 4; ++i) b[static_cast<size_t>(i)] = static_cast<char>(id >> (24 - 8 * i));
  return b;
}

uint32_t ReadKeyId(std::string_view b) {
  uint32_t id = 0;
  for (int i = 0; i < 4; ++i) id = (id << 8) | static_cast<uint8_t>(b[static_cast<size_t>(i)]);
  return id;
}

std::string_view KeyBytes(const identity::PublicKey& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

uint32_t TypedKeyId(std::string_view name, uint8_t type, const identity::PublicKey& key) {
  Sha256 h;
  const char sep = '\n';
  h.Update(name).Update(&sep, 1).Update(&type, 1).Update(key.data(), key.size());
  const Hash256 d = h.Finish();
  return ReadKeyId(std::string_view(reinterpret_cast<const char*>(d.data()), 4));
}

std::string FormatTypedKey(std::string_view name, uint8_t type, const identity::PublicKey& key) {
  const std::string id = KeyIdBytes(TypedKeyId(name, type, key));
  return std::string(name) + "+" + HexEncode(reinterpret_cast<const uint8_t*>(id.data()), 4) + "+" +
         identity::Base64Encode(std::string(1, static_cast<char>(type)) +
                                std::string(KeyBytes(key)));
}

StatusOr<Verifier> ParseTypedKey(std::string_view vkey, uint8_t type, const char* type_name) {
  const size_t a = vkey.find('+');
  const size_t b = a == std::string_view::npos ? a : vkey.find('+', a + 1);
  if (b == std::string_view::npos) {
    return InvalidArgumentError("verifier key must be <name>+<hex key id>+<base64 key>");
  }
  Verifier v;
  v.name = std::string(vkey.substr(0, a));
  if (!ValidKeyName(v.name)) return InvalidArgumentError("verifier key: bad key name");
  const std::string_view hex = vkey.substr(a + 1, b - a - 1);
  if (hex.size() != 8 || hex.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    return InvalidArgumentError("verifier key: key id must be 8 lowercase hex digits");
  }
  auto raw = identity::Base64Decode(vkey.substr(b + 1));
  if (!raw.ok() || raw->size() != 1 + identity::kPublicKeySize) {
    return InvalidArgumentError("verifier key: key must be base64 of 33 bytes");
  }
  if (static_cast<uint8_t>((*raw)[0]) != type) {
    return InvalidArgumentError(std::string("verifier key: expected ") + type_name + " (type 0x" +
                                HexEncode(&type, 1) + "), this key is of type 0x" +
                                HexEncode(reinterpret_cast<const uint8_t*>(raw->data()), 1));
  }
  std::memcpy(v.key.data(), raw->data() + 1, v.key.size());
  v.key_id = TypedKeyId(v.name, type, v.key);
  if (HexEncode(reinterpret_cast<const uint8_t*>(KeyIdBytes(v.key_id).data()), 4) != hex) {
    return InvalidArgumentError("verifier key: the key id does not match the name and key");
  }
  return v;
}

std::string CosignedMessage(std::string_view text, uint64_t timestamp) {
  return std::string(kCosignatureHeader) + "time " + std::to_string(timestamp) + "\n" +
         std::string(text);
}

}  // namespace

bool ValidKeyName(std::string_view name) {
  if (name.empty() || !ValidUtf8(name)) return false;
  for (char c : name) {
    const auto u = static_cast<uint8_t>(c);
    if (u <= 0x20 || u == 0x7F || c == '+') return false;
  }
  return true;
}

uint32_t KeyId(std::string_view name, const identity::PublicKey& key) {
  return TypedKeyId(name, kEd25519, key);
}

std::string FormatVerifierKey(std::string_view name, const identity::PublicKey& key) {
  return FormatTypedKey(name, kEd25519, key);
}

StatusOr<Verifier> ParseVerifierKey(std::string_view vkey) {
  return ParseTypedKey(vkey, kEd25519, "an Ed25519 note signer's key");
}

uint32_t CosignerKeyId(std::string_view name, const identity::PublicKey& key) {
  return TypedKeyId(name, kCosignatureV1, key);
}

std::string FormatCosignerKey(std::string_view name, const identity::PublicKey& key) {
  return FormatTypedKey(name, kCosignatureV1, key);
}

StatusOr<Verifier> ParseCosignerKey(std::string_view vkey) {
  return ParseTypedKey(vkey, kCosignatureV1, "an Ed25519 cosigner's key");
}

StatusOr<std::string> CosignatureLine(std::string_view text, std::string_view name,
                                      const identity::SigningKey& key, uint64_t timestamp) {
  if (!ValidKeyName(name))
    return InvalidArgumentError("bad key name \"" + std::string(name) + "\"");
  RETURN_IF_ERROR(ValidText(text));
  if (timestamp > (uint64_t{1} << 63) - 1) return InvalidArgumentError("timestamp too large");
  std::string ts(8, '\0');
  for (int i = 0; i < 8; ++i)
    ts[static_cast<size_t>(i)] = static_cast<char>(timestamp >> (56 - 8 * i));
  const std::string sig = KeyIdBytes(CosignerKeyId(name, key.public_key())) + ts +
                          key.Sign(CosignedMessage(text, timestamp));
  return std::string(kSigPrefix) + std::string(name) + " " + identity::Base64Encode(sig) + "\n";
}

StatusOr<uint64_t> VerifyCosignature(const Note& note, const Verifier& v) {
  for (const NoteSignature& s : note.signatures) {
    if (s.name != v.name || s.key_id != v.key_id) continue;
    if (s.signature.size() != 8 + identity::kSignatureSize) {
      return DataLossError("the cosignature of " + v.name + " is not a timestamped signature");
    }
    uint64_t timestamp = 0;
    for (size_t i = 0; i < 8; ++i)
      timestamp = (timestamp << 8) | static_cast<uint8_t>(s.signature[i]);
    if (timestamp > (uint64_t{1} << 63) - 1 ||
        !identity::Verify(v.key, CosignedMessage(note.text, timestamp),
                          std::string_view(s.signature).substr(8))) {
      return DataLossError("the cosignature of " + v.name +
                           " does not verify: the note was altered or forged");
    }
    return timestamp;
  }
  return NotFoundError("the note is not cosigned by " + v.name);
}

StatusOr<std::string> SignatureLine(std::string_view text, std::string_view name,
                                    const identity::SigningKey& key) {
  if (!ValidKeyName(name))
    return InvalidArgumentError("bad key name \"" + std::string(name) + "\"");
  RETURN_IF_ERROR(ValidText(text));
  const std::string sig = KeyIdBytes(KeyId(name, key.public_key())) + key.Sign(text);
  return std::string(kSigPrefix) + std::string(name) + " " + identity::Base64Encode(sig) + "\n";
}

StatusOr<std::string> SignNote(std::string_view text, std::string_view name,
                               const identity::SigningKey& key) {
  ASSIGN_OR_RETURN(std::string line, SignatureLine(text, name, key));
  return std::string(text) + "\n" + line;
}

std::string AddSignatureLine(std::string_view note, std::string_view line) {
  return std::string(note) + std::string(line);
}

StatusOr<Note> ParseNote(std::string_view bytes) {
  if (bytes.size() > kMaxNoteBytes) return InvalidArgumentError("note larger than 1 MiB");
  const size_t split = bytes.rfind("\n\n");
  if (split == std::string_view::npos) {
    return InvalidArgumentError("note has no blank line before its signatures");
  }
  Note note;
  note.text = std::string(bytes.substr(0, split + 1));
  RETURN_IF_ERROR(ValidText(note.text));
  std::string_view sigs = bytes.substr(split + 2);
  if (sigs.empty()) return InvalidArgumentError("note has no signature");
  if (sigs.back() != '\n')
    return InvalidArgumentError("note's last line does not end in a newline");
  while (!sigs.empty()) {
    const size_t eol = sigs.find('\n');
    std::string_view line = sigs.substr(0, eol);
    sigs.remove_prefix(eol + 1);
    if (note.signatures.size() == kMaxNoteSignatures) {
      return InvalidArgumentError("note has more than 100 signatures");
    }
    if (line.substr(0, kSigPrefix.size()) != kSigPrefix) {
      return InvalidArgumentError("signature line does not start with an em dash and a space");
    }
    line.remove_prefix(kSigPrefix.size());
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) return InvalidArgumentError("signature line has no key");
    NoteSignature s;
    s.name = std::string(line.substr(0, space));
    if (!ValidKeyName(s.name)) return InvalidArgumentError("signature line has a bad key name");
    auto raw = identity::Base64Decode(line.substr(space + 1));
    if (!raw.ok() || raw->size() < 5) {
      return InvalidArgumentError("signature of " + s.name +
                                  " is not base64 of an id and a signature");
    }
    s.key_id = ReadKeyId(*raw);
    s.signature = raw->substr(4);
    note.signatures.push_back(std::move(s));
  }
  return note;
}

Status VerifyNote(const Note& note, const Verifier& v) {
  for (const NoteSignature& s : note.signatures) {
    if (s.name != v.name || s.key_id != v.key_id) continue;
    if (s.signature.size() != identity::kSignatureSize ||
        !identity::Verify(v.key, note.text, s.signature)) {
      return DataLossError("the signature of " + v.name +
                           " does not verify: the note was altered or forged");
    }
    return Status::Ok();
  }
  return NotFoundError("the note is not signed by " + v.name);
}

}  // namespace gapless::checkpoint
