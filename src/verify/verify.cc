#include "verify/verify.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "merkle/merkle.h"
#include "spool/loss_record.h"
#include "spool/spool_format.h"
#include "store/layout.h"
#include "store/reader.h"
#include "store/stream_store.h"

namespace gapless::verify {
namespace {

constexpr size_t kLeafSize = 32;
constexpr size_t kLeafChunk = 1 << 16;  // leaves read from the leaves file at a time

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Seqs(uint64_t first, uint64_t last) {
  return first == last ? "seq " + std::to_string(first)
                       : "seqs " + std::to_string(first) + ".." + std::to_string(last);
}

// Reads the stored leaves file sequentially, in chunks.
class LeafReader {
 public:
  LeafReader(env::Env* env, const std::string& path) {
    if (!env->FileExists(path)) return;
    auto size = env->GetFileSize(path);
    auto file = env->NewRandomAccessFile(path);
    if (size.ok() && file.ok()) {
      count_ = *size / kLeafSize;
      file_ = std::move(*file);
    }
  }
  uint64_t count() const { return count_; }
  // The stored leaf of seq (seqs are asked in increasing order); false if not stored.
  bool Get(uint64_t seq, Hash256* out) {
    if (seq >= count_) return false;
    if (seq < base_ || seq >= base_ + buf_.size() / kLeafSize) {
      base_ = seq;
      const uint64_t n = std::min<uint64_t>(kLeafChunk, count_ - seq);
      buf_.resize(n * kLeafSize);
      auto got = file_->Read(seq * kLeafSize, buf_.size(), buf_.data());
      if (!got.ok() || *got != buf_.size()) {
        buf_.clear();
        return false;
      }
    }
    std::memcpy(out->data(), buf_.data() + (seq - base_) * kLeafSize, kLeafSize);
    return true;
  }

 private:
  std::unique_ptr<env::RandomAccessFile> file_;
  uint64_t count_ = 0;
  uint64_t base_ = 0;
  std::string buf_;
};

struct SignedCheckpoint {
  uint64_t size = 0;
  Hash256 root{};
  size_t index = 0;  // position in the log, for messages
};

// Reads dir/checkpoints: checks signatures, origins and order; returns them by size.
std::vector<SignedCheckpoint> ReadCheckpoints(env::Env* env, const std::string& dir,
                                              const Options& o, StreamReport* r) {
  const std::string suffix = "/" + BaseName(env::DirName(dir)) + "/" + BaseName(dir);
  std::vector<SignedCheckpoint> out;
  uint64_t previous = 0;
  size_t index = 0;
  Status s = store::ForEachCheckpoint(env, dir, [&](std::string_view text) {
    ++index;
    ++r->checkpoints;
    const std::string where = "checkpoint " + std::to_string(index);
    auto note = checkpoint::ParseNote(text);
    if (!note.ok()) {
      r->problems.push_back(where + " is malformed: " + note.status().message());
      return;
    }
    if (o.collector_key) {
      if (Status v = checkpoint::VerifyNote(*note, *o.collector_key); !v.ok()) {
        r->problems.push_back(where + ": " + v.message());
        return;
      }
      ++r->checkpoints_verified;
    }
    auto cp = checkpoint::ParseCheckpoint(note->text);
    if (!cp.ok()) {
      r->problems.push_back(where + " has a malformed body: " + cp.status().message());
      return;
    }
    if (cp->origin.rfind("gapless/collector/", 0) != 0 || cp->origin.size() < suffix.size() ||
        cp->origin.compare(cp->origin.size() - suffix.size(), suffix.size(), suffix) != 0) {
      r->problems.push_back(where + " is of " + cp->origin + ", another stream");
      return;
    }
    if (cp->size < previous) {
      r->problems.push_back(where + " has size " + std::to_string(cp->size) +
                            ", smaller than the one before (" + std::to_string(previous) +
                            "): the signed log went backwards");
    }
    previous = std::max(previous, cp->size);
    out.push_back({cp->size, cp->root, index});
  });
  if (!s.ok()) r->problems.push_back("checkpoints: " + s.message());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.size < b.size; });
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i].size == out[i - 1].size && out[i].root != out[i - 1].root) {
      r->problems.push_back("checkpoints " + std::to_string(out[i - 1].index) + " and " +
                            std::to_string(out[i].index) + " sign two different trees of size " +
                            std::to_string(out[i].size) + ": a fork");
    }
  }
  for (const auto& c : out) r->signed_size = std::max(r->signed_size, c.size);
  return out;
}

