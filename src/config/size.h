// Small helpers shared by the configuration parsers, without TOML in the header.
//
// Thread contract: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace gapless::config {

// "64KiB", "1 GiB", "500MB", "4096" → bytes.
StatusOr<uint64_t> ParseSize(std::string_view text);

// Which gapless configuration a file is: a collector's when it has a top-level
// [collector] table, an agent's otherwise (also when it is not valid TOML, so that the
// agent parser reports the syntax error).
enum class ConfigKind { kAgent, kCollector };
ConfigKind DetectConfigKind(std::string_view toml_text);

// This machine's host name, or "localhost".
std::string HostName();

}  // namespace gapless::config
