#include "checkpoint/checkpoint.h"

#include <cstring>

#include "identity/identity.h"

namespace gapless::checkpoint {

std::string AgentKeyName(std::string_view agent_id) {
  return "gapless/agent/" + std::string(agent_id);
}

Verifier AgentVerifier(std::string_view agent_id, const identity::PublicKey& key) {
  std::string name = AgentKeyName(agent_id);
  const uint32_t id = KeyId(name, key);
  return Verifier{std::move(name), id, key};
}

std::string AgentOrigin(std::string_view agent_id, std::string_view epoch_hex) {
  return "gapless/agent/" + std::string(agent_id) + "/" + std::string(epoch_hex);
}

std::string CollectorOrigin(std::string_view collector, std::string_view agent_id,
                            std::string_view epoch_hex) {
  return "gapless/collector/" + std::string(collector) + "/" + std::string(agent_id) + "/" +
         std::string(epoch_hex);
}

std::string FormatCheckpoint(const Checkpoint& c) {
  std::string out = c.origin + "\n" + std::to_string(c.size) + "\n" +
                    identity::Base64Encode(std::string_view(
                        reinterpret_cast<const char*>(c.root.data()), c.root.size())) +
                    "\n";
  for (const std::string& e : c.extensions) out += e + "\n";
  return out;
}

StatusOr<Checkpoint> ParseCheckpoint(std::string_view text) {
  if (text.empty() || text.back() != '\n') {
    return InvalidArgumentError("checkpoint must end in a newline");
  }
  std::vector<std::string_view> lines;
  for (size_t at = 0; at < text.size();) {
    const size_t eol = text.find('\n', at);
    lines.push_back(text.substr(at, eol - at));
    at = eol + 1;
  }
  if (lines.size() < 3) return InvalidArgumentError("checkpoint needs origin, size and root lines");
  Checkpoint c;
  c.origin = std::string(lines[0]);
  if (c.origin.empty()) return InvalidArgumentError("checkpoint line 1: empty origin");
  const std::string_view size = lines[1];
  if (size.empty() || size.size() > 20 ||
      size.find_first_not_of("0123456789") != std::string_view::npos ||
      (size.size() > 1 && size[0] == '0')) {
    return InvalidArgumentError("checkpoint line 2: the tree size must be a decimal number");
  }
  c.size = 0;
  for (char d : size) {
    const uint64_t digit = static_cast<uint64_t>(d - '0');
    if (c.size > (UINT64_MAX - digit) / 10) {
      return InvalidArgumentError("checkpoint line 2: the tree size is too large");
    }
    c.size = c.size * 10 + digit;
  }
  auto root = identity::Base64Decode(lines[2]);
  if (!root.ok() || root->size() != c.root.size()) {
    return InvalidArgumentError("checkpoint line 3: the root must be base64 of 32 bytes");
  }
  std::memcpy(c.root.data(), root->data(), c.root.size());
  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) {
      return InvalidArgumentError("checkpoint line " + std::to_string(i + 1) +
                                  ": empty extension line");
    }
    c.extensions.emplace_back(lines[i]);
  }
  return c;
}

}  // namespace gapless::checkpoint
