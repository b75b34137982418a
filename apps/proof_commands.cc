#include "proof_commands.h"

#include <cstdio>
#include <filesystem>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "env/env.h"
#include "merkle/proof.h"
#include "proof/proof_doc.h"
#include "spool/spool_format.h"
#include "store/hash_levels.h"
#include "store/stream_store.h"

namespace gapless::cli {
namespace {

namespace fs = std::filesystem;

// The epoch directory: the one named, or the only one there is.
StatusOr<std::string> EpochDir(const std::string& data_dir, const std::string& agent,
                               const std::string& epoch) {
  const fs::path agent_dir = fs::path(data_dir) / "streams" / agent;
  std::error_code ec;
  if (!fs::is_directory(agent_dir, ec)) {
    return NotFoundError("no stream of agent \"" + agent + "\" in " + data_dir);
  }
  if (!epoch.empty()) {
    if (!fs::is_directory(agent_dir / epoch, ec)) {
      return NotFoundError("agent " + agent + " has no epoch " + epoch);
    }
    return (agent_dir / epoch).string();
  }
  std::vector<std::string> epochs;
  for (const auto& e : fs::directory_iterator(agent_dir, ec)) epochs.push_back(e.path().filename());
  if (epochs.size() != 1) {
    std::string list;
    for (const auto& e : epochs) list += " " + e;
    return InvalidArgumentError("agent " + agent + " has " + std::to_string(epochs.size()) +
                                " epochs; name one with --epoch:" + list);
  }
  return (agent_dir / epochs[0]).string();
}

Status ProveTo(const std::string& data_dir, const std::string& agent, const std::string& epoch,
               uint64_t seq, std::string* json) {
  env::Env* env = env::Env::Posix();
  ASSIGN_OR_RETURN(std::string dir, EpochDir(data_dir, agent, epoch));
  std::string note_text;
  RETURN_IF_ERROR(store::ForEachCheckpoint(env, dir, [&](std::string_view n) { note_text = n; }));
  if (note_text.empty()) {
    return NotFoundError("the collector has not signed a checkpoint of this stream yet");
  }
  ASSIGN_OR_RETURN(checkpoint::Note note, checkpoint::ParseNote(note_text));
  ASSIGN_OR_RETURN(checkpoint::Checkpoint cp, checkpoint::ParseCheckpoint(note.text));
  if (seq >= cp.size) {
    return NotFoundError("seq " + std::to_string(seq) +
                         " is not covered by the latest signed "
                         "checkpoint (size " +
                         std::to_string(cp.size) + "); try again shortly");
  }
  ASSIGN_OR_RETURN(store::StoredRecord record, store::ReadStoredRecord(env, dir, seq));
  ASSIGN_OR_RETURN(auto source, store::StoredHashSource::Open(env, dir));
  // The store must agree with what its collector signed, or the proof would be worthless.
  ASSIGN_OR_RETURN(Hash256 root, merkle::RangeRoot(*source, 0, cp.size));
  if (root != cp.root) {
    return DataLossError(
        "the stored leaves do not match the collector's signed checkpoint of "
        "size " +
        std::to_string(cp.size) + ": the store was altered; run gapless verify");
  }
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
  if (auto v = env::ReadFileToString(env, data_dir + "/collector.vkey"); v.ok()) {
    doc.collector_key = *v;
    while (!doc.collector_key.empty() && doc.collector_key.back() == '\n') {
      doc.collector_key.pop_back();
    }
  }
  doc.agent = agent;
  doc.epoch = fs::path(dir).filename().string();
  doc.seq = seq;
  doc.leaf_input = std::string(1, static_cast<char>(record.type)) + record.payload;
  doc.tree_size = cp.size;
  doc.inclusion_path = std::move(path);
  doc.checkpoint = note_text;
  std::string j = proof::FormatProofDoc(doc);
  *json = std::move(j);
  return Status::Ok();
}

}  // namespace

int Prove(const std::string& data_dir, const std::string& agent, const std::string& epoch,
          uint64_t seq, const std::string& out_path) {
  std::string json;
  if (Status s = ProveTo(data_dir, agent, epoch, seq, &json); !s.ok()) {
    std::fprintf(stderr, "gapless prove: %s\n", s.message().c_str());
    return 1;
  }
  if (out_path.empty()) {
    std::fputs(json.c_str(), stdout);
    return 0;
  }
  if (Status s = env::WriteFileAtomically(env::Env::Posix(), out_path, json); !s.ok()) {
    std::fprintf(stderr, "gapless prove: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

int VerifyProof(const std::string& path, const std::string& verifier_key) {
  auto text = env::ReadFileToString(env::Env::Posix(), path);
  if (!text.ok()) {
    std::fprintf(stderr, "gapless verify-proof: %s\n", text.status().ToString().c_str());
    return 2;
  }
  auto fail = [](const std::string& why) {
    std::printf("INVALID: %s\n", why.c_str());
    return 1;
  };
  auto doc = proof::ParseProofDoc(*text);
  if (!doc.ok()) return fail("malformed proof: " + doc.status().message());
  std::string vkey = verifier_key;
  if (vkey.empty()) {
    vkey = doc->collector_key;
    std::fprintf(stderr,
                 "gapless verify-proof: no --key given: checking against the key carried in the "
                 "proof (%s); compare it with your collector's key, or pass --key\n",
                 vkey.c_str());
  }
  std::string signer;
  if (Status s = proof::VerifyProofDoc(*doc, vkey, &signer); !s.ok()) return fail(s.message());
  std::printf("OK: seq %llu of stream %s/%s is in the tree of size %llu signed by %s\n",
              static_cast<unsigned long long>(doc->seq), doc->agent.c_str(), doc->epoch.c_str(),
              static_cast<unsigned long long>(doc->tree_size), signer.c_str());
  return 0;
}

}  // namespace gapless::cli
