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
  if (s.open) t += "open " + Hex32(s.tail_crc) + "\n";
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
  size_t at = 2;  // the line after size
  if (lines[at].substr(0, 5) == "open ") {
    const std::string_view hex = lines[at].substr(5);
    const auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), s.tail_crc, 16);
    if (hex.size() != 8 || ec != std::errc() || end != hex.data() + hex.size()) {
      return bad("bad open line");
    }
    s.open = true;
    ++at;
  }
  if (lines.size() < at + 3) return bad("too few lines");
  if (!Pair(lines[at], "seqs", &s.first_seq, &s.end_seq)) return bad("bad seqs line");
  if (!Pair(lines[at + 1], "time", &s.min_time, &s.max_time)) return bad("bad time line");
  if (lines[at + 2].substr(0, 8) != "sources ") return bad("bad sources line");
  const std::string_view n = lines[at + 2].substr(8);
  size_t count = 0;
  if (n == "all") {
    s.all_sources = true;
  } else if (!Number(n, &count) || count > SegmentSummary::kMaxSources) {
    return bad("bad source count");
  }
  if (lines.size() != at + 3 + count) return bad("source count differs from the lines");
  for (size_t i = 0; i < count; ++i) s.sources.emplace(lines[at + 3 + i]);
  return s;
}

StatusOr<uint32_t> TailCrc(env::Env* env, const std::string& segment_path, uint64_t end) {
  const uint64_t from = end > 4096 ? end - 4096 : 0;
  ASSIGN_OR_RETURN(auto file, env->NewRandomAccessFile(segment_path));
  std::string bytes(end - from, '\0');
  ASSIGN_OR_RETURN(size_t got, file->Read(from, bytes.size(), bytes.data()));
  if (got != bytes.size())
    return DataLossError(segment_path + " is shorter than " + std::to_string(end));
  return crc32c::Value(bytes);
}

StatusOr<std::optional<SegmentSummary>> ReadSummary(env::Env* env, const std::string& path,
                                                    const std::string& segment_path,
                                                    uint64_t segment_bytes) {
  if (!env->FileExists(path)) return std::optional<SegmentSummary>();
  ASSIGN_OR_RETURN(uint64_t size, env->GetFileSize(path));
  if (size > 64 * 1024) return DataLossError("segment index " + path + " is too large");
  ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env, path));
  auto s = DecodeSummary(text);
  if (!s.ok()) return Status(s.status().code(), path + ": " + s.status().message());
  if (s->open) {
    if (s->segment_bytes > segment_bytes) {
      return DataLossError(path + " is stale: it covers " + std::to_string(s->segment_bytes) +
                           " bytes, the segment has " + std::to_string(segment_bytes));
    }
    ASSIGN_OR_RETURN(const uint32_t crc, TailCrc(env, segment_path, s->segment_bytes));
    if (crc != s->tail_crc) {
      return DataLossError(path + " is stale: the segment's bytes before " +
                           std::to_string(s->segment_bytes) + " are not those it summarised");
    }
  } else if (s->segment_bytes != segment_bytes) {
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
