// Minimal process log: one line per event on stderr, "2026-11-22T12:00:00.123Z LEVEL text".
// Never pass secrets (keys, tokens, passwords) into these.
// Thread contract: safe from any thread; each line is written with one write(2).
#pragma once

#include <string_view>

namespace gapless {

enum class LogLevel { kInfo, kWarning, kError };

void Log(LogLevel level, std::string_view text);
inline void LogInfo(std::string_view text) { Log(LogLevel::kInfo, text); }
inline void LogWarning(std::string_view text) { Log(LogLevel::kWarning, text); }
inline void LogError(std::string_view text) { Log(LogLevel::kError, text); }

}  // namespace gapless
