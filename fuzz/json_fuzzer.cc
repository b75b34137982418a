// Fuzzes JSON log ingest (src/json), the parser behind the HTTP input. Properties checked,
// beyond "never crashes":
//   - NDJSON never refuses a body and keeps one event per non-blank line;
//   - every event's raw bytes lie inside the body (kept exactly as received), cut to the
//     limit at most;
//   - every event encodes and decodes back to the same raw bytes, message and fields.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "event/event.h"
#include "json/json_events.h"

namespace {

using gapless::event::Event;

void CheckEvent(const Event& e, std::string_view body, size_t max) {
  if (e.raw.size() > max) __builtin_trap();
  if (!e.raw.empty() &&
      (e.raw.data() < body.data() || e.raw.data() + e.raw.size() > body.data() + body.size())) {
    __builtin_trap();
  }
  std::string payload;
  gapless::event::EncodeEvent(e, &payload);
  Event d;
  if (!gapless::event::DecodeEvent(payload, &d).ok()) __builtin_trap();
  if (d.raw != e.raw || d.message != e.message || d.fields.size() != e.fields.size()) {
    __builtin_trap();
  }
}

size_t NonBlankLines(std::string_view body) {
  size_t n = 0;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    for (size_t i = pos; i < end; ++i) {
      const char c = body[i];
      if (c != ' ' && c != '\t' && c != '\r') {
        ++n;
        break;
      }
    }
    pos = end + 1;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool ndjson = data[0] & 1;
  const size_t max = (data[0] & 2) ? 16 : 4096;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<Event> events;
  gapless::syslog::FieldStorage storage;
  auto r = gapless::json::ParseBody(
      body, ndjson ? gapless::json::BodyFormat::kNdjson : gapless::json::BodyFormat::kJson, max, 1,
      &events, &storage);
  if (ndjson && (!r.ok() || events.size() != NonBlankLines(body))) __builtin_trap();
  if (!r.ok() && !events.empty()) __builtin_trap();
  for (const Event& e : events) CheckEvent(e, body, max);
  return 0;
}
