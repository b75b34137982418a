#include "proof_commands.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "env/env.h"
#include "key_args.h"
#include "merkle/proof.h"
#include "proof/proof_doc.h"
#include "spool/spool_format.h"
#include "store/hash_levels.h"
#include "store/layout.h"
#include "store/stream_store.h"

namespace gapless::cli {
namespace {

// The stream: the epoch named, or the only one there is.
StatusOr<store::StreamRef> FindStream(const std::string& data_dir, const std::string& agent,
                                      const std::string& epoch) {
  const store::Layout layout(data_dir);
  env::Env* env = env::Env::Posix();
  RETURN_IF_ERROR(layout.CheckFormat(env));
  ASSIGN_OR_RETURN(std::vector<std::string> epochs, layout.ListEpochs(env, agent));
  if (!epoch.empty()) {
    if (std::find(epochs.begin(), epochs.end(), epoch) == epochs.end()) {
      return NotFoundError("agent " + agent + " has no epoch " + epoch);
    }
    return store::StreamRef{agent, epoch, layout.StreamDir(agent, epoch)};
  }
  if (epochs.size() != 1) {
    std::string list;
    for (const auto& e : epochs) list += " " + e;
    return InvalidArgumentError("agent " + agent + " has " + std::to_string(epochs.size()) +
                                " epochs; name one with --epoch:" + list);
  }
  return store::StreamRef{agent, epochs[0], layout.StreamDir(agent, epochs[0])};
}

// The collector's verifier key as data_dir/collector.vkey holds it, or "" if it has none.
std::string CollectorKey(env::Env* env, const std::string& data_dir) {
  auto v = env::ReadFileToString(env, store::Layout(data_dir).CollectorVerifierKey());
  if (!v.ok()) return "";
  std::string key = *v;
  while (!key.empty() && key.back() == '\n') key.pop_back();
  return key;
}

struct SignedCheckpoint {
  std::string note;
  checkpoint::Checkpoint cp;
};

// The cosignature lines the witnesses returned, by the checkpoint text they cosign
// (dir/witnessed; a note may be there several times, with different witnesses' lines).
std::map<std::string, std::string> Cosignatures(env::Env* env, const std::string& dir) {
  std::map<std::string, std::string> lines;
  // A torn last frame (a crash while appending) is skipped: the others are good.
  (void)store::ForEachCheckpoint(
      env, dir,
      [&](std::string_view n) {
        auto note = checkpoint::ParseNote(n);
        if (!note.ok()) return;
        const size_t sigs = n.rfind("\n\n") + 2;
        std::string& have = lines[note->text];
        // Skip the collector's own line (the first); keep each cosignature once.
        std::string_view rest = n.substr(sigs);
        rest.remove_prefix(std::min(rest.size(), rest.find('\n') + 1));
        while (!rest.empty()) {
          const std::string_view line = rest.substr(0, rest.find('\n') + 1);
          rest.remove_prefix(line.size());
          if (have.find(line) == std::string::npos) have += line;
        }
      },
      store::StreamFiles::NoteLog::kWitnessed);
  return lines;
}

// The latest signed checkpoint of a store, or with old_size set, the first of that size;
// with witnessed, only among those a witness cosigned. Carries the cosignatures kept for
// it.
StatusOr<SignedCheckpoint> StoredCheckpoint(env::Env* env, const std::string& dir,
                                            std::optional<uint64_t> old_size,
                                            bool witnessed = false) {
  const std::map<std::string, std::string> cosigned = Cosignatures(env, dir);
  SignedCheckpoint found;
  Status bad = Status::Ok();
  RETURN_IF_ERROR(store::ForEachCheckpoint(env, dir, [&](std::string_view n) {
    if (!bad.ok() || (old_size && !found.note.empty())) return;
    auto note = checkpoint::ParseNote(n);
    auto cp = note.ok() ? checkpoint::ParseCheckpoint(note->text) : note.status();
    if (!cp.ok()) {
      bad = DataLossError("the store's checkpoint log holds a malformed note: " +
                          cp.status().message() + "; run gapless verify");
      return;
    }
    auto it = cosigned.find(note->text);
    if (witnessed && it == cosigned.end()) return;
    if (!old_size || cp->size == *old_size) {
      found = {std::string(n) + (it == cosigned.end() ? "" : it->second), *cp};
    }
  }));
  RETURN_IF_ERROR(bad);
  if (found.note.empty()) {
    const std::string which = witnessed ? " witnessed" : "";
    if (old_size) {
      return NotFoundError("the collector signed no" + which + " checkpoint of size " +
                           std::to_string(*old_size) + " of this stream");
    }
    return NotFoundError("the collector has no" + which + " checkpoint of this stream yet");
  }
  return found;
}

// The store's hashes, checked against what its collector signed at `size`: a store
// altered after it was signed must not yield proofs.
StatusOr<std::unique_ptr<store::StoredHashSource>> CheckedSource(env::Env* env,
                                                                 const std::string& dir,
                                                                 const checkpoint::Checkpoint& cp) {
  ASSIGN_OR_RETURN(auto source, store::StoredHashSource::Open(env, dir));
  ASSIGN_OR_RETURN(Hash256 root, merkle::RangeRoot(*source, 0, cp.size));
  if (root != cp.root) {
    return DataLossError(
        "the stored leaves do not match the collector's signed checkpoint of "
        "size " +
        std::to_string(cp.size) + ": the store was altered; run gapless verify");
  }
  return source;
}

Status ProveConsistencyTo(const std::string& data_dir, const std::string& agent,
                          const std::string& epoch, uint64_t old_size, bool witnessed,
                          std::string* json) {
  env::Env* env = env::Env::Posix();
  ASSIGN_OR_RETURN(const store::StreamRef stream, FindStream(data_dir, agent, epoch));
  const std::string& dir = stream.dir;
  ASSIGN_OR_RETURN(SignedCheckpoint old_cp, StoredCheckpoint(env, dir, old_size));
  ASSIGN_OR_RETURN(SignedCheckpoint new_cp, StoredCheckpoint(env, dir, std::nullopt, witnessed));
  ASSIGN_OR_RETURN(auto source, CheckedSource(env, dir, new_cp.cp));
  proof::ConsistencyDoc doc;
  ASSIGN_OR_RETURN(doc.consistency_path,
                   merkle::ConsistencyProof(*source, old_cp.cp.size, new_cp.cp.size));
  // Checked as the auditor will check it. Fails if the old signed head is not a prefix of
  // the new one: the log was rewritten between the two signatures.
  if (Status s = merkle::VerifyConsistency(old_cp.cp.size, new_cp.cp.size, old_cp.cp.root,
                                           new_cp.cp.root, doc.consistency_path);
      !s.ok()) {
    return DataLossError("the collector's checkpoints of size " + std::to_string(old_size) +
                         " and " + std::to_string(new_cp.cp.size) +
                         " are not consistent: the store was rewritten; run gapless verify");
  }
  doc.agent = agent;
  doc.epoch = stream.epoch;
  doc.old_checkpoint = std::move(old_cp.note);
  doc.new_checkpoint = std::move(new_cp.note);
  doc.collector_key = CollectorKey(env, data_dir);
  *json = proof::FormatConsistencyDoc(doc);
  return Status::Ok();
}

Status ProveTo(const std::string& data_dir, const std::string& agent, const std::string& epoch,
               uint64_t seq, bool witnessed, std::string* json) {
  env::Env* env = env::Env::Posix();
  ASSIGN_OR_RETURN(const store::StreamRef stream, FindStream(data_dir, agent, epoch));
  const std::string& dir = stream.dir;
  ASSIGN_OR_RETURN(SignedCheckpoint latest, StoredCheckpoint(env, dir, std::nullopt, witnessed));
  const checkpoint::Checkpoint& cp = latest.cp;
  if (seq >= cp.size) {
    return NotFoundError("seq " + std::to_string(seq) +
                         " is not covered by the latest signed "
                         "checkpoint (size " +
                         std::to_string(cp.size) + "); try again shortly");
  }
  ASSIGN_OR_RETURN(store::StoredRecord record, store::ReadStoredRecord(env, dir, seq));
  ASSIGN_OR_RETURN(auto source, CheckedSource(env, dir, cp));
  ASSIGN_OR_RETURN(std::vector<Hash256> path, merkle::InclusionProof(*source, seq, cp.size));
  // Checked here as the auditor will check it: the record's own leaf, up the path, to the
  // signed root. A record, leaf or level file altered since the signature fails this.
  if (Status s = merkle::VerifyInclusion(spool::RecordLeafHash(record.type, record.payload), seq,
                                         cp.size, path, cp.root);
      !s.ok()) {
    return DataLossError(
        "record " + std::to_string(seq) +
        " and the stored hashes do not lead "
        "to the collector's signed root: the store was altered; run gapless verify");
  }
  proof::ProofDoc doc;
  doc.collector_key = CollectorKey(env, data_dir);
  doc.agent = agent;
  doc.epoch = stream.epoch;
  doc.seq = seq;
  doc.leaf_input = std::string(1, static_cast<char>(record.type)) + record.payload;
  doc.tree_size = cp.size;
  doc.inclusion_path = std::move(path);
  doc.checkpoint = std::move(latest.note);
  *json = proof::FormatProofDoc(doc);
  return Status::Ok();
}

}  // namespace

Status ProveRecord(const std::string& data_dir, const std::string& agent, const std::string& epoch,
                   uint64_t seq, std::string* json) {
  return ProveTo(data_dir, agent, epoch, seq, /*witnessed=*/false, json);
}

int Prove(const ProveFlags& f) {
  const std::string &data_dir = f.data_dir, &agent = f.agent, &epoch = f.epoch, &out_path = f.out;
  const std::optional<uint64_t>&seq = f.seq, &old_size = f.old_size;
  if (seq.has_value() == old_size.has_value()) {
    std::fprintf(stderr,
                 "gapless prove: give one of --seq (inclusion) or --old-size (consistency)\n");
    return 2;
  }
  std::string json;
  const Status s = seq ? ProveTo(data_dir, agent, epoch, *seq, f.witnessed, &json)
                       : ProveConsistencyTo(data_dir, agent, epoch, *old_size, f.witnessed, &json);
  if (!s.ok()) {
    std::fprintf(stderr, "gapless prove: %s\n", s.message().c_str());
    return 1;
  }
  if (out_path.empty()) {
    std::fputs(json.c_str(), stdout);
    return 0;
  }
  if (Status w = env::WriteFileAtomically(env::Env::Posix(), out_path, json); !w.ok()) {
    std::fprintf(stderr, "gapless prove: %s\n", w.ToString().c_str());
    return 1;
  }
  return 0;
}

// Each witness key must have a valid cosignature on the note; appends "; cosigned by ..."
// to *said. Returns the first failure's reason, or "".
std::string CheckCosigned(const std::string& note_text, const std::vector<std::string>& keys,
                          std::string* said) {
  auto note = checkpoint::ParseNote(note_text);
  if (!note.ok()) return "checkpoint: " + note.status().message();
  for (const std::string& k : keys) {
    auto text = KeyArgument(k);
    auto v = text.ok() ? checkpoint::ParseCosignerKey(*text) : text.status();
    if (!v.ok()) return "witness key " + k + ": " + v.status().message();
    auto ts = checkpoint::VerifyCosignature(*note, *v);
    if (!ts.ok()) return ts.status().message();
    *said += "; cosigned by " + v->name + " at " + std::to_string(*ts);
  }
  return "";
}

int VerifyProof(const std::string& path, const std::string& key_argument,
                const std::vector<std::string>& witness_keys) {
  auto text = env::ReadFileToString(env::Env::Posix(), path);
  if (!text.ok()) {
    std::fprintf(stderr, "gapless verify-proof: %s\n", text.status().ToString().c_str());
    return 2;
  }
  std::string verifier_key;
  if (!key_argument.empty()) {
    auto k = KeyArgument(key_argument);
    if (!k.ok()) {
      std::fprintf(stderr, "gapless verify-proof: --key: %s\n", k.status().message().c_str());
      return 2;
    }
    verifier_key = *k;
  }
  auto fail = [](const std::string& why) {
    std::printf("INVALID: %s\n", why.c_str());
    return 1;
  };
  auto key_or_carried = [&](const std::string& carried) {
    if (!verifier_key.empty()) return verifier_key;
    std::fprintf(stderr,
                 "gapless verify-proof: no --key given: checking against the key carried in the "
                 "proof (%s); compare it with your collector's key, or pass --key\n",
                 carried.c_str());
    return carried;
  };
  auto format = proof::ProofFormat(*text);
  if (!format.ok()) return fail("malformed proof: " + format.status().message());
  std::string signer;
  if (*format == proof::kConsistencyFormat) {
    auto doc = proof::ParseConsistencyDoc(*text);
    if (!doc.ok()) return fail("malformed proof: " + doc.status().message());
    const std::string vkey = key_or_carried(doc->collector_key);
    if (Status s = proof::VerifyConsistencyDoc(*doc, vkey, &signer); !s.ok()) {
      return fail(s.message());
    }
    std::string cosigned;
    if (std::string why = CheckCosigned(doc->new_checkpoint, witness_keys, &cosigned);
        !why.empty()) {
      return fail(why);
    }
    auto size_of = [](const std::string& note) {
      auto n = checkpoint::ParseNote(note);
      auto cp = n.ok() ? checkpoint::ParseCheckpoint(n->text) : n.status();
      return cp.ok() ? cp->size : 0;
    };
    std::printf(
        "OK: the tree of size %llu of stream %s/%s extends the tree of size %llu unchanged; "
        "both signed by %s%s\n",
        static_cast<unsigned long long>(size_of(doc->new_checkpoint)), doc->agent.c_str(),
        doc->epoch.c_str(), static_cast<unsigned long long>(size_of(doc->old_checkpoint)),
        signer.c_str(), cosigned.c_str());
    return 0;
  }
  auto doc = proof::ParseProofDoc(*text);
  if (!doc.ok()) return fail("malformed proof: " + doc.status().message());
  const std::string vkey = key_or_carried(doc->collector_key);
  if (Status s = proof::VerifyProofDoc(*doc, vkey, &signer); !s.ok()) return fail(s.message());
  std::string cosigned;
  if (std::string why = CheckCosigned(doc->checkpoint, witness_keys, &cosigned); !why.empty()) {
    return fail(why);
  }
  std::printf("OK: seq %llu of stream %s/%s is in the tree of size %llu signed by %s%s\n",
              static_cast<unsigned long long>(doc->seq), doc->agent.c_str(), doc->epoch.c_str(),
              static_cast<unsigned long long>(doc->tree_size), signer.c_str(), cosigned.c_str());
  return 0;
}

}  // namespace gapless::cli
