#include "query/query.h"

#include <fnmatch.h>
#include <string.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <deque>
#include <map>
#include <set>
#include <thread>

#include "base/json_text.h"
#include "query/segment_index.h"
#include "store/reader.h"
#include "syslog/syslog_parser.h"

namespace gapless::query {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

bool Glob(const std::vector<std::string>& globs, std::string_view s) {
  if (globs.empty()) return true;
  const std::string text(s);
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) {
    return ::fnmatch(g.c_str(), text.c_str(), 0) == 0;
  });
}

std::string StreamName(const store::StreamRef& s) { return s.agent + "/" + s.epoch; }

}  // namespace

StatusOr<int64_t> ParseTime(std::string_view text, int64_t now_unix_ns) {
  const auto bad = [&] {
    return InvalidArgumentError("time \"" + std::string(text) +
                                "\": give RFC 3339 (2026-11-22T02:00:00Z, an offset allowed), "
                                "unix seconds, now, or relative to now like -2h, -30m, -7d");
  };
  if (text == "now") return now_unix_ns;
  if (!text.empty() && (text[0] == '-' || text[0] == '+') && text.size() >= 3) {
    const char unit = text.back();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data() + 1, text.data() + text.size() - 1, n);
    if (ec != std::errc() || end != text.data() + text.size() - 1 || n < 0 || n > 100'000'000) {
      return bad();
    }
    int64_t unit_ns = 0;
    switch (unit) {
      case 's':
        unit_ns = kSecond;
        break;
      case 'm':
        unit_ns = 60 * kSecond;
        break;
      case 'h':
        unit_ns = 3600 * kSecond;
        break;
      case 'd':
        unit_ns = 86400 * kSecond;
        break;
      default:
        return bad();
    }
    // Up to 100,000,000 s/m/h/d; the result must still be a time (no overflow past ±292 y).
    int64_t delta = 0, at = 0;
    if (__builtin_mul_overflow(n, unit_ns, &delta) ||
        __builtin_add_overflow(now_unix_ns, text[0] == '-' ? -delta : delta, &at)) {
      return bad();
    }
    return at;
  }
  int64_t secs = 0;
  if (auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), secs);
      ec == std::errc() && end == text.data() + text.size()) {
    if (secs < 0 || secs > INT64_MAX / kSecond) return bad();  // to 2262
    return secs * kSecond;
  }
  int64_t ns = 0;
  bool has_offset = false;
  if (syslog::ParseRfc3339(text, &ns, &has_offset) != text.size() || !has_offset) {
    return bad();  // without Z or an offset the zone would be a guess
  }
  return ns;
}

StatusOr<uint8_t> ParseSeverity(std::string_view text) {
  static constexpr std::pair<std::string_view, uint8_t> kNames[] = {
      {"emerg", 0}, {"emergency", 0},     {"alert", 1},   {"crit", 2}, {"critical", 2},
      {"err", 3},   {"error", 3},         {"warning", 4}, {"warn", 4}, {"notice", 5},
      {"info", 6},  {"informational", 6}, {"debug", 7}};
  if (text.size() == 1 && text[0] >= '0' && text[0] <= '7') {
    return static_cast<uint8_t>(text[0] - '0');
  }
  for (const auto& [name, value] : kNames) {
    if (name == text) return value;
  }
  return InvalidArgumentError("severity \"" + std::string(text) +
                              "\": give 0..7 or emerg, alert, crit, err, warning, notice, info, "
                              "debug");
}

StatusOr<std::pair<uint64_t, uint64_t>> ParseSeqRange(std::string_view text) {
  const auto number = [](std::string_view s, uint64_t* v) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    return !s.empty() && ec == std::errc() && end == s.data() + s.size();
  };
  const size_t dots = text.find("..");
  uint64_t a = 0, b = 0;
  bool ok = false;
  if (dots == std::string_view::npos) {
    ok = number(text, &a);
    b = a;
  } else {
    ok = number(text.substr(0, dots), &a);
    const std::string_view rest = text.substr(dots + 2);
    b = UINT64_MAX;
    if (ok && !rest.empty()) ok = number(rest, &b);
  }
  if (!ok || b < a) {
    return InvalidArgumentError("seq range \"" + std::string(text) + "\": give A..B, A.. or A");
  }
  return std::make_pair(a, b);
}

