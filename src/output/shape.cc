#include "output/shape.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <vector>

#include "base/json_text.h"
#include "event/event.h"
#include "identity/identity.h"
#include "spool/loss_record.h"

namespace gapless::output {
namespace {

// The private enterprise number RFC 5612 reserves for documentation: the SD-ID of the
// provenance element until gapless has a number of its own (docs/outputs.md).
constexpr std::string_view kSdId = "gapless@32473";

std::string_view FormatName(event::Format f) {
  switch (f) {
    case event::Format::kRaw:
      return "raw";
    case event::Format::kRfc5424:
      return "rfc5424";
    case event::Format::kRfc3164:
      return "rfc3164";
    case event::Format::kJson:
      return "json";
    case event::Format::kLine:
      return "line";
    case event::Format::kJournal:
      return "journal";
  }
  return "unknown";
}

constexpr std::pair<uint16_t, std::string_view> kFlagNames[] = {
    {event::kParseError, "parse_error"},     {event::kTruncated, "truncated"},
    {event::kEventTime, "event_time"},       {event::kYearInferred, "year_inferred"},
    {event::kZoneAssumed, "zone_assumed"},   {event::kBom, "bom"},
    {event::kFramingError, "framing_error"},
};

// Length of the well-formed UTF-8 sequence at s[i], or 0 if there is none.
size_t Utf8SequenceAt(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlongs
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // <= U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

// Appends s to *out as a JSON string (RFC 8259); bytes that are not UTF-8 become U+FFFD
// (the exact bytes travel in a *_base64 member beside it). Returns whether s was UTF-8.
// Runs of plain ASCII are copied whole: this is the output's hot path.
// Bytes a JSON string holds as they are: printable ASCII but the quote and backslash.
constexpr std::array<bool, 256> kPlainJson = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

bool AppendJsonText(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  bool utf8 = true;
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes copied as they are
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (kPlainJson[c]) {
      ++i;
      while (i < s.size() && kPlainJson[static_cast<unsigned char>(s[i])]) ++i;
      continue;
    }
    if (c >= 0x80) {
      const size_t n = Utf8SequenceAt(s, i);
      if (n != 0) {
        i += n;
        continue;
      }
    }
    out->append(s.substr(run, i - run));
    if (c >= 0x80) {
      utf8 = false;
      out->append("\xEF\xBF\xBD");
    } else if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xf]);
    }
    run = ++i;
  }
  out->append(s.substr(run));
  out->push_back('"');
  return utf8;
}

std::string JsonText(std::string_view s) {
  std::string out;
  AppendJsonText(&out, s);
  return out;
}

class JsonObject {
 public:
  JsonObject() { out_.reserve(1024); }
  void Raw(std::string_view key, std::string_view json) {
    Key(key);
    out_.append(json);
  }
  void Text(std::string_view key, std::string_view value) {
    Key(key);
    AppendJsonText(&out_, value);
  }
  // A text that may not be UTF-8: as text, and then exactly in base64 if it is not.
  void Bytes(std::string_view key, std::string_view value) {
    Key(key);
    if (AppendJsonText(&out_, value)) return;
    Raw(std::string(key) + "_base64", JsonString(identity::Base64Encode(value)));
  }
  void Number(std::string_view key, uint64_t v) {
    Key(key);
    char buf[24];
    auto [end, err] = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, static_cast<size_t>(end - buf));
  }
  std::string Done() {
    if (out_.empty()) return "{}";
    out_.push_back('}');
    return std::move(out_);
  }

 private:
  void Key(std::string_view key) {
    out_.push_back(out_.empty() ? '{' : ',');
    if (std::all_of(key.begin(), key.end(),
                    [](char c) { return kPlainJson[static_cast<unsigned char>(c)]; })) {
      out_.push_back('"');  // the keys are constants: nothing to escape
      out_.append(key);
      out_.append("\":");
      return;
    }
    AppendJsonText(&out_, key);
    out_.push_back(':');
  }
  std::string out_;
};

void AddProvenance(const Provenance& p, JsonObject* o) {
  o->Text("gapless.id", IdempotencyKey(p));
  o->Text("gapless.agent", p.agent);
  o->Text("gapless.epoch", p.epoch);
  o->Number("gapless.seq", p.seq);
  o->Text("gapless.leaf", HexEncode(p.leaf));
}

