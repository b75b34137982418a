// Layout: the one place that knows how a collector's data directory is laid out. Every
// other module asks it for a path and lists streams through it (and so through Env);
// nothing else spells a store file's name. A layout change is one edit, here.
//
//   <data_dir>/STORE_FORMAT                 "gapless-store <version>\n" (kStoreFormatVersion)
//   <data_dir>/streams/<agent>/<epoch hex>/ one directory per stream (StreamFiles)
//   <data_dir>/collector.key, collector.vkey  the collector's signing key and verifier key
//   <data_dir>/ledger.db                    the collector's account (docs/formats/ledger.md)
//   <data_dir>/alerts.jsonl                 the default alert journal (docs/alerts.md)
//
// Format stability: the names above and in StreamFiles are read by every gapless that
// ever wrote a store, and by auditors years later. Never rename or reuse one; a new file
// gets a new name, and a change to what a file means raises kStoreFormatVersion. A data
// directory without STORE_FORMAT was written before the version existed and is version 1.
// Grammar of each file: docs/formats/store.md.
//
// Thread contract: plain values and functions of their arguments; the listing functions
// read the directory through the Env they are given and may run on any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "env/env.h"
#include "spool/spool_format.h"

namespace gapless::store {

inline constexpr uint32_t kStoreFormatVersion = 1;

// One stream of a data directory.
struct StreamRef {
  std::string agent;
  std::string epoch;  // lower-case hex, as in the directory name
  std::string dir;    // the stream directory
  friend bool operator==(const StreamRef&, const StreamRef&) = default;
};

// "0123…ef" for an epoch, as used in stream directory names.
std::string EpochHex(const spool::Epoch& epoch);

// The files of one stream directory (docs/formats/store.md).
class StreamFiles {
 public:
  explicit StreamFiles(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }

  std::string Segment(uint64_t base_seq) const;  // records from base_seq on
  std::string Leaves() const;                    // 32-byte leaf per seq
  std::string Level(int tier) const;             // perfect-subtree hashes, tier >= 1
  std::string Gaps() const;                      // ranges the agent declared gone
  std::string Evidence() const;                  // equivocating records
  std::string Flagged() const;                   // one line per equivocation

  // The three logs of framed signed notes ("<length>\n<note>").
  enum class NoteLog { kCheckpoints, kWitnessed, kAgentCheckpoints };
  std::string Notes(NoteLog log) const;
  static std::string_view NoteLogName(NoteLog log);  // for messages

 private:
  std::string dir_;
};

// Parses a segment file name of a stream (or spool) directory; false for other names.
bool ParseSegmentName(std::string_view name, uint64_t* base_seq);
// The segment files of a stream directory by base seq (also the spool's naming).
StatusOr<std::map<uint64_t, std::string>> ListSegments(env::Env* env, const std::string& dir);

class Layout {
 public:
  explicit Layout(std::string data_dir) : data_dir_(std::move(data_dir)) {}
  const std::string& data_dir() const { return data_dir_; }

  std::string StreamsDir() const;
  std::string AgentDir(std::string_view agent) const;
  std::string StreamDir(std::string_view agent, std::string_view epoch_hex) const;
  StreamFiles Stream(std::string_view agent, std::string_view epoch_hex) const {
    return StreamFiles(StreamDir(agent, epoch_hex));
  }
  std::string CollectorKey() const;
  std::string CollectorVerifierKey() const;
  std::string Ledger() const;
  std::string AlertJournal() const;
  std::string FormatFile() const;
  // The delivery state of a collector output (output/output.h), apart from the streams
  // (which stay evidence only): outputs/<output>/<agent>/<epoch>.cursor (the next seq to
  // deliver) and .rejected (the records the downstream refused for good, one JSON line
  // each). The output name is checked by output::ValidOutputName.
  // Derived, rebuildable read-side state of `gapless query` (query/segment_index.h):
  // index/<agent>/<epoch>/<segment file name>.idx, one summary per segment, apart from
  // the streams (which stay evidence only); all of it may be deleted.
  std::string IndexDir() const;
  std::string IndexStreamDir(std::string_view agent, std::string_view epoch_hex) const;
  std::string SegmentIndex(std::string_view agent, std::string_view epoch_hex,
                           uint64_t base_seq) const;
  std::string OutputsDir() const;  // one folder per output under it
  std::string OutputDir(std::string_view output) const;
  // outputs/<output>/output: what the output is, written at each start (its type,
  // whether its protocol confirms, the streams it selects), for `gapless outputs`.
  std::string OutputDescription(std::string_view output) const;
  std::string OutputAgentDir(std::string_view output, std::string_view agent) const;
  std::string OutputCursor(std::string_view output, std::string_view agent,
                           std::string_view epoch_hex) const;
  std::string OutputRejected(std::string_view output, std::string_view agent,
                             std::string_view epoch_hex) const;

  // Every stream, sorted by agent then epoch. kNotFound, saying so, when data_dir has
  // no streams/ directory (not a collector data directory, or nothing stored yet).
  StatusOr<std::vector<StreamRef>> ListStreams(env::Env* env) const;
  // The epochs stored for one agent, sorted; kNotFound when the agent has none.
  StatusOr<std::vector<std::string>> ListEpochs(env::Env* env, std::string_view agent) const;

  // For the writer (the collector at start): writes STORE_FORMAT when it is missing.
  // Both fail with kFailedPrecondition when the directory names another version.
  Status EnsureFormat(env::Env* env) const;
  // For readers: OK when STORE_FORMAT is missing (a version 1 store) or says version 1.
  Status CheckFormat(env::Env* env) const;

 private:
  std::string data_dir_;
};

}  // namespace gapless::store
