#include "config/agent_config.h"

#include "base/address.h"
#include "config/alerts_config.h"
#include "config/toml_checker.h"
#include "env/env.h"
#include "identity/identity.h"

namespace gapless::config {
namespace {

constexpr uint64_t kMaxMessageBytes = 1u << 20;  // per message, any input

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
  for (const toml::table* table : c.Tables(root, "input", "[[input]]")) {
    const toml::table& t = *table;
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
  for (const toml::table* table : c.Tables(root, "destination", "[[destination]]")) {
    const toml::table& t = *table;
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

StatusOr<AgentConfig> ParseAgentConfig(std::string_view text, const std::string& file_name) {
  ASSIGN_OR_RETURN(const toml::table root, ParseToml(text, file_name));
  Checker c(file_name);
  AgentConfig cfg;
  c.OnlyKeys(root, {"agent", "spool", "input", "destination", "alerts"}, "the top level");
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
  if (const toml::table* t = ParseAlerts(
          c, root, &cfg.alerts,
          {"destination_unreachable_seconds", "inputs_blocked_seconds", "spool_full_clear_seconds"},
          /*watchdog_default=*/false, "agent@" + cfg.id)) {
    c.Int(*t, "destination_unreachable_seconds", 1, 86400,
          &cfg.alert_rules.destination_unreachable_s);
    c.Int(*t, "inputs_blocked_seconds", 1, 86400, &cfg.alert_rules.inputs_blocked_s);
    c.Int(*t, "spool_full_clear_seconds", 1, 86400, &cfg.alert_rules.spool_full_clear_s);
  }
  if (cfg.alerts.journal.empty()) cfg.alerts.journal = cfg.data_dir + "/alerts.jsonl";
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

AgentConfig DemoConfig(const std::string& data_dir, uint16_t port) {
  AgentConfig cfg;
  cfg.id = HostName();
  cfg.data_dir = data_dir;
  cfg.key_file = data_dir + "/agent.key";
  cfg.spool.quota_bytes = 256ull << 20;
  cfg.spool.segment_bytes = 16ull << 20;
  cfg.alerts.journal = data_dir + "/alerts.jsonl";
  for (InputType type : {InputType::kSyslogTcp, InputType::kSyslogUdp}) {
    InputConfig in;
    in.type = type;
    in.syslog.listen = "127.0.0.1:" + std::to_string(port);
    cfg.inputs.push_back(in);
  }
  return cfg;
}

}  // namespace gapless::config