namespace {

// glibc's regcomp builds automata whose size multiplies with stacked and counted
// repetition ("a+++++", "(a{255}){255}"): gigabytes for a short pattern. A --grep is held
// to what a search needs: 1 KiB, no quantifier applied to a quantifier, at most 4 counted
// repetitions of at most 100 each, at most 16 repetitions in all.
Status CheckPatternBounds(std::string_view p) {
  const auto refuse = [&](const std::string& why) {
    return InvalidArgumentError("--grep \"" + std::string(p.substr(0, 80)) +
                                (p.size() > 80 ? "..." : "") + "\": " + why);
  };
  if (p.size() > 1024) return refuse("longer than 1024 bytes");
  int repetitions = 0, counted = 0;
  bool after_quantifier = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\') {
      ++i;  // an escaped character is an atom
      after_quantifier = false;
      continue;
    }
    if (c == '[') {  // a bracket expression is one atom: skip to its end
      size_t j = i + 1;
      if (j < p.size() && p[j] == '^') ++j;
      if (j < p.size() && p[j] == ']') ++j;
      while (j < p.size() && p[j] != ']') ++j;
      i = j;
      after_quantifier = false;
      continue;
    }
    const bool quantifier = c == '*' || c == '+' || c == '?' || c == '{';
    if (!quantifier) {
      after_quantifier = false;
      continue;
    }
    if (after_quantifier) return refuse("a repetition of a repetition: simplify it");
    if (++repetitions > 16) return refuse("more than 16 repetition operators");
    if (c == '{') {
      if (++counted > 4) return refuse("more than 4 counted repetitions {m,n}");
      const size_t end = p.find('}', i);
      if (end == std::string_view::npos) return refuse("a { without its }");
      for (size_t k = i + 1; k < end;) {
        if (p[k] < '0' || p[k] > '9') {
          ++k;
          continue;
        }
        unsigned n = 0;
        while (k < end && p[k] >= '0' && p[k] <= '9' && n <= 100) n = n * 10 + (p[k++] - '0');
        if (n > 100) return refuse("a counted repetition above 100");
      }
      i = end;
    }
    after_quantifier = true;
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<Matcher>> Matcher::Make(Filter f) {
  std::unique_ptr<Matcher> m(new Matcher(std::move(f)));
  if (!m->f_.grep.empty()) {
    RETURN_IF_ERROR(CheckPatternBounds(m->f_.grep));
    const int rc = ::regcomp(&m->re_, m->f_.grep.c_str(), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
      char why[256];
      ::regerror(rc, &m->re_, why, sizeof why);
      return InvalidArgumentError("--grep \"" + m->f_.grep +
                                  "\" is not a POSIX extended regular expression: " + why);
    }
    m->has_re_ = true;
    std::string literal;
    bool plain = true;
    const std::string& g = m->f_.grep;
    for (size_t i = 0; i < g.size() && plain; ++i) {
      const char c = g[i];
      if (c == '\\') {  // an escaped metacharacter is itself; other escapes are not plain
        plain = i + 1 < g.size() &&
                std::string_view(".[]()*+?{}|^$\\").find(g[i + 1]) != std::string_view::npos;
        if (plain) literal += g[++i];
      } else if (std::string_view(".[]()*+?{}|^$").find(c) != std::string_view::npos) {
        plain = false;
      } else {
        literal += c;
      }
    }
    if (plain && !literal.empty()) m->literal_ = std::move(literal);
  }
  return m;
}

Matcher::~Matcher() {
  if (has_re_) ::regfree(&re_);
}

bool Matcher::StreamSelected(const store::StreamRef& s) const {
  return Glob(f_.agents, s.agent) && (f_.epoch.empty() || f_.epoch == s.epoch);
}

int64_t Matcher::TimeOf(const event::Event& e) {
  return e.has(event::kEventTime) ? e.event_unix_ns : e.observed_unix_ns;
}

bool Matcher::Matches(uint64_t seq, const event::Event* e, std::string_view raw) const {
  if (seq < f_.seq_first || seq > f_.seq_last) return false;
  const bool needs_event = f_.from_ns || f_.to_ns || !f_.sources.empty() || !f_.host.empty() ||
                           !f_.app.empty() || f_.min_severity || f_.max_severity ||
                           !f_.fields.empty();
  if (e == nullptr) {
    if (needs_event) return false;
  } else {
    const int64_t t = TimeOf(*e);
    if (f_.from_ns && t < *f_.from_ns) return false;
    if (f_.to_ns && t >= *f_.to_ns) return false;
    if (!Glob(f_.sources, e->source)) return false;
    if (!f_.host.empty() && e->host != f_.host) return false;
    if (!f_.app.empty() && e->app != f_.app) return false;
    if (f_.min_severity && (e->severity == event::kNoValue || e->severity > *f_.min_severity)) {
      return false;
    }
    if (f_.max_severity && (e->severity == event::kNoValue || e->severity < *f_.max_severity)) {
      return false;
    }
    for (const std::pair<std::string, std::string>& kv : f_.fields) {
      if (std::none_of(e->fields.begin(), e->fields.end(), [&](const event::Field& fl) {
            return fl.key == kv.first && fl.value == kv.second;
          })) {
        return false;
      }
    }
    raw = e->raw;
  }
  if (literal_) {
    if (::memmem(raw.data(), raw.size(), literal_->data(), literal_->size()) == nullptr) {
      return false;
    }
  } else if (has_re_) {
    regmatch_t range[1];
    range[0].rm_so = 0;
    range[0].rm_eo = static_cast<regoff_t>(raw.size());
    if (::regexec(&re_, raw.data(), 1, range, REG_STARTEND) != 0) return false;
  }
  return true;
}

namespace {

// A record that matched, as emit sees it (with its leaf).
Match MakeMatch(const store::StreamRef* ref, uint64_t seq, spool::FrameType type,
                std::string_view payload, const event::Event* ev) {
  Match match;
  match.stream = ref;
  match.seq = seq;
  match.type = type;
  match.payload = payload;
  match.event = ev;
  match.leaf = spool::RecordLeafHash(type, payload);
  return match;
}

// The index summary of the segment being read, built as its records go by.
struct Building {
  std::string segment;  // its file name; empty: none yet
  uint64_t base = 0;
  bool whole = false;  // read from its first record, without damage
  SegmentSummary summary;
};

// One selected stream being read.
struct Cursor {
  store::StreamRef ref;
  std::unique_ptr<store::StreamReader> reader;
  bool done = false;    // past seq_last
  bool at_end = false;  // the reader reached the stream's end (kEnd)
  Building building;
  // An open summary whose bytes the reader was told to skip: the summary the segment's
  // records read after them extend.
  std::optional<SegmentSummary> prefix;
  uint64_t prefix_base = 0;
};

class Runner {
 public:
  Runner(env::Env* env, const std::string& data_dir, const Matcher& m, const RunOptions& o,
         const std::function<bool(const Match&)>& emit, RunStats* stats)
      : env_(env), layout_(data_dir), m_(m), o_(o), emit_(emit), stats_(stats) {}