// Structured fields as one object; a key that repeats keeps every value, in order, as an
// array.
std::string FieldsJson(const std::vector<event::Field>& fields) {
  std::vector<std::string_view> order;
  std::map<std::string_view, std::vector<std::string_view>> values;
  for (const event::Field& f : fields) {
    auto [it, inserted] = values.try_emplace(f.key);
    if (inserted) order.push_back(f.key);
    it->second.push_back(f.value);
  }
  JsonObject o;
  for (std::string_view key : order) {
    const auto& v = values[key];
    if (v.size() == 1) {
      o.Text(key, v[0]);
      continue;
    }
    std::string list = "[";
    for (size_t i = 0; i < v.size(); ++i) list += (i ? "," : "") + JsonText(v[i]);
    o.Raw(key, list + "]");
  }
  return o.Done();
}

std::string EventJson(const Provenance& p, const event::Event& e) {
  JsonObject o;
  AddProvenance(p, &o);
  o.Text("kind", "event");
  o.Text("format", FormatName(e.format));
  o.Text("observed", event::FormatUnixNanos(e.observed_unix_ns));
  if (e.has(event::kEventTime)) o.Text("time", event::FormatUnixNanos(e.event_unix_ns));
  if (e.severity != event::kNoValue) o.Number("severity", e.severity);
  if (e.facility != event::kNoValue) o.Number("facility", e.facility);
  const std::pair<std::string_view, std::string_view> header[] = {
      {"source", e.source}, {"peer", e.peer},     {"host", e.host},
      {"app", e.app},       {"procid", e.procid}, {"msgid", e.msgid},
  };
  for (const auto& [key, value] : header) {
    if (!value.empty()) o.Bytes(key, value);
  }
  if (!e.fields.empty()) o.Raw("fields", FieldsJson(e.fields));
  o.Bytes("message", e.message);
  if (e.raw != e.message) o.Bytes("raw", e.raw);
  if (e.flags != 0) {
    std::string list = "[";
    for (const auto& [bit, name] : kFlagNames) {
      if (e.has(static_cast<event::Flag>(bit)))
        list += (list.size() > 1 ? "," : "") + JsonString(name);
    }
    o.Raw("flags", list + "]");
  }
  return o.Done();
}

// A LOSS record's members (json, and under gapless.loss in the schema shapes).
void AddLossMembers(const spool::LossRecord& l, JsonObject* o) {
  o->Text("reason", spool::LossReasonName(l.reason));
  if (l.has_seq_range) {
    o->Number("first_seq", l.first_seq);
    o->Number("last_seq", l.last_seq);
  }
  o->Number("records", l.record_count);
  o->Number("bytes", l.bytes);
  if (l.time_from_unix_ns != 0) o->Text("from", event::FormatUnixNanos(l.time_from_unix_ns));
  if (l.time_to_unix_ns != 0) o->Text("to", event::FormatUnixNanos(l.time_to_unix_ns));
  o->Bytes("detail", l.detail);
}

std::string LossJson(const Provenance& p, const spool::LossRecord& l) {
  JsonObject o;
  AddProvenance(p, &o);
  o.Text("kind", "loss");
  AddLossMembers(l, &o);
  o.Bytes("message", l.ToString());
  return o.Done();
}

std::string UndecodableJson(const Provenance& p, std::string_view payload, const Status& why) {
  JsonObject o;
  AddProvenance(p, &o);
  o.Text("kind", "undecodable");
  o.Text("error", why.message());
  o.Raw("payload_base64", JsonString(identity::Base64Encode(payload)));
  return o.Done();
}

// The provenance as a nested object: {"id","agent","epoch","seq","leaf"} (ecs, ocsf).
JsonObject ProvenanceObject(const Provenance& p) {
  JsonObject o;
  o.Text("id", IdempotencyKey(p));
  o.Text("agent", p.agent);
  o.Text("epoch", p.epoch);
  o.Number("seq", p.seq);
  o.Text("leaf", HexEncode(p.leaf));
  return o;
}

constexpr std::string_view kSeverityKeyword[] = {"emerg",   "alert",  "crit", "err",
                                                 "warning", "notice", "info", "debug"};
constexpr std::string_view kSeverityName[] = {"Emergency", "Alert",  "Critical",      "Error",
                                              "Warning",   "Notice", "Informational", "Debug"};
constexpr std::string_view kFacilityName[] = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog",   "lpr",     "news",
    "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "security", "console", "solaris-cron",
    "local0", "local1", "local2",   "local3", "local4", "local5",   "local6",  "local7"};

uint64_t UnixMillis(int64_t ns) { return ns > 0 ? static_cast<uint64_t>(ns / 1'000'000) : 0; }

