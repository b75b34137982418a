#include <openssl/crypto.h>

#include <sstream>

#include "base/log.h"
#include "collector/collector_impl.h"

// Who may connect: the enrolled keys file, re-read when an unknown agent knocks, and
// one-time enrollment tokens that add an agent's key once.
namespace gapless::collector {
namespace {

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Status Collector::Impl::ReloadEnrolled() {
  if (!env->FileExists(options.enrolled_keys)) {
    enrolled.clear();
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env, options.enrolled_keys));
  std::vector<int> bad_lines;
  enrolled = identity::ParseEnrolledKeys(text, &bad_lines);
  for (int n : bad_lines) {
    LogError(options.enrolled_keys + ":" + std::to_string(n) +
             ": expected \"agent_id base64-public-key\" (as printed by gapless keygen); line "
             "ignored");
  }
  return Status::Ok();
}

std::pair<wire::ErrorCode, std::string> Collector::Impl::Authenticate(
    const wire::Hello& h, const std::array<uint8_t, 32>& nonce) {
  if (!identity::ValidAgentId(h.agent_id)) {
    return {wire::ErrorCode::kMalformed,
            "agent id must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'"};
  }
  if (!identity::Verify(h.public_key, wire::SignedHelloBytes(nonce, h), h.signature)) {
    return {wire::ErrorCode::kBadSignature,
            "the hello signature does not verify for this connection's challenge (a replayed or "
            "forged hello)"};
  }
  auto it = enrolled.find(h.agent_id);
  if (it == enrolled.end()) {
    if (Status s = ReloadEnrolled(); !s.ok()) LogError("collector: " + s.ToString());
    it = enrolled.find(h.agent_id);
  }
  if (it == enrolled.end()) {
    if (!h.enroll_token.empty() && Enroll(h)) return {wire::ErrorCode::kMalformed, ""};
    return {wire::ErrorCode::kUnknownAgent,
            "agent " + h.agent_id + " is not enrolled: add \"" + h.agent_id + " " +
                identity::FormatPublicKey(h.public_key) + "\" to " + options.enrolled_keys +
                " or give the agent a one-time enrollment token"};
  }
  if (it->second != h.public_key) {
    return {wire::ErrorCode::kWrongKey, "agent " + h.agent_id +
                                            " is enrolled with another key; this one is " +
                                            identity::FormatPublicKey(h.public_key)};
  }
  return {wire::ErrorCode::kMalformed, ""};
}

bool Collector::Impl::Enroll(const wire::Hello& h) {
  if (options.enroll_tokens.empty() || !env->FileExists(options.enroll_tokens)) return false;
  if (Status s = identity::CheckOwnerOnly(options.enroll_tokens); !s.ok()) {
    LogError("collector: enrollment tokens not used: " + s.message());
    return false;
  }
  auto text = env::ReadFileToString(env, options.enroll_tokens);
  if (!text.ok()) return false;
  std::istringstream in(*text);
  std::string line, rest;
  bool found = false;
  while (std::getline(in, line)) {
    if (!found && !line.empty() && ConstantTimeEqual(line, h.enroll_token)) {
      found = true;  // used up: not written back
      continue;
    }
    rest += line + "\n";
  }
  if (!found) return false;
  Status s = env::WriteFileAtomically(env, options.enroll_tokens, rest);
  if (s.ok()) {
    auto f = env->NewAppendableFile(options.enrolled_keys);
    s = f.status();
    if (s.ok()) s = (*f)->Append(h.agent_id + " " + identity::FormatPublicKey(h.public_key) + "\n");
    if (s.ok()) s = (*f)->Sync();
  }
  if (!s.ok()) {
    LogError("collector: enrolling agent " + h.agent_id + " failed: " + s.ToString());
    return false;
  }
  enrolled[h.agent_id] = h.public_key;
  counters.enrolled++;
  LogInfo("collector: enrolled agent " + h.agent_id + " with a one-time token (key " +
          identity::FormatPublicKey(h.public_key) + ")");
  return true;
}

}  // namespace gapless::collector
