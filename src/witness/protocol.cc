#include "witness/protocol.h"

#include <algorithm>

#include "identity/identity.h"

namespace gapless::witness {

std::string FormatAddCheckpoint(const AddCheckpointRequest& r) {
  std::string out = "old " + std::to_string(r.old_size) + "\n";
  for (const Hash256& h : r.proof) {
    out += identity::Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), 32));
    out += "\n";
  }
  return out + "\n" + r.checkpoint;
}

StatusOr<AddCheckpointRequest> ParseAddCheckpoint(std::string_view body) {
  if (body.size() > kMaxRequestBytes) return InvalidArgumentError("request larger than 64 KiB");
  AddCheckpointRequest r;
  size_t eol = body.find('\n');
  if (eol == std::string_view::npos || body.substr(0, 4) != "old ") {
    return InvalidArgumentError("the first line must be \"old <size>\"");
  }
  const std::string_view digits = body.substr(4, eol - 4);
  if (digits.empty() || digits.size() > 20 ||
      digits.find_first_not_of("0123456789") != std::string_view::npos ||
      (digits.size() > 1 && digits[0] == '0')) {
    return InvalidArgumentError("the old size must be a decimal without leading zeroes");
  }
  uint64_t v = 0;
  for (char c : digits) {
    const auto d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return InvalidArgumentError("the old size is too large");
    v = v * 10 + d;
  }
  r.old_size = v;
  body.remove_prefix(eol + 1);
  while (true) {
    eol = body.find('\n');
    if (eol == std::string_view::npos) {
      return InvalidArgumentError("no empty line between the proof and the checkpoint");
    }
    if (eol == 0) break;
    if (r.proof.size() == kMaxProofLines) {
      return InvalidArgumentError("more than 63 consistency proof lines");
    }
    auto raw = identity::Base64Decode(body.substr(0, eol));
    if (!raw.ok() || raw->size() != 32) {
      return InvalidArgumentError("a consistency proof line is not base64 of 32 bytes");
    }
    Hash256 h;
    std::copy(raw->begin(), raw->end(), h.begin());
    r.proof.push_back(h);
    body.remove_prefix(eol + 1);
  }
  body.remove_prefix(1);
  if (body.empty()) return InvalidArgumentError("no checkpoint after the proof");
  r.checkpoint = std::string(body);
  return r;
}

}  // namespace gapless::witness