// The source's file path, from "file:/var/log/auth.log".
std::string_view FilePath(std::string_view source) {
  return source.rfind("file:", 0) == 0 ? source.substr(5) : std::string_view();
}

// gapless's own members of an event beyond the schema: the format, the source, the
// structured fields and the flags.
void AddGaplessDetails(const event::Event& e, JsonObject* g) {
  g->Text("format", FormatName(e.format));
  if (!e.source.empty()) g->Bytes("source", e.source);
  if (!e.fields.empty()) g->Raw("fields", FieldsJson(e.fields));
  if (e.flags != 0) {
    std::string list = "[";
    for (const auto& [bit, name] : kFlagNames) {
      if (e.has(static_cast<event::Flag>(bit))) {
        list += (list.size() > 1 ? "," : "") + JsonString(name);
      }
    }
    g->Raw("flags", list + "]");
  }
}

// Elastic Common Schema 8.11 (docs/outputs.md has the table).
std::string EventEcs(const Provenance& p, const event::Event& e) {
  JsonObject o;
  const int64_t when = e.has(event::kEventTime) ? e.event_unix_ns : e.observed_unix_ns;
  o.Text("@timestamp", event::FormatUnixNanos(when));
  o.Raw("ecs", R"({"version":"8.11.0"})");
  o.Bytes("message", e.message);
  JsonObject ev;
  ev.Text("kind", "event");
  ev.Text("created", event::FormatUnixNanos(e.observed_unix_ns));
  ev.Bytes("original", e.raw);
  if (e.severity != event::kNoValue) ev.Number("severity", e.severity);
  o.Raw("event", ev.Done());
  if (!e.host.empty()) {
    JsonObject host;
    host.Bytes("name", e.host);
    o.Raw("host", host.Done());
  }
  if (!e.app.empty() || !e.procid.empty()) {
    JsonObject process;
    if (!e.app.empty()) process.Bytes("name", e.app);
    uint64_t pid = 0;
    auto [end, err] = std::from_chars(e.procid.data(), e.procid.data() + e.procid.size(), pid);
    if (!e.procid.empty() && err == std::errc() && end == e.procid.data() + e.procid.size()) {
      process.Number("pid", pid);
    }
    o.Raw("process", process.Done());
  }
  JsonObject log;
  if (e.severity != event::kNoValue && e.severity < 8) {
    log.Text("level", kSeverityKeyword[e.severity]);
  }
  if (e.format == event::Format::kRfc5424 || e.format == event::Format::kRfc3164 ||
      e.facility != event::kNoValue) {
    JsonObject sl;
    if (e.facility != event::kNoValue && e.facility < 24) {
      sl.Raw("facility", "{\"code\":" + std::to_string(e.facility) +
                             ",\"name\":" + JsonString(kFacilityName[e.facility]) + "}");
    }
    if (e.severity != event::kNoValue && e.severity < 8) {
      sl.Raw("severity", "{\"code\":" + std::to_string(e.severity) +
                             ",\"name\":" + JsonString(kSeverityName[e.severity]) + "}");
    }
    if (e.format == event::Format::kRfc5424) sl.Number("version", 1);
    if (!e.host.empty()) sl.Bytes("hostname", e.host);
    if (!e.app.empty()) sl.Bytes("appname", e.app);
    if (!e.procid.empty()) sl.Bytes("procid", e.procid);
    if (!e.msgid.empty()) sl.Bytes("msgid", e.msgid);
    log.Raw("syslog", sl.Done());
  }
  if (const std::string_view path = FilePath(e.source); !path.empty()) {
    JsonObject file;
    file.Bytes("path", path);
    log.Raw("file", file.Done());
  }
  if (!e.peer.empty()) {
    JsonObject source;
    source.Bytes("address", e.peer);
    log.Raw("source", source.Done());  // as Filebeat's syslog input sets it
  }
  o.Raw("log", log.Done());
  JsonObject agent;
  agent.Text("type", "gapless");
  agent.Text("name", p.agent);
  o.Raw("agent", agent.Done());
  JsonObject g = ProvenanceObject(p);
  AddGaplessDetails(e, &g);
  o.Raw("gapless", g.Done());
  return o.Done();
}

