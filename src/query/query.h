// Query: find stored records by what they say (issue 17) — the library behind
// `gapless query` and, later, the console. It reads a collector's store only through the
// store reader (store/reader.h), so it works on a live collector's store without stopping
// it, and never writes.
//
// A Filter combines (all must hold):
//   time       [from, to) of the record's time: its event time when the message carried
//              one, else when the agent read it (observed);
//   agent      fnmatch globs over the agent id; epoch: one stream's epoch (hex);
//   source     fnmatch globs over the event's source ("file:/var/log/auth.log", ...);
//   host, app  exact;
//   severity   at least / at most as severe as (syslog 0 emerg .. 7 debug); a record
//              without a severity matches neither bound;
//   field      each key=value present among the structured fields;
//   grep       a POSIX extended regular expression searched in the original bytes (raw);
//   seq        an inclusive range within each selected stream.
// Only DATA records are returned (declared losses are `gapless gaps`' business). A payload
// that is not an event matches only filters that need no event field (it has no time).
//
// Order: streams by (agent, epoch), records by seq; reverse: the exact opposite (newest
// seq first, the last stream first). Thread contract: Run is re-entrant; a Matcher is
// immutable after Make.
#pragma once

#include <regex.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "archive/archive.h"
#include "base/sha256.h"
#include "base/status.h"
#include "env/env.h"
#include "event/event.h"
#include "proof/prover.h"
#include "spool/spool_format.h"
#include "store/layout.h"

namespace gapless::query {

// A time as given on a command line: RFC 3339 ("2026-11-22T02:00:00Z", an offset, a
// fraction), unix seconds, "now", or relative to now ("-2h", "-30m", "-45s", "-7d",
// "+1h"). kInvalidArgument naming the accepted forms otherwise.
StatusOr<int64_t> ParseTime(std::string_view text, int64_t now_unix_ns);
// A syslog severity: a name ("emerg", "alert", "crit", "err"/"error", "warning"/"warn",
// "notice", "info", "debug") or a digit 0..7.
StatusOr<uint8_t> ParseSeverity(std::string_view text);
// "A..B" (inclusive), "A.." (from A) or "A" (just A).
StatusOr<std::pair<uint64_t, uint64_t>> ParseSeqRange(std::string_view text);

struct Filter {
  std::optional<int64_t> from_ns, to_ns;
  std::vector<std::string> agents;      // globs; empty: every agent
  std::string epoch;                    // empty: every epoch
  std::vector<std::string> sources;     // globs; empty: every source
  std::string host, app;                // empty: any
  std::optional<uint8_t> min_severity;  // at least this severe (severity <= it)
  std::optional<uint8_t> max_severity;  // at most this severe (severity >= it)
  std::vector<std::pair<std::string, std::string>> fields;
  std::string grep;  // POSIX ERE; empty: none
  uint64_t seq_first = 0, seq_last = UINT64_MAX;
};

// A Filter made ready to apply (the regex compiled).
class Matcher {
 public:
  // kInvalidArgument with the regex error for a grep that does not compile.
  static StatusOr<std::unique_ptr<Matcher>> Make(Filter f);
  ~Matcher();
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;

  const Filter& filter() const { return f_; }
  bool StreamSelected(const store::StreamRef& s) const;
  // e: the decoded event, or null for a payload that is not one (raw = the payload).
  bool Matches(uint64_t seq, const event::Event* e, std::string_view raw) const;
  // The time a record is filtered by: the event time if parsed, else observed.
  static int64_t TimeOf(const event::Event& e);

