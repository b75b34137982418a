// Fuzzes the alert journal line parser (src/alert): the journal is re-read at every start
// and by every delivery thread, and a damaged line must be an error, never a crash.
// Property: a line that parses formats to a line that parses to the same event.
#include <cstddef>
#include <cstdint>
#include <string>

#include "alert/alert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto e = gapless::alert::ParseEvent(in);
  if (!e.ok()) return 0;
  auto again = gapless::alert::ParseEvent(gapless::alert::FormatEvent(*e));
  if (!again.ok() || again->id != e->id || again->name != e->name || again->subject != e->subject ||
      again->severity != e->severity || again->firing != e->firing ||
      again->summary != e->summary || again->evidence != e->evidence ||
      again->started_ns != e->started_ns || again->at_ns != e->at_ns) {
    __builtin_trap();
  }
  return 0;
}
