// C2SP signed-note: a text signed by one or more keys, and its Ed25519 verifier keys.
// Grammar in docs/formats/checkpoint.md.
//
//   <text, one or more lines, each ending in \n>
//   \n
//   — <key name> <base64(key id (4 bytes, big-endian) || Ed25519 signature)>\n   (1..100)
//
// The key id is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key);
// a verifier key is "<name>+<hex key id>+<base64(0x01 || public key)>". The signature
// covers the text including its final newline. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "identity/identity.h"

namespace gapless::checkpoint {

inline constexpr size_t kMaxNoteBytes = 1 << 20;
inline constexpr size_t kMaxNoteSignatures = 100;

struct NoteSignature {
  std::string name;
  uint32_t key_id = 0;
  std::string signature;  // the bytes after the key id
};

struct Note {
  std::string text;  // ends in '\n'
  std::vector<NoteSignature> signatures;
};

struct Verifier {
  std::string name;
  uint32_t key_id = 0;
  identity::PublicKey key{};
};

// Non-empty, valid UTF-8 without spaces, control characters or '+'.
bool ValidKeyName(std::string_view name);
uint32_t KeyId(std::string_view name, const identity::PublicKey& key);
std::string FormatVerifierKey(std::string_view name, const identity::PublicKey& key);
// kInvalidArgument naming what is wrong (also when the id does not match the key).
StatusOr<Verifier> ParseVerifierKey(std::string_view vkey);

// The signature line for text; kInvalidArgument if the name or the text is not valid
// (text: non-empty, ends in '\n', UTF-8 without control characters other than '\n').
StatusOr<std::string> SignatureLine(std::string_view text, std::string_view name,
                                    const identity::SigningKey& key);
// text + blank line + one signature line.
StatusOr<std::string> SignNote(std::string_view text, std::string_view name,
                               const identity::SigningKey& key);
// Appends a signature line (a cosignature) to a note's serialized form.
std::string AddSignatureLine(std::string_view note, std::string_view line);

// C2SP tlog-cosignature/v1 (Ed25519): a witness's timestamped statement that this is the
// largest consistent tree it has seen of the origin. Its signature line carries
//   key id = SHA-256(name || 0x0A || 0x04 || public key)[:4]
//   signature = u64 big-endian timestamp || Ed25519 over
//               "cosignature/v1\ntime <timestamp>\n" || note text
// and its verifier key is "<name>+<hex id>+<base64(0x04 || public key)>".
uint32_t CosignerKeyId(std::string_view name, const identity::PublicKey& key);
std::string FormatCosignerKey(std::string_view name, const identity::PublicKey& key);
// kInvalidArgument naming what is wrong (a note signer's key, type 0x01, is refused here,
// and a cosigner's key is refused by ParseVerifierKey: the two statements differ).
StatusOr<Verifier> ParseCosignerKey(std::string_view vkey);
StatusOr<std::string> CosignatureLine(std::string_view text, std::string_view name,
                                      const identity::SigningKey& key, uint64_t timestamp);
// The timestamp of a valid cosignature by v on the note; kNotFound if it carries none by
// that key, kDataLoss if one does not verify.
StatusOr<uint64_t> VerifyCosignature(const Note& note, const Verifier& v);

// Syntax only: kInvalidArgument with what is malformed. No signature is checked.
StatusOr<Note> ParseNote(std::string_view bytes);
// Ok if the note carries a valid signature by v; kNotFound if it carries none by that
// key; kDataLoss if the signature by that key does not verify (tampered or forged).
Status VerifyNote(const Note& note, const Verifier& v);

}  // namespace gapless::checkpoint
