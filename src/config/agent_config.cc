#include "config/agent_config.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <initializer_list>

#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1  // the Debian library is built with exceptions; we use none
#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>

#include "base/address.h"
#include "checkpoint/note.h"
#include "env/env.h"
#include "identity/identity.h"

namespace gapless::config {
namespace {

constexpr uint64_t kMaxMessageBytes = 1u << 20;  // per message, any input

// Collects every problem with its position; nothing stops at the first one.
class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  void Error(const toml::source_region& at, const std::string& what) {
    ErrorAt(static_cast<int>(at.begin.line), static_cast<int>(at.begin.column), what);
  }
  void ErrorAt(int line, int column, const std::string& what) {
    errors_.push_back(
        {line, column,
         file_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what});
  }
  bool ok() const { return errors_.empty(); }
  // One line per problem, in file order.
  std::string errors() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const Problem& a, const Problem& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    std::string out;
    for (const Problem& p : errors_) out += (out.empty() ? "" : "\n") + p.text;
    return out;
  }

  void OnlyKeys(const toml::table& t, std::initializer_list<std::string_view> allowed,
                std::string_view where) {
    for (const auto& [key, node] : t) {
      bool known = false;
      for (std::string_view a : allowed) known = known || key.str() == a;
      if (known) continue;
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      Error(key.source(), "unknown key \"" + std::string(key.str()) + "\" in " +
                              std::string(where) + "; known keys: " + list);
    }
  }

  bool String(const toml::table& t, std::string_view key, std::string* out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    if (auto v = n->value<std::string>()) {
      *out = *v;
      return true;
    }
    Error(n->source(), std::string(key) + " must be a string");
    return false;
  }

  bool Int(const toml::table& t, std::string_view key, int64_t lo, int64_t hi, int64_t* out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    const auto v = n->is_integer() ? n->value<int64_t>() : std::nullopt;
    if (!v || *v < lo || *v > hi) {
      Error(n->source(), std::string(key) + " must be an integer from " + std::to_string(lo) +
                             " to " + std::to_string(hi));
      return false;
    }
    *out = *v;
    return true;
  }

  bool Bool(const toml::table& t, std::string_view key, bool* out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    if (auto v = n->value<bool>(); v && n->is_boolean()) {
      *out = *v;
      return true;
    }
    Error(n->source(), std::string(key) + " must be true or false");
    return false;
  }

  // A byte size: an integer, or a string such as "64KiB" or "1 GiB".
  bool Size(const toml::table& t, std::string_view key, uint64_t lo, uint64_t hi, uint64_t* out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    StatusOr<uint64_t> v = InvalidArgumentError("must be a size such as \"64MiB\" or 4096");
    if (n->is_integer() && *n->value<int64_t>() >= 0) {
      v = static_cast<uint64_t>(*n->value<int64_t>());
    } else if (n->is_string()) {
      v = ParseSize(*n->value<std::string>());
    }
    if (!v.ok()) {
      Error(n->source(), std::string(key) + ": " + v.status().message());
      return false;
    }
    if (*v < lo || *v > hi) {
      Error(n->source(), std::string(key) + " must be from " + std::to_string(lo) + " to " +
                             std::to_string(hi) + " bytes");
      return false;
    }
    *out = *v;
    return true;
  }

  const toml::table* Table(const toml::table& t, std::string_view key) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table())
      Error(n->source(), std::string(key) + " must be a table ([" + std::string(key) + "])");
    return n->as_table();
  }

 private:
  struct Problem {
    int line;
    int column;
    std::string text;
  };
  const std::string file_;
  std::vector<Problem> errors_;
};

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

