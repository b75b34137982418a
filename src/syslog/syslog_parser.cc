#include "syslog/syslog_parser.h"

#include <array>
#include <cstdlib>

namespace gapless::syslog {
namespace {

using event::Event;

constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly n digits at s[pos]; false if any is missing.
bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!IsDigit(s[pos + i])) return false;
    v = v * 10 + (s[pos + i] - '0');
  }
  *out = v;
  return true;
}

// The whole years a signed 64-bit count of nanoseconds since 1970 reaches (1677-09-21 to
// 2262-04-11): a timestamp outside them is not one this event can carry (parse error).
bool YearRepresentable(int64_t year) { return year >= 1678 && year <= 2261; }

struct CivilTime {
  int64_t year = 1970;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int64_t nanos = 0;
  bool Valid() const {
    return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 &&
           second <= 60;
  }
  int64_t ToUnixNanos() const {
    const int64_t days =
        DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    return ((days * 24 + hour) * 60 + minute) * 60 * kNanosPerSecond + second * kNanosPerSecond +
           nanos;
  }
};

int64_t YearOf(int64_t unix_ns) {
  // Inverse of DaysFromCivil for the year only (H. Hinnant's civil_from_days).
  const int64_t z = unix_ns / kNanosPerSecond / 86400 + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  return yoe + era * 400 + (mp >= 10 ? 1 : 0);
}

// Parses "hh:mm:ss" plus an optional ".fraction" at s[pos]; returns the end or 0.
size_t ParseClock(std::string_view s, size_t pos, CivilTime* t) {
  if (!Digits(s, pos, 2, &t->hour) || pos + 2 >= s.size() || s[pos + 2] != ':' ||
      !Digits(s, pos + 3, 2, &t->minute) || pos + 5 >= s.size() || s[pos + 5] != ':' ||
      !Digits(s, pos + 6, 2, &t->second)) {
    return 0;
  }
  pos += 8;
  if (pos < s.size() && s[pos] == '.') {
    size_t digits = 0;
    int64_t frac = 0;
    ++pos;
    while (pos < s.size() && IsDigit(s[pos])) {
      if (digits < 9) frac = frac * 10 + (s[pos] - '0'), ++digits;
      ++pos;
    }
    if (digits == 0) return 0;
    for (size_t i = digits; i < 9; ++i) frac *= 10;
    t->nanos = frac;
  }
  return pos;
}

// BSD timestamp "Mmm dd hh:mm:ss" (day space-padded or not, optional fraction, optional
// "yyyy " before the clock). Returns bytes consumed or 0.
size_t ParseBsdTime(std::string_view s, int64_t observed_ns, int64_t* unix_ns, bool* has_year) {
  if (s.size() < 15) return 0;
  CivilTime t;
  t.month = 0;
  for (size_t i = 0; i < kMonths.size(); ++i) {
    if (s.substr(0, 3) == kMonths[i]) t.month = static_cast<int>(i) + 1;
  }
  if (t.month == 0 || s[3] != ' ') return 0;
  size_t pos = 4;
  if (s[pos] == ' ') ++pos;  // " 5"
  if (!IsDigit(s[pos])) return 0;
  t.day = s[pos++] - '0';
  if (pos < s.size() && IsDigit(s[pos])) t.day = t.day * 10 + (s[pos++] - '0');
  if (pos >= s.size() || s[pos] != ' ') return 0;
  ++pos;
  int year = 0;
  *has_year = Digits(s, pos, 4, &year) && pos + 4 < s.size() && s[pos + 4] == ' ';
  if (*has_year) pos += 5;
  pos = ParseClock(s, pos, &t);
  if (pos == 0 || !t.Valid()) return 0;
  if (*has_year) {
    if (!YearRepresentable(year)) return 0;
    t.year = year;
    *unix_ns = t.ToUnixNanos();
    return pos;
  }
  // No year: take the one of last, this and next year that lands closest to now.
  const int64_t now_year = YearOf(observed_ns);
  int64_t best = 0;
  for (int64_t y = now_year - 1; y <= now_year + 1; ++y) {
    t.year = y;
    const int64_t candidate = t.ToUnixNanos();
    if (y == now_year - 1 || std::llabs(candidate - observed_ns) < std::llabs(best - observed_ns)) {
      best = candidate;
    }
  }
  *unix_ns = best;
  return pos;
}

