#include "query/reconcile.h"

#include <simdjson.h>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <unordered_map>

#include "base/json_text.h"
#include "base/sha256.h"
#include "store/layout.h"
#include "store/reader.h"
#include "syslog/syslog_parser.h"

namespace gapless::query {
namespace {

constexpr size_t kMaxNotes = 100;
constexpr size_t kExcerpt = 120;

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                        s.back() == '\n' || s.back() == '\0')) {
    s.remove_suffix(1);
  }
  return s;
}

// The keys one text matches by: itself and, when it parses as syslog, its message.
void TextKeys(std::string_view text, std::vector<uint64_t>* keys) {
  const std::string_view t = TrimRight(text);
  if (t.empty()) return;
  keys->push_back(Fnv1a(t));
  event::Event e;
  syslog::FieldStorage storage;
  syslog::ParseSyslog(t, 0, &e, &storage);
  if (!e.has(event::kParseError)) {
    const std::string_view m = TrimRight(e.message);
    if (!m.empty() && m.size() != t.size()) keys->push_back(Fnv1a(m));
  }
}

std::string Excerpt(std::string_view s) {
  std::string out(s.substr(0, kExcerpt));
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s.size() > kExcerpt ? out + "..." : out;
}

std::string WindowName(int64_t start_ns) {
  return start_ns == WindowReconcile::kNoTime ? "(records without a time)"
                                              : event::FormatUnixNanos(start_ns);
}

void Note(std::vector<LineNote>* v, uint64_t line, std::string what) {
  if (v->size() < kMaxNotes) v->push_back({line, std::move(what)});
}

// One event of the export, as far as matching needs it.
struct ExportEvent {
  uint64_t line = 0;
  std::string agent, epoch, leaf;
  std::optional<uint64_t> seq;
  std::vector<std::string> texts;
  std::string excerpt;
};

bool TextKey(std::string_view k) {
  return k == "message" || k == "msg" || k == "_raw" || k == "raw" || k == "event.original";
}

bool ParseSeq(std::string_view s, uint64_t* v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// NDJSON: one object per line. False (with why) for a line that is not one.
// scratch: a buffer reused from line to line for simdjson's padding.
bool ParseJsonLine(simdjson::ondemand::parser* parser, std::string_view line, ExportEvent* ev,
                   std::string* why, std::string* scratch) {
  namespace od = simdjson::ondemand;
  scratch->assign(line);
  scratch->append(simdjson::SIMDJSON_PADDING, '\0');
  const simdjson::padded_string_view padded(scratch->data(), line.size(), scratch->size());
  od::document doc;
  od::object obj;
  if (parser->iterate(padded).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    *why = "not a JSON object";
    return false;
  }
  const auto take = [&](std::string_view key, od::value v) -> bool {
    std::string_view s;
    uint64_t n = 0;
    if (key == "agent" || key == "gapless.agent") {
      if (v.get_string().get(s) == simdjson::SUCCESS) ev->agent = s;
    } else if (key == "epoch" || key == "gapless.epoch") {
      if (v.get_string().get(s) == simdjson::SUCCESS) ev->epoch = s;
    } else if (key == "leaf" || key == "gapless.leaf") {
      if (v.get_string().get(s) == simdjson::SUCCESS) ev->leaf = s;
    } else if (key == "seq" || key == "gapless.seq") {
      if (v.get_uint64().get(n) == simdjson::SUCCESS) {
        ev->seq = n;
      } else if (v.get_string().get(s) == simdjson::SUCCESS && ParseSeq(s, &n)) {
        ev->seq = n;
      }
    } else {
      return false;
    }
    return true;
  };
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      *why = "a member name does not parse";
      return false;
    }
    od::value v = field.value();
    if (key.substr(0, 8) == "gapless." && take(key, v)) continue;
    if (key == "gapless" || key == "event") {  // nested, as ecs and ocsf write them
      od::object inner;
      if (v.get_object().get(inner) != simdjson::SUCCESS) continue;
      for (auto f2 : inner) {
        std::string_view k2;
        if (f2.unescaped_key().get(k2) != simdjson::SUCCESS) break;
        od::value v2 = f2.value();
        if (key == "gapless") {
          take(k2, v2);
        } else if (k2 == "original") {
          std::string_view s;
          if (v2.get_string().get(s) == simdjson::SUCCESS) ev->texts.emplace_back(s);
        }
      }
      continue;
    }
    if (TextKey(key)) {
      std::string_view s;
      if (v.get_string().get(s) == simdjson::SUCCESS) ev->texts.emplace_back(s);
    }
  }
  ev->excerpt = Excerpt(line);
  return true;
}

