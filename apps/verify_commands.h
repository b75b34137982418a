// `gapless verify` (a collector's store or an archive) and `gapless export` (src/verify,
// src/archive).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/note.h"

namespace gapless::cli {

struct VerifyFlags {
  std::string archive;  // an archive file (gapless export), or:
  std::string data_dir;
  std::string agent;     // empty: every stream
  std::string epoch;     // empty: every epoch of the agent(s)
  std::string key;       // the collector's verifier key; empty: data_dir/collector.vkey
  std::string identity;  // for an encrypted archive: a recipient's identity file
  std::vector<std::string> witness_keys;  // --data-dir: cosigner keys to check
  std::string agent_keys;  // --data-dir: the enrolled keys file; agents' signatures checked
  bool json = false;
};

// Exit status: 0 every stream clean, 1 some incomplete (every missing seq declared),
// 2 some tampered, 3 nothing could be verified (no such store, unreadable, bad key).
int Verify(const VerifyFlags& flags);

// The verifier key: `given` (KeyArgument forms) or, when empty, data_dir/collector.vkey
// (with a warning that it sits beside what it vouches for); nullopt, with a warning that
// signatures are not checked, when neither is there. False on a key that does not parse.
bool ResolveKey(const std::string& given, const std::string& data_dir,
                std::optional<checkpoint::Verifier>* out);

struct ExportFlags {
  std::string data_dir;
  std::vector<std::string> streams;
  uint64_t from = 0;
  uint64_t to = UINT64_MAX;
  std::string out;
  std::string signing_key;
  std::vector<std::string> recipients;  // encrypt to these
};

// `gapless keygen --recipient --out F`: an X25519 identity; prints its recipient.
int KeygenRecipient(const std::string& out_path);
// Writes the archive, then verifies it as an auditor would. Exit 0 written and verified
// clean or incomplete (declared losses), 1 otherwise.
int Export(const ExportFlags& flags);

}  // namespace gapless::cli