// "<PRI>" with PRI 0..191; returns bytes consumed or 0.
size_t ParsePri(std::string_view s, Event* e) {
  if (s.size() < 3 || s[0] != '<') return 0;
  int value = 0;
  size_t pos = 1;
  while (pos < s.size() && pos <= 3 && IsDigit(s[pos])) value = value * 10 + (s[pos++] - '0');
  if (pos == 1 || pos >= s.size() || s[pos] != '>' || value > 191) return 0;
  e->facility = static_cast<uint8_t>(value / 8);
  e->severity = static_cast<uint8_t>(value % 8);
  return pos + 1;
}

std::string_view TrimFrameEnd(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == '\0')) {
    s.remove_suffix(1);
  }
  return s;
}

// Takes the next space-terminated token from *s (consuming one following space).
std::string_view NextToken(std::string_view* s) {
  const size_t end = s->find(' ');
  std::string_view token = s->substr(0, end);
  s->remove_prefix(end == std::string_view::npos ? s->size() : end + 1);
  return token;
}

std::string_view Nil(std::string_view token) { return token == "-" ? std::string_view() : token; }

// RFC 5424 structured data at the front of *s: "-" or one or more [id k="v" ...].
// Returns false (leaving fields parsed so far) if it is malformed.
bool ParseStructuredData(std::string_view* s, Event* e, FieldStorage* storage) {
  if (!s->empty() && (*s)[0] == '-') {
    s->remove_prefix(1);
    return true;
  }
  if (s->empty() || (*s)[0] != '[') return false;
  while (!s->empty() && (*s)[0] == '[') {
    size_t pos = 1;
    const size_t id_end = s->find_first_of(" ]", pos);
    if (id_end == std::string_view::npos || id_end == pos) return false;
    const std::string_view id = s->substr(pos, id_end - pos);
    pos = id_end;
    bool any_param = false;
    while (pos < s->size() && (*s)[pos] == ' ') {
      const size_t eq = s->find('=', pos + 1);
      if (eq == std::string_view::npos || eq == pos + 1 || eq + 1 >= s->size() ||
          (*s)[eq + 1] != '"') {
        return false;
      }
      const std::string_view name = s->substr(pos + 1, eq - pos - 1);
      if (name.find_first_of(" ]\"") != std::string_view::npos) return false;
      std::string value;
      bool escaped = false;
      size_t i = eq + 2;
      for (; i < s->size() && (*s)[i] != '"'; ++i) {
        if ((*s)[i] == '\\' && i + 1 < s->size() &&
            ((*s)[i + 1] == '"' || (*s)[i + 1] == '\\' || (*s)[i + 1] == ']')) {
          escaped = true;
          ++i;
        }
        value.push_back((*s)[i]);
      }
      if (i >= s->size()) return false;  // unterminated value
      std::string key;
      key.reserve(id.size() + 1 + name.size());
      key.append(id).append(".").append(name);
      e->fields.push_back({storage->Save(std::move(key)), escaped ? storage->Save(std::move(value))
                                                                  : s->substr(eq + 2, i - eq - 2)});
      any_param = true;
      pos = i + 1;
    }
    if (pos >= s->size() || (*s)[pos] != ']') return false;
    if (!any_param) e->fields.push_back({id, std::string_view()});
    s->remove_prefix(pos + 1);
  }
  return true;
}

// After "<PRI>1 ". On malformed structure sets kParseError and keeps the rest as message.
void Parse5424(std::string_view s, Event* e, FieldStorage* storage) {
  e->format = event::Format::kRfc5424;
  const std::string_view ts = NextToken(&s);
  if (ts != "-") {
    bool has_offset = false;
    int64_t t = 0;
    if (ParseRfc3339(ts, &t, &has_offset) == ts.size()) {
      e->event_unix_ns = t;
      e->flags |= event::kEventTime | (has_offset ? 0 : event::kZoneAssumed);
    } else {
      e->flags |= event::kParseError;
    }
  }
  e->host = Nil(NextToken(&s));
  e->app = Nil(NextToken(&s));
  e->procid = Nil(NextToken(&s));
  e->msgid = Nil(NextToken(&s));
  if (!ParseStructuredData(&s, e, storage)) {
    e->flags |= event::kParseError;
    e->message = TrimFrameEnd(s);
    return;
  }
  if (!s.empty()) {
    if (s[0] != ' ') e->flags |= event::kParseError;
    s.remove_prefix(1);
  }
  if (s.substr(0, 3) == "\xEF\xBB\xBF") {
    e->flags |= event::kBom;
    s.remove_prefix(3);
  }
  e->message = TrimFrameEnd(s);
}