// OCSF 1.1 Base Event (class 0, activity 99 "Other"): syslog and file lines have no more
// specific OCSF class; what the schema has no attribute for is in `unmapped`.
uint64_t OcsfSeverity(uint8_t syslog_severity) {
  // emerg → Fatal, alert/crit → Critical, err → High, warning → Medium, notice → Low,
  // info/debug → Informational; unknown → Unknown.
  static constexpr uint64_t kMap[] = {6, 5, 5, 4, 3, 2, 1, 1};
  return syslog_severity < 8 ? kMap[syslog_severity] : 0;
}
constexpr std::string_view kOcsfSeverityName[] = {"Unknown", "Informational", "Low",  "Medium",
                                                  "High",    "Critical",      "Fatal"};

void AddOcsfHeader(JsonObject* o, uint64_t severity_id) {
  o->Number("category_uid", 0);
  o->Text("category_name", "Uncategorized");
  o->Number("class_uid", 0);
  o->Text("class_name", "Base Event");
  o->Number("activity_id", 99);
  o->Text("activity_name", "Other");
  o->Number("type_uid", 99);
  o->Number("severity_id", severity_id);
  o->Text("severity", kOcsfSeverityName[severity_id]);
}

JsonObject OcsfMetadata(const Provenance& p, int64_t logged_ns, std::string_view log_name) {
  JsonObject m;
  m.Text("version", "1.1.0");
  m.Raw("product", R"({"name":"gapless","vendor_name":"gapless"})");
  m.Text("uid", IdempotencyKey(p));
  if (logged_ns > 0) m.Number("logged_time", UnixMillis(logged_ns));
  if (!log_name.empty()) m.Bytes("log_name", log_name);
  return m;
}

std::string EventOcsf(const Provenance& p, const event::Event& e) {
  JsonObject o;
  AddOcsfHeader(&o, e.severity == event::kNoValue ? 0 : OcsfSeverity(e.severity));
  o.Number("time", UnixMillis(e.has(event::kEventTime) ? e.event_unix_ns : e.observed_unix_ns));
  o.Bytes("message", e.message);
  o.Bytes("raw_data", e.raw);
  o.Raw("metadata", OcsfMetadata(p, e.observed_unix_ns, e.source).Done());
  JsonObject u;
  if (e.severity != event::kNoValue) u.Number("syslog_severity", e.severity);
  if (e.facility != event::kNoValue) u.Number("syslog_facility", e.facility);
  const std::pair<std::string_view, std::string_view> header[] = {
      {"host", e.host}, {"app", e.app}, {"procid", e.procid}, {"msgid", e.msgid}, {"peer", e.peer}};
  for (const auto& [key, value] : header) {
    if (!value.empty()) u.Bytes(key, value);
  }
  JsonObject g = ProvenanceObject(p);
  AddGaplessDetails(e, &g);
  u.Raw("gapless", g.Done());
  o.Raw("unmapped", u.Done());
  return o.Done();
}

std::string LossObject(const spool::LossRecord& l) {
  JsonObject o;
  AddLossMembers(l, &o);
  return o.Done();
}

// A LOSS record or an undecodable payload in a schema shape: a pipeline error (ECS
// event.kind) / a High-severity base event (OCSF), with what is known in gapless.*.
std::string PipelineError(Shape shape, const Provenance& p, int64_t when_ns,
                          const std::string& message, const std::string& key,
                          const std::string& detail_json) {
  JsonObject g = ProvenanceObject(p);
  g.Raw(key, detail_json);
  JsonObject o;
  if (shape == Shape::kEcs) {
    o.Text("@timestamp", event::FormatUnixNanos(when_ns));
    o.Raw("ecs", R"({"version":"8.11.0"})");
    o.Text("message", message);
    o.Raw("event", R"({"kind":"pipeline_error"})");
    o.Raw("log", R"({"level":"warning"})");
    JsonObject agent;
    agent.Text("type", "gapless");
    agent.Text("name", p.agent);
    o.Raw("agent", agent.Done());
    o.Raw("gapless", g.Done());
  } else {
    AddOcsfHeader(&o, 4);
    o.Number("time", UnixMillis(when_ns));
    o.Text("message", message);
    o.Raw("metadata", OcsfMetadata(p, when_ns, "").Done());
    o.Raw("unmapped", "{\"gapless\":" + g.Done() + "}");
  }
  return o.Done();
}

// An RFC 5424 header field: printable US-ASCII without spaces, at most max bytes, or "-".
std::string HeaderField(std::string_view v, size_t max) {
  if (v.empty()) return "-";
  std::string out;
  for (const char c : v.substr(0, max)) out += (c > 32 && c < 127) ? c : '_';
  return out;
}