  bool UsesIndex() const {
    const Filter& f = m_.filter();
    return f.from_ns || f.to_ns || !f.sources.empty();
  }

  // Whether a record the summary describes can match the filter's time and sources.
  bool MayMatch(const SegmentSummary& s) const {
    const Filter& f = m_.filter();
    bool may = s.min_time <= s.max_time;  // no event at all: no time or source can match
    if (f.from_ns && s.max_time < *f.from_ns) may = false;
    if (f.to_ns && s.min_time >= *f.to_ns) may = false;
    if (may && !f.sources.empty() && !s.all_sources) {
      may = std::any_of(s.sources.begin(), s.sources.end(),
                        [&](const std::string& src) { return Glob(f.sources, src); });
    }
    return may;
  }

  // The reader's segment start (store::StreamReader::set_segment_start): skip a segment,
  // or the bytes an open summary covers, when its index shows no record there can match.
  uint64_t SegmentStart(Cursor* c, uint64_t base, uint64_t size) {
    const std::string path = layout_.SegmentIndex(c->ref.agent, c->ref.epoch, base);
    auto read = ReadSummary(env_, path, store::StreamFiles(c->ref.dir).Segment(base), size);
    if (!read.ok()) {
      Warn(read.status().message() + "; the segment is read and its index rebuilt");
      return 0;
    }
    if (!read->has_value()) return 0;
    const SegmentSummary& s = **read;
    const bool may = MayMatch(s);
    if (!s.open) {
      indexed_.insert(path);  // intact: not written again
      if (may) return 0;
      ++stats_->segments_skipped;
      return store::StreamReader::kSkipSegment;
    }
    if (may) return 0;  // read whole; its summary is written again
    c->prefix = s;
    c->prefix_base = base;
    if (s.segment_bytes == size) ++stats_->segments_skipped;  // nothing after it yet
    return s.segment_bytes;
  }

