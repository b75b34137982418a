// Archive: one self-describing file that carries a range of records of one or more
// collector streams with everything needed to check them offline, years later, with only
// the collector's public key: the records, the hashes of the tree around them, the
// collector's signed checkpoint, the declared gaps, and a signed seal over the whole
// file. Grammar: docs/formats/archive.md.
//
// Verification is streaming (one section in memory at a time), so an archive of any size
// is checked in bounded memory.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "archive/encryption.h"
#include "base/status.h"
#include "checkpoint/note.h"
#include "env/env.h"
#include "spool/spool_format.h"
#include "verify/verify.h"

namespace gapless::archive {

struct ExportOptions {
  std::string data_dir;
  std::vector<std::string> streams;   // "agent" or "agent/epoch"; empty: every stream
  uint64_t from_seq = 0;              // first seq exported, per stream
  uint64_t to_seq = UINT64_MAX;       // one past the last; clipped to the signed size
  std::string out;                    // written atomically; must not exist
  std::string signing_key;            // the collector's key; empty: data_dir/collector.key
  std::vector<X25519Key> recipients;  // non-empty: the archive is encrypted to them
};

struct ExportReport {
  uint64_t streams = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;    // of the archive
  std::string key_name;  // the collector key that signed the checkpoints and the seal
};

StatusOr<ExportReport> Export(const ExportOptions& options);

struct StreamInArchive {
  std::string agent;
  std::string epoch;
  uint64_t from_seq = 0;
  uint64_t to_seq = 0;
  verify::StreamReport report;  // records, root, missing, declared, problems, verdict
};

struct ArchiveReport {
  std::vector<StreamInArchive> streams;
  std::vector<std::string> problems;  // about the file as a whole (sections, seal)
  bool sealed = false;                // the seal's signature and hash verified
  verify::Verdict verdict = verify::Verdict::kClean;
  // A RecordVisitor stopped the reading: the report covers only the sections read before,
  // and its verdict says nothing about the rest of the file.
  bool stopped = false;
};

// Called with each intact record of the archive as verification reads it, in archive
// order (the streams as exported, each by seq); payload is valid during the call only.
// Returning false stops the reading (ArchiveReport::stopped). For `gapless query FILE`.
using RecordVisitor = std::function<bool(const StreamInArchive& stream, uint64_t seq,
                                         spool::FrameType type, std::string_view payload)>;

// kNotFound / kInvalidArgument only if the file cannot be opened or is not an archive at
// all; everything wrong inside it is a problem in the report. Without a key, signatures
// are not checked (and problems say so).
// An encrypted archive needs the identity of one of its recipients (else
// kFailedPrecondition saying so); it is decrypted as it is read.
// agent_keys: the enrolled agents' keys; an agent checkpoint's signature is checked when
// its agent's key is there (its root always is).
StatusOr<ArchiveReport> VerifyArchive(const std::string& path,
                                      const std::optional<checkpoint::Verifier>& key,
                                      const Identity* identity = nullptr,
                                      const identity::EnrolledKeys& agent_keys = {},
                                      const RecordVisitor& visit = {});
// The same over an open file of `size` bytes (for fuzzing and for archives not on disk).
StatusOr<ArchiveReport> VerifyArchive(const env::RandomAccessFile& file, uint64_t size,
                                      const std::optional<checkpoint::Verifier>& key,
                                      const identity::EnrolledKeys& agent_keys = {},
                                      const RecordVisitor& visit = {});

}  // namespace gapless::archive
