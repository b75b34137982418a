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
#include "proof/prover.h"
#include "spool/spool_format.h"
#include "store/hash_levels.h"
#include "store/layout.h"
#include "store/stream_store.h"

namespace gapless::cli {
int Prove(const ProveFlags& f) {
  const std::string &data_dir = f.data_dir, &agent = f.agent, &epoch = f.epoch, &out_path = f.out;
  const std::optional<uint64_t>&seq = f.seq, &old_size = f.old_size;
  if (seq.has_value() == old_size.has_value()) {
    std::fprintf(stderr,
                 "gapless prove: give one of --seq (inclusion) or --old-size (consistency)\n");
    return 2;
  }
  proof::Prover prover(env::Env::Posix(), data_dir);
  auto doc = seq ? prover.Inclusion(agent, epoch, *seq, f.witnessed)
                 : prover.Consistency(agent, epoch, *old_size, f.witnessed);
  if (!doc.ok()) {
    std::fprintf(stderr, "gapless prove: %s\n", doc.status().message().c_str());
    return 1;
  }
  const std::string& json = *doc;
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