std::string SdValue(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}

std::string Rfc5424(const Provenance& p, int pri, int64_t time_ns, std::string_view host,
                    std::string_view app, std::string_view procid, std::string_view msgid,
                    std::string_view message) {
  std::string out = "<" + std::to_string(pri) + ">1 " + event::FormatUnixNanos(time_ns) + " " +
                    HeaderField(host, 255) + " " + HeaderField(app, 48) + " " +
                    HeaderField(procid, 128) + " " + HeaderField(msgid, 32) + " [";
  out += kSdId;
  out += " id=\"" + SdValue(IdempotencyKey(p)) + "\" agent=\"" + SdValue(p.agent) + "\" epoch=\"" +
         SdValue(p.epoch) + "\" seq=\"" + std::to_string(p.seq) + "\" leaf=\"" + HexEncode(p.leaf) +
         "\"]";
  if (!message.empty()) {
    out += ' ';
    out.append(message);
  }
  return out;
}

// A payload that is neither an event nor a LOSS record, in each shape: still delivered
// whole (raw: as it is; otherwise its bytes in base64), flagged as such.
std::string Undecodable(Shape shape, const Provenance& p, std::string_view payload,
                        const Status& why) {
  switch (shape) {
    case Shape::kRaw:
      return std::string(payload);
    case Shape::kJson:
      return UndecodableJson(p, payload, why);
    case Shape::kRfc5424:
      return Rfc5424(p, 1 * 8 + 4, 0, "", "gapless", "", "UNDECODABLE",
                     why.message() + "; payload_base64=" + identity::Base64Encode(payload));
    case Shape::kEcs:
    case Shape::kOcsf: {
      JsonObject d;
      d.Text("error", why.message());
      d.Raw("payload_base64", JsonString(identity::Base64Encode(payload)));
      return PipelineError(shape, p, 0, "undecodable record: " + why.message(), "undecodable",
                           d.Done());
    }
  }
  return std::string(payload);
}

}  // namespace

bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceAt(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string IdempotencyKey(const Provenance& p) {
  std::string key;
  key.reserve(p.agent.size() + p.epoch.size() + 22);
  key.append(p.agent).append("/").append(p.epoch).append("/").append(std::to_string(p.seq));
  return key;
}

Formatted FormatRecord(Shape shape, const Provenance& p, spool::FrameType type,
                       std::string_view payload) {
  Formatted f;
  if (type == spool::FrameType::kLoss) {
    auto loss = spool::LossRecord::Decode(payload);
    if (!loss.ok()) {
      f.body = Undecodable(shape, p, payload, loss.status());
      return f;
    }
    f.observed_unix_ns = loss->time_to_unix_ns;
    switch (shape) {
      case Shape::kJson:
        f.body = LossJson(p, *loss);
        break;
      case Shape::kRaw:
        f.body = loss->ToString();
        break;
      case Shape::kRfc5424:
        // user.warning: a loss is news someone should read.
        f.body = Rfc5424(p, 1 * 8 + 4, loss->time_to_unix_ns, "", "gapless", "", "LOSS",
                         loss->ToString());
        break;
      case Shape::kEcs:
      case Shape::kOcsf:
        f.body = PipelineError(shape, p, loss->time_to_unix_ns, loss->ToString(), "loss",
                               LossObject(*loss));
        break;
    }
    return f;
  }
  event::Event e;
  if (Status s = event::DecodeEvent(payload, &e); !s.ok()) {
    f.body = Undecodable(shape, p, payload, s);
    return f;
  }
  f.observed_unix_ns = e.observed_unix_ns;
  switch (shape) {
    case Shape::kJson:
      f.body = EventJson(p, e);
      break;
    case Shape::kRaw:
      f.body = std::string(e.raw);
      break;
    case Shape::kEcs:
      f.body = EventEcs(p, e);
      break;
    case Shape::kOcsf:
      f.body = EventOcsf(p, e);
      break;
    case Shape::kRfc5424: {
      const int facility = e.facility == event::kNoValue ? 1 : e.facility;  // user
      const int severity = e.severity == event::kNoValue ? 5 : e.severity;  // notice
      f.body = Rfc5424(p, facility * 8 + severity,
                       e.has(event::kEventTime) ? e.event_unix_ns : e.observed_unix_ns, e.host,
                       e.app, e.procid, e.msgid, e.message.empty() ? e.raw : e.message);
      break;
    }
  }
  return f;
}

}  // namespace gapless::output