  // At the end of the run: the newest segment the reader read to its end gets an open
  // summary of what it holds so far.
  void FinishOpen(Cursor* c) {
    Building& b = c->building;
    if (!c->at_end || c->reader == nullptr || b.segment.empty() || !b.whole ||
        b.base != c->reader->segment_base()) {
      return;
    }
    const std::string segment = store::StreamFiles(c->ref.dir).Segment(b.base);
    b.summary.open = true;
    b.summary.segment_bytes = c->reader->position();
    auto crc = TailCrc(env_, segment, b.summary.segment_bytes);
    if (!crc.ok()) return;
    b.summary.tail_crc = *crc;
    const std::string path = layout_.SegmentIndex(c->ref.agent, c->ref.epoch, b.base);
    if (auto old = env::ReadFileToString(env_, path);
        old.ok() && *old == EncodeSummary(b.summary)) {
      return;  // nothing was appended since it was written
    }
    if (WriteSummary(env_, path, b.summary).ok()) ++stats_->indexes_written;
  }

  // Notes a record of the stream for the index of its segment; a new segment means the
  // one before was read to its end (it is sealed) and gets its index.
  // ev: the record's decoded event (null: LOSS or not an event), decoded once per record.
  void Note(Cursor* c, const store::StreamReader::Entry& e, const event::Event* ev) {
    Building& b = c->building;
    if (e.segment != b.segment) {
      Finish(c);
      b = Building{};
      b.segment = e.segment;
      const bool named = store::ParseSegmentName(e.segment, &b.base);
      if (c->prefix && named && c->prefix_base == b.base && c->prefix->end_seq == e.seq) {
        b.summary = *c->prefix;  // the skipped bytes' summary, extended by what follows
        b.whole = true;
      } else {
        b.whole = named && e.seq == b.base;
        b.summary.first_seq = e.seq;
      }
      c->prefix.reset();
    }
    b.summary.end_seq = e.seq + 1;
    if (ev == nullptr) return;
    const int64_t t = Matcher::TimeOf(*ev);
    b.summary.min_time = std::min(b.summary.min_time, t);
    b.summary.max_time = std::max(b.summary.max_time, t);
    b.summary.AddSource(ev->source);
  }

  void Finish(Cursor* c) {
    Building& b = c->building;
    if (b.segment.empty() || !b.whole) return;
    b.whole = false;  // written once
    auto size = env_->GetFileSize(store::StreamFiles(c->ref.dir).Segment(b.base));
    if (!size.ok()) return;
    b.summary.segment_bytes = *size;
    b.summary.open = false;  // sealed: a newer segment follows
    const std::string path = layout_.SegmentIndex(c->ref.agent, c->ref.epoch, b.base);
    if (indexed_.count(path) > 0) return;
    if (WriteSummary(env_, path, b.summary).ok()) ++stats_->indexes_written;
  }

