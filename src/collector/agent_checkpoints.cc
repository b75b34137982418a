#include "base/log.h"
#include "collector/collector_impl.h"

// The agents' own signed trees (from heartbeats and batches): checked on the network
// thread, compared with the store on the committer thread once it holds that many
// records, and kept in the stream's agent-checkpoints log when they match.
namespace gapless::collector {

void Collector::Impl::CheckpointInvalid(const Stream* s, const std::string& why, uint64_t size) {
  counters.agent_checkpoints_invalid++;
  if (options.monitors != nullptr) {
    options.monitors->OnAgentCheckpoint(s->agent_id, s->epoch_hex, size, false, why);
  }
  LogError("collector: agent checkpoint of " + s->agent_id + "/" + s->epoch_hex + ": " + why);
  if (options.alerts != nullptr) {
    options.alerts->Fire("checkpoint_invalid", s->agent_id + "/" + s->epoch_hex, "critical", why);
  }
}

void Collector::Impl::OnAgentCheckpoint(Stream* s, const identity::PublicKey& key,
                                        const std::string& note_text) {
  if (note_text == s->agent_checkpoint_seen) return;  // heartbeats repeat the latest one
  s->agent_checkpoint_seen = note_text;
  auto note = checkpoint::ParseNote(note_text);
  auto cp = note.ok() ? checkpoint::ParseCheckpoint(note->text) : note.status();
  if (!cp.ok()) return CheckpointInvalid(s, "malformed: " + cp.status().message());
  if (Status st = checkpoint::VerifyNote(*note, checkpoint::AgentVerifier(s->agent_id, key));
      !st.ok()) {
    return CheckpointInvalid(s, "signature: " + st.message());
  }
  if (cp->origin != checkpoint::AgentOrigin(s->agent_id, s->epoch_hex)) {
    return CheckpointInvalid(s, "signed for " + cp->origin + ", not for this stream");
  }
  {
    MutexLock lock(&dirty_mu);
    s->agent_checkpoint = *cp;
    s->agent_checkpoint_note = note_text;
    agent_checkpoints.insert(s);
  }
  dirty_cv.Signal();
}

void Collector::Impl::CompareAgentCheckpoints(std::set<Stream*>* waiting) {
  for (auto it = waiting->begin(); it != waiting->end();) {
    Stream* s = *it;
    std::optional<checkpoint::Checkpoint> cp;
    std::string note;
    {
      MutexLock lock(&dirty_mu);
      cp = s->agent_checkpoint;
      note = s->agent_checkpoint_note;
    }
    // Not all stored yet, or the store is being healed: later.
    if (!cp || s->store->failed() || cp->size > s->store->committed_size()) {
      ++it;
      continue;
    }
    it = waiting->erase(it);
    // A declared gap is zero leaves in the collector's tree: the roots cannot be equal.
    if (s->store->declared_gap_records() > 0) continue;
    auto source = store::StoredHashSource::Open(env, s->store->dir());
    auto root = source.ok() ? merkle::RangeRoot(**source, 0, cp->size) : source.status();
    if (!root.ok()) {
      LogError("collector: cannot compare the agent checkpoint of " + s->origin + ": " +
               root.status().ToString());
      continue;
    }
    if (*root != cp->root) {
      CheckpointInvalid(s,
                        "the agent signed another root for its first " + std::to_string(cp->size) +
                            " records than the collector stored: records were changed "
                            "between the agent's spool and the store",
                        cp->size);
      continue;
    }
    counters.agent_checkpoints_verified++;
    if (options.monitors != nullptr) {
      options.monitors->OnAgentCheckpoint(s->agent_id, s->epoch_hex, cp->size, true, "");
    }
    if (options.alerts != nullptr) {
      options.alerts->Resolve("checkpoint_invalid", s->agent_id + "/" + s->epoch_hex,
                              "the agent's signed root matches the store again");
    }
    const std::string path =
        store::StreamFiles(s->store->dir()).Notes(store::StreamFiles::NoteLog::kAgentCheckpoints);
    if (Status st = store::AppendNoteFrame(env, path, note, !s->agent_log_repaired); !st.ok()) {
      LogError("collector: cannot keep the agent checkpoint in " + path + ": " + st.ToString());
    }
    s->agent_log_repaired = true;
  }
}

}  // namespace gapless::collector
