#include "event/event.h"

#include <cstdio>
#include <ctime>
#include <functional>

#include "base/coding.h"

namespace gapless::event {
namespace {

constexpr uint8_t kVersion = 1;
constexpr uint8_t kMessageInRaw = 0;  // message is raw[offset, offset + len)
constexpr uint8_t kMessageOwned = 1;  // message is stored as its own string
constexpr size_t kFixedHeader = 1 + 1 + 2 + 1 + 1 + 8 + 8;

// True if `inner` lies within `outer` (pointer ranges); std::less_equal gives a total
// order even for pointers into different objects.
bool Within(std::string_view inner, std::string_view outer) {
  if (inner.empty() || outer.empty()) return false;
  const std::less_equal<const char*> le;
  return le(outer.data(), inner.data()) &&
         le(inner.data() + inner.size(), outer.data() + outer.size());
}

Status Malformed(const char* what) {
  return DataLossError(std::string("malformed event record: ") + what);
}

}  // namespace

void EncodeEvent(const Event& e, std::string* out) {
  char fixed[kFixedHeader];
  fixed[0] = static_cast<char>(kVersion);
  fixed[1] = static_cast<char>(e.format);
  fixed[2] = static_cast<char>(e.flags & 0xFF);
  fixed[3] = static_cast<char>(e.flags >> 8);
  fixed[4] = static_cast<char>(e.severity);
  fixed[5] = static_cast<char>(e.facility);
  EncodeFixed64(fixed + 6, static_cast<uint64_t>(e.observed_unix_ns));
  EncodeFixed64(fixed + 14, static_cast<uint64_t>(e.has(kEventTime) ? e.event_unix_ns : 0));
  out->append(fixed, sizeof(fixed));
  for (std::string_view s : {e.source, e.peer, e.host, e.app, e.procid, e.msgid}) {
    PutLengthPrefixed(out, s);
  }
  PutVarint32(out, static_cast<uint32_t>(e.fields.size()));
  for (const Field& f : e.fields) {
    PutLengthPrefixed(out, f.key);
    PutLengthPrefixed(out, f.value);
  }
  if (e.message.empty() || Within(e.message, e.raw)) {
    out->push_back(static_cast<char>(kMessageInRaw));
    PutVarint32(out,
                e.message.empty() ? 0 : static_cast<uint32_t>(e.message.data() - e.raw.data()));
    PutVarint32(out, static_cast<uint32_t>(e.message.size()));
  } else {
    out->push_back(static_cast<char>(kMessageOwned));
    PutLengthPrefixed(out, e.message);
  }
  out->append(e.raw);  // the rest of the payload: no length needed
}

Status DecodeEvent(std::string_view in, Event* e) {
  *e = Event();
  if (in.size() < kFixedHeader) return Malformed("shorter than its fixed header");
  if (static_cast<uint8_t>(in[0]) != kVersion) {
    return DataLossError("event record version " + std::to_string(static_cast<uint8_t>(in[0])) +
                         " is not supported (this build reads version 1)");
  }
  const auto format = static_cast<uint8_t>(in[1]);
  if (format > static_cast<uint8_t>(Format::kJournal)) return Malformed("unknown format");
  e->format = static_cast<Format>(format);
  e->flags = static_cast<uint16_t>(static_cast<uint8_t>(in[2]) | static_cast<uint8_t>(in[3]) << 8);
  if ((e->flags & ~kKnownFlags) != 0) return Malformed("unknown flag bits");
  e->severity = static_cast<uint8_t>(in[4]);
  e->facility = static_cast<uint8_t>(in[5]);
  if (e->severity > 7 && e->severity != kNoValue) return Malformed("severity out of range");
  if (e->facility > 23 && e->facility != kNoValue) return Malformed("facility out of range");
  e->observed_unix_ns = static_cast<int64_t>(DecodeFixed64(in.data() + 6));
  e->event_unix_ns = static_cast<int64_t>(DecodeFixed64(in.data() + 14));
  in.remove_prefix(kFixedHeader);
  for (std::string_view* s : {&e->source, &e->peer, &e->host, &e->app, &e->procid, &e->msgid}) {
    if (!GetLengthPrefixed(&in, s)) return Malformed("string runs past the end");
  }
  uint32_t nfields = 0;
  if (!GetVarint32(&in, &nfields)) return Malformed("bad field count");
  if (nfields > in.size() / 2) return Malformed("field count larger than the record");
  e->fields.resize(nfields);
  for (Field& f : e->fields) {
    if (!GetLengthPrefixed(&in, &f.key) || !GetLengthPrefixed(&in, &f.value)) {
      return Malformed("field runs past the end");
    }
  }
  if (in.empty()) return Malformed("no message kind");
  const auto kind = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  if (kind == kMessageInRaw) {
    uint32_t offset = 0;
    uint32_t len = 0;
    if (!GetVarint32(&in, &offset) || !GetVarint32(&in, &len))
      return Malformed("bad message range");
    if (offset > in.size() || len > in.size() - offset) {
      return Malformed("message range outside the raw bytes");
    }
    e->raw = in;
    e->message = in.substr(offset, len);
  } else if (kind == kMessageOwned) {
    if (!GetLengthPrefixed(&in, &e->message)) return Malformed("message runs past the end");
    e->raw = in;
  } else {
    return Malformed("unknown message kind");
  }
  return Status::Ok();
}

namespace {

// The proleptic Gregorian date of a day count from 1970-01-01 (the days-from-civil
// algorithm run backwards: 400-year eras of 146,097 days, years starting in March).
void CivilFromDays(int64_t days, int64_t* year, unsigned* month, unsigned* day) {
  days += 719'468;  // from 0000-03-01
  const int64_t era = (days >= 0 ? days : days - 146'096) / 146'097;
  const auto doe = static_cast<unsigned>(days - era * 146'097);                  // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;  // [0, 399]
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                  // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                                       // [0, 11]
  *day = doy - (153 * mp + 2) / 5 + 1;
  *month = mp < 10 ? mp + 3 : mp - 9;
  *year = static_cast<int64_t>(yoe) + era * 400 + (*month <= 2 ? 1 : 0);
}

void Digits(char* at, unsigned value, int n) {
  for (int i = n - 1; i >= 0; --i) {
    at[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

// Without snprintf or gmtime_r: every output formats two times per record.
std::string FormatUnixNanos(int64_t ns) {
  int64_t secs = ns / 1'000'000'000, sub = ns % 1'000'000'000;  // no overflow at INT64_MIN
  if (sub < 0) {
    --secs;
    sub += 1'000'000'000;
  }
  const int64_t days = secs >= 0 ? secs / 86400 : (secs - 86'399) / 86400;
  int64_t year = 0;
  unsigned month = 0, day = 0;
  CivilFromDays(days, &year, &month, &day);
  if (year >= 0 && year <= 9999) {
    const auto in_day = static_cast<unsigned>(secs - days * 86400);
    char buf[25] = "0000-00-00T00:00:00.000Z";
    Digits(buf, static_cast<unsigned>(year), 4);
    Digits(buf + 5, month, 2);
    Digits(buf + 8, day, 2);
    Digits(buf + 11, in_day / 3600, 2);
    Digits(buf + 14, in_day / 60 % 60, 2);
    Digits(buf + 17, in_day % 60, 2);
    Digits(buf + 20, static_cast<unsigned>(sub / 1'000'000), 3);
    return std::string(buf, 24);
  }
  return FormatUnixNanosSlow(ns);
}

std::string FormatUnixNanosSlow(int64_t ns) {
  int64_t secs = ns / 1'000'000'000, sub = ns % 1'000'000'000;  // no overflow at INT64_MIN
  if (sub < 0) {
    --secs;
    sub += 1'000'000'000;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(sub / 1'000'000));
  return buf;
}

std::string DescribeEvent(const Event& e) {
  std::string s;
  s += FormatUnixNanos(e.has(kEventTime) ? e.event_unix_ns : e.observed_unix_ns);
  s += ' ';
  s += e.source.empty() ? "-" : e.source;
  s += ' ';
  s += e.host.empty() ? "-" : e.host;
  s += ' ';
  s += e.app.empty() ? "-" : e.app;
  s += ": ";
  s += e.message;
  if (e.has(kParseError)) s += " [parse-error]";
  if (e.has(kTruncated)) s += " [truncated]";
  return s;
}

}  // namespace gapless::event