// RFC 4180 CSV with a header row: records (each with the line it starts on).
struct CsvRecord {
  uint64_t line = 0;
  std::vector<std::string> cells;
  bool bad = false;
  std::string why;
};

std::vector<CsvRecord> ParseCsv(std::string_view text) {
  std::vector<CsvRecord> out;
  uint64_t line = 1;
  size_t i = 0;
  while (i < text.size()) {
    CsvRecord r;
    r.line = line;
    std::string cell;
    bool quoted = false, in_quotes = false, end = false;
    while (!end) {
      if (i >= text.size()) {
        if (in_quotes) {
          r.bad = true;
          r.why = "a quoted field is not closed";
        }
        r.cells.push_back(std::move(cell));
        break;
      }
      const char c = text[i++];
      if (in_quotes) {
        if (c == '"') {
          if (i < text.size() && text[i] == '"') {
            cell += '"';
            ++i;
          } else {
            in_quotes = false;
          }
        } else {
          if (c == '\n') ++line;
          cell += c;
        }
        continue;
      }
      if (c == '\r' && i < text.size() && text[i] == '\n') {
        continue;  // CRLF: the '\n' ends the record
      }
      if (c == '"' && cell.empty() && !quoted) {
        in_quotes = quoted = true;
      } else if (c == ',') {
        r.cells.push_back(std::move(cell));
        cell.clear();
        quoted = false;
      } else if (c == '\n') {
        r.cells.push_back(std::move(cell));
        ++line;
        end = true;
      } else if (quoted) {
        r.bad = true;
        r.why = "text after a quoted field";
        cell += c;
      } else {
        cell += c;
      }
    }
    if (!(r.cells.size() == 1 && r.cells[0].empty())) out.push_back(std::move(r));  // blank
  }
  return out;
}

}  // namespace

StatusOr<std::string> ReadExport(env::Env* env, const std::string& path, uint64_t max_bytes) {
  // Checked before reading: a file past the limit is never read into memory.
  ASSIGN_OR_RETURN(const uint64_t size, env->GetFileSize(path));
  if (size > max_bytes) {
    return InvalidArgumentError(path + " is " + std::to_string(size) +
                                " bytes, more than the limit of " + std::to_string(max_bytes));
  }
  ASSIGN_OR_RETURN(std::string bytes, env::ReadFileToString(env, path));
  if (bytes.size() < 2 || static_cast<unsigned char>(bytes[0]) != 0x1f ||
      static_cast<unsigned char>(bytes[1]) != 0x8b) {
    return bytes;
  }
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK) return InternalError("zlib: inflateInit2 failed");
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(bytes.data());
  z.avail_in = static_cast<uInt>(bytes.size());
  int rc = Z_OK;
  char buf[1 << 16];
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&z);
      return InvalidArgumentError(path + ": gzip data is damaged (zlib: " +
                                  (z.msg != nullptr ? z.msg : std::to_string(rc)) + ")");
    }
    out.append(buf, sizeof buf - z.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&z);
      return InvalidArgumentError(path + " decompresses to more than " + std::to_string(max_bytes) +
                                  " bytes");
    }
    if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
      inflateEnd(&z);
      return InvalidArgumentError(path + ": the gzip data ends early (truncated file?)");
    }
  }
  inflateEnd(&z);
  return out;
}

StatusOr<int64_t> ParseDuration(std::string_view text) {
  if (text == "0") return 0;
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  const std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  int64_t unit_ns = 0;
  if (unit == "s") unit_ns = 1'000'000'000;
  if (unit == "m") unit_ns = 60'000'000'000;
  if (unit == "h") unit_ns = 3'600'000'000'000;
  if (unit == "d") unit_ns = 86'400'000'000'000;
  if (ec != std::errc() || n <= 0 || n > 100'000 || unit_ns == 0) {
    return InvalidArgumentError("duration \"" + std::string(text) +
                                "\": give a count and a unit, like 30s, 15m, 1h, 1d (0: none)");
  }
  return n * unit_ns;
}

