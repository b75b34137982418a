// Verify: the auditor's check of a collector's store, stream by stream, with nothing
// trusted but the collector's public key. One pass over the records:
//
//   - every frame's CRC (damage is found and located);
//   - every record's RFC 9162 leaf, recomputed from its bytes and compared with the
//     stored leaf (a record rewritten in place is found);
//   - seq continuity: missing seqs are matched against what the agent declared (the
//     gaps file, and the seq ranges of LOSS records, with their reasons);
//   - the Merkle root at the size of every signed checkpoint, compared with the signed
//     root, and the signature itself (a record removed, added or reordered anywhere
//     below a checkpoint is found); checkpoints that shrink or fork are found;
//   - the agent's own signed checkpoints the collector kept (dir/agent-checkpoints): each
//     signed by the enrolled agent's key, of this stream, and with the root the stored
//     records give at its size (a collector that rewrites records and re-signs them with
//     its own key is found below the agent's signed size);
//   - equivocation evidence (FLAGGED).
//
// The verdict: clean (complete, nothing wrong), incomplete (seqs missing, every one
// declared by the agent), tampered (anything else: damage, a mismatch, a bad signature,
// an undeclared hole, a stored equivocation).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"
#include "checkpoint/note.h"
#include "env/env.h"
#include "identity/identity.h"

namespace gapless::verify {

enum class Verdict { kClean = 0, kIncomplete = 1, kTampered = 2 };
std::string_view VerdictName(Verdict v);

struct SeqRange {
  uint64_t first = 0;
  uint64_t last = 0;   // inclusive
  std::string reason;  // for declared losses: the LOSS record's reason
};

struct StreamReport {
  std::string dir;
  uint64_t records = 0;           // intact records
  uint64_t record_bytes = 0;      // bytes hashed (type byte + payload per record)
  uint64_t next_seq = 0;          // one past the highest stored seq
  Hash256 root{};                 // over [0, next_seq), a missing seq counting as a zero leaf
  std::vector<SeqRange> missing;  // seqs not stored
  std::vector<SeqRange> declared_losses;  // seq ranges named by LOSS records
  uint64_t losses_without_range = 0;      // LOSS records that give a count only
  std::vector<SeqRange> declared_gaps;    // ranges the agent declared gone (gaps file)
  uint64_t checkpoints = 0;
  uint64_t checkpoints_verified = 0;  // signature checked with the given key
  uint64_t signed_size = 0;           // the largest checkpoint
  // Stored records beyond the largest collector checkpoint: [signed_size, next_seq). Not
  // yet provable (nothing signed covers them), whatever the verdict says of the rest.
  uint64_t unsigned_records = 0;
  bool flagged = false;
  uint64_t witnessed = 0;          // notes in dir/witnessed with a valid cosignature by a given key
  uint64_t witnessed_size = 0;     // the largest of them
  uint64_t agent_checkpoints = 0;  // notes in dir/agent-checkpoints
  uint64_t agent_checkpoints_verified = 0;  // signature checked with the agent's key
  uint64_t agent_signed_size = 0;           // the largest of them
  std::vector<std::string> problems;        // each one makes the stream tampered
  std::vector<std::string> notes;           // worth knowing, not wrong (e.g. a write in progress)
  Verdict verdict = Verdict::kClean;
};

struct Options {
  // The collector's checkpoint key. Without it signatures are not checked (and the
  // report says so); roots are still compared.
  std::optional<checkpoint::Verifier> collector_key;
  // Witnesses' cosigner keys: their cosignatures in dir/witnessed are checked.
  std::vector<checkpoint::Verifier> witness_keys;
  // Enrolled agents' keys by agent id (identity::ParseEnrolledKeys). The signatures of an
  // agent's checkpoints are checked when its key is here; their roots always are.
  identity::EnrolledKeys agent_keys;
};

// The parts of [first, last] that none of `declared` covers.
std::vector<SeqRange> UndeclaredRanges(uint64_t first, uint64_t last,
                                       std::vector<SeqRange> declared);

// dir is a stream directory: <data_dir>/streams/<agent>/<epoch>. Errors only when the
// directory cannot be read at all; everything wrong inside it is a problem in the report.
StatusOr<StreamReport> VerifyStream(env::Env* env, const std::string& dir, const Options& o);

}  // namespace gapless::verify