// Reads dir/witnessed: each note must be one of the collector's signed checkpoints (same
// tree), signed by its key; each cosignature by a given witness key must verify.
void ReadWitnessed(env::Env* env, const std::string& dir, const Options& o,
                   const std::vector<SignedCheckpoint>& signed_trees, StreamReport* r) {
  size_t index = 0;
  Status s = store::ForEachCheckpoint(
      env, dir,
      [&](std::string_view text) {
        const std::string where = "witnessed checkpoint " + std::to_string(++index);
        auto note = checkpoint::ParseNote(text);
        auto cp = note.ok() ? checkpoint::ParseCheckpoint(note->text) : note.status();
        if (!cp.ok()) {
          r->problems.push_back(where + " is malformed: " + cp.status().message());
          return;
        }
        if (o.collector_key) {
          if (Status v = checkpoint::VerifyNote(*note, *o.collector_key); !v.ok()) {
            r->problems.push_back(where + ": " + v.message());
            return;
          }
        }
        const bool in_log = std::any_of(
            signed_trees.begin(), signed_trees.end(),
            [&](const SignedCheckpoint& c) { return c.size == cp->size && c.root == cp->root; });
        if (!in_log) {
          r->problems.push_back(where + " (size " + std::to_string(cp->size) +
                                ") is not in the collector's checkpoint log: the log was "
                                "altered or cut");
        }
        bool cosigned = false;
        for (const checkpoint::Verifier& w : o.witness_keys) {
          auto ts = checkpoint::VerifyCosignature(*note, w);
          if (ts.ok()) {
            cosigned = true;
          } else if (ts.status().code() != StatusCode::kNotFound) {
            r->problems.push_back(where + ": " + ts.status().message());
          }
        }
        if (cosigned) {
          ++r->witnessed;
          r->witnessed_size = std::max(r->witnessed_size, cp->size);
        }
      },
      store::StreamFiles::NoteLog::kWitnessed);
  // A torn last frame is a crash while appending, which the next append repairs.
  if (!s.ok()) r->notes.push_back("witnessed: " + s.message());
}

// Reads dir/agent-checkpoints: the agent's signed trees the collector found equal to its
// own and kept. Each must be of this stream and, when the agent's key is given, signed by
// it; returns them by size.
std::vector<SignedCheckpoint> ReadAgentCheckpoints(env::Env* env, const std::string& dir,
                                                   const Options& o, StreamReport* r) {
  const std::string agent = BaseName(env::DirName(dir));
  const std::string origin = checkpoint::AgentOrigin(agent, BaseName(dir));
  std::optional<checkpoint::Verifier> key;
  if (auto k = o.agent_keys.find(agent); k != o.agent_keys.end()) {
    key = checkpoint::AgentVerifier(agent, k->second);
  }
  std::vector<SignedCheckpoint> out;
  size_t index = 0;
  Status s = store::ForEachCheckpoint(
      env, dir,
      [&](std::string_view text) {
        ++r->agent_checkpoints;
        const std::string where = "agent checkpoint " + std::to_string(++index);
        auto note = checkpoint::ParseNote(text);
        auto cp = note.ok() ? checkpoint::ParseCheckpoint(note->text) : note.status();
        if (!cp.ok()) {
          r->problems.push_back(where + " is malformed: " + cp.status().message());
          return;
        }
        if (key) {
          if (Status v = checkpoint::VerifyNote(*note, *key); !v.ok()) {
            r->problems.push_back(where + ": " + v.message());
            return;
          }
          ++r->agent_checkpoints_verified;
        }
        if (cp->origin != origin) {
          r->problems.push_back(where + " is of " + cp->origin + ", another stream");
          return;
        }
        r->agent_signed_size = std::max(r->agent_signed_size, cp->size);
        out.push_back({cp->size, cp->root, index});
      },
      store::StreamFiles::NoteLog::kAgentCheckpoints);
  // A torn last frame is a crash while appending, which the next append repairs.
  if (!s.ok()) r->notes.push_back("agent checkpoints: " + s.message());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.size < b.size; });
  return out;
}