void ParseAgentTable(Checker& c, const toml::table& root, AgentConfig* cfg) {
  const toml::table* agent = c.Table(root, "agent");
  if (agent == nullptr) return;
  c.OnlyKeys(*agent,
             {"id", "data_dir", "key_file", "enroll_token_file", "watchdog_stall_seconds",
              "heartbeat_interval_ms", "metrics_listen"},
             "[agent]");
  c.String(*agent, "key_file", &cfg->key_file);
  c.String(*agent, "enroll_token_file", &cfg->enroll_token_file);
  int64_t stall = cfg->watchdog_stall_ms / 1000;
  if (c.Int(*agent, "watchdog_stall_seconds", 1, 86400, &stall))
    cfg->watchdog_stall_ms = stall * 1000;
  c.Int(*agent, "heartbeat_interval_ms", 0, 600'000, &cfg->heartbeat_interval_ms);
  c.String(*agent, "metrics_listen", &cfg->metrics_listen);
  if (c.String(*agent, "id", &cfg->id) && cfg->id.empty()) {
    c.Error(agent->get("id")->source(),
            "[agent] id must not be empty (leave it out for the host name)");
  }
  if (c.String(*agent, "data_dir", &cfg->data_dir) && cfg->data_dir.empty()) {
    c.Error(agent->get("data_dir")->source(), "[agent] data_dir must not be empty");
  }
}

void ParseSpoolTable(Checker& c, const toml::table& root, AgentConfig* cfg) {
  const toml::table* t = c.Table(root, "spool");
  if (t == nullptr) return;
  c.OnlyKeys(*t, {"quota", "segment_size", "full_policy", "max_record_size", "commit_delay_ms"},
             "[spool]");
  c.Int(*t, "commit_delay_ms", 0, 1000, &cfg->commit_delay_ms);
  spool::Options& o = cfg->spool;
  c.Size(*t, "segment_size", 64 << 10, 1ull << 32, &o.segment_bytes);
  c.Size(*t, "quota", 256 << 10, 1ull << 50, &o.quota_bytes);
  uint64_t max_record = o.max_record_bytes;
  if (c.Size(*t, "max_record_size", 1024, 16u << 20, &max_record)) {
    o.max_record_bytes = static_cast<uint32_t>(max_record);
  }
  std::string policy;
  if (c.String(*t, "full_policy", &policy)) {
    StatusOr<spool::FullPolicy> p = spool::ParseFullPolicy(policy);
    if (p.ok()) {
      o.full_policy = *p;
    } else {
      c.Error(t->get("full_policy")->source(), p.status().message());
    }
  }
  if (o.quota_bytes < 4 * o.segment_bytes) {
    c.Error(t->source(), "[spool] quota must be at least 4 × segment_size (" +
                             std::to_string(4 * o.segment_bytes) + " bytes)");
  }
  if (o.max_record_bytes + 4096 > o.segment_bytes) {
    c.Error(t->source(), "[spool] max_record_size must leave 4 KiB of segment_size free");
  }
}

constexpr std::string_view kInputTypes = "syslog_tcp, syslog_udp, relp, http, file, journald";

void ParseTls(Checker& c, const toml::table& t, std::optional<input::TlsServerOptions>* out) {
  const toml::table* tls = c.Table(t, "tls");
  if (tls == nullptr) return;
  c.OnlyKeys(*tls, {"cert", "key", "ca", "require_client_cert"}, "[input.tls]");
  input::TlsServerOptions o;
  if (!c.String(*tls, "cert", &o.cert_file))
    c.Error(tls->source(), "[input.tls] needs cert (a PEM file)");
  if (!c.String(*tls, "key", &o.key_file))
    c.Error(tls->source(), "[input.tls] needs key (a PEM file)");
  c.String(*tls, "ca", &o.ca_file);
  c.Bool(*tls, "require_client_cert", &o.require_client_cert);
  if (o.require_client_cert && o.ca_file.empty()) {
    c.Error(tls->source(), "require_client_cert needs ca (the CA that signs client certificates)");
  }
  *out = o;
}

// "IP:port", required; reports a bad address at its place.
void ParseListen(Checker& c, const toml::table& t, std::string* listen) {
  if (!c.String(t, "listen", listen)) {
    c.Error(t.source(), "this [[input]] needs listen = \"IP:port\"");
    return;
  }
  std::string address;
  uint16_t port = 0;
  if (Status s = input::ParseListenAddress(*listen, &address, &port); !s.ok()) {
    c.Error(t.get("listen")->source(), s.message());
  }
}

// syslog_tcp, syslog_udp and relp share their options (relp has no framing).
void ParseSyslogInput(Checker& c, const toml::table& t, InputType type, InputConfig* in) {
  const bool tcp = type != InputType::kSyslogUdp;
  if (type == InputType::kSyslogTcp) {
    c.OnlyKeys(t,
               {"type", "name", "listen", "framing", "max_message_size", "max_connections", "tls"},
               "a syslog_tcp [[input]]");
  } else if (type == InputType::kRelp) {
    c.OnlyKeys(t, {"type", "name", "listen", "max_message_size", "max_connections", "tls"},
               "a relp [[input]]");
  } else {
    c.OnlyKeys(t, {"type", "name", "listen", "max_message_size", "receive_buffer_size"},
               "a syslog_udp [[input]]");
  }
  input::SyslogOptions& o = in->syslog;
  c.String(t, "name", &o.name);
  ParseListen(c, t, &o.listen);
  uint64_t max = o.max_message_bytes;
  if (c.Size(t, "max_message_size", 64, kMaxMessageBytes, &max)) o.max_message_bytes = max;
  std::string framing;
  if (tcp && c.String(t, "framing", &framing)) {
    bool known = false;
    for (auto f :
         {syslog::Framing::kAuto, syslog::Framing::kNewline, syslog::Framing::kOctetCounted}) {
      if (framing == syslog::FramingName(f)) o.framing = f, known = true;
    }
    if (!known)
      c.Error(t.get("framing")->source(), "framing must be auto, newline or octet_counted");
  }
  int64_t n = 0;
  if (tcp && c.Int(t, "max_connections", 1, 1 << 20, &n))
    o.max_connections = static_cast<size_t>(n);
  uint64_t rcvbuf = 0;
  if (!tcp && c.Size(t, "receive_buffer_size", 4096, 1u << 30, &rcvbuf)) {
    o.receive_buffer_bytes = static_cast<int>(rcvbuf);
  }
  if (tcp) ParseTls(c, t, &o.tls);
}

void ParseHttpInput(Checker& c, const toml::table& t, InputConfig* in) {
  c.OnlyKeys(t,
             {"type", "name", "listen", "path", "max_body_size", "max_message_size",
              "max_connections", "token_file", "idle_timeout_ms", "tls"},
             "an http [[input]]");
  input::HttpOptions& o = in->http;
  c.String(t, "name", &o.name);
  ParseListen(c, t, &o.listen);
  if (c.String(t, "path", &o.path) && (o.path.empty() || o.path[0] != '/')) {
    c.Error(t.get("path")->source(), "path must start with /");
  }
  uint64_t size = o.max_body_bytes;
  if (c.Size(t, "max_body_size", 1024, 256ull << 20, &size)) o.max_body_bytes = size;
  size = o.max_message_bytes;
  if (c.Size(t, "max_message_size", 64, kMaxMessageBytes, &size)) o.max_message_bytes = size;
  int64_t n = 0;
  if (c.Int(t, "max_connections", 1, 1 << 20, &n)) o.max_connections = static_cast<size_t>(n);
  if (c.String(t, "token_file", &o.token_file) &&
      (o.token_file.empty() || o.token_file[0] != '/')) {
    c.Error(t.get("token_file")->source(), "token_file must be an absolute path");
  }
  c.Int(t, "idle_timeout_ms", 100, 3'600'000, &o.idle_timeout_ms);
  ParseTls(c, t, &o.tls);
}

void ParseStartAt(Checker& c, const toml::table& t, input::StartAt* start_at) {
  std::string start;
  if (!c.String(t, "start_at", &start)) return;
  if (start == "beginning" || start == "end") {
    *start_at = start == "end" ? input::StartAt::kEnd : input::StartAt::kBeginning;
  } else {
    c.Error(t.get("start_at")->source(), "start_at must be beginning or end");
  }
}

void ParseFileInput(Checker& c, const toml::table& t, InputConfig* in) {
  c.OnlyKeys(t,
             {"type", "name", "paths", "start_at", "max_line_size", "poll_interval_ms",
              "multiline_start", "multiline_max_lines", "multiline_timeout_ms"},
             "a file [[input]]");
  input::FileOptions& o = in->file;
  c.String(t, "name", &o.name);
  const toml::node* paths = t.get("paths");
  const toml::array* list = paths != nullptr ? paths->as_array() : nullptr;
  if (paths == nullptr) {
    c.Error(t.source(), "this file [[input]] needs paths = [\"/var/log/auth.log\", ...]");
  } else if (list == nullptr || list->empty()) {
    c.Error(paths->source(), "paths must be a non-empty array of strings (glob patterns)");
  } else {
    for (const toml::node& p : *list) {
      const auto v = p.value<std::string>();
      if (!v || !p.is_string() || v->empty() || (*v)[0] != '/') {
        c.Error(p.source(), "each path must be an absolute path or glob pattern");
      } else {
        o.paths.push_back(*v);
      }
    }
  }
  ParseStartAt(c, t, &o.start_at);
  uint64_t max = o.max_line_bytes;
  if (c.Size(t, "max_line_size", 64, kMaxMessageBytes, &max)) o.max_line_bytes = max;
  c.Int(t, "poll_interval_ms", 10, 60000, &o.poll_interval_ms);
  if (c.String(t, "multiline_start", &o.multiline_start)) {
    if (Status s = input::CheckMultilinePattern(o.multiline_start); !s.ok()) {
      c.Error(t.get("multiline_start")->source(), s.message());
    }
  }
  int64_t lines = 0;
  if (c.Int(t, "multiline_max_lines", 2, 100000, &lines)) {
    o.multiline_max_lines = static_cast<size_t>(lines);
  }
  c.Int(t, "multiline_timeout_ms", 10, 600000, &o.multiline_timeout_ms);
}

void ParseJournaldInput(Checker& c, const toml::table& t, InputConfig* in) {
  c.OnlyKeys(t, {"type", "name", "directory", "matches", "start_at", "max_message_size"},
             "a journald [[input]]");
  input::JournaldOptions& o = in->journald;
  c.String(t, "name", &o.name);
  if (c.String(t, "directory", &o.directory) && (o.directory.empty() || o.directory[0] != '/')) {
    c.Error(t.get("directory")->source(), "directory must be an absolute path");
  }
  if (const toml::node* m = t.get("matches")) {
    const toml::array* list = m->as_array();
    if (list == nullptr) {
      c.Error(m->source(), "matches must be an array of \"FIELD=value\" strings");
    } else {
      for (const toml::node& el : *list) {
        const auto v = el.value<std::string>();
        const size_t eq = v ? v->find('=') : std::string::npos;
        if (!el.is_string() || eq == std::string::npos || eq == 0) {
          c.Error(el.source(),
                  "each match must be a \"FIELD=value\" string, e.g. "
                  "\"_SYSTEMD_UNIT=sshd.service\"");
        } else {
          o.matches.push_back(*v);
        }
      }
    }
  }
  ParseStartAt(c, t, &o.start_at);
  uint64_t max = o.max_message_bytes;
  if (c.Size(t, "max_message_size", 64, kMaxMessageBytes, &max)) o.max_message_bytes = max;
}

void ParseInputs(Checker& c, const toml::table& root, AgentConfig* cfg) {
  const toml::node* n = root.get("input");
  if (n == nullptr) return;
  const toml::array* inputs = n->as_array();
  if (inputs == nullptr || !inputs->is_array_of_tables()) {
    c.Error(n->source(), "input must be an array of tables: write each as [[input]]");
    return;
  }
  for (const toml::node& el : *inputs) {
    const toml::table& t = *el.as_table();
    InputConfig in;
    in.line = static_cast<int>(t.source().begin.line);
    std::string type;
    if (!c.String(t, "type", &type)) {
      c.Error(t.source(), "this [[input]] needs a type, one of: " + std::string(kInputTypes));
      continue;
    }
    if (type == "syslog_tcp" || type == "syslog_udp" || type == "relp") {
      in.type = type == "syslog_tcp"   ? InputType::kSyslogTcp
                : type == "syslog_udp" ? InputType::kSyslogUdp
                                       : InputType::kRelp;
      ParseSyslogInput(c, t, in.type, &in);
    } else if (type == "http") {
      in.type = InputType::kHttp;
      ParseHttpInput(c, t, &in);
    } else if (type == "file") {
      in.type = InputType::kFile;
      ParseFileInput(c, t, &in);
    } else if (type == "journald") {
      in.type = InputType::kJournald;
      ParseJournaldInput(c, t, &in);
    } else {
      c.Error(t.get("type")->source(),
              "unknown input type \"" + type + "\"; available: " + std::string(kInputTypes));
      continue;
    }
    in.syslog.max_message_bytes = std::min<size_t>(in.syslog.max_message_bytes, kMaxMessageBytes);
    cfg->inputs.push_back(std::move(in));
  }
}

void ParseDestinations(Checker& c, const toml::table& root, AgentConfig* cfg) {
  const toml::node* n = root.get("destination");
  if (n == nullptr) return;
  const toml::array* list = n->as_array();
  if (list == nullptr || !list->is_array_of_tables()) {
    c.Error(n->source(), "destination must be an array of tables: write each as [[destination]]");
    return;
  }
  for (const toml::node& el : *list) {
    const toml::table& t = *el.as_table();
    transport::DestinationOptions d;
    c.OnlyKeys(t,
               {"name", "address", "server_name", "ca_file", "required", "batch_records",
                "batch_delay_ms", "window", "backoff_max_ms"},
               "[[destination]]");
    c.String(t, "name", &d.name);
    if (!c.String(t, "address", &d.address)) {
      c.Error(t.source(), "this [[destination]] needs an address such as \"10.0.0.5:7514\"");
    } else {
      std::string host;
      uint16_t port = 0;
      if (Status s = ParseListenAddress(d.address, &host, &port); !s.ok()) {
        c.Error(t.get("address")->source(), s.message());
      }
    }
    if (!c.String(t, "ca_file", &d.ca_file)) {
      c.Error(t.source(),
              "this [[destination]] needs ca_file: the CA (or self-signed "
              "certificate) the collector's TLS certificate must chain to");
    }
    if (!c.String(t, "server_name", &d.server_name)) d.server_name = "gapless-collector";
    c.Bool(t, "required", &d.required);
    int64_t v = 0;
    if (c.Int(t, "batch_records", 1, 100000, &v)) d.batch_records = static_cast<uint32_t>(v);
    c.Int(t, "batch_delay_ms", 1, 10000, &d.batch_delay_ms);
    if (c.Int(t, "window", 1, 64, &v)) d.window = static_cast<uint32_t>(v);
    c.Int(t, "backoff_max_ms", 100, 3600000, &d.backoff_max_ms);
    for (const auto& other : cfg->destinations) {
      if (other.name == d.name) {
        c.Error(t.source(), "two destinations are named \"" + d.name +
                                "\"; each needs its own name (it names its spool cursor)");
      }
    }
    cfg->destinations.push_back(std::move(d));
  }
}

}  // namespace

