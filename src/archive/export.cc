#include "archive/archive.h"
#include "archive/archive_format.h"

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

}  // namespace gapless::archive