std::vector<SeqRange> ReadGaps(env::Env* env, const std::string& dir, StreamReport* r) {
  std::vector<SeqRange> gaps;
  const std::string path = store::StreamFiles(dir).Gaps();
  if (!env->FileExists(path)) return gaps;
  auto text = env::ReadFileToString(env, path);
  if (!text.ok()) {
    r->problems.push_back("cannot read the gaps file: " + text.status().ToString());
    return gaps;
  }
  std::istringstream in(*text);
  SeqRange g;
  while (in >> g.first >> g.last) gaps.push_back(g);
  return gaps;
}

}  // namespace

std::vector<SeqRange> UndeclaredRanges(uint64_t first, uint64_t last,
                                       std::vector<SeqRange> declared) {
  std::sort(declared.begin(), declared.end(),
            [](const SeqRange& a, const SeqRange& b) { return a.first < b.first; });
  std::vector<SeqRange> out;
  uint64_t at = first;  // everything below `at` is covered or reported
  for (const SeqRange& d : declared) {
    if (at > last) break;
    if (d.last < at || d.first > last) continue;
    if (d.first > at) out.push_back({at, d.first - 1, ""});
    if (d.last >= last) return out;
    at = std::max(at, d.last + 1);
  }
  if (at <= last) out.push_back({at, last, ""});
  return out;
}

std::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kClean:
      return "clean";
    case Verdict::kIncomplete:
      return "incomplete";
    case Verdict::kTampered:
      return "TAMPERED";
  }
  return "?";
}

namespace {

// The record walk of VerifyStream: every record against its stored leaf, continuity,
// LOSS declarations, and the root at the size of every signed checkpoint as the tree
// reaches it.
class RecordWalk {
 public:
  RecordWalk(env::Env* env, const std::string& dir, const std::vector<SignedCheckpoint>& ours,
             const std::vector<SignedCheckpoint>& agents, uint64_t signed_size, StreamReport* r)
      : stored_(env, store::StreamFiles(dir).Leaves()),
        pending_{{&ours, 0, "checkpoint ", "records below it were changed, removed or added"},
                 {&agents, 0, "agent checkpoint ",
                  "records below it differ from what the agent sent, though the collector's own "
                  "checkpoints may agree with them (rewritten and re-signed)"}},
        signed_size_(signed_size),
        r_(r) {
    CheckCheckpoints();  // size 0
  }

  // Reads every segment through the store reader. Errors are I/O errors only.
  Status Run(env::Env* env, const std::string& dir) {
    ASSIGN_OR_RETURN(auto reader, store::StreamReader::Open(env, dir));
    using Kind = store::StreamReader::Kind;
    for (;;) {
      ASSIGN_OR_RETURN(store::StreamReader::Entry e, reader->Next());
      switch (e.kind) {
        case Kind::kRecord:
          OnRecord(e);
          break;
        case Kind::kBadHeader:
          r_->problems.push_back("segment " + std::string(e.segment) + " has a damaged header");
          break;
        case Kind::kDamage:
        case Kind::kTornTail:
          r_->problems.push_back(
              std::to_string(e.bytes) + " damaged bytes in segment " + std::string(e.segment) +
              " at offset " + std::to_string(e.offset) +
              (e.kind == Kind::kDamage ? " (" + e.reason + ")" : " (a cut-off record)"));
          break;
        case Kind::kEnd:
          OnEnd(*reader);
          r_->root = range_.Root();
          return Status::Ok();
      }
    }
  }

