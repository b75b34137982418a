// JSON log ingest: turns an HTTP body of JSON (NDJSON lines, or one JSON array or object)
// into events. docs/formats/http.md has the mapping.
//
// Each JSON value is one event whose raw bytes are exactly the value's text as received.
// An object's well-known members become the event's time, host, app, severity and
// message; every other member is kept as a structured field (strings unescaped, other
// values as their JSON text). A string value is the message itself.
// Nothing is dropped: an NDJSON line that is not valid JSON is kept raw, flagged
// parse_error, and counted; a value longer than max_message_bytes is kept cut, flagged
// truncated, with no fields. Only a JSON (non-NDJSON) body that does not parse is refused
// as a whole (kInvalidArgument, with where and why), since its values cannot be told apart.
//
// Thread contract: a pure function; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "event/event.h"
#include "syslog/syslog_parser.h"

namespace gapless::json {

enum class BodyFormat : uint8_t {
  kNdjson,  // one JSON value per line (application/x-ndjson)
  kJson,    // one array of values, or one value (application/json)
};

struct BodyResult {
  uint64_t parse_errors = 0;  // NDJSON lines kept raw because they are not JSON
  uint64_t truncated = 0;
  std::string first_error;  // "line 3: ..." for the first parse error, if any
};

// Appends one event per JSON value of `body` to *events. Their views point into `body`
// and *storage, which must outlive them. observed_unix_ns is set on every event.
// kInvalidArgument: a kJson body that does not parse; *events is left unchanged.
StatusOr<BodyResult> ParseBody(std::string_view body, BodyFormat format, size_t max_message_bytes,
                               int64_t observed_unix_ns, std::vector<event::Event>* events,
                               syslog::FieldStorage* storage);

}  // namespace gapless::json
