#include "archive/archive.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "base/coding.h"
#include "base/crc32c.h"
#include "base/sha256.h"
#include "checkpoint/checkpoint.h"
#include "env/env.h"
#include "identity/identity.h"
#include "merkle/merkle.h"
#include "merkle/proof.h"
#include "spool/loss_record.h"
#include "spool/segment_reader.h"
#include "spool/spool_format.h"
#include "store/hash_levels.h"
#include "store/layout.h"
#include "store/stream_store.h"

namespace gapless::archive {
namespace {

constexpr std::string_view kMagic = "gapless-archive\n";  // 16 bytes
constexpr std::string_view kSealFormat = "gapless-archive/1";
constexpr size_t kSectionHeader = 5;  // type u8 | body length u32
constexpr uint32_t kMaxSectionBody = 16u << 20;
constexpr size_t kRecordsPerSection = 1u << 20;  // bytes of frames per RECORDS section

enum Section : uint8_t {
  kManifest = 1,
  kStream = 2,
  kCheckpoint = 3,
  kLeft = 4,
  kRecords = 5,
  kRight = 6,
  kGaps = 7,
  kStreamEnd = 8,
  kSeal = 9,
  kAgentCheckpoint = 10,
};

std::string SubtreesBody(const std::vector<std::pair<int, Hash256>>& subtrees) {
  std::string body;
  for (const auto& [level, h] : subtrees) {
    body.push_back(static_cast<char>(level));
    body.append(reinterpret_cast<const char*>(h.data()), h.size());
  }
  return body;
}

// Writes sections to a file and hashes every byte for the seal.
class Writer {
 public:
  Status Open(const std::string& path, const std::vector<X25519Key>& recipients) {
    ASSIGN_OR_RETURN(file_, env::Env::Posix()->NewWritableFile(path));
    if (!recipients.empty()) {
      ASSIGN_OR_RETURN(file_, NewEncryptingFile(std::move(file_), recipients));
    }
    return Raw(kMagic);
  }
  Status Add(Section type, std::string_view body) {
    if (body.size() > kMaxSectionBody) return InternalError("archive section too large");
    std::string head(1, static_cast<char>(type));
    PutFixed32(&head, static_cast<uint32_t>(body.size()));
    std::string crc;
    PutFixed32(&crc, crc32c::Extend(crc32c::Value(head), body.data(), body.size()));
    RETURN_IF_ERROR(Raw(head));
    RETURN_IF_ERROR(Raw(body));
    return Raw(crc);
  }
  // The hash of everything written so far, for the seal.
  std::string DigestHex() { return HexEncode(sha_.Finish()); }
  Status Finish() {
    RETURN_IF_ERROR(Flush());
    RETURN_IF_ERROR(file_->Sync());
    return file_->Close();
  }
  uint64_t bytes() const { return bytes_; }

