// `gapless query`: the records of a collector's store that match a filter
// (src/query/query.h), printed as text, NDJSON, raw bytes, ECS or OCSF. Readable while the
// collector runs. docs/query.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gapless::cli {

struct QueryFlags {
  std::string data_dir;
  std::string from, to;  // ParseTime forms; empty: unbounded
  std::vector<std::string> agents, sources, fields;
  std::string epoch, host, app, severity, max_severity, grep, seq;
  std::string format = "text";  // text | ndjson | raw | ecs | ocsf
  uint64_t limit = 0;
  bool reverse = false, count = false, follow = false;
  bool with_proof = false;  // ndjson: each result carries its inclusion proof
};

// Exit status: 0 something matched, 1 nothing matched, 2 bad flags or an unreadable store.
int Query(const QueryFlags& f);

}  // namespace gapless::cli
