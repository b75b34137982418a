// Event: the record model every input produces and the spool stores.
//
// An Event is a set of views. Encoding writes it into the payload of one spool DATA
// record (docs/formats/event.md); decoding returns views into that payload, so reading
// a record allocates nothing for its strings. The original bytes are always kept exactly
// as received (`raw`); every parsed field is derived from them or from where they came
// from, and a message no parser understood is still kept, flagged kParseError.
//
// Thread contract: plain values; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace gapless::event {

// Stored values: append, never renumber.
enum class Format : uint8_t {
  kRaw = 0,      // no parser applied or none understood it (see kParseError)
  kRfc5424 = 1,  // syslog, RFC 5424
  kRfc3164 = 2,  // syslog, RFC 3164 and the variants devices send
  kJson = 3,     // HTTP/JSON ingest
  kLine = 4,     // one line (or joined lines) of a tailed file
  kJournal = 5,  // a journald entry
};

// Flag bits. Stored: append, never renumber.
enum Flag : uint16_t {
  kParseError = 1u << 0,    // raw kept; fields may be partial
  kTruncated = 1u << 1,     // raw is a prefix of a longer message (max size exceeded)
  kEventTime = 1u << 2,     // event_unix_ns was parsed from the message
  kYearInferred = 1u << 3,  // the timestamp had no year; taken from the observed time
  kZoneAssumed = 1u << 4,   // the timestamp had no UTC offset; UTC was assumed
  kBom = 1u << 5,           // the RFC 5424 MSG began with a UTF-8 BOM
  kFramingError = 1u << 6,  // the transport framing was broken here (see the docs)
  kKnownFlags = (1u << 7) - 1,
};

constexpr uint8_t kNoValue = 0xFF;  // severity / facility not known

struct Field {
  std::string_view key;
  std::string_view value;
};

struct Event {
  Format format = Format::kRaw;
  uint16_t flags = 0;
  uint8_t severity = kNoValue;   // 0..7
  uint8_t facility = kNoValue;   // 0..23
  int64_t observed_unix_ns = 0;  // agent clock when the bytes were read
  int64_t event_unix_ns = 0;     // valid if flags & kEventTime
  std::string_view source;       // "syslog:tcp:6514", "file:/var/log/auth.log", ...
  std::string_view peer;         // sender address, if any ("127.0.0.1:41234")
  std::string_view host;
  std::string_view app;
  std::string_view procid;
  std::string_view msgid;
  std::vector<Field> fields;  // structured data (RFC 5424 SD, JSON members, journal)
  std::string_view message;   // the free-text part; a sub-range of raw or a field
  std::string_view raw;       // exactly the bytes received (after framing)

  bool has(Flag f) const { return (flags & f) != 0; }
};

// Appends the encoding of `e` to *out. Strings longer than the format allows (16 MiB)
// are impossible here: inputs cap messages far below that.
void EncodeEvent(const Event& e, std::string* out);

// Decodes a payload written by EncodeEvent. The views in *e point into `payload`, which
// must outlive them. kDataLoss with what is wrong for anything malformed.
Status DecodeEvent(std::string_view payload, Event* e);

// RFC 3339 UTC with milliseconds: "2026-11-22T12:00:00.123Z".
std::string FormatUnixNanos(int64_t unix_ns);
// The same through gmtime_r and snprintf: what FormatUnixNanos falls back to outside the
// years 0..9999, and the reference its test compares against.
std::string FormatUnixNanosSlow(int64_t unix_ns);

// A one-line rendering for tools and tests: time (event time, else observed), source,
// host, app, message.
std::string DescribeEvent(const Event& e);

}  // namespace gapless::event