 private:
  // Gathered into 1 MiB writes: sections come in three small pieces each.
  Status Raw(std::string_view b) {
    sha_.Update(b);
    bytes_ += b.size();
    pending_.append(b);
    return pending_.size() >= (1u << 20) ? Flush() : Status::Ok();
  }
  Status Flush() {
    Status s = file_->Append(pending_);
    pending_.clear();
    return s;
  }
  std::unique_ptr<env::WritableFile> file_;
  std::string pending_;
  Sha256 sha_;
  uint64_t bytes_ = 0;
};

using StreamDirRef = store::StreamRef;

StatusOr<std::vector<StreamDirRef>> SelectStreams(const ExportOptions& o) {
  const store::Layout layout(o.data_dir);
  RETURN_IF_ERROR(layout.CheckFormat(env::Env::Posix()));
  ASSIGN_OR_RETURN(std::vector<StreamDirRef> all, layout.ListStreams(env::Env::Posix()));
  std::vector<StreamDirRef> out;
  for (StreamDirRef& r : all) {
    const bool wanted =
        o.streams.empty() || std::any_of(o.streams.begin(), o.streams.end(), [&](const auto& s) {
          return s == r.agent || s == r.agent + "/" + r.epoch;
        });
    if (wanted) out.push_back(std::move(r));
  }
  if (out.empty()) return NotFoundError("no stream matched");
  return out;
}

Status ExportStream(const StreamDirRef& s, const ExportOptions& o, const identity::SigningKey& key,
                    Writer* w, ExportReport* report) {
  env::Env* env = env::Env::Posix();
  std::string note_text;
  RETURN_IF_ERROR(store::ForEachCheckpoint(env, s.dir, [&](std::string_view n) { note_text = n; }));
  if (note_text.empty()) {
    return NotFoundError("stream " + s.agent + "/" + s.epoch + " has no signed checkpoint yet");
  }
  ASSIGN_OR_RETURN(checkpoint::Note note, checkpoint::ParseNote(note_text));
  // The seal is signed by the key that signed the checkpoints, under the same name.
  const uint32_t id = checkpoint::KeyId(report->key_name.empty() && !note.signatures.empty()
                                            ? note.signatures[0].name
                                            : report->key_name,
                                        key.public_key());
  const auto by_key = std::find_if(note.signatures.begin(), note.signatures.end(),
                                   [&](const auto& sig) { return sig.key_id == id; });
  if (by_key == note.signatures.end()) {
    return FailedPreconditionError("the checkpoints of " + s.agent + "/" + s.epoch +
                                   " are not signed by the given collector key");
  }
  report->key_name = by_key->name;
  ASSIGN_OR_RETURN(checkpoint::Checkpoint cp, checkpoint::ParseCheckpoint(note.text));
  const uint64_t to = std::min(o.to_seq, cp.size);
  const uint64_t from = std::min(o.from_seq, to);
  ASSIGN_OR_RETURN(auto source, store::StoredHashSource::Open(env, s.dir));

  std::string head;
  PutFixed32(&head, static_cast<uint32_t>(s.agent.size()));
  head += s.agent;
  PutFixed32(&head, static_cast<uint32_t>(s.epoch.size()));
  head += s.epoch;
  PutFixed64(&head, from);
  PutFixed64(&head, to);
  PutFixed64(&head, cp.size);
  RETURN_IF_ERROR(w->Add(kStream, head));
  RETURN_IF_ERROR(w->Add(kCheckpoint, note_text));
  // The agent's own signed tree: the largest one the collector kept whose size lies in
  // [from, to], so the verifier reaches it while rebuilding the tree. A torn last note
  // (a crash while the collector appended it) is passed over.
  std::string agent_note;
  uint64_t agent_size = 0;
  static_cast<void>(store::ForEachCheckpoint(
      env, s.dir,
      [&](std::string_view text) {
        auto n = checkpoint::ParseNote(text);
        auto c = n.ok() ? checkpoint::ParseCheckpoint(n->text) : n.status();
        if (c.ok() && c->size >= from && c->size <= to && c->size >= agent_size) {
          agent_size = c->size;
          agent_note = text;
        }
      },
      store::StreamFiles::NoteLog::kAgentCheckpoints));
  if (!agent_note.empty()) RETURN_IF_ERROR(w->Add(kAgentCheckpoint, agent_note));
  ASSIGN_OR_RETURN(auto left, merkle::RangeSubtrees(*source, 0, from));
  RETURN_IF_ERROR(w->Add(kLeft, SubtreesBody(left)));

  std::string frames;
  uint64_t records = 0;
  Status inner;
  RETURN_IF_ERROR(store::ForEachStoredRecord(
      env, s.dir,
      [&](uint64_t seq, spool::FrameType type, std::string_view payload) {
        if (!inner.ok() || seq < from || seq >= to) return;
        spool::AppendFrame(&frames, type, seq, payload, crc32c::Value(payload));
        ++records;
        if (frames.size() >= kRecordsPerSection) {
          inner = w->Add(kRecords, frames);
          frames.clear();
        }
      },
      from));
  RETURN_IF_ERROR(inner);
  if (!frames.empty()) RETURN_IF_ERROR(w->Add(kRecords, frames));
  ASSIGN_OR_RETURN(auto right, merkle::RangeSubtrees(*source, to, cp.size));
  RETURN_IF_ERROR(w->Add(kRight, SubtreesBody(right)));
  auto gaps = env::ReadFileToString(env, store::StreamFiles(s.dir).Gaps());
  RETURN_IF_ERROR(w->Add(kGaps, gaps.ok() ? *gaps : std::string()));
  std::string end;
  PutFixed64(&end, records);
  RETURN_IF_ERROR(w->Add(kStreamEnd, end));
  report->records += records;
  ++report->streams;
  return Status::Ok();
}

}  // namespace

StatusOr<ExportReport> Export(const ExportOptions& o) {
  env::Env* env = env::Env::Posix();
  if (env->FileExists(o.out)) return AlreadyExistsError(o.out + " exists; not overwritten");
  ASSIGN_OR_RETURN(std::vector<StreamDirRef> streams, SelectStreams(o));
  const std::string key_path =
      o.signing_key.empty() ? store::Layout(o.data_dir).CollectorKey() : o.signing_key;
  auto key = identity::SigningKey::Load(key_path);
  if (!key.ok()) {
    return Status(key.status().code(),
                  "the collector's signing key (to seal the archive): " + key.status().message());
  }
  std::string vkey;
  if (auto v = env::ReadFileToString(env, store::Layout(o.data_dir).CollectorVerifierKey());
      v.ok()) {
    vkey = *v;
  }

  const std::string tmp = o.out + ".partial";
  Writer w;
  RETURN_IF_ERROR(w.Open(tmp, o.recipients));
  std::string manifest = "format " + std::string(kSealFormat) + "\n";
  manifest += "created_unix_ns " + std::to_string(env->clock()->NowNanos()) + "\n";
  manifest += "streams " + std::to_string(streams.size()) + "\n";
  if (!vkey.empty()) manifest += "collector_key " + vkey;
  RETURN_IF_ERROR(w.Add(kManifest, manifest));
  ExportReport report;
  for (const StreamDirRef& s : streams) RETURN_IF_ERROR(ExportStream(s, o, **key, &w, &report));
  // The seal: the collector's signature over the hash of every byte before it.
  const std::string text = std::string(kSealFormat) + "\n" + w.DigestHex() + "\n";
  ASSIGN_OR_RETURN(std::string seal, checkpoint::SignNote(text, report.key_name, **key));
  RETURN_IF_ERROR(w.Add(kSeal, seal));
  RETURN_IF_ERROR(w.Finish());
  report.bytes = w.bytes();
  RETURN_IF_ERROR(env->RenameFile(tmp, o.out));
  RETURN_IF_ERROR(env->SyncDir(env::DirName(o.out)));
  return report;
}

namespace {

// A RECORDS body seen as a file, so the spool's own frame reader checks it.
class StringFile : public env::RandomAccessFile {
 public:
  explicit StringFile(std::string_view data) : data_(data) {}
  StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    if (offset >= data_.size()) return size_t{0};
    const size_t got = std::min<size_t>(n, data_.size() - offset);
    std::memcpy(scratch, data_.data() + offset, got);
    return got;
  }

