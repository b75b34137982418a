// Fuzzes what `gapless query` and `gapless reconcile` parse from their command lines
// (src/query/query.h, reconcile.h): times, severities, seq ranges, durations and the
// --grep pattern. Bad input must be an error that says what to give, never a crash.
// Properties: a seq range that parses is ordered; a duration that parses is not negative;
// a --grep the Matcher takes finds exactly what POSIX regexec finds (the Matcher answers a
// plain string with memmem instead, and must not answer differently).
#include <regex.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "query/query.h"
#include "query/reconcile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  const uint8_t which = data[0];
  const std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  namespace q = gapless::query;
  switch (which % 5) {
    case 0:
      (void)q::ParseTime(in, 1'795'000'000'000'000'000);
      break;
    case 1:
      (void)q::ParseSeverity(in);
      break;
    case 2:
      if (auto r = q::ParseSeqRange(in); r.ok() && r->first > r->second) __builtin_trap();
      break;
    case 3:
      if (auto d = q::ParseDuration(in); d.ok() && *d < 0) __builtin_trap();
      break;
    default: {
      // The pattern, then (after the first NUL) the text it is searched in.
      const size_t nul = in.find('\0');
      if (nul == std::string::npos || nul == 0) return 0;
      const std::string pattern = in.substr(0, nul);
      const std::string text = in.substr(nul + 1);
      // Back-references (a glibc extension) can make regexec exponential: left out, and
      // the text kept short, so the fuzzer spends its time on our code. Patterns whose
      // automata would be huge the Matcher refuses itself (CheckPatternBounds).
      if (text.size() > 512) return 0;
      for (size_t i = 0; i + 1 < pattern.size(); ++i) {
        if (pattern[i] == '\\' && pattern[i + 1] >= '1' && pattern[i + 1] <= '9') return 0;
      }
      q::Filter f;
      f.grep = pattern;
      auto m = q::Matcher::Make(f);
      if (!m.ok()) return 0;  // refused: too big, or not a regular expression
      regex_t re;
      if (::regcomp(&re, pattern.c_str(), REG_EXTENDED | REG_NOSUB) != 0) __builtin_trap();
      regmatch_t range[1];
      range[0].rm_so = 0;
      range[0].rm_eo = static_cast<regoff_t>(text.size());
      const bool want = ::regexec(&re, text.data(), 1, range, REG_STARTEND) == 0;
      ::regfree(&re);
      if ((*m)->Matches(0, nullptr, text) != want) __builtin_trap();
      break;
    }
  }
  return 0;
}
