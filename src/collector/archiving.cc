#include "collector/archiving.h"

#include <charconv>
#include <cstdio>

#include "archive/archive.h"
#include "base/log.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "env/env.h"
#include "output/output.h"
#include "store/layout.h"
#include "store/stream_store.h"

namespace gapless::collector {
namespace {

constexpr std::string_view kSuffix = ".gapless-archive";

std::string Seq20(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(v));
  return buf;
}

// The end of the newest archive in a stream's folder: where the next one starts.
uint64_t ArchivedUpTo(const std::string& folder) {
  uint64_t upto = 0;
  auto names = env::Env::Posix()->GetChildren(folder);  // none yet: the folder is new
  for (const std::string& name : names.ok() ? *names : std::vector<std::string>{}) {
    // <20 digits>-<20 digits>.gapless-archive
    if (name.size() != 41 + kSuffix.size() || name.substr(41) != kSuffix || name[20] != '-') {
      continue;
    }
    uint64_t to = 0;
    const char* begin = name.data() + 21;
    auto [end, err] = std::from_chars(begin, begin + 20, to);
    if (err != std::errc() || end != begin + 20) continue;  // not ours
    upto = std::max(upto, to);
  }
  return upto;
}

}  // namespace

StatusOr<std::unique_ptr<Archiving>> Archiving::Start(const std::string& data_dir,
                                                      const std::string& signing_key,
                                                      const std::string& verifier_key,
                                                      const ArchiveDestination& dest,
                                                      alert::Alerts* alerts) {
  if (dest.dir.empty()) return InvalidArgumentError("archive: dir is required");
  for (const std::string& r : dest.recipients) {
    if (auto k = archive::ParseRecipient(r); !k.ok()) {
      return InvalidArgumentError("archive: recipient " + r + ": " + k.status().message());
    }
  }
  if (!dest.recipients.empty()) {
    if (dest.identity.empty()) {
      return InvalidArgumentError(
          "archive: with recipients, give identity (one recipient's identity file): every "
          "archive is verified after it is written, which needs to decrypt it");
    }
    if (auto id = archive::Identity::Load(dest.identity); !id.ok()) {
      return InvalidArgumentError("archive: identity: " + id.status().message());
    }
  }
  if (auto v = checkpoint::ParseVerifierKey(verifier_key); !v.ok()) {
    return InvalidArgumentError("archive: " + v.status().message());
  }
  std::unique_ptr<Archiving> a(new Archiving);
  a->alerts_ = alerts;
  a->data_dir_ = data_dir;
  a->signing_key_ = signing_key;
  a->verifier_key_ = verifier_key;
  a->dest_ = dest;
  a->worker_ = std::make_unique<PeriodicWorker>(
      PeriodicWorker::Options{.interval_ms = dest.interval_ms, .final_round = true},
      [raw = a.get()](bool stopping) { raw->Round(/*final=*/stopping); });
  return a;
}

Archiving::~Archiving() { Stop(); }

void Archiving::Stop() {
  if (worker_ != nullptr) worker_->Stop();
}

ArchivingStats Archiving::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

void Archiving::RunOnce() { Round(/*final=*/false); }

void Archiving::Round(bool final) {
  MutexLock round(&round_mu_);
  std::vector<std::string> errors;
  uint64_t archives = 0, records = 0;
  // Never made here: a missing directory is an unmounted volume, not one to create.
  if (!env::Env::Posix()->GetChildren(dest_.dir).ok()) {
    errors.push_back("the archive directory " + dest_.dir +
                     " does not exist (is the volume mounted?); nothing archived");
  } else if (auto streams = store::Layout(data_dir_).ListStreams(env::Env::Posix());
             !streams.ok()) {
    // No streams/ yet: nothing stored, nothing to archive.
    if (streams.status().code() != StatusCode::kNotFound)
      errors.push_back(streams.status().message());
  } else {
    for (const store::StreamRef& stream : *streams) {
      uint64_t n = 0;
      Status s = ArchiveStream(stream.agent, stream.epoch, stream.dir, final, &n);
      if (!s.ok()) {
        errors.push_back(s.message());
      } else if (n > 0) {
        ++archives;
        records += n;
      }
    }
  }
  for (const std::string& e : errors) LogError("archive: " + e);
  if (alerts_ != nullptr && !errors.empty()) {
    alerts_->Fire("archive_failed", dest_.dir, "critical", errors.back(),
                  {{"errors_this_round", std::to_string(errors.size())}});
  } else if (alerts_ != nullptr) {
    alerts_->Resolve("archive_failed", dest_.dir, "archives are written and verified again");
  }
  MutexLock lock(&mu_);
  stats_.archives += archives;
  stats_.records += records;
  if (!errors.empty()) {
    ++stats_.failed;
    stats_.last_error = errors.back();
  }
}