 private:
  std::string_view data_;
};

bool ReadSubtrees(std::string_view body, std::vector<std::pair<int, Hash256>>* out) {
  if (body.size() % 33 != 0) return false;
  for (size_t at = 0; at < body.size(); at += 33) {
    Hash256 h;
    std::memcpy(h.data(), body.data() + at + 1, 32);
    out->emplace_back(static_cast<uint8_t>(body[at]), h);
  }
  return true;
}

bool GetString(std::string_view* in, std::string* out) {
  uint32_t n = 0;
  if (!GetFixed32(in, &n) || in->size() < n) return false;
  *out = std::string(in->substr(0, n));
  in->remove_prefix(n);
  return true;
}

// One stream while its sections are read.
struct StreamState {
  StreamInArchive* s = nullptr;
  uint64_t signed_size = 0;
  Hash256 signed_root{};
  bool checkpoint_ok = false;
  merkle::CompactRange range;
  uint64_t next = 0;  // next seq expected
  std::vector<verify::SeqRange> missing;
  std::optional<std::pair<uint64_t, Hash256>> agent;  // an agent tree not yet reached

  void Problem(const std::string& p) { s->report.problems.push_back(p); }
  void Append(const Hash256& leaf) {
    range.Append(leaf);
    CheckAgent();
  }
  // Compares the agent's signed root once the rebuilt tree has its size.
  void CheckAgent() {
    if (!agent || range.size() != agent->first) return;
    if (range.Root() != agent->second) {
      Problem("its agent checkpoint signed a root of size " + std::to_string(agent->first) +
              " that its records do not give: they differ from what the agent sent");
    }
    agent.reset();
  }
};

}  // namespace

