#include "proof/prover.h"

#include <algorithm>
#include <vector>

#include "checkpoint/note.h"
#include "merkle/proof.h"
#include "proof/proof_doc.h"
#include "spool/spool_format.h"
#include "store/stream_store.h"

namespace gapless::proof {
namespace {

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

}  // namespace

Prover::Prover(env::Env* env, std::string data_dir) : env_(env), layout_(std::move(data_dir)) {}
Prover::~Prover() = default;

StatusOr<store::StreamRef> Prover::Find(const std::string& agent, const std::string& epoch) const {
  RETURN_IF_ERROR(layout_.CheckFormat(env_));
  ASSIGN_OR_RETURN(std::vector<std::string> epochs, layout_.ListEpochs(env_, agent));
  if (!epoch.empty()) {
    if (std::find(epochs.begin(), epochs.end(), epoch) == epochs.end()) {
      return NotFoundError("agent " + agent + " has no epoch " + epoch);
    }
    return store::StreamRef{agent, epoch, layout_.StreamDir(agent, epoch)};
  }
  if (epochs.size() != 1) {
    std::string list;
    for (const auto& e : epochs) list += " " + e;
    return InvalidArgumentError("agent " + agent + " has " + std::to_string(epochs.size()) +
                                " epochs; name one with --epoch:" + list);
  }
  return store::StreamRef{agent, epochs[0], layout_.StreamDir(agent, epochs[0])};
}

std::string Prover::CollectorKey() const {
  auto v = env::ReadFileToString(env_, layout_.CollectorVerifierKey());
  if (!v.ok()) return "";
  std::string key = *v;
  while (!key.empty() && key.back() == '\n') key.pop_back();
  return key;
}

// The latest signed checkpoint of a store, or with old_size set, the first of that size;
// with witnessed, only among those a witness cosigned. Carries the cosignatures kept for it.
StatusOr<Prover::Signed> Prover::Checkpoint(const std::string& dir,
                                            std::optional<uint64_t> old_size,
                                            bool witnessed) const {
  const std::map<std::string, std::string> cosigned = Cosignatures(env_, dir);
  Signed found;
  Status bad = Status::Ok();
  RETURN_IF_ERROR(store::ForEachCheckpoint(env_, dir, [&](std::string_view n) {
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

// The store's hashes, checked against what its collector signed at `cp.size`: a store
// altered after it was signed must not yield proofs.
StatusOr<std::unique_ptr<store::StoredHashSource>> Prover::CheckedSource(
    const std::string& dir, const checkpoint::Checkpoint& cp) const {
  ASSIGN_OR_RETURN(auto source, store::StoredHashSource::Open(env_, dir));
  ASSIGN_OR_RETURN(Hash256 root, merkle::RangeRoot(*source, 0, cp.size));
  if (root != cp.root) {
    return DataLossError(
        "the stored leaves do not match the collector's signed checkpoint of size " +
        std::to_string(cp.size) + ": the store was altered; run gapless verify");
  }
  return source;
}

StatusOr<Prover::Stream*> Prover::Latest(const std::string& agent, const std::string& epoch,
                                         bool witnessed, bool refresh) {
  const std::string key = agent + "/" + epoch;
  auto it = streams_.find(key);
  if (it == streams_.end()) {
    ASSIGN_OR_RETURN(store::StreamRef ref, Find(agent, epoch));
    it = streams_.emplace(key, Stream{}).first;
    it->second.ref = std::move(ref);
  }
  Stream& s = it->second;
  if (s.latest && s.witnessed == witnessed && !refresh) return &s;
  s.latest.reset();
  s.source.reset();
  ASSIGN_OR_RETURN(Signed latest, Checkpoint(s.ref.dir, std::nullopt, witnessed));
  ASSIGN_OR_RETURN(s.source, CheckedSource(s.ref.dir, latest.cp));
  s.latest = std::move(latest);
  s.witnessed = witnessed;
  return &s;
}

StatusOr<std::string> Prover::Inclusion(const std::string& agent, const std::string& epoch,
                                        uint64_t seq, bool witnessed) {
  ASSIGN_OR_RETURN(Stream * s, Latest(agent, epoch, witnessed, false));
  if (seq >= s->latest->cp.size) {  // signed since it was read?
    ASSIGN_OR_RETURN(s, Latest(agent, epoch, witnessed, true));
  }
  const checkpoint::Checkpoint& cp = s->latest->cp;
  if (seq >= cp.size) {
    return NotFoundError("seq " + std::to_string(seq) +
                         " is not covered by the latest signed checkpoint (size " +
                         std::to_string(cp.size) + "); try again shortly");
  }
  ASSIGN_OR_RETURN(store::StoredRecord record, store::ReadStoredRecord(env_, s->ref.dir, seq));
  ASSIGN_OR_RETURN(std::vector<Hash256> path, merkle::InclusionProof(*s->source, seq, cp.size));
  // Checked here as the auditor will check it: the record's own leaf, up the path, to the
  // signed root. A record, leaf or level file altered since the signature fails this.
  if (Status v = merkle::VerifyInclusion(spool::RecordLeafHash(record.type, record.payload), seq,
                                         cp.size, path, cp.root);
      !v.ok()) {
    return DataLossError("record " + std::to_string(seq) +
                         " and the stored hashes do not lead to the collector's signed root: "
                         "the store was altered; run gapless verify");
  }
  ProofDoc doc;
  doc.collector_key = CollectorKey();
  doc.agent = agent;
  doc.epoch = s->ref.epoch;
  doc.seq = seq;
  doc.leaf_input = std::string(1, static_cast<char>(record.type)) + record.payload;
  doc.tree_size = cp.size;
  doc.inclusion_path = std::move(path);
  doc.checkpoint = s->latest->note;
  return FormatProofDoc(doc);
}

StatusOr<std::string> Prover::Consistency(const std::string& agent, const std::string& epoch,
                                          uint64_t old_size, bool witnessed) {
  ASSIGN_OR_RETURN(Stream * s, Latest(agent, epoch, witnessed, true));
  ASSIGN_OR_RETURN(Signed old_cp, Checkpoint(s->ref.dir, old_size, false));
  const Signed& new_cp = *s->latest;
  ConsistencyDoc doc;
  ASSIGN_OR_RETURN(doc.consistency_path,
                   merkle::ConsistencyProof(*s->source, old_cp.cp.size, new_cp.cp.size));
  // Checked as the auditor will check it. Fails if the old signed head is not a prefix of
  // the new one: the log was rewritten between the two signatures.
  if (Status v = merkle::VerifyConsistency(old_cp.cp.size, new_cp.cp.size, old_cp.cp.root,
                                           new_cp.cp.root, doc.consistency_path);
      !v.ok()) {
    return DataLossError("the collector's checkpoints of size " + std::to_string(old_size) +
                         " and " + std::to_string(new_cp.cp.size) +
                         " are not consistent: the store was rewritten; run gapless verify");
  }
  doc.agent = agent;
  doc.epoch = s->ref.epoch;
  doc.old_checkpoint = std::move(old_cp.note);
  doc.new_checkpoint = new_cp.note;
  doc.collector_key = CollectorKey();
  return FormatConsistencyDoc(doc);
}

}  // namespace gapless::proof
