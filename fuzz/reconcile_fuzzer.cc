// Fuzzes the export parsers of `gapless reconcile` (src/query/reconcile.h): an export comes
// from another system and may be anything; NDJSON or CSV (the first byte decides), its
// malformed lines must be counted, never a crash or an unbounded allocation. The store is
// an empty one in memory, so every event is unknown or malformed: the counts must add up.
#include <cstddef>
#include <cstdint>
#include <string>

#include "env/fault_injection_env.h"
#include "query/reconcile.h"
#include "store/layout.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static gapless::env::FaultInjectionEnv* env = [] {
    auto* e = new gapless::env::FaultInjectionEnv();
    (void)e->CreateDir(gapless::store::Layout("/c").StreamsDir());
    return e;
  }();
  static auto matcher = gapless::query::Matcher::Make({});
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = gapless::query::Reconcile(env, "/c", **matcher, in);
  if (!r.ok()) return 0;  // e.g. an empty CSV
  if (r->unknown + r->malformed + r->altered + r->out_of_scope > r->export_events + r->malformed) {
    __builtin_trap();
  }
  return 0;
}
