// A string as a JSON string literal (RFC 8259): quotes, backslashes and control
// characters escaped, everything else (UTF-8 included) kept as is. For the few JSON
// documents gapless writes by hand (HTTP answers, proofs, verify reports).
#pragma once

#include <string>
#include <string_view>

namespace gapless {

inline std::string JsonString(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += "\\u00";
      out += kHex[(c >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace gapless
