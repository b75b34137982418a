#include <algorithm>
#include <cstring>
#include <optional>
#include <sstream>

#include "archive/archive.h"
#include "archive/archive_format.h"
#include "archive/encryption.h"
#include "base/coding.h"
#include "base/crc32c.h"
#include "base/sha256.h"
#include "checkpoint/checkpoint.h"
#include "merkle/merkle.h"
#include "spool/loss_record.h"
#include "spool/segment_reader.h"
#include "spool/spool_format.h"

// VerifyArchive: reads an archive's sections in order and checks each as it comes
// (docs/formats/archive.md), then judges every stream as `gapless verify` judges a store.
namespace gapless::archive {
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

// One pass over an archive. Every problem found goes into the report; only an archive
// that is not one at all (bad magic) is an error.
class ArchiveVerifier {
 public:
  ArchiveVerifier(const env::RandomAccessFile& file, uint64_t size,
                  const std::optional<checkpoint::Verifier>& key,
                  const identity::EnrolledKeys& agent_keys, const RecordVisitor& visit)
      : file_(file), size_(size), key_(key), agent_keys_(agent_keys), visit_(visit) {}

  StatusOr<ArchiveReport> Run() {
    std::string magic(kMagic.size(), '\0');
    auto got = file_.Read(0, magic.size(), magic.data());
    if (!got.ok()) {  // the first encrypted chunk fails authentication
      Problem(got.status().message());
      report_.verdict = verify::Verdict::kTampered;
      return report_;
    }
    if (*got != magic.size() || magic != kMagic) {
      return InvalidArgumentError("not a gapless archive (bad magic)");
    }
    sha_.Update(magic);
    pos_ = kMagic.size();
    uint8_t type = 0;
    uint64_t at = 0;
    while (pos_ < size_ && NextSection(&type, &at)) {
      if (type == kSeal) {
        OnSeal();
        break;
      }
      OnSection(type, at);
      if (report_.stopped) return std::move(report_);
    }
    EndStream();
    if (!seen_seal_) Problem("the archive has no seal: truncated, or not finished");
    Judge();
    return std::move(report_);
  }

 private:
  void Problem(const std::string& p) { report_.problems.push_back(p); }

  // Reads and checksums the section at pos_ into body_; false (with the problem noted)
  // when nothing after it can be read.
  bool NextSection(uint8_t* type, uint64_t* at) {
    *at = pos_;
    char head[kSectionHeader];
    auto h = file_.Read(pos_, kSectionHeader, head);
    if (!h.ok()) {  // an encrypted chunk that fails authentication
      Problem(h.status().message());
      return false;
    }
    if (*h != kSectionHeader) {
      Problem("the archive ends in the middle of a section header at offset " +
              std::to_string(*at) + ": truncated");
      return false;
    }
    *type = static_cast<uint8_t>(head[0]);
    const uint32_t len = DecodeFixed32(head + 1);
    if (len > kMaxSectionBody || pos_ + kSectionHeader + len + 4 > size_) {
      Problem("the section at offset " + std::to_string(*at) + " claims " + std::to_string(len) +
              " bytes, " +
              (len > kMaxSectionBody ? "more than a section may hold" : "past the end: truncated") +
              "; nothing after it can be read");
      return false;
    }
    body_.resize(len + 4);
    auto b = file_.Read(pos_ + kSectionHeader, body_.size(), body_.data());
    if (!b.ok() || *b != body_.size()) {
      Problem(b.ok() ? "short read of the archive" : b.status().message());
      return false;
    }
    const uint32_t crc = DecodeFixed32(body_.data() + len);
    body_.resize(len);
    if (crc32c::Extend(crc32c::Value(std::string_view(head, kSectionHeader)), body_.data(),
                       body_.size()) != crc) {
      Problem("the section at offset " + std::to_string(*at) + " (type " + std::to_string(*type) +
              ") fails its checksum: damaged or altered; nothing after it can be trusted");
      return false;
    }
    pos_ += kSectionHeader + len + 4;
    if (*type != kSeal) {  // the seal signs the hash of every byte before it
      std::string crc_bytes;
      PutFixed32(&crc_bytes, crc);
      sha_.Update(std::string_view(head, kSectionHeader)).Update(body_).Update(crc_bytes);
    }
    return true;
  }

  void OnSection(uint8_t type, uint64_t at) {
    if (!seen_manifest_ && type != kManifest)
      Problem("the archive does not start with its manifest");
    if (type == kManifest) {
      seen_manifest_ = true;
    } else if (type == kStream) {
      OnStream(at);
    } else if (type < kManifest || (type > kSeal && type != kAgentCheckpoint)) {
      Problem("unknown section type " + std::to_string(type) + " at offset " + std::to_string(at));
    } else if (!st_) {
      // a stream's section without its stream header: already reported as malformed
    } else if (type == kCheckpoint) {
      OnCheckpoint();
    } else if (type == kAgentCheckpoint) {
      OnAgentCheckpoint();
    } else if (type == kLeft || type == kRight) {
      OnSubtrees(type == kLeft);
    } else if (type == kRecords) {
      OnRecords();
    } else if (type == kGaps) {
      std::istringstream gaps(body_);
      verify::SeqRange g;
      while (gaps >> g.first >> g.last) st_->s->report.declared_gaps.push_back(g);
    } else if (type == kStreamEnd) {
      std::string_view in(body_);
      uint64_t count = 0;
      if (!GetFixed64(&in, &count) || count != st_->s->report.records) {
        st_->Problem("it ends with a record count that differs from the records it holds");
      }
      EndStream();
    }
  }

