#include <openssl/crypto.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

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

// Whether cert carries `name` (a DNS name or an IP address) as the agent's TLS check would
// have accepted it.
bool CertificateNames(X509* cert, const std::string& name) {
  if (cert == nullptr || name.empty()) return false;
  boost::system::error_code ec;
  boost::asio::ip::make_address(name, ec);
  if (!ec) return X509_check_ip_asc(cert, name.c_str(), 0) == 1;
  return X509_check_host(cert, name.data(), name.size(), 0, nullptr) == 1;
}

// What identifies a version of a file without reading it.
std::string FileState(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "absent";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

bool Collector::Impl::EnrolledKeysChanged() {
  const std::string state = FileState(options.enrolled_keys);
  const int64_t now = env->clock()->MonotonicNanos();
  return state != enrolled_file_state || now - enrolled_read_ns >= 5'000'000'000;
}

Status Collector::Impl::ReloadEnrolled() {
  enrolled_file_state = FileState(options.enrolled_keys);
  enrolled_read_ns = env->clock()->MonotonicNanos();
  counters.enrolled_keys_reads++;
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
    const wire::Hello& h, const std::array<uint8_t, 32>& nonce, const wire::TlsBinding& binding,
    X509* own_cert, std::string* log_note) {
  if (!identity::ValidAgentId(h.agent_id)) {
    return {wire::ErrorCode::kMalformed,
            "agent id must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'"};
  }
  if (!identity::Verify(h.public_key, wire::SignedHelloBytes(nonce, binding, h), h.signature)) {
    return {wire::ErrorCode::kBadSignature,
            "the hello signature does not verify for this connection's challenge and TLS "
            "session (a replayed, relayed or forged hello)"};
  }
  if (!CertificateNames(own_cert, h.server_name)) {
    return {wire::ErrorCode::kBadSignature,
            "the hello is signed for server \"" + h.server_name +
                "\", a name this collector's certificate does not carry (a relayed hello, or "
                "the agent's server_name names another collector)"};
  }
  auto it = enrolled.find(h.agent_id);
  if (it == enrolled.end() && EnrolledKeysChanged()) {
    if (Status s = ReloadEnrolled(); !s.ok()) LogError("collector: " + s.ToString());
    it = enrolled.find(h.agent_id);
  }
  if (it == enrolled.end()) {
    if (!h.enroll_token.empty() && Enroll(h)) return {wire::ErrorCode::kMalformed, ""};
    // The operator learns where the key goes from the log; the unauthenticated peer is not
    // told the server's paths.
    const std::string line = h.agent_id + " " + identity::FormatPublicKey(h.public_key);
    *log_note = " (to admit it, add that line to " + options.enrolled_keys + ")";
    return {wire::ErrorCode::kUnknownAgent,
            "agent " + h.agent_id + " is not enrolled: ask the collector's operator to add \"" +
                line + "\" to its enrolled keys, or give the agent a one-time enrollment token"};
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
  auto text = identity::ReadSecretFile(options.enroll_tokens);
  if (!text.ok()) {
    LogError("collector: enrollment tokens not used: " + text.status().message());
    return false;
  }
  std::istringstream in(*text);
  std::string line, rest;
  bool found = false;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.size() < identity::kMinEnrollTokenBytes) {
      LogError("collector: " + options.enroll_tokens + ":" + std::to_string(n) +
               ": a token shorter than " + std::to_string(identity::kMinEnrollTokenBytes) +
               " bytes is never accepted (make one with: openssl rand -hex 16)");
    } else if (!found && !line.empty() && ConstantTimeEqual(line, h.enroll_token)) {
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
