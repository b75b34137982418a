// Fuzzes syslog framing (both RFC 6587 framings) and parsing (RFC 5424 and 3164).
// Properties checked, beyond "never crashes":
//   - framing does not depend on how the stream is split into reads;
//   - every frame parses, encodes and decodes back to the same raw bytes and fields.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "event/event.h"
#include "syslog/framer.h"
#include "syslog/syslog_parser.h"

namespace {

using gapless::syslog::Framer;
using gapless::syslog::Framing;

std::vector<std::pair<std::string, uint16_t>> Split(std::string_view in, Framing framing,
                                                    size_t chunk) {
  Framer f(framing, 512);
  std::vector<std::pair<std::string, uint16_t>> out;
  auto sink = [&](const Framer::Frame& fr) { out.emplace_back(fr.bytes, fr.flags); };
  for (size_t i = 0; i < in.size(); i += chunk) f.Feed(in.substr(i, chunk), sink);
  f.Finish(sink);
  return out;
}

void CheckEvent(const std::string& frame) {
  gapless::event::Event e;
  gapless::syslog::FieldStorage storage;
  gapless::syslog::ParseSyslog(frame, 1'700'000'000'000'000'000, &e, &storage);
  if (e.raw != frame) __builtin_trap();
  std::string payload;
  gapless::event::EncodeEvent(e, &payload);
  gapless::event::Event d;
  if (!gapless::event::DecodeEvent(payload, &d).ok()) __builtin_trap();
  if (d.raw != frame || d.message != e.message || d.host != e.host || d.app != e.app ||
      d.fields.size() != e.fields.size() || d.flags != e.flags) {
    __builtin_trap();
  }
  for (size_t i = 0; i < e.fields.size(); ++i) {
    if (d.fields[i].key != e.fields[i].key || d.fields[i].value != e.fields[i].value) {
      __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const auto framing = static_cast<Framing>(data[0] % 3);
  const size_t chunk = 1 + data[1] % 17;
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  const auto whole = Split(in, framing, in.size() + 1);
  if (Split(in, framing, chunk) != whole) __builtin_trap();
  for (const auto& [frame, flags] : whole) {
    if (frame.size() > 512) __builtin_trap();
    CheckEvent(frame);
  }
  // The stream itself as one message too (UDP delivers unframed datagrams).
  CheckEvent(std::string(in));
  return 0;
}
