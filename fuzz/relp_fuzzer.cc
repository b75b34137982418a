// Fuzzes the RELP frame parser (src/relp). Properties checked, beyond "never crashes":
//   - the frames and the error do not depend on how the stream is split into reads;
//   - no frame's data exceeds the limit, and a formatted frame parses back to itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "relp/relp_frame.h"

namespace {

using Parsed = std::vector<std::tuple<uint32_t, std::string, std::string, uint64_t>>;

std::pair<Parsed, std::string> Parse(std::string_view in, size_t chunk) {
  gapless::relp::Parser p(256);
  Parsed out;
  auto sink = [&](const gapless::relp::Frame& f) {
    if (f.data.size() > 256 || f.data.size() > f.data_length) __builtin_trap();
    out.emplace_back(f.txnr, f.command, f.data, f.data_length);
  };
  gapless::Status s;
  for (size_t i = 0; i < in.size() && s.ok(); i += chunk) s = p.Feed(in.substr(i, chunk), sink);
  return {out, s.ok() ? "" : s.message()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t chunk = 1 + data[0] % 13;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto whole = Parse(in, in.size() + 1);
  if (Parse(in, chunk) != whole) __builtin_trap();
  for (const auto& [txnr, command, payload, length] : whole.first) {
    if (payload.size() != length) continue;  // cut frames cannot round-trip
    const auto again = Parse(gapless::relp::FormatFrame(txnr, command, payload), 7);
    if (!again.second.empty() || again.first.size() != 1 ||
        std::get<2>(again.first[0]) != payload || std::get<1>(again.first[0]) != command) {
      __builtin_trap();
    }
  }
  return 0;
}
