#include "store/layout.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "base/sha256.h"
#include "store/hash_levels.h"

namespace gapless::store {
namespace {

// Format stability: every name in this block is on disk in stores that exist. Never
// rename one (see layout.h).
constexpr char kFormatFile[] = "STORE_FORMAT";
constexpr char kFormatMagic[] = "gapless-store ";
constexpr char kStreamsDir[] = "streams";
constexpr char kCollectorKeyFile[] = "collector.key";
constexpr char kCollectorVerifierKeyFile[] = "collector.vkey";
constexpr char kLedgerFile[] = "ledger.db";
constexpr char kAlertJournalFile[] = "alerts.jsonl";
constexpr char kLeavesFile[] = "leaves";
constexpr char kLevelFilePrefix[] = "level-";
constexpr char kGapsFile[] = "gaps";
constexpr char kEvidenceFile[] = "evidence.seg";
constexpr char kFlaggedFile[] = "FLAGGED";
constexpr char kOutputsDir[] = "outputs";
constexpr char kCursorSuffix[] = ".cursor";
constexpr char kRejectedSuffix[] = ".rejected";
constexpr char kCheckpointsFile[] = "checkpoints";
constexpr char kWitnessedFile[] = "witnessed";
constexpr char kAgentCheckpointsFile[] = "agent-checkpoints";

// The names of dir's entries that are directories themselves, sorted.
StatusOr<std::vector<std::string>> SubDirs(env::Env* env, const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, env->GetChildren(dir));
  std::vector<std::string> out;
  for (std::string& n : names) {
    // Listing a plain file fails: that is how an Env tells a directory.
    if (env->GetChildren(env::JoinPath(dir, n)).ok()) out.push_back(std::move(n));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The version STORE_FORMAT names; 1 when the file is missing (stores from before it).
StatusOr<uint32_t> ReadFormat(env::Env* env, const std::string& path) {
  if (!env->FileExists(path)) return 1u;
  ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env, path));
  const std::string_view magic = kFormatMagic;
  std::string_view digits = text;
  while (!digits.empty() && (digits.back() == '\n' || digits.back() == ' '))
    digits.remove_suffix(1);
  uint32_t v = 0;
  bool ok = digits.substr(0, magic.size()) == magic;
  if (ok) {
    digits.remove_prefix(magic.size());
    const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    ok = ec == std::errc() && p == digits.data() + digits.size() && v != 0;
  }
  if (!ok) {
    return DataLossError(path + " is not a store format file (expected \"" + std::string(magic) +
                         "<version>\"); restore it from a backup or write \"" + std::string(magic) +
                         std::to_string(kStoreFormatVersion) + "\"");
  }
  return v;
}

}  // namespace

std::string EpochHex(const spool::Epoch& epoch) { return HexEncode(epoch.data(), epoch.size()); }

std::string StreamFiles::Segment(uint64_t base_seq) const {
  return env::JoinPath(dir_, spool::SegmentFileName(base_seq));
}
std::string StreamFiles::Leaves() const { return env::JoinPath(dir_, kLeavesFile); }
std::string StreamFiles::Level(int tier) const {
  return env::JoinPath(dir_, kLevelFilePrefix + std::to_string(tier * kTileHeight));
}
std::string StreamFiles::Gaps() const { return env::JoinPath(dir_, kGapsFile); }
std::string StreamFiles::Evidence() const { return env::JoinPath(dir_, kEvidenceFile); }
std::string StreamFiles::Flagged() const { return env::JoinPath(dir_, kFlaggedFile); }
std::string StreamFiles::Notes(NoteLog log) const { return env::JoinPath(dir_, NoteLogName(log)); }
std::string_view StreamFiles::NoteLogName(NoteLog log) {
  switch (log) {
    case NoteLog::kCheckpoints:
      return kCheckpointsFile;
    case NoteLog::kWitnessed:
      return kWitnessedFile;
    case NoteLog::kAgentCheckpoints:
      return kAgentCheckpointsFile;
  }
  return kCheckpointsFile;
}

bool ParseSegmentName(std::string_view name, uint64_t* base_seq) {
  return spool::ParseSegmentFileName(name, base_seq);
}

StatusOr<std::map<uint64_t, std::string>> ListSegments(env::Env* env, const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, env->GetChildren(dir));
  std::map<uint64_t, std::string> segments;
  for (const std::string& name : names) {
    uint64_t base = 0;
    if (ParseSegmentName(name, &base)) segments[base] = name;
  }
  return segments;
}