StatusOr<ArchiveReport> VerifyArchive(const std::string& path,
                                      const std::optional<checkpoint::Verifier>& key,
                                      const Identity* identity,
                                      const identity::EnrolledKeys& agent_keys) {
  env::Env* env = env::Env::Posix();
  ASSIGN_OR_RETURN(auto file, env->NewRandomAccessFile(path));
  ASSIGN_OR_RETURN(uint64_t size, env->GetFileSize(path));
  std::unique_ptr<env::RandomAccessFile> plain;
  if (IsEncrypted(*file)) {
    if (identity == nullptr) {
      return FailedPreconditionError(path +
                                     " is encrypted: pass the identity of one of its "
                                     "recipients (--identity)");
    }
    ASSIGN_OR_RETURN(plain, OpenDecrypted(*file, size, *identity, &size));
  }
  auto r = VerifyArchive(plain != nullptr ? *plain : *file, size, key, agent_keys);
  if (!r.ok()) return Status(r.status().code(), path + ": " + r.status().message());
  return r;
}

StatusOr<ArchiveReport> VerifyArchive(const env::RandomAccessFile& archive, uint64_t size,
                                      const std::optional<checkpoint::Verifier>& key,
                                      const identity::EnrolledKeys& agent_keys) {
  const env::RandomAccessFile* file = &archive;
  std::string magic(kMagic.size(), '\0');
  ArchiveReport report;
  auto got = file->Read(0, magic.size(), magic.data());
  if (!got.ok()) {  // the first encrypted chunk fails authentication
    report.problems.push_back(got.status().message());
    report.verdict = verify::Verdict::kTampered;
    return report;
  }
  if (*got != magic.size() || magic != kMagic) {
    return InvalidArgumentError("not a gapless archive (bad magic)");
  }
  Sha256 sha;
  sha.Update(magic);
  uint64_t pos = kMagic.size();
  std::optional<StreamState> st;
  bool seen_manifest = false, seen_seal = false;
  std::string body;
  auto problem = [&](const std::string& p) { report.problems.push_back(p); };
  auto end_stream = [&]() {
    if (!st) return;
    StreamState& x = *st;
    verify::StreamReport& r = x.s->report;
    if (x.next < x.s->to_seq) {
      x.missing.push_back({x.next, x.s->to_seq - 1, ""});
      for (; x.next < x.s->to_seq; ++x.next) x.Append(Hash256{});
    }
    if (x.agent) {
      x.Problem("its agent checkpoint (size " + std::to_string(x.agent->first) +
                ") was never reached by its records");
    }
    r.missing = x.missing;
    r.root = x.range.Root();
    r.next_seq = x.next;
    st.reset();
  };
  while (pos < size) {
    const uint64_t at = pos;
    char head[kSectionHeader];
    auto h = file->Read(pos, kSectionHeader, head);
    if (!h.ok()) {  // an encrypted chunk that fails authentication
      problem(h.status().message());
      break;
    }
    if (*h != kSectionHeader) {
      problem("the archive ends in the middle of a section header at offset " + std::to_string(at) +
              ": truncated");
      break;
    }
    const auto type = static_cast<uint8_t>(head[0]);
    const uint32_t len = DecodeFixed32(head + 1);
    if (len > kMaxSectionBody || pos + kSectionHeader + len + 4 > size) {
      problem("the section at offset " + std::to_string(at) + " claims " + std::to_string(len) +
              " bytes, " +
              (len > kMaxSectionBody ? "more than a section may hold" : "past the end: truncated") +
              "; nothing after it can be read");
      break;
    }
    body.resize(len + 4);
    auto b = file->Read(pos + kSectionHeader, body.size(), body.data());
    if (!b.ok() || *b != body.size()) {
      problem(b.ok() ? "short read of the archive" : b.status().message());
      break;
    }
    const uint32_t crc = DecodeFixed32(body.data() + len);
    body.resize(len);
    if (crc32c::Extend(crc32c::Value(std::string_view(head, kSectionHeader)), body.data(),
                       body.size()) != crc) {
      problem("the section at offset " + std::to_string(at) + " (type " + std::to_string(type) +
              ") fails its checksum: damaged or altered; nothing after it can be trusted");
      break;
    }
    pos += kSectionHeader + len + 4;
    if (type == kSeal) {
      seen_seal = true;
      end_stream();
      const std::string digest = HexEncode(sha.Finish());
      auto note = checkpoint::ParseNote(body);
      auto fail = [&](const std::string& why) { problem("the seal " + why); };
      if (!note.ok()) {
        fail("is malformed: " + note.status().message());
      } else if (note->text != std::string(kSealFormat) + "\n" + digest + "\n") {
        fail(
            "does not match the archive's contents: sections were changed, added, removed "
            "or reordered");
      } else if (!key) {
        fail("was not checked: no collector key given");
      } else if (Status v = checkpoint::VerifyNote(*note, *key); !v.ok()) {
        fail("signature: " + v.message());
      } else {
        report.sealed = true;
      }
      if (pos != size) problem(std::to_string(size - pos) + " bytes follow the seal");
      break;
    }
    std::string crc_bytes;
    PutFixed32(&crc_bytes, crc);
    sha.Update(std::string_view(head, kSectionHeader)).Update(body).Update(crc_bytes);
    if (!seen_manifest && type != kManifest) {
      problem("the archive does not start with its manifest");
    }
    std::string_view in(body);
    switch (type) {
      case kManifest:
        seen_manifest = true;
        break;
      case kStream: {
        end_stream();
        report.streams.emplace_back();
        StreamInArchive& s = report.streams.back();
        uint64_t signed_size = 0;
        if (!GetString(&in, &s.agent) || !GetString(&in, &s.epoch) ||
            !GetFixed64(&in, &s.from_seq) || !GetFixed64(&in, &s.to_seq) ||
            !GetFixed64(&in, &signed_size) || s.from_seq > s.to_seq || s.to_seq > signed_size) {
          problem("a stream header at offset " + std::to_string(at) + " is malformed");
          report.streams.pop_back();
          break;
        }
        s.report.dir = s.agent + "/" + s.epoch;
        st.emplace();
        st->s = &s;
        st->signed_size = signed_size;
        st->next = s.from_seq;
        break;
      }
      case kCheckpoint: {
        if (!st) break;
        verify::StreamReport& r = st->s->report;
        ++r.checkpoints;
        auto note = checkpoint::ParseNote(body);
        if (!note.ok()) {
          st->Problem("its checkpoint is malformed: " + note.status().message());
          break;
        }
        if (key) {
          if (Status v = checkpoint::VerifyNote(*note, *key); !v.ok()) {
            st->Problem("its checkpoint: " + v.message());
            break;
          }
          ++r.checkpoints_verified;
        }
        auto cp = checkpoint::ParseCheckpoint(note->text);
        const std::string suffix = "/" + st->s->agent + "/" + st->s->epoch;
        if (!cp.ok() || cp->origin.size() < suffix.size() ||
            cp->origin.compare(cp->origin.size() - suffix.size(), suffix.size(), suffix) != 0 ||
            cp->size != st->signed_size) {
          st->Problem("its checkpoint is not of this stream and size");
          break;
        }
        st->signed_root = cp->root;
        st->checkpoint_ok = true;
        r.signed_size = cp->size;
        break;
      }
      case kAgentCheckpoint: {
        if (!st) break;
        verify::StreamReport& r = st->s->report;
        ++r.agent_checkpoints;
        auto note = checkpoint::ParseNote(body);
        auto cp = note.ok() ? checkpoint::ParseCheckpoint(note->text) : note.status();
        if (!cp.ok()) {
          st->Problem("its agent checkpoint is malformed: " + cp.status().message());
          break;
        }
        if (auto k = agent_keys.find(st->s->agent); k != agent_keys.end()) {
          if (Status v =
                  checkpoint::VerifyNote(*note, checkpoint::AgentVerifier(k->first, k->second));
              !v.ok()) {
            st->Problem("its agent checkpoint: " + v.message());
            break;
          }
          ++r.agent_checkpoints_verified;
        }
        if (cp->origin != checkpoint::AgentOrigin(st->s->agent, st->s->epoch)) {
          st->Problem("its agent checkpoint is of " + cp->origin + ", another stream");
          break;
        }
        if (st->agent || cp->size < st->s->from_seq || cp->size > st->s->to_seq ||
            cp->size < st->range.size()) {
          st->Problem("its agent checkpoint (size " + std::to_string(cp->size) +
                      ") is a second one or outside its records [" +
                      std::to_string(st->s->from_seq) + ", " + std::to_string(st->s->to_seq) + "]");
          break;
        }
        r.agent_signed_size = cp->size;
        st->agent.emplace(cp->size, cp->root);
        st->CheckAgent();
        break;
      }
      case kLeft:
      case kRight: {
        if (!st) break;
        std::vector<std::pair<int, Hash256>> subtrees;
        bool ok = ReadSubtrees(body, &subtrees);
        if (type == kLeft && st->range.size() != 0) ok = false;
        if (type == kRight && st->next < st->s->to_seq) {
          st->missing.push_back({st->next, st->s->to_seq - 1, ""});
          for (; st->next < st->s->to_seq; ++st->next) st->Append(Hash256{});
        }
        for (const auto& [level, hash] : subtrees) {
          ok = ok && st->range.AppendSubtree(level, hash).ok();
        }
        if (type == kLeft) st->CheckAgent();
        const uint64_t want = type == kLeft ? st->s->from_seq : st->signed_size;
        if (!ok || st->range.size() != want) {
          st->Problem(std::string(type == kLeft ? "the hashes before" : "the hashes after") +
                      " its records do not fit: the tree cannot be rebuilt");
        }
        if (type == kRight && ok && st->checkpoint_ok && st->range.Root() != st->signed_root) {
          st->Problem(
              "its records and hashes do not give the signed root: records were "
              "changed, removed, added or reordered");
        }
        break;
      }
      case kRecords: {
        if (!st) break;
        verify::StreamReport& r = st->s->report;
        StringFile frames(body);
        spool::SegmentReader reader(&frames, 0, body.size());
        for (;;) {
          auto ev = reader.Next();
          if (!ev.ok() || ev->kind == spool::SegmentReader::Kind::kEnd) break;
          if (ev->kind != spool::SegmentReader::Kind::kFrame) {
            st->Problem(std::to_string(ev->bytes) + " damaged bytes among its records");
            if (ev->kind == spool::SegmentReader::Kind::kTornTail) break;
            continue;
          }
          if (!spool::IsRecord(ev->type)) continue;
          if (ev->seq < st->next || ev->seq >= st->s->to_seq) {
            st->Problem("seq " + std::to_string(ev->seq) +
                        " is out of order, repeated or outside the exported range");
            continue;
          }
          if (ev->seq > st->next) {
            st->missing.push_back({st->next, ev->seq - 1, ""});
            for (; st->next < ev->seq; ++st->next) st->Append(Hash256{});
          }
          st->Append(spool::RecordLeafHash(ev->type, ev->payload));
          if (ev->type == spool::FrameType::kLoss) {
            auto loss = spool::LossRecord::Decode(ev->payload);
            if (loss.ok() && loss->has_seq_range) {
              r.declared_losses.push_back({loss->first_seq, loss->last_seq,
                                           std::string(spool::LossReasonName(loss->reason))});
            } else if (loss.ok()) {
              ++r.losses_without_range;
            }
          }
          ++r.records;
          r.record_bytes += 1 + ev->payload.size();
          st->next = ev->seq + 1;
        }
        break;
      }
      case kGaps: {
        if (!st) break;
        std::istringstream gaps(body);
        verify::SeqRange g;
        while (gaps >> g.first >> g.last) st->s->report.declared_gaps.push_back(g);
        break;
      }
      case kStreamEnd: {
        if (!st) break;
        uint64_t count = 0;
        if (!GetFixed64(&in, &count) || count != st->s->report.records) {
          st->Problem("it ends with a record count that differs from the records it holds");
        }
        end_stream();
        break;
      }
      default:
        problem("unknown section type " + std::to_string(type) + " at offset " +
                std::to_string(at));
    }
  }
  end_stream();
  if (!seen_seal) problem("the archive has no seal: truncated, or not finished");
  // Per stream: missing seqs must be declared; the verdict.
  report.verdict = report.problems.empty() ? verify::Verdict::kClean : verify::Verdict::kTampered;
  for (StreamInArchive& s : report.streams) {
    verify::StreamReport& r = s.report;
    std::vector<verify::SeqRange> declared = r.declared_gaps;
    declared.insert(declared.end(), r.declared_losses.begin(), r.declared_losses.end());
    for (const verify::SeqRange& m : r.missing) {
      for (const verify::SeqRange& u : verify::UndeclaredRanges(m.first, m.last, declared)) {
        r.problems.push_back("seqs " + std::to_string(u.first) + ".." + std::to_string(u.last) +
                             " missing, and nothing declared them gone");
      }
    }
    if (r.checkpoints == 0) r.problems.push_back("it carries no checkpoint");
    if (!key) r.problems.push_back("signatures were not checked: no collector key given");
    r.verdict = !r.problems.empty()  ? verify::Verdict::kTampered
                : !r.missing.empty() ? verify::Verdict::kIncomplete
                                     : verify::Verdict::kClean;
    report.verdict = std::max(report.verdict, r.verdict);
  }
  return report;
}

}  // namespace gapless::archive
