// `gapless query`: the records of a collector's store that match a filter
// (src/query/query.h), printed as text, NDJSON, raw bytes, ECS or OCSF. Readable while the
// collector runs. docs/query.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gapless::cli {

struct QueryFlags {
  std::string data_dir;  // a collector's store, or:
  std::string archive;   // an archive file (gapless export)
  std::string identity;  // for an encrypted archive: a recipient's identity file
  std::string key;       // archive: the collector's verifier key the archive is checked with
  std::string from, to;  // ParseTime forms; empty: unbounded
  std::vector<std::string> agents, sources, fields;
  std::string epoch, host, app, severity, max_severity, grep, seq;
  std::string format = "text";  // text | ndjson | raw | ecs | ocsf
  uint64_t limit = 0;
  bool reverse = false, count = false, follow = false;
  bool with_proof = false;  // ndjson: each result carries its inclusion proof
};

// Exit status: 0 something matched, 1 nothing matched, 2 bad flags or an unreadable store
// or archive, 3 the archive failed verification (what was printed is not to be trusted).
int Query(const QueryFlags& f);

// `gapless reconcile`: the stored records in scope against an export of another system
// (src/query/reconcile.h).
struct ReconcileFlags {
  std::string data_dir, against;
  std::string from, to;
  std::vector<std::string> agents;
  std::string format = "auto";  // auto | ndjson | csv
  std::string window = "1h";    // per-window counts (ParseDuration); "0": none
  bool json = false;
};
// Exit status: 0 complete, 1 the export lacks stored records, 2 it holds events the store
// does not know (or altered ones), 3 bad flags or unreadable input.
int ReconcileCommand(const ReconcileFlags& f);

}  // namespace gapless::cli
