#include "json/json_events.h"

#include <simdjson.h>

#include <cmath>

namespace gapless::json {
namespace {

namespace od = simdjson::ondemand;
using event::Event;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool OneOf(std::string_view key, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names) {
    if (key == n) return true;
  }
  return false;
}

// "err", "warning", "5" → 0..7, or kNoValue.
uint8_t SeverityOf(std::string_view v) {
  static constexpr std::pair<std::string_view, uint8_t> kNames[] = {
      {"emerg", 0}, {"emergency", 0},     {"panic", 0},   {"alert", 1},
      {"crit", 2},  {"critical", 2},      {"fatal", 2},   {"err", 3},
      {"error", 3}, {"warn", 4},          {"warning", 4}, {"notice", 5},
      {"info", 6},  {"informational", 6}, {"debug", 7},   {"trace", 7}};
  if (v.size() == 1 && v[0] >= '0' && v[0] <= '7') return static_cast<uint8_t>(v[0] - '0');
  std::string lower(v);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  for (const auto& [name, value] : kNames) {
    if (lower == name) return value;
  }
  return event::kNoValue;
}

// True when nothing but whitespace follows the value just read (simdjson 3.0 has no
// document::at_end; current_location reports OUT_OF_BOUNDS there).
bool AtEnd(od::document& doc) {
  const char* at = nullptr;
  return doc.current_location().get(at) == simdjson::OUT_OF_BOUNDS;
}

// Parses the text of one JSON value into an event. The text is copied into a padded
// buffer for simdjson; views into that buffer are mapped back onto `raw`.
class Converter {
 public:
  Converter(size_t max_message_bytes, int64_t observed_ns, syslog::FieldStorage* storage)
      : max_(max_message_bytes), observed_(observed_ns), storage_(storage) {}

  // Fills *e from raw. Returns an empty string, or why raw is not valid JSON (*e then
  // holds raw alone, flagged parse_error).
  std::string ToEvent(std::string_view raw, Event* e) {
    *e = Event();
    e->format = event::Format::kJson;
    e->observed_unix_ns = observed_;
    e->raw = raw;
    if (raw.size() > max_) {
      e->raw = raw.substr(0, max_);
      e->message = e->raw;
      e->flags |= event::kTruncated;
      return "";
    }
    raw_ = raw;
    padded_.assign(raw);
    padded_.resize(raw.size() + simdjson::SIMDJSON_PADDING);
    const simdjson::error_code err = Fill(e);
    if (err == simdjson::SUCCESS) return "";
    *e = Event();
    e->format = event::Format::kRaw;
    e->flags = event::kParseError;
    e->observed_unix_ns = observed_;
    e->raw = raw;
    e->message = raw;
    return std::string("not valid JSON: ") + simdjson::error_message(err);
  }

 private:
  // A view into padded_ as the same bytes of raw_.
  std::string_view InRaw(std::string_view in_padded) const {
    return raw_.substr(static_cast<size_t>(in_padded.data() - padded_.data()), in_padded.size());
  }

  simdjson::error_code Fill(Event* e) {
    od::document doc;
    auto err = parser_.iterate(padded_.data(), raw_.size(), padded_.size()).get(doc);
    if (err) return err;
    od::json_type type;
    if ((err = doc.type().get(type))) return err;
    if (type == od::json_type::object) {
      od::object obj;
      if ((err = doc.get_object().get(obj))) return err;
      if ((err = Members(obj, e))) return err;
    } else if (type == od::json_type::string) {
      std::string_view s;
      if ((err = doc.get_string().get(s))) return err;
      e->message = storage_->Save(std::string(s));
    } else {
      // A number, boolean, null or array: valid JSON, kept as the message.
      std::string_view text;
      if (type == od::json_type::array) {
        od::array arr;
        if ((err = doc.get_array().get(arr)) || (err = arr.raw_json().get(text))) return err;
      } else if ((err = doc.raw_json_token().get(text))) {
        return err;
      }
      e->message = InRaw(Trim(text));
      if (type != od::json_type::array) {
        // Scalars are parsed lazily; make sure the token really is one.
        if (type == od::json_type::number) {
          double d;
          if ((err = doc.get_double().get(d))) return err;
        } else if (type == od::json_type::boolean) {
          bool b;
          if ((err = doc.get_bool().get(b))) return err;
        } else {
          bool null;
          if ((err = doc.is_null().get(null)) || !null) return simdjson::INCORRECT_TYPE;
        }
      }
    }
    if (!AtEnd(doc)) return simdjson::TRAILING_CONTENT;
    return simdjson::SUCCESS;
  }

