// C2SP tlog-checkpoint: the body of a signed note that commits to a Merkle tree.
//
//   <origin>\n
//   <tree size, decimal>\n
//   <base64 RFC 9162 root hash>\n
//   [<extension line>\n ...]
//
// gapless origins name the signer and the stream (docs/formats/checkpoint.md):
// an agent signs "gapless/agent/<agent id>/<epoch hex>" for its spool, and a collector
// "gapless/collector/<collector name>/<agent id>/<epoch hex>" for what it stored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"
#include "checkpoint/note.h"

namespace gapless::checkpoint {

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash256 root{};
  std::vector<std::string> extensions;  // each non-empty, without '\n'

  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

std::string AgentOrigin(std::string_view agent_id, std::string_view epoch_hex);
// The signed-note key name of an agent's checkpoints: "gapless/agent/<agent id>".
std::string AgentKeyName(std::string_view agent_id);
// The verifier of an agent's checkpoints: its enrolled key under AgentKeyName(agent_id).
Verifier AgentVerifier(std::string_view agent_id, const identity::PublicKey& key);
std::string CollectorOrigin(std::string_view collector, std::string_view agent_id,
                            std::string_view epoch_hex);

std::string FormatCheckpoint(const Checkpoint& c);
// kInvalidArgument naming the line that is wrong.
StatusOr<Checkpoint> ParseCheckpoint(std::string_view text);

}  // namespace gapless::checkpoint