StatusOr<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (i == 0 || ec != std::errc()) {
    return InvalidArgumentError("\"" + std::string(text) +
                                "\" is not a size; write e.g. \"64MiB\"");
  }
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit[0] == ' ') unit.remove_prefix(1);
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {{"", 1},
                                                                     {"B", 1},
                                                                     {"KiB", 1ull << 10},
                                                                     {"MiB", 1ull << 20},
                                                                     {"GiB", 1ull << 30},
                                                                     {"TiB", 1ull << 40},
                                                                     {"KB", 1000},
                                                                     {"MB", 1000000},
                                                                     {"GB", 1000000000},
                                                                     {"TB", 1000000000000}};
  for (const auto& [name, mult] : kUnits) {
    if (unit != name) continue;
    if (value > UINT64_MAX / mult)
      return InvalidArgumentError("size \"" + std::string(text) + "\" is too large");
    return value * mult;
  }
  return InvalidArgumentError("unknown unit in \"" + std::string(text) +
                              "\"; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB");
}

namespace {
// ASCII check and TOML syntax; the table or an error with line:column.
StatusOr<toml::table> ParseToml(std::string_view text, const std::string& file_name) {
  // toml++ 3.3 (Debian 12) reaches __builtin_unreachable on some non-ASCII characters
  // outside strings (found by config_fuzzer): undefined behaviour on a bad file. TOML
  // basic strings can spell any character as \uXXXX, so we accept ASCII only.
  int line = 1;
  int column = 1;
  for (char ch : text) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02X",
                    static_cast<unsigned>(static_cast<unsigned char>(ch)));
      return InvalidArgumentError(file_name + ":" + std::to_string(line) + ":" +
                                  std::to_string(column) + ": non-ASCII byte " + hex +
                                  "; configuration files are ASCII: write other characters as "
                                  "\\uXXXX escapes inside \"...\" strings");
    }
    if (ch == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  toml::parse_result parsed = toml::parse(text, file_name);
  if (!parsed) {
    const toml::parse_error& e = parsed.error();
    return InvalidArgumentError(file_name + ":" + std::to_string(e.source().begin.line) + ":" +
                                std::to_string(e.source().begin.column) +
                                ": TOML syntax error: " + std::string(e.description()));
  }
  return std::move(parsed).table();
}
}  // namespace