  // Reads `c` to its current end; false when the run is over (limit, or emit said stop).
  StatusOr<bool> Drain(Cursor* c) {
    while (!c->done) {
      auto e = c->reader->Next();
      if (!e.ok()) {
        Warn(StreamName(c->ref) + ": " + e.status().ToString());
        c->done = true;
        break;
      }
      if (e->kind == store::StreamReader::Kind::kEnd) {
        c->at_end = true;
        break;
      }
      if (e->kind != store::StreamReader::Kind::kRecord) {
        Warn(StreamName(c->ref) + ": " + std::to_string(e->bytes) + " damaged bytes in " +
             std::string(e->segment) + " at offset " + std::to_string(e->offset) +
             " skipped (run gapless verify)");
        c->building.whole = false;
        continue;
      }
      if (e->seq > m_.filter().seq_last) {
        c->done = true;
        break;
      }
      event::Event ev;
      const event::Event* decoded = Decode(*e, &ev);
      Note(c, *e, decoded);
      if (e->type != spool::FrameType::kData) continue;
      ++stats_->scanned;
      if (!Offer(c->ref, e->seq, e->type, e->payload, decoded)) return false;
    }
    return true;
  }

  // The entry's event decoded into *ev, or null for a LOSS record or a payload that is not
  // an event.
  static const event::Event* Decode(const store::StreamReader::Entry& e, event::Event* ev) {
    if (e.type != spool::FrameType::kData) return nullptr;
    return event::DecodeEvent(e.payload, ev).ok() ? ev : nullptr;
  }

  // Checks one record (ev: its decoded event or null); emits it if it matches. False when
  // the run is over.
  bool Offer(const store::StreamRef& ref, uint64_t seq, spool::FrameType type,
             std::string_view payload, const event::Event* ev) {
    if (!m_.Matches(seq, ev, payload)) return true;
    ++stats_->matched;
    if (!emit_(MakeMatch(&ref, seq, type, payload, ev))) return false;
    return o_.limit == 0 || stats_->matched < o_.limit;
  }

  // Reverse: the stream's last `keep` matches (0: all), newest first.
  StatusOr<bool> DrainReverse(Cursor* c, uint64_t keep) {
    struct Kept {
      uint64_t seq;
      spool::FrameType type;
      std::string payload;
    };
    std::deque<Kept> kept;
    while (!c->done) {
      auto e = c->reader->Next();
      if (!e.ok()) {
        Warn(StreamName(c->ref) + ": " + e.status().ToString());
        break;
      }
      if (e->kind == store::StreamReader::Kind::kEnd) {
        c->at_end = true;
        break;
      }
      if (e->kind != store::StreamReader::Kind::kRecord) {
        Warn(StreamName(c->ref) + ": damaged bytes in " + std::string(e->segment) + " skipped");
        c->building.whole = false;
        continue;
      }
      if (e->seq > m_.filter().seq_last) break;
      event::Event ev;
      const event::Event* decoded = Decode(*e, &ev);
      Note(c, *e, decoded);
      if (e->type != spool::FrameType::kData) continue;
      ++stats_->scanned;
      if (!m_.Matches(e->seq, decoded, e->payload)) continue;
      kept.push_back({e->seq, e->type, std::string(e->payload)});
      if (keep > 0 && kept.size() > keep) kept.pop_front();
    }
    for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
      // Decoded again: the views of the first decode pointed into the reader's buffer.
      event::Event ev;
      const event::Event* decoded = event::DecodeEvent(it->payload, &ev).ok() ? &ev : nullptr;
      if (!Offer(c->ref, it->seq, it->type, it->payload, decoded)) return false;
    }
    return true;
  }

  void Warn(std::string w) {
    if (stats_->warnings.size() < 100) stats_->warnings.push_back(std::move(w));
  }

 private:
  env::Env* const env_;
  const store::Layout layout_;
  std::set<std::string> indexed_;  // index files found intact in this run
  const Matcher& m_;
  const RunOptions& o_;
  const std::function<bool(const Match&)>& emit_;
  RunStats* const stats_;
};

}  // namespace

