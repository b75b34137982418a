#include "config/toml_checker.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>

namespace gapless::config {

StatusOr<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (i == 0 || ec != std::errc()) {
    return InvalidArgumentError("\"" + std::string(text) +
                                "\" is not a size; write e.g. \"64MiB\"");
  }
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit[0] == ' ') unit.remove_prefix(1);
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {{"", 1},
                                                                     {"B", 1},
                                                                     {"KiB", 1ull << 10},
                                                                     {"MiB", 1ull << 20},
                                                                     {"GiB", 1ull << 30},
                                                                     {"TiB", 1ull << 40},
                                                                     {"KB", 1000},
                                                                     {"MB", 1000000},
                                                                     {"GB", 1000000000},
                                                                     {"TB", 1000000000000}};
  for (const auto& [name, mult] : kUnits) {
    if (unit != name) continue;
    if (value > UINT64_MAX / mult)
      return InvalidArgumentError("size \"" + std::string(text) + "\" is too large");
    return value * mult;
  }
  return InvalidArgumentError("unknown unit in \"" + std::string(text) +
                              "\"; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB");
}

StatusOr<toml::table> ParseToml(std::string_view text, const std::string& file_name) {
  // toml++ 3.3 (Debian 12) reaches __builtin_unreachable on some non-ASCII characters
  // outside strings (found by config_fuzzer): undefined behaviour on a bad file. TOML
  // basic strings can spell any character as \uXXXX, so we accept ASCII only.
  int line = 1;
  int column = 1;
  for (char ch : text) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02X",
                    static_cast<unsigned>(static_cast<unsigned char>(ch)));
      return InvalidArgumentError(file_name + ":" + std::to_string(line) + ":" +
                                  std::to_string(column) + ": non-ASCII byte " + hex +
                                  "; configuration files are ASCII: write other characters as "
                                  "\\uXXXX escapes inside \"...\" strings");
    }
    if (ch == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  toml::parse_result parsed = toml::parse(text, file_name);
  if (!parsed) {
    const toml::parse_error& e = parsed.error();
    return InvalidArgumentError(file_name + ":" + std::to_string(e.source().begin.line) + ":" +
                                std::to_string(e.source().begin.column) +
                                ": TOML syntax error: " + std::string(e.description()));
  }
  return std::move(parsed).table();
}

ConfigKind DetectConfigKind(std::string_view toml_text) {
  auto root = ParseToml(toml_text, "-");
  if (root.ok() && root->get("collector") != nullptr) return ConfigKind::kCollector;
  return ConfigKind::kAgent;
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace gapless::config
