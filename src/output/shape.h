// The shapes a stored record takes on its way out (docs/outputs.md has the field tables).
// Every shape carries the record's provenance where it can: gapless.id (the idempotency
// key), gapless.agent, gapless.epoch, gapless.seq and gapless.leaf (the RFC 9162 leaf hash,
// hex), so an event found downstream can be proven with `gapless prove`. Nothing is lost on
// the way: a payload that is not an event is still delivered (kind "undecodable", its
// bytes in base64), and bytes that are not UTF-8 ride along in base64 next to the text.
//
// Thread contract: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/sha256.h"
#include "output/output.h"
#include "spool/spool_format.h"

namespace gapless::output {

struct Provenance {
  std::string_view agent;
  std::string_view epoch;
  uint64_t seq = 0;
  Hash256 leaf{};
};

// "<agent>/<epoch>/<seq>": unique per stored record, the same on every resend.
std::string IdempotencyKey(const Provenance& p);

struct Formatted {
  std::string body;
  int64_t observed_unix_ns = 0;  // when the agent read it (0: not known)
};

Formatted FormatRecord(Shape shape, const Provenance& p, spool::FrameType type,
                       std::string_view payload);

// True if s is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
bool IsUtf8(std::string_view s);

}  // namespace gapless::output
