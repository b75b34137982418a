// Syslog message parsing: RFC 5424, RFC 3164 and the variants real devices send.
//
// The parser never fails and never drops anything: it fills what it can understand and
// leaves `raw` exactly as given. A message with no valid PRI, or a 5424 message whose
// structured data is broken, is flagged kParseError and its text is kept as `message`.
//
// Variants accepted (docs/formats/event.md, "Syslog parsing"):
//   - 3164 timestamps "Mmm dd hh:mm:ss" (no year: inferred from the observed time, the
//     year that puts it closest), with optional fractional seconds and an optional year
//     ("Mmm dd yyyy hh:mm:ss"), RFC 3339 timestamps inside 3164, or no timestamp at all;
//   - 3164 without a hostname (the token after the timestamp is the tag "app[pid]:");
//   - 5424 MSG beginning with a UTF-8 BOM (flag kBom; the message view skips it);
//   - trailing CR/LF and NUL left in the frame are not part of `message` (they stay in raw).
// Timestamps without a UTC offset are read as UTC and flagged kZoneAssumed.
//
// Thread contract: stateless functions; a FieldStorage belongs to one thread.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "event/event.h"

namespace gapless::syslog {

// Backing store for field keys and unescaped values that are not plain sub-ranges of the
// raw message. Views into it stay valid until Clear().
class FieldStorage {
 public:
  std::string_view Save(std::string s) { return strings_.emplace_back(std::move(s)); }
  void Clear() { strings_.clear(); }

 private:
  std::deque<std::string> strings_;  // a deque never moves its elements
};

// Parses `raw` into *e (format, flags, pri, time, host, app, procid, msgid, fields,
// message; raw = `raw`). Fields already in *e are replaced; source, peer and
// observed_unix_ns are left as the caller set them. observed_unix_ns is used to infer a
// missing year. Views point into `raw` and *storage.
void ParseSyslog(std::string_view raw, int64_t observed_unix_ns, event::Event* e,
                 FieldStorage* storage);

// RFC 3339 ("2003-10-11T22:14:15.003Z", offset optional) at the start of s: returns the
// bytes consumed, or 0 if s does not start with one. *has_offset is false when there was
// no "Z" or offset (the time was read as UTC).
size_t ParseRfc3339(std::string_view s, int64_t* unix_ns, bool* has_offset);

// Days since 1970-01-01 of a proleptic Gregorian date (exposed for tests).
int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day);

}  // namespace gapless::syslog