  simdjson::error_code Members(od::object& obj, Event* e) {
    for (auto member : obj) {
      od::field field;
      auto err = std::move(member).get(field);
      if (err) return err;
      std::string_view key;
      if ((err = field.unescaped_key().get(key))) return err;
      key = storage_->Save(std::string(key));
      od::value v = field.value();
      od::json_type type;
      if ((err = v.type().get(type))) return err;
      std::string_view text;  // a string unescaped, anything else as JSON text
      if (type == od::json_type::string) {
        if ((err = v.get_string().get(text))) return err;
        text = storage_->Save(std::string(text));
      } else if (type == od::json_type::object) {
        od::object o;
        if ((err = v.get_object().get(o)) || (err = o.raw_json().get(text))) return err;
        text = InRaw(Trim(text));
      } else if (type == od::json_type::array) {
        od::array a;
        if ((err = v.get_array().get(a)) || (err = a.raw_json().get(text))) return err;
        text = InRaw(Trim(text));
      } else {
        text = InRaw(Trim(v.raw_json_token()));
        if ((err = CheckScalar(v, type))) return err;
      }
      if (!Known(key, text, type, e)) e->fields.push_back({key, text});
    }
    return simdjson::SUCCESS;
  }

  static simdjson::error_code CheckScalar(od::value& v, od::json_type type) {
    if (type == od::json_type::number) {
      double d;
      return v.get_double().get(d);
    }
    if (type == od::json_type::boolean) {
      bool b;
      return v.get_bool().get(b);
    }
    bool null = false;
    auto err = v.is_null().get(null);
    return err ? err : (null ? simdjson::SUCCESS : simdjson::INCORRECT_TYPE);
  }

  // Sets a well-known attribute; false if `key` is not one (or its value does not fit),
  // so the member is kept as a field.
  bool Known(std::string_view key, std::string_view text, od::json_type type, Event* e) {
    const bool is_string = type == od::json_type::string;
    if (OneOf(key, {"message", "msg", "log"}) && e->message.empty()) {
      e->message = text;
      return true;
    }
    if (is_string && OneOf(key, {"host", "hostname"}) && e->host.empty()) {
      e->host = text;
      return true;
    }
    if (is_string && OneOf(key, {"app", "app_name", "service", "program"}) && e->app.empty()) {
      e->app = text;
      return true;
    }
    if (OneOf(key, {"severity", "level"}) && e->severity == event::kNoValue) {
      e->severity = SeverityOf(text);
      return e->severity != event::kNoValue;
    }
    if (OneOf(key, {"timestamp", "@timestamp", "time", "ts"}) && !e->has(event::kEventTime)) {
      return EventTime(text, is_string, type == od::json_type::number, e);
    }
    return false;
  }

  static bool EventTime(std::string_view text, bool is_string, bool is_number, Event* e) {
    if (is_string) {
      int64_t ns = 0;
      bool has_offset = false;
      if (text.empty() || syslog::ParseRfc3339(text, &ns, &has_offset) != text.size()) return false;
      e->event_unix_ns = ns;
      e->flags |= event::kEventTime | (has_offset ? 0 : event::kZoneAssumed);
      return true;
    }
    if (!is_number) return false;
    // Seconds since the epoch, fractions allowed; years 1970..2262 fit in int64 nanos.
    const double seconds = std::strtod(std::string(text).c_str(), nullptr);
    if (!(seconds >= 0 && seconds < 9.2e9)) return false;
    e->event_unix_ns = static_cast<int64_t>(std::llround(seconds * 1e6)) * 1000;
    if (e->event_unix_ns < 0) return false;
    e->flags |= event::kEventTime;
    return true;
  }