StatusOr<AgentConfig> ParseAgentConfig(std::string_view text, const std::string& file_name) {
  ASSIGN_OR_RETURN(const toml::table root, ParseToml(text, file_name));
  Checker c(file_name);
  AgentConfig cfg;
  c.OnlyKeys(root, {"agent", "spool", "input", "destination"}, "the top level");
  ParseAgentTable(c, root, &cfg);
  ParseSpoolTable(c, root, &cfg);
  ParseInputs(c, root, &cfg);
  ParseDestinations(c, root, &cfg);
  if (cfg.id.empty()) cfg.id = HostName();
  if (!identity::ValidAgentId(cfg.id)) {
    c.ErrorAt(1, 1, "agent id \"" + cfg.id + "\" must be 1-64 characters of [A-Za-z0-9._-]");
  }
  if (cfg.data_dir.empty()) cfg.data_dir = "/var/lib/gapless";
  if (cfg.key_file.empty()) cfg.key_file = cfg.data_dir + "/agent.key";
  for (const InputConfig& in : cfg.inputs) {
    // A JSON event stores its member values beside its raw bytes: up to twice the size.
    const size_t max = in.type == InputType::kFile       ? in.file.max_line_bytes
                       : in.type == InputType::kHttp     ? 2 * in.http.max_message_bytes
                       : in.type == InputType::kJournald ? in.journald.max_message_bytes
                                                         : in.syslog.max_message_bytes;
    if (max + 4096 > cfg.spool.max_record_bytes) {
      c.ErrorAt(in.line, 1,
                "max_message_size / max_line_size (" + std::to_string(max) +
                    (in.type == InputType::kHttp ? ", doubled for JSON members" : "") +
                    ") must be at least 4 KiB below [spool] max_record_size (" +
                    std::to_string(cfg.spool.max_record_bytes) + ")");
    }
  }
  if (!c.ok()) return InvalidArgumentError(c.errors());
  return cfg;
}