std::string Layout::StreamsDir() const { return env::JoinPath(data_dir_, kStreamsDir); }
std::string Layout::AgentDir(std::string_view agent) const {
  return env::JoinPath(StreamsDir(), agent);
}
std::string Layout::StreamDir(std::string_view agent, std::string_view epoch_hex) const {
  return env::JoinPath(AgentDir(agent), epoch_hex);
}
std::string Layout::CollectorKey() const { return env::JoinPath(data_dir_, kCollectorKeyFile); }
std::string Layout::CollectorVerifierKey() const {
  return env::JoinPath(data_dir_, kCollectorVerifierKeyFile);
}
std::string Layout::Ledger() const { return env::JoinPath(data_dir_, kLedgerFile); }
std::string Layout::AlertJournal() const { return env::JoinPath(data_dir_, kAlertJournalFile); }
std::string Layout::FormatFile() const { return env::JoinPath(data_dir_, kFormatFile); }
std::string Layout::IndexDir() const { return env::JoinPath(data_dir_, "index"); }
std::string Layout::IndexStreamDir(std::string_view agent, std::string_view epoch_hex) const {
  return env::JoinPath(env::JoinPath(IndexDir(), agent), epoch_hex);
}
std::string Layout::SegmentIndex(std::string_view agent, std::string_view epoch_hex,
                                 uint64_t base_seq) const {
  return env::JoinPath(IndexStreamDir(agent, epoch_hex), spool::SegmentFileName(base_seq) + ".idx");
}
std::string Layout::OutputsDir() const { return env::JoinPath(data_dir_, kOutputsDir); }
std::string Layout::OutputDir(std::string_view output) const {
  return env::JoinPath(OutputsDir(), output);
}
std::string Layout::OutputDescription(std::string_view output) const {
  return env::JoinPath(OutputDir(output), "output");
}
std::string Layout::OutputAgentDir(std::string_view output, std::string_view agent) const {
  return env::JoinPath(OutputDir(output), agent);
}
std::string Layout::OutputCursor(std::string_view output, std::string_view agent,
                                 std::string_view epoch_hex) const {
  return env::JoinPath(OutputAgentDir(output, agent), std::string(epoch_hex) + kCursorSuffix);
}
std::string Layout::OutputRejected(std::string_view output, std::string_view agent,
                                   std::string_view epoch_hex) const {
  return env::JoinPath(OutputAgentDir(output, agent), std::string(epoch_hex) + kRejectedSuffix);
}

StatusOr<std::vector<StreamRef>> Layout::ListStreams(env::Env* env) const {
  auto agents = SubDirs(env, StreamsDir());
  if (!agents.ok()) {
    return NotFoundError(data_dir_ + " is not a collector data directory (no " + kStreamsDir +
                         "/): " + agents.status().message());
  }
  std::vector<StreamRef> out;
  for (const std::string& agent : *agents) {
    ASSIGN_OR_RETURN(std::vector<std::string> epochs, SubDirs(env, AgentDir(agent)));
    for (std::string& epoch : epochs) {
      std::string dir = StreamDir(agent, epoch);
      out.push_back(StreamRef{agent, std::move(epoch), std::move(dir)});
    }
  }
  return out;
}

StatusOr<std::vector<std::string>> Layout::ListEpochs(env::Env* env, std::string_view agent) const {
  auto epochs = SubDirs(env, AgentDir(agent));
  if (!epochs.ok() || epochs->empty()) {
    return NotFoundError("no stream of agent \"" + std::string(agent) + "\" in " + data_dir_);
  }
  return epochs;
}

Status Layout::CheckFormat(env::Env* env) const {
  ASSIGN_OR_RETURN(uint32_t v, ReadFormat(env, FormatFile()));
  if (v != kStoreFormatVersion) {
    return FailedPreconditionError(data_dir_ + " holds a store of format " + std::to_string(v) +
                                   "; this gapless reads format " +
                                   std::to_string(kStoreFormatVersion) +
                                   ": use the gapless release that wrote it");
  }
  return Status::Ok();
}

Status Layout::EnsureFormat(env::Env* env) const {
  RETURN_IF_ERROR(CheckFormat(env));
  if (env->FileExists(FormatFile())) return Status::Ok();
  RETURN_IF_ERROR(env->CreateDir(data_dir_));
  return env::WriteFileAtomically(env, FormatFile(),
                                  kFormatMagic + std::to_string(kStoreFormatVersion) + "\n");
}

}  // namespace gapless::store