  uint64_t leaves_stored() const { return stored_.count(); }
  // A cut-off record at the end of the newest segment, described; empty if none.
  const std::string& torn() const { return torn_; }

 private:
  struct Pending {
    const std::vector<SignedCheckpoint>* list;
    size_t next;
    const char* whose;  // for messages
    const char* meaning;
  };

  void CheckCheckpoints() {
    for (Pending& p : pending_) {
      for (; p.next < p.list->size() && (*p.list)[p.next].size <= range_.size(); ++p.next) {
        const SignedCheckpoint& c = (*p.list)[p.next];
        if (c.size == range_.size() && range_.Root() != c.root) {
          r_->problems.push_back(p.whose + std::to_string(c.index) + " signed a root of size " +
                                 std::to_string(c.size) +
                                 " that the stored records do not give: " + p.meaning);
        }
      }
    }
  }

  void AddLeaf(const Hash256& leaf) {
    range_.Append(leaf);
    CheckCheckpoints();
  }

  void OnEnd(const store::StreamReader& reader) {
    const std::string name = spool::SegmentFileName(reader.segment_base());
    if (reader.creating_segment()) {
      if (reader.segment_base() >= signed_size_) {
        // The newest segment, past every signed record, whose header is still being
        // written (a store being filled), or was cut by a crash at its creation.
        r_->notes.push_back("segment " + name + " is being created (its header is incomplete)");
      } else {
        r_->problems.push_back("segment " + name + " has a damaged header");
      }
    } else if (reader.unfinished_bytes() > 0) {
      // A record cut off at the very end: the collector writing it now (verify runs on a
      // live store) or a crash mid-write. Judged later, against what was signed.
      torn_ = "an unfinished record (" + std::to_string(reader.unfinished_bytes()) +
              " bytes) at the end of " + name;
    }
  }

  void OnRecord(const store::StreamReader::Entry& e) {
    if (e.seq < r_->next_seq) {
      r_->problems.push_back("seq " + std::to_string(e.seq) + " is stored again in " +
                             std::string(e.segment) + " after seq " +
                             std::to_string(r_->next_seq - 1) + ": duplicated or reordered");
      return;
    }
    if (e.seq > r_->next_seq) {
      r_->missing.push_back({r_->next_seq, e.seq - 1, ""});
      for (; r_->next_seq < e.seq; ++r_->next_seq) AddLeaf(Hash256{});
    }
    const Hash256 leaf = e.Leaf();
    Hash256 kept;
    if (!stored_.Get(e.seq, &kept)) {
      if (e.seq < signed_size_) {
        r_->problems.push_back("seq " + std::to_string(e.seq) + " has no stored leaf");
      } else if (unsigned_without_leaf_++ == 0) {
        r_->notes.push_back("records from seq " + std::to_string(e.seq) +
                            " on, beyond every signed checkpoint, have no leaf yet (the "
                            "collector writes records before their leaves)");
      }
    } else if (kept != leaf) {
      r_->problems.push_back("seq " + std::to_string(e.seq) +
                             " does not match its stored leaf: the record or the leaf was "
                             "rewritten");
    }
    if (e.type == spool::FrameType::kLoss) OnLoss(e);
    AddLeaf(leaf);
    ++r_->records;
    r_->record_bytes += 1 + e.payload.size();
    r_->next_seq = e.seq + 1;
  }

