#include "verify/verify.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "merkle/merkle.h"
#include "spool/loss_record.h"
#include "spool/segment_reader.h"
#include "spool/spool_format.h"
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
      store::kWitnessedFile);
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
      store::kAgentCheckpointsFile);
  // A torn last frame is a crash while appending, which the next append repairs.
  if (!s.ok()) r->notes.push_back("agent checkpoints: " + s.message());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.size < b.size; });
  return out;
}

std::vector<SeqRange> ReadGaps(env::Env* env, const std::string& dir, StreamReport* r) {
  std::vector<SeqRange> gaps;
  const std::string path = env::JoinPath(dir, "gaps");
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

StatusOr<StreamReport> VerifyStream(env::Env* env, const std::string& dir, const Options& o) {
  StreamReport r;
  r.dir = dir;
  ASSIGN_OR_RETURN(auto segments, store::ListSegments(env, dir));
  const std::vector<SignedCheckpoint> checkpoints = ReadCheckpoints(env, dir, o, &r);
  ReadWitnessed(env, dir, o, checkpoints, &r);
  r.declared_gaps = ReadGaps(env, dir, &r);
  r.flagged = env->FileExists(env::JoinPath(dir, "FLAGGED"));
  if (r.flagged) {
    r.problems.push_back(
        "the stream is FLAGGED: the agent sent two versions of a record (see "
        "FLAGGED and evidence.seg)");
  }

  const std::vector<SignedCheckpoint> agent_checkpoints = ReadAgentCheckpoints(env, dir, o, &r);

  // Records below this were signed by someone: none may be missing or cut.
  const uint64_t signed_size = std::max(r.signed_size, r.agent_signed_size);

  LeafReader stored(env, env::JoinPath(dir, "leaves"));
  merkle::CompactRange range;
  // Compares the root at every checkpoint's size as the range reaches it.
  struct Pending {
    const std::vector<SignedCheckpoint>* list;
    size_t next;
    const char* whose;  // for messages
    const char* meaning;
  };
  Pending pending[] = {
      {&checkpoints, 0, "checkpoint ", "records below it were changed, removed or added"},
      {&agent_checkpoints, 0, "agent checkpoint ",
       "records below it differ from what the agent sent, though the collector's own "
       "checkpoints may agree with them (rewritten and re-signed)"}};
  auto check_checkpoints = [&] {
    for (Pending& p : pending) {
      for (; p.next < p.list->size() && (*p.list)[p.next].size <= range.size(); ++p.next) {
        const SignedCheckpoint& c = (*p.list)[p.next];
        if (c.size == range.size() && range.Root() != c.root) {
          r.problems.push_back(p.whose + std::to_string(c.index) + " signed a root of size " +
                               std::to_string(c.size) +
                               " that the stored records do not give: " + p.meaning);
        }
      }
    }
  };
  check_checkpoints();  // size 0
  auto add_leaf = [&](const Hash256& leaf) {
    range.Append(leaf);
    check_checkpoints();
  };
  std::string torn;  // a cut-off record at the end of the newest segment
  uint64_t unsigned_without_leaf = 0;
  for (const auto& [base, name] : segments) {
    const std::string path = env::JoinPath(dir, name);
    ASSIGN_OR_RETURN(uint64_t size, env->GetFileSize(path));
    ASSIGN_OR_RETURN(auto file, env->NewRandomAccessFile(path));
    std::string header(spool::kSegmentHeaderSize, '\0');
    ASSIGN_OR_RETURN(size_t got, file->Read(0, header.size(), header.data()));
    spool::SegmentHeader h;
    bool version_mismatch = false;
    if (got < header.size() && name == segments.rbegin()->second && base >= signed_size) {
      // The newest segment, past every signed record, whose header is still being
      // written (a store being filled), or was cut by a crash at its creation.
      r.notes.push_back("segment " + name + " is being created (its header is incomplete)");
      break;
    }
    if (got < header.size() || !spool::DecodeSegmentHeader(header, &h, &version_mismatch)) {
      r.problems.push_back("segment " + name + " has a damaged header");
      continue;
    }
    spool::SegmentReader reader(file.get(), spool::kSegmentHeaderSize, size);
    for (;;) {
      ASSIGN_OR_RETURN(spool::SegmentReader::Event ev, reader.Next());
      if (ev.kind == spool::SegmentReader::Kind::kEnd) break;
      if (ev.kind == spool::SegmentReader::Kind::kTornTail && name == segments.rbegin()->second) {
        // A record cut off at the very end: the collector writing it now (verify runs on a
        // live store) or a crash mid-write. Judged below, against what was signed.
        torn =
            "an unfinished record (" + std::to_string(ev.bytes) + " bytes) at the end of " + name;
        break;
      }
      if (ev.kind == spool::SegmentReader::Kind::kTornTail ||
          ev.kind == spool::SegmentReader::Kind::kDamage) {
        r.problems.push_back(std::to_string(ev.bytes) + " damaged bytes in segment " + name +
                             " at offset " + std::to_string(ev.offset) +
                             (ev.kind == spool::SegmentReader::Kind::kDamage
                                  ? " (" + std::string(ev.reason) + ")"
                                  : " (a cut-off record)"));
        if (ev.kind == spool::SegmentReader::Kind::kTornTail) break;
        continue;
      }
      if (!spool::IsRecord(ev.type)) continue;
      if (ev.seq < r.next_seq) {
        r.problems.push_back("seq " + std::to_string(ev.seq) + " is stored again in " + name +
                             " after seq " + std::to_string(r.next_seq - 1) +
                             ": duplicated or reordered");
        continue;
      }
      if (ev.seq > r.next_seq) {
        r.missing.push_back({r.next_seq, ev.seq - 1, ""});
        for (; r.next_seq < ev.seq; ++r.next_seq) add_leaf(Hash256{});
      }
      const Hash256 leaf = spool::RecordLeafHash(ev.type, ev.payload);
      Hash256 kept;
      if (!stored.Get(ev.seq, &kept)) {
        if (ev.seq < signed_size) {
          r.problems.push_back("seq " + std::to_string(ev.seq) + " has no stored leaf");
        } else if (unsigned_without_leaf++ == 0) {
          r.notes.push_back("records from seq " + std::to_string(ev.seq) +
                            " on, beyond every signed checkpoint, have no leaf yet (the "
                            "collector writes records before their leaves)");
        }
      } else if (kept != leaf) {
        r.problems.push_back("seq " + std::to_string(ev.seq) +
                             " does not match its stored leaf: the record or the leaf was "
                             "rewritten");
      }
      if (ev.type == spool::FrameType::kLoss) {
        auto loss = spool::LossRecord::Decode(ev.payload);
        if (!loss.ok()) {
          r.problems.push_back("seq " + std::to_string(ev.seq) + " is an unreadable LOSS record");
        } else if (loss->has_seq_range) {
          r.declared_losses.push_back(
              {loss->first_seq, loss->last_seq, std::string(spool::LossReasonName(loss->reason))});
        } else {
          ++r.losses_without_range;
        }
      }
      add_leaf(leaf);
      ++r.records;
      r.record_bytes += 1 + ev.payload.size();
      r.next_seq = ev.seq + 1;
    }
  }
  r.root = range.Root();
  if (!torn.empty()) {
    if (signed_size <= r.next_seq) {
      r.notes.push_back(torn +
                        ", beyond every signed checkpoint: being written, or cut by a "
                        "crash the collector repairs when it reopens the stream");
    } else {
      r.problems.push_back(torn + " hides signed records");
    }
  }
  if (stored.count() > r.next_seq) {
    r.problems.push_back("the leaves file holds " + std::to_string(stored.count()) +
                         " leaves but only seqs below " + std::to_string(r.next_seq) +
                         " are stored: records at the end were removed");
  }
  if (r.signed_size > r.next_seq) {
    r.problems.push_back("the collector signed " + std::to_string(r.signed_size) +
                         " records but only seqs below " + std::to_string(r.next_seq) +
                         " are stored: records at the end were removed");
  }
  if (r.agent_signed_size > r.next_seq) {
    r.problems.push_back("the agent signed " + std::to_string(r.agent_signed_size) +
                         " records that the collector had stored, but only seqs below " +
                         std::to_string(r.next_seq) +
                         " are stored: records at the end were "
                         "removed");
  }
  std::vector<SeqRange> declared = r.declared_gaps;
  declared.insert(declared.end(), r.declared_losses.begin(), r.declared_losses.end());
  for (const SeqRange& m : r.missing) {
    for (const SeqRange& u : UndeclaredRanges(m.first, m.last, declared)) {
      r.problems.push_back(Seqs(u.first, u.last) +
                           " missing, and nothing declared them gone: damage or removal");
    }
  }
  r.verdict = !r.problems.empty()  ? Verdict::kTampered
              : !r.missing.empty() ? Verdict::kIncomplete
                                   : Verdict::kClean;
  return r;
}

}  // namespace gapless::verify
