// Fuzzes the query's segment index parser (src/query/segment_index.h): index files are
// derived state a query reads from disk, and a damaged one must be an error (the segment
// is then read and the index rebuilt), never a crash. Property: what parses encodes to
// text that parses to the same summary.
#include <cstddef>
#include <cstdint>
#include <string>

#include "query/segment_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto s = gapless::query::DecodeSummary(in);
  if (!s.ok()) return 0;
  auto again = gapless::query::DecodeSummary(gapless::query::EncodeSummary(*s));
  if (!again.ok() || again->segment_bytes != s->segment_bytes || again->first_seq != s->first_seq ||
      again->end_seq != s->end_seq || again->min_time != s->min_time ||
      again->max_time != s->max_time || again->all_sources != s->all_sources ||
      again->sources != s->sources || again->open != s->open || again->tail_crc != s->tail_crc) {
    __builtin_trap();
  }
  return 0;
}