  void OnSeal() {
    seen_seal_ = true;
    EndStream();
    const std::string digest = HexEncode(sha_.Finish());
    auto note = checkpoint::ParseNote(body_);
    auto fail = [&](const std::string& why) { Problem("the seal " + why); };
    if (!note.ok()) {
      fail("is malformed: " + note.status().message());
    } else if (note->text != std::string(kSealFormat) + "\n" + digest + "\n") {
      fail(
          "does not match the archive's contents: sections were changed, added, removed "
          "or reordered");
    } else if (!key_) {
      fail("was not checked: no collector key given");
    } else if (Status v = checkpoint::VerifyNote(*note, *key_); !v.ok()) {
      fail("signature: " + v.message());
    } else {
      report_.sealed = true;
    }
    if (pos_ != size_) Problem(std::to_string(size_ - pos_) + " bytes follow the seal");
  }

  void OnStream(uint64_t at) {
    EndStream();
    std::string_view in(body_);
    report_.streams.emplace_back();
    StreamInArchive& s = report_.streams.back();
    uint64_t signed_size = 0;
    if (!GetString(&in, &s.agent) || !GetString(&in, &s.epoch) || !GetFixed64(&in, &s.from_seq) ||
        !GetFixed64(&in, &s.to_seq) || !GetFixed64(&in, &signed_size) || s.from_seq > s.to_seq ||
        s.to_seq > signed_size) {
      Problem("a stream header at offset " + std::to_string(at) + " is malformed");
      report_.streams.pop_back();
      return;
    }
    s.report.dir = s.agent + "/" + s.epoch;
    st_.emplace();
    st_->s = &s;
    st_->signed_size = signed_size;
    st_->next = s.from_seq;
  }

  void OnCheckpoint() {
    verify::StreamReport& r = st_->s->report;
    ++r.checkpoints;
    auto note = checkpoint::ParseNote(body_);
    if (!note.ok()) {
      st_->Problem("its checkpoint is malformed: " + note.status().message());
      return;
    }
    if (key_) {
      if (Status v = checkpoint::VerifyNote(*note, *key_); !v.ok()) {
        st_->Problem("its checkpoint: " + v.message());
        return;
      }
      ++r.checkpoints_verified;
    }
    auto cp = checkpoint::ParseCheckpoint(note->text);
    const std::string suffix = "/" + st_->s->agent + "/" + st_->s->epoch;
    if (!cp.ok() || cp->origin.size() < suffix.size() ||
        cp->origin.compare(cp->origin.size() - suffix.size(), suffix.size(), suffix) != 0 ||
        cp->size != st_->signed_size) {
      st_->Problem("its checkpoint is not of this stream and size");
      return;
    }
    st_->signed_root = cp->root;
    st_->checkpoint_ok = true;
    r.signed_size = cp->size;
  }

  void OnAgentCheckpoint() {
    verify::StreamReport& r = st_->s->report;
    ++r.agent_checkpoints;
    auto note = checkpoint::ParseNote(body_);
    auto cp = note.ok() ? checkpoint::ParseCheckpoint(note->text) : note.status();
    if (!cp.ok()) {
      st_->Problem("its agent checkpoint is malformed: " + cp.status().message());
      return;
    }
    if (auto k = agent_keys_.find(st_->s->agent); k != agent_keys_.end()) {
      if (Status v = checkpoint::VerifyNote(*note, checkpoint::AgentVerifier(k->first, k->second));
          !v.ok()) {
        st_->Problem("its agent checkpoint: " + v.message());
        return;
      }
      ++r.agent_checkpoints_verified;
    }
    if (cp->origin != checkpoint::AgentOrigin(st_->s->agent, st_->s->epoch)) {
      st_->Problem("its agent checkpoint is of " + cp->origin + ", another stream");
      return;
    }
    if (st_->agent || cp->size < st_->s->from_seq || cp->size > st_->s->to_seq ||
        cp->size < st_->range.size()) {
      st_->Problem("its agent checkpoint (size " + std::to_string(cp->size) +
                   ") is a second one or outside its records [" + std::to_string(st_->s->from_seq) +
                   ", " + std::to_string(st_->s->to_seq) + "]");
      return;
    }
    r.agent_signed_size = cp->size;
    st_->agent.emplace(cp->size, cp->root);
    st_->CheckAgent();
  }