  void OnLoss(const store::StreamReader::Entry& e) {
    auto loss = spool::LossRecord::Decode(e.payload);
    if (!loss.ok()) {
      r_->problems.push_back("seq " + std::to_string(e.seq) + " is an unreadable LOSS record");
    } else if (loss->has_seq_range) {
      r_->declared_losses.push_back(
          {loss->first_seq, loss->last_seq, std::string(spool::LossReasonName(loss->reason))});
    } else {
      ++r_->losses_without_range;
    }
  }

  LeafReader stored_;
  merkle::CompactRange range_;
  Pending pending_[2];
  const uint64_t signed_size_;  // records below it were signed by someone
  StreamReport* const r_;
  std::string torn_;
  uint64_t unsigned_without_leaf_ = 0;
};

// After the walk: what the end of the store, the signed sizes and the declarations say.
void Judge(const RecordWalk& walk, uint64_t signed_size, StreamReport* r) {
  if (!walk.torn().empty()) {
    if (signed_size <= r->next_seq) {
      r->notes.push_back(walk.torn() +
                         ", beyond every signed checkpoint: being written, or cut by a "
                         "crash the collector repairs when it reopens the stream");
    } else {
      r->problems.push_back(walk.torn() + " hides signed records");
    }
  }
  if (walk.leaves_stored() > r->next_seq) {
    r->problems.push_back("the leaves file holds " + std::to_string(walk.leaves_stored()) +
                          " leaves but only seqs below " + std::to_string(r->next_seq) +
                          " are stored: records at the end were removed");
  }
  if (r->signed_size > r->next_seq) {
    r->problems.push_back("the collector signed " + std::to_string(r->signed_size) +
                          " records but only seqs below " + std::to_string(r->next_seq) +
                          " are stored: records at the end were removed");
  }
  if (r->agent_signed_size > r->next_seq) {
    r->problems.push_back("the agent signed " + std::to_string(r->agent_signed_size) +
                          " records that the collector had stored, but only seqs below " +
                          std::to_string(r->next_seq) +
                          " are stored: records at the end were "
                          "removed");
  }
  std::vector<SeqRange> declared = r->declared_gaps;
  declared.insert(declared.end(), r->declared_losses.begin(), r->declared_losses.end());
  for (const SeqRange& m : r->missing) {
    for (const SeqRange& u : UndeclaredRanges(m.first, m.last, declared)) {
      r->problems.push_back(Seqs(u.first, u.last) +
                            " missing, and nothing declared them gone: damage or removal");
    }
  }
  r->verdict = !r->problems.empty()  ? Verdict::kTampered
               : !r->missing.empty() ? Verdict::kIncomplete
                                     : Verdict::kClean;
}

}  // namespace

StatusOr<StreamReport> VerifyStream(env::Env* env, const std::string& dir, const Options& o) {
  StreamReport r;
  r.dir = dir;
  RETURN_IF_ERROR(env->GetChildren(dir).status());  // the directory must be readable at all
  const std::vector<SignedCheckpoint> checkpoints = ReadCheckpoints(env, dir, o, &r);
  ReadWitnessed(env, dir, o, checkpoints, &r);
  r.declared_gaps = ReadGaps(env, dir, &r);
  r.flagged = env->FileExists(store::StreamFiles(dir).Flagged());
  if (r.flagged) {
    r.problems.push_back(
        "the stream is FLAGGED: the agent sent two versions of a record (see "
        "FLAGGED and evidence.seg)");
  }
  const std::vector<SignedCheckpoint> agent_checkpoints = ReadAgentCheckpoints(env, dir, o, &r);
  // Records below this were signed by someone: none may be missing or cut.
  const uint64_t signed_size = std::max(r.signed_size, r.agent_signed_size);
  RecordWalk walk(env, dir, checkpoints, agent_checkpoints, signed_size, &r);
  RETURN_IF_ERROR(walk.Run(env, dir));
  Judge(walk, signed_size, &r);
  r.unsigned_records = r.next_seq > r.signed_size ? r.next_seq - r.signed_size : 0;
  return r;
}

}  // namespace gapless::verify