 private:
  explicit Matcher(Filter f) : f_(std::move(f)) {}
  Filter f_;
  bool has_re_ = false;
  // The grep when it is a plain string (no unescaped metacharacter; \. for a dot): found
  // with memmem instead of regexec, the same answer several times faster.
  std::optional<std::string> literal_;
  regex_t re_{};
};

struct Match {
  const store::StreamRef* stream = nullptr;
  uint64_t seq = 0;
  spool::FrameType type = spool::FrameType::kData;
  std::string_view payload;             // valid during the callback only
  const event::Event* event = nullptr;  // null: the payload is not an event
  Hash256 leaf{};                       // the record's RFC 9162 leaf
};

struct RunOptions {
  uint64_t limit = 0;  // 0: every match
  bool reverse = false;
  // Keep reading records (and streams) stored after the start until stop() is true,
  // checking every poll_ms; not with reverse.
  bool follow = false;
  std::function<bool()> stop;
  int64_t poll_ms = 200;
};

struct RunStats {
  uint64_t streams = 0;  // selected
  // Segments the index showed cannot match, not read at all (a newest one whose open
  // summary covers all it holds included).
  uint64_t segments_skipped = 0;
  uint64_t indexes_written = 0;       // summaries written for segments read to their end
  uint64_t scanned = 0;               // records read
  uint64_t matched = 0;               // passed to emit
  std::vector<std::string> warnings;  // damage skipped, unreadable streams
};

// With a time or source filter, segments whose index (query/segment_index.h) shows they
// cannot match are skipped, and so are the first bytes of a newest segment its open
// summary covers; a segment read to its end gets its index written (or rewritten, when it
// was damaged or stale: a warning; the newest an open one). An index that cannot be
// written is no error (a read-only store is scanned).
// Every match of the filter in data_dir's store, in order (see above), to emit; stops at
// the limit or when emit returns false. A stream that cannot be read or holds damage is
// a warning, the others are still read; an error only when the store itself cannot be
// listed.
Status Run(env::Env* env, const std::string& data_dir, const Matcher& m, const RunOptions& o,
           const std::function<bool(const Match&)>& emit, RunStats* stats);

// The same over an archive file (docs/formats/archive.md), decrypted with identity when it
// is encrypted: its records are matched as archive::VerifyArchive reads and checks them,
// so *verified tells whether what was printed comes from an intact, sealed archive (with
// key; without, the signatures are not checked and verified's problems say so). Order: the
// archive's (streams as exported, by seq); reverse: the exact opposite, holding the
// matches (at most limit of them) in memory. Reaching the limit stops the reading:
// verified->stopped. No follow, no index. An error only when the file cannot be opened,
// is not an archive or cannot be decrypted.
Status RunArchive(const std::string& path, const archive::Identity* identity,
                  const std::optional<checkpoint::Verifier>& key, const Matcher& m,
                  const RunOptions& o, const std::function<bool(const Match&)>& emit,
                  RunStats* stats, archive::ArchiveReport* verified);

// Brings the store's query index up to date: writes the summary of every segment that has
// none yet, and extends the open summary of each newest segment, reading only the bytes no
// summary covers (a query whose filter cannot match anything, so every intact summary is
// skipped). The collector runs it every index_interval_seconds, so a time-bounded query
// finds the index there instead of scanning the store first. Readers' warnings (damage)
// are in the stats.
// state: kept by the caller from round to round (the collector's indexer thread): per
// stream, the base of its newest segment when last indexed. Every segment below it was
// sealed then and read or skipped in that round, so the next round opens the stream at
// that segment and reads no older summary: a round costs one directory listing and the
// newest segment's summary per stream, not one file per segment. Null: every summary is
// looked at (what a fresh start does).
struct IndexerState {
  std::map<std::string, uint64_t> indexed_below;  // "agent/epoch" -> segment base
};
StatusOr<RunStats> IndexStore(env::Env* env, const std::string& data_dir,
                              IndexerState* state = nullptr);

// The receipt (issue 17): `object`, one JSON object (a result in the json, ecs or ocsf
// shape), gets a member "gapless.proof" holding the record's inclusion proof against the
// stream's latest signed checkpoint — the document of docs/formats/proof.md, on one line,
// checked before it is added and checkable offline with `gapless verify-proof` — or
// "gapless.proof_error" with the reason there is none (not signed yet, altered store).
// An object that does not end in '}' is left as it is.
void AddReceipt(proof::Prover* prover, const Match& m, std::string* object);

}  // namespace gapless::query