  const size_t max_;
  const int64_t observed_;
  syslog::FieldStorage* const storage_;
  od::parser parser_;
  std::string padded_;
  std::string_view raw_;
};

StatusOr<BodyResult> ParseNdjson(std::string_view body, Converter* conv,
                                 std::vector<Event>* events) {
  BodyResult result;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    std::string_view line = body.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (Trim(line).empty()) continue;
    Event e;
    const std::string error = conv->ToEvent(line, &e);
    if (e.has(event::kTruncated)) ++result.truncated;
    if (!error.empty()) {
      if (result.parse_errors++ == 0)
        result.first_error = "line " + std::to_string(line_no) + ": " + error;
    }
    events->push_back(std::move(e));
  }
  return result;
}

StatusOr<BodyResult> ParseJson(std::string_view body, Converter* conv, std::vector<Event>* events) {
  const std::string_view trimmed = Trim(body);
  if (trimmed.empty())
    return InvalidArgumentError("the body is empty; send a JSON array or object");
  BodyResult result;
  if (trimmed.front() != '[') {
    Event e;
    const std::string error = conv->ToEvent(trimmed, &e);
    if (!error.empty()) return InvalidArgumentError("the JSON body is " + error);
    if (e.has(event::kTruncated)) ++result.truncated;
    events->push_back(std::move(e));
    return result;
  }
  // An array: find each element's text, then convert it on its own.
  std::string padded(body);
  padded.resize(body.size() + simdjson::SIMDJSON_PADDING);
  od::parser parser;
  od::document doc;
  od::array arr;
  std::vector<std::string_view> elements;
  auto err = parser.iterate(padded.data(), body.size(), padded.size()).get(doc);
  if (!err) err = doc.get_array().get(arr);
  if (!err) {
    for (auto element : arr) {
      od::value v;
      std::string_view text;
      if ((err = element.get(v))) break;
      od::json_type type;
      if ((err = v.type().get(type))) break;
      if (type == od::json_type::object) {
        od::object o;
        err = v.get_object().get(o);
        if (!err) err = o.raw_json().get(text);
      } else if (type == od::json_type::array) {
        od::array a;
        err = v.get_array().get(a);
        if (!err) err = a.raw_json().get(text);
      } else {
        text = v.raw_json_token();
      }
      if (err) break;
      text = Trim(text);
      elements.push_back(
          body.substr(static_cast<size_t>(text.data() - padded.data()), text.size()));
    }
  }
  if (!err && !AtEnd(doc)) err = simdjson::TRAILING_CONTENT;
  if (err) {
    return InvalidArgumentError("the JSON body is not valid JSON (" +
                                std::string(simdjson::error_message(err)) +
                                "); nothing was stored");
  }
  std::vector<Event> out;
  for (size_t i = 0; i < elements.size(); ++i) {
    Event e;
    const std::string error = conv->ToEvent(elements[i], &e);
    if (!error.empty()) {
      return InvalidArgumentError("array element " + std::to_string(i) + " is " + error +
                                  "; nothing was stored");
    }
    if (e.has(event::kTruncated)) ++result.truncated;
    out.push_back(std::move(e));
  }
  for (Event& e : out) events->push_back(std::move(e));
  return result;
}

}  // namespace

StatusOr<BodyResult> ParseBody(std::string_view body, BodyFormat format, size_t max_message_bytes,
                               int64_t observed_unix_ns, std::vector<event::Event>* events,
                               syslog::FieldStorage* storage) {
  Converter conv(max_message_bytes, observed_unix_ns, storage);
  return format == BodyFormat::kNdjson ? ParseNdjson(body, &conv, events)
                                       : ParseJson(body, &conv, events);
}

}  // namespace gapless::json