Status Run(env::Env* env, const std::string& data_dir, const Matcher& m, const RunOptions& o,
           const std::function<bool(const Match&)>& emit, RunStats* stats) {
  RunStats local;
  if (stats == nullptr) stats = &local;
  if (o.follow && o.reverse)
    return InvalidArgumentError("--follow and --reverse exclude each other");
  const store::Layout layout(data_dir);
  std::map<std::string, Cursor> cursors;  // by "agent/epoch": the stream order
  // Opens readers for selected streams not seen yet; kNotFound (no streams yet) is fine.
  const auto discover = [&]() -> Status {
    auto streams = layout.ListStreams(env);
    if (!streams.ok()) {
      if (streams.status().code() == StatusCode::kNotFound && !cursors.empty()) {
        return Status::Ok();
      }
      return streams.status();
    }
    for (const store::StreamRef& s : *streams) {
      const std::string key = StreamName(s);
      if (!m.StreamSelected(s) || cursors.count(key) > 0) continue;
      Cursor c;
      c.ref = s;
      auto r = store::StreamReader::Open(env, s.dir, m.filter().seq_first);
      if (!r.ok()) {
        if (stats->warnings.size() < 100) {
          stats->warnings.push_back(key + ": " + r.status().ToString());
        }
        c.done = true;
      } else {
        c.reader = std::move(*r);
      }
      cursors.emplace(key, std::move(c));
      ++stats->streams;
    }
    return Status::Ok();
  };
  Status listed = discover();
  if (!listed.ok() && !(o.follow && listed.code() == StatusCode::kNotFound)) return listed;
  Runner runner(env, data_dir, m, o, emit, stats);
  // Readers opened later (follow) read every segment: the index only speeds up the start.
  for (auto& [key, c] : cursors) {
    if (c.reader && runner.UsesIndex()) {
      c.reader->set_segment_start([&runner, cursor = &c](uint64_t base, uint64_t size, bool) {
        return runner.SegmentStart(cursor, base, size);
      });
    }
  }
  // The newest segments read to their end get open summaries (FinishOpen).
  const auto finish = [&] {
    for (auto& [key, c] : cursors) runner.FinishOpen(&c);
    return Status::Ok();
  };
  if (o.reverse) {
    for (auto it = cursors.rbegin(); it != cursors.rend(); ++it) {
      if (it->second.done) continue;
      const uint64_t keep = o.limit == 0 ? 0 : o.limit - stats->matched;
      ASSIGN_OR_RETURN(bool more, runner.DrainReverse(&it->second, keep));
      if (!more) break;
    }
    return finish();
  }
  for (;;) {
    for (auto& [key, c] : cursors) {
      ASSIGN_OR_RETURN(bool more, runner.Drain(&c));
      if (!more) return finish();
    }
    if (!o.follow || (o.stop && o.stop())) return finish();
    std::this_thread::sleep_for(std::chrono::milliseconds(o.poll_ms));
    if (o.stop && o.stop()) {
      // One last pass: what was stored before the stop is not left out.
      for (auto& [key, c] : cursors) {
        ASSIGN_OR_RETURN(bool more, runner.Drain(&c));
        if (!more) break;
      }
      return finish();
    }
    Status again = discover();
    if (!again.ok() && again.code() != StatusCode::kNotFound) return again;
  }
}

StatusOr<RunStats> IndexStore(env::Env* env, const std::string& data_dir, IndexerState* state) {
  const auto none = [] {  // a time window no record is in, no summary overlaps
    Filter f;
    f.from_ns = INT64_MIN;
    f.to_ns = INT64_MIN;
    return f;
  };
  RunStats stats;
  const auto ignore = [](const Match&) { return true; };
  if (state == nullptr) {
    ASSIGN_OR_RETURN(auto m, Matcher::Make(none()));
    RETURN_IF_ERROR(Run(env, data_dir, *m, {}, ignore, &stats));
    return stats;
  }
  const store::Layout layout(data_dir);
  auto streams = layout.ListStreams(env);
  if (!streams.ok() && streams.status().code() == StatusCode::kNotFound) return stats;
  RETURN_IF_ERROR(streams.status());
  for (const store::StreamRef& s : *streams) {
    // Listed before the round: all but the newest are sealed, and are summarised (or
    // skipped by an intact summary) in it.
    auto segments = store::ListSegments(env, s.dir);
    if (!segments.ok() || segments->empty()) continue;
    const std::string key = s.agent + "/" + s.epoch;
    Filter f = none();
    std::string agent;  // as an fnmatch pattern that matches only itself
    for (char c : s.agent) {
      if (c == '*' || c == '?' || c == '[' || c == '\\') agent += '\\';
      agent += c;
    }
    f.agents = {agent};
    f.epoch = s.epoch;
    f.seq_first = state->indexed_below[key];
    ASSIGN_OR_RETURN(auto m, Matcher::Make(std::move(f)));
    RunStats one;
    RETURN_IF_ERROR(Run(env, data_dir, *m, {}, ignore, &one));
    stats.streams += one.streams;
    stats.segments_skipped += one.segments_skipped;
    stats.indexes_written += one.indexes_written;
    stats.scanned += one.scanned;
    for (std::string& w : one.warnings) {
      if (stats.warnings.size() < 100) stats.warnings.push_back(std::move(w));
    }
    state->indexed_below[key] = segments->rbegin()->first;
  }
  return stats;
}

