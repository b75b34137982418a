// Fuzzes the event record decoder (spool payloads are read back by senders and tools).
// Whatever decodes must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "event/event.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  gapless::event::Event e;
  if (!gapless::event::DecodeEvent(in, &e).ok()) return 0;
  (void)gapless::event::DescribeEvent(e);
  std::string again;
  gapless::event::EncodeEvent(e, &again);
  // A message stored on its own that happens to be a sub-range of raw re-encodes as a
  // range: both decode to the same event, so compare decoded forms.
  gapless::event::Event d;
  if (!gapless::event::DecodeEvent(again, &d).ok()) __builtin_trap();
  if (d.raw != e.raw || d.message != e.message || d.source != e.source ||
      d.fields.size() != e.fields.size() || d.flags != e.flags) {
    __builtin_trap();
  }
  return 0;
}
