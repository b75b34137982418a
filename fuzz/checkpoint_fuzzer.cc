// Fuzzes the parsers of signed notes, checkpoints and verifier keys (src/checkpoint):
// what an auditor's `verify` reads from archives and a collector reads from agents.
// Properties checked, beyond "never crashes or reads out of bounds":
//   - a checkpoint that parses formats to text that parses to the same checkpoint;
//   - a note that parses has text ending in a newline and at most 100 signatures, and
//     verifying it against a fixed key never succeeds (nobody here has that key's
//     private half, so a success would be a forgery);
//   - a verifier key that parses formats back to the same verifier.
#include <cstddef>
#include <cstdint>
#include <string>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"

namespace c = gapless::checkpoint;

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto cp = c::ParseCheckpoint(in); cp.ok()) {
    auto again = c::ParseCheckpoint(c::FormatCheckpoint(*cp));
    Check(again.ok() && *again == *cp);
  }
  if (auto note = c::ParseNote(in); note.ok()) {
    Check(!note->text.empty() && note->text.back() == '\n');
    Check(note->signatures.size() <= c::kMaxNoteSignatures);
    for (const auto& s : note->signatures) {
      c::Verifier v;
      v.name = s.name;
      v.key_id = s.key_id;
      v.key.fill(0x42);
      Check(!c::VerifyNote(*note, v).ok());
    }
  }
  if (auto v = c::ParseVerifierKey(in); v.ok()) {
    auto again = c::ParseVerifierKey(c::FormatVerifierKey(v->name, v->key));
    Check(again.ok() && again->name == v->name && again->key == v->key &&
          again->key_id == v->key_id);
  }
  return 0;
}