  // The LEFT (hashes before the records) or RIGHT (after them) section.
  void OnSubtrees(bool left) {
    StreamState& st = *st_;
    std::vector<std::pair<int, Hash256>> subtrees;
    bool ok = ReadSubtrees(body_, &subtrees);
    if (left && st.range.size() != 0) ok = false;
    if (!left) FillMissing(st.s->to_seq);
    for (const auto& [level, hash] : subtrees) ok = ok && st.range.AppendSubtree(level, hash).ok();
    if (left) st.CheckAgent();
    const uint64_t want = left ? st.s->from_seq : st.signed_size;
    if (!ok || st.range.size() != want) {
      st.Problem(std::string(left ? "the hashes before" : "the hashes after") +
                 " its records do not fit: the tree cannot be rebuilt");
    }
    if (!left && ok && st.checkpoint_ok && st.range.Root() != st.signed_root) {
      st.Problem(
          "its records and hashes do not give the signed root: records were "
          "changed, removed, added or reordered");
    }
  }

  // Seqs from the next expected one up to `to` are missing: zero leaves in the tree.
  void FillMissing(uint64_t to) {
    StreamState& st = *st_;
    if (st.next >= to) return;
    st.missing.push_back({st.next, to - 1, ""});
    for (; st.next < to; ++st.next) st.Append(Hash256{});
  }

  void OnRecords() {
    StreamState& st = *st_;
    verify::StreamReport& r = st.s->report;
    StringFile frames(body_);
    spool::SegmentReader reader(&frames, 0, body_.size());
    for (;;) {
      auto ev = reader.Next();
      if (!ev.ok() || ev->kind == spool::SegmentReader::Kind::kEnd) break;
      if (ev->kind != spool::SegmentReader::Kind::kFrame) {
        st.Problem(std::to_string(ev->bytes) + " damaged bytes among its records");
        if (ev->kind == spool::SegmentReader::Kind::kTornTail) break;
        continue;
      }
      if (!spool::IsRecord(ev->type)) continue;
      if (ev->seq < st.next || ev->seq >= st.s->to_seq) {
        st.Problem("seq " + std::to_string(ev->seq) +
                   " is out of order, repeated or outside the exported range");
        continue;
      }
      FillMissing(ev->seq);
      st.Append(spool::RecordLeafHash(ev->type, ev->payload));
      if (ev->type == spool::FrameType::kLoss) {
        auto loss = spool::LossRecord::Decode(ev->payload);
        if (loss.ok() && loss->has_seq_range) {
          r.declared_losses.push_back(
              {loss->first_seq, loss->last_seq, std::string(spool::LossReasonName(loss->reason))});
        } else if (loss.ok()) {
          ++r.losses_without_range;
        }
      }
      ++r.records;
      r.record_bytes += 1 + ev->payload.size();
      st.next = ev->seq + 1;
      if (visit_ && !visit_(*st.s, ev->seq, ev->type, ev->payload)) {
        report_.stopped = true;
        return;
      }
    }
  }

  void EndStream() {
    if (!st_) return;
    StreamState& x = *st_;
    verify::StreamReport& r = x.s->report;
    FillMissing(x.s->to_seq);
    if (x.agent) {
      x.Problem("its agent checkpoint (size " + std::to_string(x.agent->first) +
                ") was never reached by its records");
    }
    r.missing = x.missing;
    r.root = x.range.Root();
    r.next_seq = x.next;
    st_.reset();
  }

  // Per stream: missing seqs must be declared; the verdicts.
  void Judge() {
    report_.verdict =
        report_.problems.empty() ? verify::Verdict::kClean : verify::Verdict::kTampered;
    for (StreamInArchive& s : report_.streams) {
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
      if (!key_) r.problems.push_back("signatures were not checked: no collector key given");
      r.verdict = !r.problems.empty()  ? verify::Verdict::kTampered
                  : !r.missing.empty() ? verify::Verdict::kIncomplete
                                       : verify::Verdict::kClean;
      report_.verdict = std::max(report_.verdict, r.verdict);
    }
  }

  const env::RandomAccessFile& file_;
  const uint64_t size_;
  const std::optional<checkpoint::Verifier>& key_;
  const identity::EnrolledKeys& agent_keys_;
  const RecordVisitor& visit_;
  ArchiveReport report_;
  Sha256 sha_;
  uint64_t pos_ = 0;
  std::optional<StreamState> st_;  // the stream whose sections are being read
  bool seen_manifest_ = false, seen_seal_ = false;
  std::string body_;  // the current section's body
};

}  // namespace

StatusOr<ArchiveReport> VerifyArchive(const std::string& path,
                                      const std::optional<checkpoint::Verifier>& key,
                                      const Identity* identity,
                                      const identity::EnrolledKeys& agent_keys,
                                      const RecordVisitor& visit) {
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
  auto r = VerifyArchive(plain != nullptr ? *plain : *file, size, key, agent_keys, visit);
  if (!r.ok()) return Status(r.status().code(), path + ": " + r.status().message());
  return r;
}

StatusOr<ArchiveReport> VerifyArchive(const env::RandomAccessFile& archive, uint64_t size,
                                      const std::optional<checkpoint::Verifier>& key,
                                      const identity::EnrolledKeys& agent_keys,
                                      const RecordVisitor& visit) {
  return ArchiveVerifier(archive, size, key, agent_keys, visit).Run();
}

}  // namespace gapless::archive
