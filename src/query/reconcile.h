// Reconcile (issue 17): which of the records the collector stored are missing from an
// export of another system (a SIEM, a data lake, another pipeline), and which events of
// the export the store does not know — the check a customer could not run in 2024.
//
// The export is NDJSON or CSV (with a header row), gzip accepted (ReadExport). Each of its
// events is matched to a stored record:
//   - by provenance when it carries it: gapless.agent, gapless.epoch and gapless.seq
//     (flattened keys, as the json shape writes them, or nested under "gapless" as the
//     ecs and ocsf shapes do; CSV columns of those names); with gapless.leaf the bytes
//     are compared too (a different leaf is an altered event);
//   - otherwise by its text: the values of message, msg, _raw, raw and event.original,
//     each also parsed as syslog (so a reformatted header or timestamp does not defeat the
//     match), trailing whitespace ignored, against each stored record's original bytes
//     and its message. Equal texts are matched to stored records in seq order, one each.
// Texts are compared by a 64-bit hash (FNV-1a of the normalised text): a collision could
// match an event to the wrong record of the same text hash (probability ~n²/2^65).
//
// The report: per stream, the records in scope, those matched, the seq ranges the export
// lacks and the export events beyond the first for one record (duplicates); events the
// store does not know (with their line numbers), events naming records outside the scope,
// altered events, and malformed lines (counted, with line numbers), never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "env/env.h"
#include "query/query.h"

namespace gapless::query {

// The export's bytes, gunzipped when they start with the gzip magic. Refused past
// max_bytes (after decompression) with an error that says so.
StatusOr<std::string> ReadExport(env::Env* env, const std::string& path,
                                 uint64_t max_bytes = 4ull << 30);

enum class ExportFormat { kAuto, kNdjson, kCsv };

// One time window of a stream: the records in scope whose time (event time, else observed)
// falls in [start, start + window), and how many of them the export has.
struct WindowReconcile {
  int64_t start_ns = 0;  // kNoTime: the records that are not events (they have no time)
  uint64_t in_store = 0, matched = 0, missing = 0;
  static constexpr int64_t kNoTime = INT64_MIN;
};

struct StreamReconcile {
  std::string agent, epoch;
  std::vector<WindowReconcile> windows;  // in time order; only windows with records
  uint64_t in_store = 0;                 // records in scope
  uint64_t matched = 0;                  // of them, found in the export
  uint64_t duplicates = 0;               // export events beyond the first for one record
  std::vector<std::pair<uint64_t, uint64_t>> missing;  // inclusive seq ranges
  uint64_t missing_records = 0;
};

struct LineNote {
  uint64_t line = 0;  // 1-based line where the event starts
  std::string what;   // an excerpt, or why it is malformed
};

struct ReconcileReport {
  std::vector<StreamReconcile> streams;
  int64_t window_ns = 0;  // the windows' length; 0: none (one window per stream)
  uint64_t export_events = 0;
  uint64_t unknown = 0;       // events the store does not know
  uint64_t out_of_scope = 0;  // provenance names a stored record outside the scope
  uint64_t altered = 0;       // provenance matches, gapless.leaf does not
  uint64_t malformed = 0;
  std::vector<LineNote> unknown_events, altered_events, malformed_lines;  // first 100 each
  std::vector<std::string> warnings;                                      // from reading the store

  uint64_t missing_records() const;
  // 0 complete, 1 records missing from the export, 2 events the store does not know (or
  // altered ones) — the more suspicious wins.
  int ExitStatus() const;
  std::string Text() const;
  std::string Json() const;
};

// A duration: a count and a unit, "30s", "15m", "1h", "1d"; "0" for none.
StatusOr<int64_t> ParseDuration(std::string_view text);

// scope: which stored records the export should hold (agents, time window, ...).
// window_ns > 0: each stream's counts are also given per window of that length (aligned to
// the unix epoch), so a SIEM that lost one night shows that night.
StatusOr<ReconcileReport> Reconcile(env::Env* env, const std::string& data_dir,
                                    const Matcher& scope, std::string_view export_text,
                                    ExportFormat format = ExportFormat::kAuto,
                                    int64_t window_ns = 0);

}  // namespace gapless::query