void AddReceipt(proof::Prover* prover, const Match& m, std::string* object) {
  while (!object->empty() && object->back() == '\n') object->pop_back();
  if (object->empty() || object->back() != '}') return;
  auto proof = prover->Inclusion(m.stream->agent, m.stream->epoch, m.seq);
  object->pop_back();
  if (proof.ok()) {
    std::erase(*proof, '\n');  // a JSON string holds no raw newline: these are only layout
    *object += ",\"gapless.proof\":" + *proof + "}";
  } else {
    *object += ",\"gapless.proof_error\":" + JsonString(proof.status().message()) + "}";
  }
}

Status RunArchive(const std::string& path, const archive::Identity* identity,
                  const std::optional<checkpoint::Verifier>& key, const Matcher& m,
                  const RunOptions& o, const std::function<bool(const Match&)>& emit,
                  RunStats* stats, archive::ArchiveReport* verified) {
  RunStats local;
  if (stats == nullptr) stats = &local;
  if (o.follow) return InvalidArgumentError("--follow reads a data_dir; an archive is finished");
  std::map<std::string, store::StreamRef> refs;  // "agent/epoch" -> the Match's stream
  struct Kept {
    const store::StreamRef* ref;
    uint64_t seq;
    spool::FrameType type;
    std::string payload;
  };
  std::deque<Kept> kept;  // reverse: the last matches, newest last
  bool over = false;      // the limit was reached, or emit said stop
  const auto offer = [&](const store::StreamRef* ref, uint64_t seq, spool::FrameType type,
                         std::string_view payload) {
    event::Event ev;
    const event::Event* decoded = event::DecodeEvent(payload, &ev).ok() ? &ev : nullptr;
    if (!m.Matches(seq, decoded, payload)) return;
    ++stats->matched;
    if (!emit(MakeMatch(ref, seq, type, payload, decoded)) ||
        (o.limit > 0 && stats->matched >= o.limit)) {
      over = true;
    }
  };
  const archive::RecordVisitor visit = [&](const archive::StreamInArchive& s, uint64_t seq,
                                           spool::FrameType type, std::string_view payload) {
    if (type != spool::FrameType::kData) return true;
    store::StreamRef& ref = refs[s.agent + "/" + s.epoch];
    if (ref.agent.empty()) {
      ref.agent = s.agent;
      ref.epoch = s.epoch;
      ref.dir = path;
      if (m.StreamSelected(ref)) ++stats->streams;
    }
    if (!m.StreamSelected(ref)) return true;
    ++stats->scanned;
    if (!o.reverse) {
      offer(&ref, seq, type, payload);
      return !over;
    }
    event::Event ev;
    const event::Event* decoded = event::DecodeEvent(payload, &ev).ok() ? &ev : nullptr;
    if (!m.Matches(seq, decoded, payload)) return true;
    kept.push_back({&ref, seq, type, std::string(payload)});
    if (o.limit > 0 && kept.size() > o.limit) kept.pop_front();
    return true;
  };
  auto report = archive::VerifyArchive(path, key, identity, {}, visit);
  if (!report.ok()) return report.status();
  for (auto it = kept.rbegin(); it != kept.rend() && !over; ++it) {
    offer(it->ref, it->seq, it->type, it->payload);
  }
  if (verified != nullptr) *verified = std::move(*report);
  return Status::Ok();
}

}  // namespace gapless::query
