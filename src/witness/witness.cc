#include "witness/witness.h"

#include "base/log.h"
#include "checkpoint/checkpoint.h"
#include "merkle/proof.h"
#include "witness/protocol.h"

namespace gapless::witness {
namespace {

AddResult Refuse(int status, std::string why) {
  AddResult r;
  r.status = status;
  r.body = std::move(why) + "\n";
  return r;
}

std::string B64(const Hash256& h) {
  return identity::Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), 32));
}

// State file: "<origin>\n<size>\n<base64 root>\n".
StatusOr<std::pair<std::string, Witness::Latest>> ParseState(std::string_view text) {
  auto cp = checkpoint::ParseCheckpoint(text);  // the same three lines
  if (!cp.ok()) return DataLossError("malformed witness state: " + cp.status().message());
  return std::make_pair(cp->origin, Witness::Latest{cp->size, cp->root});
}

}  // namespace

StatusOr<std::unique_ptr<Witness>> Witness::Open(env::Env* env, const WitnessOptions& o,
                                                 std::shared_ptr<const identity::SigningKey> key) {
  if (!checkpoint::ValidKeyName(o.name)) {
    return InvalidArgumentError("witness name \"" + o.name + "\" is not a valid key name");
  }
  if (key == nullptr) return InvalidArgumentError("witness needs a signing key");
  std::unique_ptr<Witness> w(new Witness);
  w->env_ = env;
  w->options_ = o;
  w->key_ = std::move(key);
  w->cosigner_key_ = checkpoint::FormatCosignerKey(o.name, w->key_->public_key());
  if (!env->FileExists(o.data_dir)) RETURN_IF_ERROR(env->CreateDir(o.data_dir));
  ASSIGN_OR_RETURN(std::vector<std::string> files, env->GetChildren(o.data_dir));
  for (const std::string& f : files) {
    if (f.size() != 64 + 6 || f.rfind(".state") != 64) continue;
    const std::string path = env::JoinPath(o.data_dir, f);
    ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env, path));
    auto state = ParseState(text);
    // Forgetting a log's state would let it roll back unnoticed: refuse to start instead.
    if (!state.ok()) return DataLossError(path + ": " + state.status().message());
    w->latest_[state->first] = state->second;
  }
  return w;
}

std::string Witness::StatePath(std::string_view origin) const {
  return env::JoinPath(options_.data_dir, HexEncode(Sha256::Digest(origin)) + ".state");
}

AddResult Witness::AddCheckpoint(std::string_view body, uint64_t now) {
  auto req = ParseAddCheckpoint(body);
  if (!req.ok()) return Refuse(400, req.status().message());
  auto note = checkpoint::ParseNote(req->checkpoint);
  if (!note.ok()) return Refuse(400, "checkpoint: " + note.status().message());
  auto cp = checkpoint::ParseCheckpoint(note->text);
  if (!cp.ok()) return Refuse(400, "checkpoint: " + cp.status().message());
  bool known = false;
  bool verified = false;
  for (const TrustedLog& log : options_.logs) {
    const bool prefix = !log.origin.empty() && log.origin.back() == '/';
    if (!(prefix ? cp->origin.rfind(log.origin, 0) == 0 : cp->origin == log.origin)) continue;
    known = true;
    if (checkpoint::VerifyNote(*note, log.key).ok()) verified = true;
  }
  if (!known) return Refuse(404, "unknown log origin " + cp->origin);
  if (!verified) return Refuse(403, "no signature by a key trusted for " + cp->origin);
  if (req->old_size > cp->size) {
    return Refuse(400, "old size " + std::to_string(req->old_size) + " is larger than the size " +
                           std::to_string(cp->size));
  }

  std::lock_guard<std::mutex> lock(mu_);
  Latest latest;
  if (auto it = latest_.find(cp->origin); it != latest_.end()) latest = it->second;
  if (req->old_size != latest.size) {
    AddResult r = Refuse(409, std::to_string(latest.size));
    r.content_type = "text/x.tlog.size";
    return r;
  }
  if (req->old_size == cp->size) {
    if (cp->size > 0 && cp->root != latest.root) {
      LogWarning("witness: " + cp->origin + " signed two roots for size " +
                 std::to_string(cp->size) + ": " + B64(latest.root) + " and " + B64(cp->root) +
                 " (a fork)");
      return Refuse(409, "another root was cosigned for size " + std::to_string(cp->size));
    }
  } else if (req->old_size == 0 ? !req->proof.empty()
                                : !merkle::VerifyConsistency(req->old_size, cp->size, latest.root,
                                                             cp->root, req->proof)
                                       .ok()) {
    LogWarning("witness: " + cp->origin + " sent size " + std::to_string(cp->size) +
               " with a consistency proof from " + std::to_string(req->old_size) +
               " that does not verify (a fork, or a broken log)");
    return Refuse(422, "the consistency proof from size " + std::to_string(req->old_size) +
                           " does not verify");
  }
  checkpoint::Checkpoint state{cp->origin, cp->size, cp->root, {}};
  if (Status s = env::WriteFileAtomically(env_, StatePath(cp->origin),
                                          checkpoint::FormatCheckpoint(state));
      !s.ok()) {
    LogError("witness: cannot persist the state of " + cp->origin + ": " + s.ToString());
    return Refuse(500, "cannot persist the new checkpoint");
  }
  latest_[cp->origin] = Latest{cp->size, cp->root};
  auto line = checkpoint::CosignatureLine(note->text, options_.name, *key_, now);
  if (!line.ok()) return Refuse(500, line.status().message());
  AddResult r;
  r.body = *line;
  return r;
}

}  // namespace gapless::witness