// "app[pid]: " or "app: " at the front of *s; consumes it and returns true if present.
bool ParseTag(std::string_view* s, Event* e) {
  size_t i = 0;
  while (i < s->size() && i <= 48 && (*s)[i] != ':' && (*s)[i] != '[' && (*s)[i] != ' ') ++i;
  if (i == 0 || i >= s->size() || i > 48) return false;
  std::string_view procid;
  size_t end = i;
  if ((*s)[i] == '[') {
    const size_t close = s->find(']', i);
    if (close == std::string_view::npos || close - i > 129) return false;
    procid = s->substr(i + 1, close - i - 1);
    end = close + 1;
  }
  if (end >= s->size() || (*s)[end] != ':') return false;
  e->app = s->substr(0, i);
  e->procid = procid;
  s->remove_prefix(end + 1);
  if (!s->empty() && (*s)[0] == ' ') s->remove_prefix(1);
  return true;
}

// After "<PRI>" of anything that is not 5424.
void Parse3164(std::string_view s, int64_t observed_ns, Event* e) {
  e->format = event::Format::kRfc3164;
  int64_t t = 0;
  bool has_offset = false;
  bool has_year = false;
  size_t used = ParseRfc3339(s, &t, &has_offset);
  if (used > 0) {
    e->flags |= has_offset ? 0 : event::kZoneAssumed;
  } else if ((used = ParseBsdTime(s, observed_ns, &t, &has_year)) > 0) {
    e->flags |= event::kZoneAssumed | (has_year ? 0 : event::kYearInferred);
  }
  if (used > 0) {
    e->event_unix_ns = t;
    e->flags |= event::kEventTime;
    s.remove_prefix(used);
    if (!s.empty() && s[0] == ' ') s.remove_prefix(1);
    // HOSTNAME, unless the next token already looks like the tag ("sshd[42]:", "su:").
    const std::string_view token = s.substr(0, s.find(' '));
    if (!token.empty() && token.back() != ':' && token.find('[') == std::string_view::npos &&
        token.size() < s.size()) {
      e->host = token;
      s.remove_prefix(token.size() + 1);
    }
  }
  ParseTag(&s, e);
  e->message = TrimFrameEnd(s);
}

}  // namespace

size_t ParseRfc3339(std::string_view s, int64_t* unix_ns, bool* has_offset) {
  CivilTime t;
  int year = 0;
  if (!Digits(s, 0, 4, &year) || s.size() < 11 || s[4] != '-' || !Digits(s, 5, 2, &t.month) ||
      s[7] != '-' || !Digits(s, 8, 2, &t.day) || (s[10] != 'T' && s[10] != 't')) {
    return 0;
  }
  t.year = year;
  size_t pos = ParseClock(s, 11, &t);
  if (pos == 0 || !t.Valid() || !YearRepresentable(year)) return 0;
  int64_t offset_s = 0;
  *has_offset = false;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    *has_offset = true;
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0;
    int om = 0;
    if (!Digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !Digits(s, pos + 4, 2, &om) || oh > 23 || om > 59) {
      return 0;
    }
    offset_s = (oh * 60 + om) * 60 * (s[pos] == '-' ? -1 : 1);
    *has_offset = true;
    pos += 6;
  }
  *unix_ns = t.ToUnixNanos() - offset_s * kNanosPerSecond;
  return pos;
}

int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto yoe = static_cast<unsigned>(year - era * 400);
  const unsigned doy = (153 * (month + (month > 2 ? -3u : 9u)) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void ParseSyslog(std::string_view raw, int64_t observed_unix_ns, Event* e, FieldStorage* storage) {
  e->format = event::Format::kRaw;
  e->flags = 0;
  e->severity = event::kNoValue;
  e->facility = event::kNoValue;
  e->event_unix_ns = 0;
  e->host = e->app = e->procid = e->msgid = std::string_view();
  e->fields.clear();
  e->raw = raw;
  const size_t pri = ParsePri(raw, e);
  if (pri == 0) {
    e->flags |= event::kParseError;
    e->message = TrimFrameEnd(raw);
    return;
  }
  std::string_view rest = raw.substr(pri);
  // RFC 5424: VERSION (1-2 digits, not 0) then a space; 3164 never starts that way.
  size_t v = 0;
  while (v < rest.size() && v < 2 && IsDigit(rest[v])) ++v;
  if (v > 0 && rest[0] != '0' && v < rest.size() && rest[v] == ' ') {
    Parse5424(rest.substr(v + 1), e, storage);
  } else {
    Parse3164(rest, observed_unix_ns, e);
  }
}

}  // namespace gapless::syslog