uint64_t ReconcileReport::missing_records() const {
  uint64_t n = 0;
  for (const StreamReconcile& s : streams) n += s.missing_records;
  return n;
}

int ReconcileReport::ExitStatus() const {
  if (unknown > 0 || altered > 0) return 2;
  return missing_records() > 0 ? 1 : 0;
}

std::string ReconcileReport::Text() const {
  std::string t;
  for (const StreamReconcile& s : streams) {
    t += s.agent + "/" + s.epoch + ": " + std::to_string(s.in_store) + " stored, " +
         std::to_string(s.matched) + " in the export, " + std::to_string(s.missing_records) +
         " missing, " + std::to_string(s.duplicates) + " duplicated\n";
    size_t shown = 0;
    for (const auto& [a, b] : s.missing) {
      if (shown++ == 20) {
        t += "  ... " + std::to_string(s.missing.size() - 20) + " more ranges (--json has all)\n";
        break;
      }
      t += "  missing seqs " + std::to_string(a) + (a == b ? "" : ".." + std::to_string(b)) + "\n";
    }
    if (window_ns > 0) {
      size_t listed = 0, with_missing = 0;
      for (const WindowReconcile& w : s.windows) {
        if (w.missing == 0) continue;
        if (listed++ < 20) {
          t += "  window " + WindowName(w.start_ns) + ": " + std::to_string(w.in_store) +
               " stored, " + std::to_string(w.matched) + " in the export, " +
               std::to_string(w.missing) + " missing\n";
        }
        ++with_missing;
      }
      if (with_missing > 20) {
        t += "  ... " + std::to_string(with_missing - 20) + " more windows (--json has all)\n";
      }
      t += "  " + std::to_string(with_missing) + " of " + std::to_string(s.windows.size()) +
           " windows of " + std::to_string(window_ns / 1'000'000'000) + " s lack records\n";
    }
  }
  t += std::to_string(export_events) + " export events: " + std::to_string(unknown) +
       " unknown to the store, " + std::to_string(altered) + " altered, " +
       std::to_string(out_of_scope) + " outside the scope, " + std::to_string(malformed) +
       " malformed lines\n";
  for (const LineNote& n : unknown_events) {
    t += "  unknown (line " + std::to_string(n.line) + "): " + n.what + "\n";
  }
  for (const LineNote& n : altered_events) {
    t += "  altered (line " + std::to_string(n.line) + "): " + n.what + "\n";
  }
  for (const LineNote& n : malformed_lines) {
    t += "  malformed (line " + std::to_string(n.line) + "): " + n.what + "\n";
  }
  for (const std::string& w : warnings) t += "warning: " + w + "\n";
  const int status = ExitStatus();
  t += status == 0   ? "complete: every stored record in scope is in the export\n"
       : status == 1 ? "INCOMPLETE: the export lacks stored records\n"
                     : "SUSPICIOUS: the export holds events the store does not know or that "
                       "differ from it\n";
  return t;
}

std::string ReconcileReport::Json() const {
  const auto notes = [](const std::vector<LineNote>& v) {
    std::string j = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      j += (i ? "," : "") + std::string("{\"line\":") + std::to_string(v[i].line) +
           ",\"what\":" + JsonString(v[i].what) + "}";
    }
    return j + "]";
  };
  std::string j = "{\"streams\":[";
  for (size_t i = 0; i < streams.size(); ++i) {
    const StreamReconcile& s = streams[i];
    j += (i ? "," : "") + std::string("{\"agent\":") + JsonString(s.agent) +
         ",\"epoch\":" + JsonString(s.epoch) + ",\"stored\":" + std::to_string(s.in_store) +
         ",\"in_export\":" + std::to_string(s.matched) +
         ",\"missing\":" + std::to_string(s.missing_records) +
         ",\"duplicates\":" + std::to_string(s.duplicates) + ",\"missing_ranges\":[";
    for (size_t k = 0; k < s.missing.size(); ++k) {
      j += (k ? "," : "") + std::string("[") + std::to_string(s.missing[k].first) + "," +
           std::to_string(s.missing[k].second) + "]";
    }
    j += "],\"windows\":[";
    for (size_t k = 0; k < s.windows.size(); ++k) {
      const WindowReconcile& w = s.windows[k];
      j += (k ? ",{\"start\":" : "{\"start\":") +
           (w.start_ns == WindowReconcile::kNoTime ? std::string("null")
                                                   : JsonString(WindowName(w.start_ns))) +
           ",\"stored\":" + std::to_string(w.in_store) +
           ",\"in_export\":" + std::to_string(w.matched) +
           ",\"missing\":" + std::to_string(w.missing) + "}";
    }
    j += "]}";
  }
  j += "],\"window_seconds\":" + std::to_string(window_ns / 1'000'000'000) +
       ",\"export_events\":" + std::to_string(export_events) +
       ",\"unknown\":" + std::to_string(unknown) + ",\"altered\":" + std::to_string(altered) +
       ",\"out_of_scope\":" + std::to_string(out_of_scope) +
       ",\"malformed\":" + std::to_string(malformed) +
       ",\"unknown_events\":" + notes(unknown_events) +
       ",\"altered_events\":" + notes(altered_events) +
       ",\"malformed_lines\":" + notes(malformed_lines) +
       ",\"exit_status\":" + std::to_string(ExitStatus()) + "}\n";
  return j;
}

StatusOr<ReconcileReport> Reconcile(env::Env* env, const std::string& data_dir,
                                    const Matcher& scope, std::string_view export_text,
                                    ExportFormat format, int64_t window_ns) {
  if (window_ns < 0) return InvalidArgumentError("the window must not be negative");
  ReconcileReport report;
  report.window_ns = window_ns;
  // The stored side: every record in scope, per stream in seq order, with its text keys.
  struct Stored {
    std::vector<uint64_t> seqs;
    std::vector<int64_t> times;  // with window_ns: each record's window start
    std::vector<Hash256> leaves;
    std::vector<uint32_t> hits;
    // The text keys of each record: its raw bytes', its message's (0: none or the same).
    std::vector<uint64_t> raw_keys, message_keys;
  };
  std::map<std::string, Stored> stored;  // "agent/epoch"
  std::vector<std::string> names;        // stream index → "agent/epoch"
  std::map<std::string, size_t> index;
  // Text key → (stream, i), built at the first export event matched by its text: an export
  // with provenance never needs it.
  std::unordered_multimap<uint64_t, std::pair<size_t, size_t>> by_text;
  bool by_text_built = false;
  RunStats stats;
  const store::StreamRef* last_ref = nullptr;  // the stream of the previous match
  Stored* last = nullptr;
  RETURN_IF_ERROR(Run(
      env, data_dir, scope, {},
      [&](const Match& m) {
        if (m.stream != last_ref) {
          const std::string name = m.stream->agent + "/" + m.stream->epoch;
          if (index.emplace(name, names.size()).second) names.push_back(name);
          last = &stored[name];
          last_ref = m.stream;
        }
        Stored& s = *last;
        s.seqs.push_back(m.seq);
        if (window_ns > 0) {
          int64_t start = WindowReconcile::kNoTime;
          if (m.event != nullptr) {
            const int64_t t = Matcher::TimeOf(*m.event);
            start = t - ((t % window_ns) + window_ns) % window_ns;  // floor, also below 1970
          }
          s.times.push_back(start);
        }
        s.leaves.push_back(m.leaf);
        s.hits.push_back(0);
        const std::string_view raw = m.event != nullptr ? m.event->raw : m.payload;
        const uint64_t raw_key = Fnv1a(TrimRight(raw));
        uint64_t message_key = 0;
        if (m.event != nullptr && !m.event->message.empty()) {
          message_key = Fnv1a(TrimRight(m.event->message));
          if (message_key == raw_key) message_key = 0;
        }
        s.raw_keys.push_back(raw_key);
        s.message_keys.push_back(message_key);
        return true;
      },
      &stats));
  // In stream then seq order: the multimap keeps insertion order for equal keys.
  const auto build_by_text = [&] {
    by_text_built = true;
    for (size_t n = 0; n < names.size(); ++n) {
      const Stored& s = stored[names[n]];
      for (size_t i = 0; i < s.seqs.size(); ++i) {
        by_text.emplace(s.raw_keys[i], std::make_pair(n, i));
        if (s.message_keys[i] != 0) by_text.emplace(s.message_keys[i], std::make_pair(n, i));
      }
    }
  };
  report.warnings = stats.warnings;
  // Equal texts go to stored records in seq order: the multimap keeps insertion order
  // for equal keys, which is stream then seq order.
  const auto match_text = [&](const ExportEvent& ev) -> bool {
    if (!by_text_built) build_by_text();
    std::vector<uint64_t> k;
    for (const std::string& t : ev.texts) TextKeys(t, &k);
    std::pair<size_t, size_t> first{SIZE_MAX, 0};
    for (uint64_t key : k) {
      auto [lo, hi] = by_text.equal_range(key);
      for (auto it = lo; it != hi; ++it) {
        Stored& s = stored[names[it->second.first]];
        if (first.first == SIZE_MAX) first = it->second;
        if (s.hits[it->second.second] == 0) {
          s.hits[it->second.second] = 1;
          return true;
        }
      }
    }
    if (first.first == SIZE_MAX) return false;
    ++stored[names[first.first]].hits[first.second];  // a duplicate
    return true;
  };
  std::string stream_key;
  const auto handle = [&](const ExportEvent& ev) {
    ++report.export_events;
    if (!ev.agent.empty() && !ev.epoch.empty() && ev.seq) {
      // The key in a buffer reused from event to event (no allocation per event).
      stream_key.assign(ev.agent).append("/").append(ev.epoch);
      auto it = stored.find(stream_key);
      if (it != stored.end()) {
        Stored& s = it->second;
        auto pos = std::lower_bound(s.seqs.begin(), s.seqs.end(), *ev.seq);
        if (pos != s.seqs.end() && *pos == *ev.seq) {
          const size_t i = static_cast<size_t>(pos - s.seqs.begin());
          if (!ev.leaf.empty() && ev.leaf != HexEncode(s.leaves[i])) {
            ++report.altered;
            Note(&report.altered_events, ev.line,
                 "gapless.leaf differs from the stored record's (" + ev.agent + "/" + ev.epoch +
                     " seq " + std::to_string(*ev.seq) + "): " + ev.excerpt);
            return;
          }
          ++s.hits[i];
          return;
        }
      }
      // Not in scope: a stored record elsewhere, or one the store never had.
      const std::string dir = store::Layout(data_dir).StreamDir(ev.agent, ev.epoch);
      if (env->FileExists(dir)) {
        auto r = store::StreamReader::Open(env, dir, *ev.seq);
        if (r.ok()) {
          auto e = (*r)->Next();
          if (e.ok() && e->kind == store::StreamReader::Kind::kRecord && e->seq == *ev.seq) {
            ++report.out_of_scope;
            return;
          }
        }
      }
      ++report.unknown;
      Note(&report.unknown_events, ev.line,
           "names " + ev.agent + "/" + ev.epoch + " seq " + std::to_string(*ev.seq) +
               ", which the store does not hold: " + ev.excerpt);
      return;
    }
    if (ev.texts.empty()) {
      ++report.malformed;
      Note(&report.malformed_lines, ev.line,
           "neither gapless.agent/epoch/seq nor a message, msg, _raw, raw or event.original");
      return;
    }
    if (!match_text(ev)) {
      ++report.unknown;
      Note(&report.unknown_events, ev.line, ev.excerpt);
    }
  };
  if (format == ExportFormat::kAuto) {
    const size_t first = export_text.find_first_not_of(" \t\r\n");
    format = first != std::string_view::npos && export_text[first] == '{' ? ExportFormat::kNdjson
                                                                          : ExportFormat::kCsv;
  }
  if (format == ExportFormat::kNdjson) {
    simdjson::ondemand::parser parser;
    std::string scratch;
    uint64_t line = 0;
    for (size_t at = 0; at < export_text.size();) {
      const size_t eol = export_text.find('\n', at);
      const std::string_view l =
          TrimRight(export_text.substr(at, eol == std::string_view::npos ? eol : eol - at));
      at = eol == std::string_view::npos ? export_text.size() : eol + 1;
      ++line;
      if (l.find_first_not_of(" \t") == std::string_view::npos) continue;
      ExportEvent ev;
      ev.line = line;
      std::string why;
      if (!ParseJsonLine(&parser, l, &ev, &why, &scratch)) {
        ++report.malformed;
        Note(&report.malformed_lines, line, why + ": " + Excerpt(l));
        continue;
      }
      handle(ev);
    }
  } else {
    std::vector<CsvRecord> rows = ParseCsv(export_text);
    if (rows.empty()) return InvalidArgumentError("the CSV export is empty (no header row)");
    std::map<std::string, size_t> col;
    for (size_t i = 0; i < rows[0].cells.size(); ++i) {
      std::string_view name = TrimRight(rows[0].cells[i]);
      if (i == 0 && name.substr(0, 3) == "\xEF\xBB\xBF") name.remove_prefix(3);  // a BOM
      col[std::string(name)] = i;
    }
    const auto cell = [&](const CsvRecord& r, const std::string& name) -> const std::string* {
      auto it = col.find(name);
      return it == col.end() || it->second >= r.cells.size() ? nullptr : &r.cells[it->second];
    };
    for (size_t i = 1; i < rows.size(); ++i) {
      const CsvRecord& r = rows[i];
      if (r.bad || r.cells.size() != rows[0].cells.size()) {
        ++report.malformed;
        Note(&report.malformed_lines, r.line,
             r.bad ? r.why
                   : std::to_string(r.cells.size()) + " fields, the header has " +
                         std::to_string(rows[0].cells.size()));
        continue;
      }
      ExportEvent ev;
      ev.line = r.line;
      if (const std::string* v = cell(r, "gapless.agent")) ev.agent = *v;
      if (const std::string* v = cell(r, "gapless.epoch")) ev.epoch = *v;
      if (const std::string* v = cell(r, "gapless.leaf")) ev.leaf = *v;
      if (const std::string* v = cell(r, "gapless.seq"); v != nullptr) {
        uint64_t n = 0;
        if (ParseSeq(*v, &n)) ev.seq = n;
      }
      for (const char* name : {"message", "msg", "_raw", "raw", "event.original"}) {
        if (const std::string* v = cell(r, name); v != nullptr && !v->empty()) {
          ev.texts.push_back(*v);
        }
      }
      ev.excerpt = Excerpt(ev.texts.empty() ? std::string() : ev.texts[0]);
      handle(ev);
    }
  }
  for (const std::string& name : names) {
    Stored& s = stored[name];
    StreamReconcile out;
    const size_t slash = name.find('/');
    out.agent = name.substr(0, slash);
    out.epoch = name.substr(slash + 1);
    out.in_store = s.seqs.size();
    std::map<int64_t, WindowReconcile> windows;
    for (size_t i = 0; i < s.times.size(); ++i) {
      WindowReconcile& w = windows[s.times[i]];
      w.start_ns = s.times[i];
      ++w.in_store;
      ++(s.hits[i] > 0 ? w.matched : w.missing);
    }
    for (auto& [start, w] : windows) out.windows.push_back(w);
    for (size_t i = 0; i < s.seqs.size(); ++i) {
      if (s.hits[i] > 0) {
        ++out.matched;
        out.duplicates += s.hits[i] - 1;
        continue;
      }
      ++out.missing_records;
      if (!out.missing.empty() && out.missing.back().second + 1 == s.seqs[i] && i > 0 &&
          s.seqs[i - 1] + 1 == s.seqs[i] && s.hits[i - 1] == 0) {
        out.missing.back().second = s.seqs[i];
      } else {
        out.missing.emplace_back(s.seqs[i], s.seqs[i]);
      }
    }
    report.streams.push_back(std::move(out));
  }
  return report;
}

}  // namespace gapless::query