StatusOr<AgentConfig> LoadAgentConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env::Env::Posix(), path));
  return ParseAgentConfig(text, path);
}

namespace {

// [[collector.witness]] url = "...", key = "<cosigner key>", ca_file, timeout_ms.
void ParseWitnesses(Checker& c, const toml::table& collector, collector::CollectorOptions* o) {
  const toml::node* n = collector.get("witness");
  if (n == nullptr) return;
  const toml::array* list = n->as_array();
  if (list == nullptr || !list->is_array_of_tables()) {
    c.Error(n->source(), "witness must be an array of tables: write each as [[collector.witness]]");
    return;
  }
  for (const toml::node& el : *list) {
    const toml::table& t = *el.as_table();
    collector::WitnessTarget w;
    c.OnlyKeys(t, {"url", "key", "ca_file", "timeout_ms"}, "[[collector.witness]]");
    if (!c.String(t, "url", &w.url) ||
        (w.url.rfind("http://", 0) != 0 && w.url.rfind("https://", 0) != 0)) {
      c.Error(t.source(),
              "this [[collector.witness]] needs url = \"http(s)://host:port/.../add-checkpoint\"");
    }
    if (!c.String(t, "key", &w.key)) {
      c.Error(t.source(),
              "this [[collector.witness]] needs key: the witness's cosigner key "
              "(\"<name>+<id>+<base64>\", printed by `gapless witness`)");
    } else if (auto k = checkpoint::ParseCosignerKey(w.key); !k.ok()) {
      c.Error(t.get("key")->source(), k.status().message());
    }
    c.String(t, "ca_file", &w.ca_file);
    c.Int(t, "timeout_ms", 100, 600'000, &w.timeout_ms);
    o->witnesses.push_back(std::move(w));
  }
}

// [collector.archive] dir, interval_seconds, min_records, recipients, identity.
void ParseArchive(Checker& c, const toml::table& collector, collector::CollectorOptions* o) {
  const toml::table* t = c.Table(collector, "archive");
  if (t == nullptr) return;
  collector::ArchiveDestination& a = o->archive;
  c.OnlyKeys(*t, {"dir", "interval_seconds", "min_records", "recipients", "identity"},
             "[collector.archive]");
  if (!c.String(*t, "dir", &a.dir) || a.dir.empty() || a.dir[0] != '/') {
    c.Error(t->source(),
            "[collector.archive] needs dir: an absolute path to an existing directory (for "
            "example a mounted off-site volume)");
  }
  int64_t seconds = 3600;
  c.Int(*t, "interval_seconds", 1, 7 * 86400, &seconds);
  a.interval_ms = seconds * 1000;
  int64_t min_records = 1;
  c.Int(*t, "min_records", 1, int64_t{1} << 40, &min_records);
  a.min_records = static_cast<uint64_t>(min_records);
  if (const toml::node* n = t->get("recipients")) {
    const toml::array* list = n->as_array();
    if (list == nullptr)
      c.Error(n->source(), "recipients must be a list of \"gapless-x25519:...\"");
    for (size_t i = 0; list != nullptr && i < list->size(); ++i) {
      auto v = (*list)[i].value<std::string>();
      if (!v || v->rfind("gapless-x25519:", 0) != 0) {
        c.Error((*list)[i].source(),
                "a recipient is \"gapless-x25519:...\", from gapless keygen --recipient");
      } else {
        a.recipients.push_back(*v);
      }
    }
  }
  if (!c.String(*t, "identity", &a.identity) && !a.recipients.empty()) {
    c.Error(t->source(),
            "[collector.archive] with recipients needs identity: one recipient's identity "
            "file, so each archive can be verified after it is written");
  }
}

// [alerts] journal, alertmanager = [...], [[alerts.webhook]] url, secret_file, ca_file,
// timeout_ms.
void ParseAlerts(Checker& c, const toml::table& root, alert::AlertOptions* a) {
  const toml::table* t = c.Table(root, "alerts");
  if (t == nullptr) return;
  c.OnlyKeys(*t, {"journal", "alertmanager", "webhook"}, "[alerts]");
  c.String(*t, "journal", &a->journal);
  if (const toml::node* n = t->get("alertmanager")) {
    const toml::array* list = n->as_array();
    for (size_t i = 0; list != nullptr && i < list->size(); ++i) {
      auto v = (*list)[i].value<std::string>();
      if (!v || (v->rfind("http://", 0) != 0 && v->rfind("https://", 0) != 0)) {
        c.Error((*list)[i].source(), "an alertmanager is its base URL, e.g. \"http://am:9093\"");
      } else {
        a->alertmanagers.push_back(*v);
      }
    }
    if (list == nullptr) c.Error(n->source(), "alertmanager must be a list of base URLs");
  }
  const toml::node* n = t->get("webhook");
  if (n == nullptr) return;
  const toml::array* list = n->as_array();
  if (list == nullptr || !list->is_array_of_tables()) {
    c.Error(n->source(), "webhook must be an array of tables: write each as [[alerts.webhook]]");
    return;
  }
  for (const toml::node& el : *list) {
    const toml::table& w = *el.as_table();
    alert::WebhookOptions o;
    c.OnlyKeys(w, {"url", "secret_file", "ca_file", "timeout_ms"}, "[[alerts.webhook]]");
    if (!c.String(w, "url", &o.url) ||
        (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0)) {
      c.Error(w.source(), "this [[alerts.webhook]] needs url = \"http(s)://...\"");
    }
    c.String(w, "secret_file", &o.secret_file);
    c.String(w, "ca_file", &o.ca_file);
    c.Int(w, "timeout_ms", 100, 600'000, &o.timeout_ms);
    a->webhooks.push_back(std::move(o));
  }
}

}  // namespace

StatusOr<CollectorConfig> ParseCollectorConfig(std::string_view text,
                                               const std::string& file_name) {
  ASSIGN_OR_RETURN(const toml::table root, ParseToml(text, file_name));
  Checker c(file_name);
  CollectorConfig cfg;
  collector::CollectorOptions& o = cfg.options;
  c.OnlyKeys(root, {"collector", "alerts", "monitors"}, "the top level");
  const toml::table* t = c.Table(root, "collector");
  if (t == nullptr) {
    c.ErrorAt(1, 1, "a [collector] table is required");
    return InvalidArgumentError(c.errors());
  }
  c.OnlyKeys(*t,
             {"name", "data_dir", "listen", "tls_cert", "tls_key", "enrolled_keys", "enroll_tokens",
              "signing_key", "checkpoint_interval_ms", "witness", "archive", "metrics_listen",
              "audit_interval_seconds"},
             "[collector]");
  c.String(*t, "name", &o.name);
  c.String(*t, "metrics_listen", &cfg.metrics_listen);
  int64_t audit_s = cfg.audit_interval_ms / 1000;
  if (c.Int(*t, "audit_interval_seconds", 0, 30 * 86400, &audit_s)) {
    cfg.audit_interval_ms = audit_s * 1000;
  }
  if (!c.String(*t, "data_dir", &o.data_dir)) o.data_dir = "/var/lib/gapless-collector";
  if (const toml::node* n = t->get("listen")) {
    o.listen.clear();
    if (n->is_string()) {
      o.listen.push_back(*n->value<std::string>());
    } else if (const toml::array* a = n->as_array()) {
      for (const toml::node& el : *a) {
        if (auto v = el.value<std::string>()) o.listen.push_back(*v);
      }
    }
    if (o.listen.empty()) c.Error(n->source(), "listen must be \"IP:port\" or a list of them");
    for (const std::string& l : o.listen) {
      std::string host;
      uint16_t port = 0;
      if (Status s = ParseListenAddress(l, &host, &port); !s.ok())
        c.Error(n->source(), s.message());
    }
  }
  if (!c.String(*t, "tls_cert", &o.tls_cert) || !c.String(*t, "tls_key", &o.tls_key)) {
    c.Error(t->source(),
            "[collector] needs tls_cert and tls_key: TLS is always on (a "
            "self-signed pair is made by `gapless run`, or bring your own)");
  }
  if (!c.String(*t, "enrolled_keys", &o.enrolled_keys)) {
    c.Error(t->source(),
            "[collector] needs enrolled_keys: a file of \"agent_id public-key\" "
            "lines (gapless keygen prints the line for an agent)");
  }
  c.String(*t, "enroll_tokens", &o.enroll_tokens);
  c.String(*t, "signing_key", &o.signing_key);
  c.Int(*t, "checkpoint_interval_ms", 100, 3'600'000, &o.checkpoint_interval_ms);
  ParseWitnesses(c, *t, &o);
  ParseArchive(c, *t, &o);
  ParseAlerts(c, root, &cfg.alerts);
  if (const toml::table* m = c.Table(root, "monitors")) {
    c.OnlyKeys(*m,
               {"agent_silent_seconds", "delivery_stalled_seconds", "clock_skew_seconds",
                "gap_open_seconds", "declared_loss_hold_seconds", "volume_window_minutes",
                "volume_drop_percent", "source_silent_seconds", "ingestion_lag_seconds",
                "future_timestamps_seconds"},
               "[monitors]");
    monitor::MonitorOptions& mo = cfg.monitors;
    c.Int(*m, "agent_silent_seconds", 1, 86400, &mo.agent_silent_s);
    c.Int(*m, "delivery_stalled_seconds", 1, 86400, &mo.delivery_stalled_s);
    c.Int(*m, "clock_skew_seconds", 1, 86400, &mo.clock_skew_s);
    c.Int(*m, "gap_open_seconds", 1, 86400, &mo.gap_open_s);
    c.Int(*m, "declared_loss_hold_seconds", 1, 30 * 86400, &mo.declared_loss_hold_s);
    c.Int(*m, "volume_window_minutes", 1, 24 * 60, &mo.volume_window_minutes);
    int64_t percent = static_cast<int64_t>(mo.volume_drop_ratio * 100);
    if (c.Int(*m, "volume_drop_percent", 1, 49, &percent)) {
      mo.volume_drop_ratio = static_cast<double>(percent) / 100;
    }
    c.Int(*m, "source_silent_seconds", 60, 86400, &mo.source_silent_s);
    c.Int(*m, "ingestion_lag_seconds", 1, 7 * 86400, &mo.ingestion_lag_s);
    c.Int(*m, "future_timestamps_seconds", 1, 86400, &mo.future_timestamps_s);
  }
  if (cfg.alerts.journal.empty()) cfg.alerts.journal = o.data_dir + "/alerts.jsonl";
  if (!c.ok()) return InvalidArgumentError(c.errors());
  return cfg;
}

StatusOr<CollectorConfig> LoadCollectorConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env::Env::Posix(), path));
  return ParseCollectorConfig(text, path);
}

AgentConfig DemoConfig(const std::string& data_dir, uint16_t port) {
  AgentConfig cfg;
  cfg.id = HostName();
  cfg.data_dir = data_dir;
  cfg.key_file = data_dir + "/agent.key";
  cfg.spool.quota_bytes = 256ull << 20;
  cfg.spool.segment_bytes = 16ull << 20;
  for (InputType type : {InputType::kSyslogTcp, InputType::kSyslogUdp}) {
    InputConfig in;
    in.type = type;
    in.syslog.listen = "127.0.0.1:" + std::to_string(port);
    cfg.inputs.push_back(in);
  }
  return cfg;
}

}  // namespace gapless::config
