#include "collector/archiving.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "archive/archive.h"
#include "base/log.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/note.h"
#include "env/env.h"
#include "store/stream_store.h"

namespace gapless::collector {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSuffix = ".gapless-archive";

std::string Seq20(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(v));
  return buf;
}

// The end of the newest archive in a stream's folder: where the next one starts.
uint64_t ArchivedUpTo(const fs::path& folder) {
  uint64_t upto = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename();
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

StatusOr<uint64_t> SignedSize(const std::string& stream_dir) {
  std::string last;
  RETURN_IF_ERROR(store::ForEachCheckpoint(env::Env::Posix(), stream_dir,
                                           [&](std::string_view n) { last = n; }));
  if (last.empty()) return uint64_t{0};
  ASSIGN_OR_RETURN(checkpoint::Note note, checkpoint::ParseNote(last));
  ASSIGN_OR_RETURN(checkpoint::Checkpoint cp, checkpoint::ParseCheckpoint(note.text));
  return cp.size;
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
  a->thread_ = std::thread([raw = a.get()] { raw->Loop(); });
  return a;
}

Archiving::~Archiving() { Stop(); }

void Archiving::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

ArchivingStats Archiving::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Archiving::RunOnce() { Round(/*final=*/false); }

void Archiving::Loop() {
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(dest_.interval_ms), [&] { return stop_; });
      stopping = stop_;
    }
    Round(/*final=*/stopping);
    if (stopping) return;
  }
}

void Archiving::Round(bool final) {
  std::lock_guard<std::mutex> round(round_mu_);
  std::error_code ec;
  std::vector<std::string> errors;
  uint64_t archives = 0, records = 0;
  if (!fs::is_directory(dest_.dir, ec)) {
    errors.push_back("the archive directory " + dest_.dir +
                     " does not exist (is the volume mounted?); nothing archived");
  } else {
    for (const auto& a : fs::directory_iterator(fs::path(data_dir_) / "streams", ec)) {
      for (const auto& e : fs::directory_iterator(a.path(), ec)) {
        uint64_t n = 0;
        Status s = ArchiveStream(a.path().filename(), e.path().filename(), e.path(), final, &n);
        if (!s.ok()) {
          errors.push_back(s.message());
        } else if (n > 0) {
          ++archives;
          records += n;
        }
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
  std::lock_guard<std::mutex> lock(mu_);
  stats_.archives += archives;
  stats_.records += records;
  if (!errors.empty()) {
    ++stats_.failed;
    stats_.last_error = errors.back();
  }
}

Status Archiving::ArchiveStream(const std::string& agent, const std::string& epoch,
                                const std::string& stream_dir, bool final, uint64_t* records) {
  ASSIGN_OR_RETURN(uint64_t signed_size, SignedSize(stream_dir));
  const fs::path folder = fs::path(dest_.dir) / agent / epoch;
  const uint64_t from = ArchivedUpTo(folder);
  const uint64_t want = final ? 1 : std::max<uint64_t>(dest_.min_records, 1);
  if (signed_size < from + want) return Status::Ok();
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) return UnavailableError("cannot make " + folder.string() + ": " + ec.message());
  const std::string path =
      (folder / (Seq20(from) + "-" + Seq20(signed_size) + std::string(kSuffix))).string();
  // Written under a staging name and renamed only once it verified, so a crash between
  // writing and verifying never leaves an unverified archive that counts as progress.
  const std::string staged = path + ".unverified";
  fs::remove(staged + ".partial", ec);  // left by a crash in an earlier round
  fs::remove(staged, ec);

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
    fs::remove(staged + ".partial", ec);
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
    fs::rename(staged, path + ".failed", ec);
    if (ec) fs::remove(staged, ec);
    return DataLossError(path + " failed verification after it was written (" + why +
                         "); kept as .failed, the range is tried again next round");
  }
  if (Status s = env::Env::Posix()->RenameFile(staged, path); !s.ok()) {
    return Status(s.code(), "cannot rename the verified " + staged + ": " + s.message());
  }
  if (Status s = env::Env::Posix()->SyncDir(folder.string()); !s.ok()) {
    return Status(s.code(), "cannot sync " + folder.string() + ": " + s.message());
  }
  *records = written->records;
  LogInfo("archive: wrote and verified " + path + " (" + std::to_string(written->records) +
          " records)");
  return Status::Ok();
}

}  // namespace gapless::collector
