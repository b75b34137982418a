#include "query/segment_index.h"

#include <charconv>
#include <cstdio>
#include <vector>

#include "base/crc32c.h"

namespace gapless::query {
namespace {

constexpr std::string_view kMagic = "gapless-segment-index/1";

std::string Hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// Splits at '\n'; the last piece (after the final newline) must be empty.
bool Lines(std::string_view text, std::vector<std::string_view>* out) {
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    if (eol == std::string_view::npos) return false;
    out->push_back(text.substr(0, eol));
    text.remove_prefix(eol + 1);
  }
  return true;
}

template <typename T>
bool Number(std::string_view s, T* v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// "<key> <a> <b>" into a, b.
template <typename T>
bool Pair(std::string_view line, std::string_view key, T* a, T* b) {
  if (line.substr(0, key.size() + 1) != std::string(key) + " ") return false;
  line.remove_prefix(key.size() + 1);
  const size_t sp = line.find(' ');
  return sp != std::string_view::npos && Number(line.substr(0, sp), a) &&
         Number(line.substr(sp + 1), b);
}

}  // namespace

std::string EncodeSummary(const SegmentSummary& s) {
  std::string t = std::string(kMagic) + "\n";
  t += "size " + std::to_string(s.segment_bytes) + "\n";
  t += "seqs " + std::to_string(s.first_seq) + " " + std::to_string(s.end_seq) + "\n";
  t += "time " + std::to_string(s.min_time) + " " + std::to_string(s.max_time) + "\n";
  t += "sources " + (s.all_sources ? std::string("all") : std::to_string(s.sources.size())) + "\n";
  for (const std::string& src : s.sources) {
    for (char c : src) t += (c == '\n' ? ' ' : c);  // a source is one line
    t += "\n";
  }
  t += "crc32c " + Hex32(crc32c::Value(t)) + "\n";
  return t;
}

StatusOr<SegmentSummary> DecodeSummary(std::string_view text) {
  const auto bad = [](const std::string& why) { return DataLossError("segment index: " + why); };
  const size_t crc_at = text.rfind("crc32c ");
  if (crc_at == std::string_view::npos ||
      text.substr(crc_at) != "crc32c " + Hex32(crc32c::Value(text.substr(0, crc_at))) + "\n") {
    return bad("checksum mismatch or missing");
  }
  std::vector<std::string_view> lines;
  if (!Lines(text.substr(0, crc_at), &lines) || lines.size() < 5 || lines[0] != kMagic) {
    return bad("not a gapless-segment-index/1 file");
  }
  SegmentSummary s;
  if (lines[1].substr(0, 5) != "size " || !Number(lines[1].substr(5), &s.segment_bytes)) {
    return bad("bad size line");
  }
  if (!Pair(lines[2], "seqs", &s.first_seq, &s.end_seq)) return bad("bad seqs line");
  if (!Pair(lines[3], "time", &s.min_time, &s.max_time)) return bad("bad time line");
  if (lines[4].substr(0, 8) != "sources ") return bad("bad sources line");
  const std::string_view n = lines[4].substr(8);
  size_t count = 0;
  if (n == "all") {
    s.all_sources = true;
  } else if (!Number(n, &count) || count > SegmentSummary::kMaxSources) {
    return bad("bad source count");
  }
  if (lines.size() != 5 + count) return bad("source count differs from the lines");
  for (size_t i = 0; i < count; ++i) s.sources.emplace(lines[5 + i]);
  return s;
}

StatusOr<std::optional<SegmentSummary>> ReadSummary(env::Env* env, const std::string& path,
                                                    uint64_t segment_bytes) {
  if (!env->FileExists(path)) return std::optional<SegmentSummary>();
  ASSIGN_OR_RETURN(uint64_t size, env->GetFileSize(path));
  if (size > 64 * 1024) return DataLossError("segment index " + path + " is too large");
  ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env, path));
  auto s = DecodeSummary(text);
  if (!s.ok()) return Status(s.status().code(), path + ": " + s.status().message());
  if (s->segment_bytes != segment_bytes) {
    return DataLossError(path + " is stale: it describes " + std::to_string(s->segment_bytes) +
                         " bytes, the segment has " + std::to_string(segment_bytes));
  }
  return std::optional<SegmentSummary>(*std::move(s));
}

Status WriteSummary(env::Env* env, const std::string& path, const SegmentSummary& s) {
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos) RETURN_IF_ERROR(env->CreateDir(path.substr(0, slash)));
  return env::WriteFileAtomically(env, path, EncodeSummary(s));
}

}  // namespace gapless::query