Status Archiving::ArchiveStream(const std::string& agent, const std::string& epoch,
                                const std::string& stream_dir, bool final, uint64_t* records) {
  ASSIGN_OR_RETURN(uint64_t signed_size, output::LastSignedSize(env::Env::Posix(), stream_dir));
  env::Env* env = env::Env::Posix();
  const std::string folder = env::JoinPath(env::JoinPath(dest_.dir, agent), epoch);
  const uint64_t from = ArchivedUpTo(folder);
  const uint64_t want = final ? 1 : std::max<uint64_t>(dest_.min_records, 1);
  if (signed_size < from + want) return Status::Ok();
  if (Status s = env->CreateDir(folder); !s.ok()) {
    return Status(s.code(), "cannot make " + folder + ": " + s.message());
  }
  const std::string path =
      env::JoinPath(folder, Seq20(from) + "-" + Seq20(signed_size) + std::string(kSuffix));
  // Written under a staging name and renamed only once it verified, so a crash between
  // writing and verifying never leaves an unverified archive that counts as progress.
  const std::string staged = path + ".unverified";
  // Left by a crash in an earlier round, if there: removed (a missing file is no error).
  static_cast<void>(env->RemoveFile(staged + ".partial"));
  static_cast<void>(env->RemoveFile(staged));

  archive::ExportOptions o;
  o.data_dir = data_dir_;
  o.streams = {agent + "/" + epoch};
  o.from_seq = from;
  o.to_seq = signed_size;
  o.out = staged;
  o.signing_key = signing_key_;
  for (const std::string& r : dest_.recipients) o.recipients.push_back(*archive::ParseRecipient(r));
  auto written = archive::Export(o);
  if (!written.ok()) {
    static_cast<void>(env->RemoveFile(staged + ".partial"));
    return Status(written.status().code(), "writing " + path + ": " + written.status().message());
  }
  if (after_write_for_test) after_write_for_test(staged);

  // It counts only once it verifies as an auditor would verify it.
  std::optional<archive::Identity> identity;
  if (!dest_.identity.empty()) identity = *archive::Identity::Load(dest_.identity);
  auto report = archive::VerifyArchive(staged, *checkpoint::ParseVerifierKey(verifier_key_),
                                       identity ? &*identity : nullptr);
  std::string why;
  if (!report.ok()) {
    why = report.status().message();
  } else if (!report->sealed || report->verdict == verify::Verdict::kTampered ||
             report->streams.size() != 1 || report->streams[0].from_seq != from ||
             report->streams[0].to_seq != signed_size) {
    why = "it does not verify";
    if (!report->problems.empty()) {
      why = report->problems.front();
    } else if (!report->streams.empty() && !report->streams[0].report.problems.empty()) {
      why = report->streams[0].report.problems.front();
    }
  }
  if (!why.empty()) {
    if (!env->RenameFile(staged, path + ".failed").ok()) static_cast<void>(env->RemoveFile(staged));
    return DataLossError(path + " failed verification after it was written (" + why +
                         "); kept as .failed, the range is tried again next round");
  }
  if (Status s = env->RenameFile(staged, path); !s.ok()) {
    return Status(s.code(), "cannot rename the verified " + staged + ": " + s.message());
  }
  if (Status s = env->SyncDir(folder); !s.ok()) {
    return Status(s.code(), "cannot sync " + folder + ": " + s.message());
  }
  *records = written->records;
  LogInfo("archive: wrote and verified " + path + " (" + std::to_string(written->records) +
          " records)");
  return Status::Ok();
}

}  // namespace gapless::collector
