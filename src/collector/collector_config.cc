#include "collector/collector_config.h"

#include "base/address.h"
#include "checkpoint/note.h"
#include "config/alerts_config.h"
#include "config/toml_checker.h"
#include "env/env.h"
#include "store/layout.h"

namespace gapless::collector {

using config::Checker;
using config::ParseToml;

namespace {

// [[collector.witness]] url = "...", key = "<cosigner key>", ca_file, timeout_ms.
void ParseWitnesses(Checker& c, const toml::table& collector, CollectorOptions* o) {
  for (const toml::table* table : c.Tables(collector, "witness", "[[collector.witness]]")) {
    const toml::table& t = *table;
    WitnessTarget w;
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

// [[output]] tables (docs/outputs.md): each checked as a whole by output::ValidateOutput
// too, so that `gapless validate` and the collector refuse the same things.
void ParseOutputs(Checker& c, const toml::table& root, CollectorOptions* o) {
  for (const toml::table* table : c.Tables(root, "output", "[[output]]")) {
    const toml::table& t = *table;
    output::OutputOptions out;
    c.OnlyKeys(t,
               {"name",          "type",         "address",        "path",          "max_file_size",
                "url",           "index",        "api_key_file",   "ca_file",       "subject",
                "stream",        "token_file",   "streams",        "required",      "shape",
                "batch_records", "retry_min_ms", "retry_max_ms",   "stall_seconds", "timeout_ms",
                "sourcetype",    "ack_poll_ms",  "ack_timeout_ms", "topic",         "tls",
                "server_name",   "cert_file",    "key_file"},
               "[[output]]");
    if (!c.String(t, "name", &out.name)) {
      c.Error(t.source(), "this [[output]] needs a name (it names its cursor files)");
    }
    if (!c.String(t, "type", &out.type)) {
      c.Error(t.source(),
              "this [[output]] needs type = \"file\", \"relp\", \"syslog\", \"elasticsearch\", "
              "\"nats\", \"splunk_hec\" or \"kafka\"");
    }
    c.String(t, "address", &out.address);
    c.String(t, "path", &out.path);
    c.String(t, "url", &out.url);
    c.String(t, "index", &out.index);
    c.String(t, "api_key_file", &out.api_key_file);
    c.String(t, "ca_file", &out.ca_file);
    c.String(t, "subject", &out.subject);
    c.String(t, "topic", &out.topic);
    c.Bool(t, "tls", &out.tls);
    c.String(t, "server_name", &out.server_name);
    c.String(t, "cert_file", &out.cert_file);
    c.String(t, "key_file", &out.key_file);
    c.String(t, "stream", &out.stream);
    c.String(t, "token_file", &out.token_file);
    c.String(t, "sourcetype", &out.sourcetype);
    c.Int(t, "ack_poll_ms", 1, 60'000, &out.ack_poll_ms);
    c.Int(t, "ack_timeout_ms", 100, 3'600'000, &out.ack_timeout_ms);
    c.Size(t, "max_file_size", 4096, uint64_t{1} << 40, &out.max_file_bytes);
    c.Bool(t, "required", &out.required);
    out.shape =
        out.type == "relp" || out.type == "syslog" ? output::Shape::kRfc5424 : output::Shape::kJson;
    std::string shape;
    if (c.String(t, "shape", &shape)) {
      auto parsed = output::ParseShape(shape);
      if (parsed.ok()) {
        out.shape = *parsed;
      } else {
        c.Error(t.get("shape")->source(), parsed.status().message());
      }
    }
    if (const toml::node* n = t.get("streams")) {
      const toml::array* list = n->as_array();
      for (size_t i = 0; list != nullptr && i < list->size(); ++i) {
        if (auto v = (*list)[i].value<std::string>()) out.streams.push_back(*v);
      }
      if (list == nullptr || out.streams.size() != list->size()) {
        c.Error(n->source(), "streams must be a list of agent-id globs, e.g. [\"web-*\"]");
      }
    }
    int64_t v = static_cast<int64_t>(out.batch_records);
    if (c.Int(t, "batch_records", 1, 100'000, &v)) out.batch_records = static_cast<size_t>(v);
    c.Int(t, "retry_min_ms", 1, 3'600'000, &out.retry_min_ms);
    c.Int(t, "retry_max_ms", 1, 3'600'000, &out.retry_max_ms);
    int64_t stall_s = out.stall_after_ms / 1000;
    if (c.Int(t, "stall_seconds", 1, 86400, &stall_s)) out.stall_after_ms = stall_s * 1000;
    c.Int(t, "timeout_ms", 100, 600'000, &out.timeout_ms);
    if (!out.name.empty() && !out.type.empty()) {
      if (Status s = output::ValidateOutput(out); !s.ok()) c.Error(t.source(), s.message());
    }
    for (const output::OutputOptions& other : o->outputs) {
      if (other.name == out.name)
        c.Error(t.source(), "two [[output]] tables are named \"" + out.name + "\"");
    }
    o->outputs.push_back(std::move(out));
  }
}

// [collector.archive] dir, interval_seconds, min_records, recipients, identity.
void ParseArchive(Checker& c, const toml::table& collector, CollectorOptions* o) {
  const toml::table* t = c.Table(collector, "archive");
  if (t == nullptr) return;
  ArchiveDestination& a = o->archive;
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

}  // namespace

StatusOr<CollectorConfig> ParseCollectorConfig(std::string_view text,
                                               const std::string& file_name) {
  ASSIGN_OR_RETURN(const toml::table root, ParseToml(text, file_name));
  Checker c(file_name);
  CollectorConfig cfg;
  CollectorOptions& o = cfg.options;
  c.OnlyKeys(root, {"collector", "alerts", "monitors", "output"}, "the top level");
  const toml::table* t = c.Table(root, "collector");
  if (t == nullptr) {
    c.ErrorAt(1, 1, "a [collector] table is required");
    return InvalidArgumentError(c.errors());
  }
  c.OnlyKeys(*t,
             {"name",
              "data_dir",
              "listen",
              "tls_cert",
              "tls_key",
              "enrolled_keys",
              "enroll_tokens",
              "signing_key",
              "checkpoint_interval_ms",
              "witness",
              "archive",
              "metrics_listen",
              "console_listen",
              "console_token_file",
              "console_client_ca",
              "audit_interval_seconds",
              "index_interval_seconds",
              "max_connections",
              "max_connections_per_address",
              "handshake_timeout_ms",
              "max_open_streams",
              "max_new_epochs_per_agent",
              "new_epoch_window_seconds"},
             "[collector]");
  c.String(*t, "name", &o.name);
  c.String(*t, "metrics_listen", &cfg.metrics_listen);
  c.String(*t, "console_listen", &cfg.console.listen);
  c.String(*t, "console_token_file", &cfg.console.token_file);
  c.String(*t, "console_client_ca", &cfg.console.client_ca);
  if (!cfg.console.listen.empty()) {
    const toml::node* n = t->get("console_listen");
    std::string host;
    uint16_t port = 0;
    if (Status s = ParseListenAddress(cfg.console.listen, &host, &port); !s.ok()) {
      c.Error(n->source(), "console_listen: " + s.message());
    } else if (!console::IsLoopbackListen(cfg.console.listen) && cfg.console.token_file.empty() &&
               cfg.console.client_ca.empty()) {
      c.Error(n->source(),
              "console_listen " + cfg.console.listen +
                  " is off loopback: set console_token_file (a 0600 file with a long random "
                  "token) or console_client_ca (client certificates); the console then serves "
                  "TLS with tls_cert and tls_key");
    }
  }
  int64_t audit_s = cfg.audit_interval_ms / 1000;
  if (c.Int(*t, "audit_interval_seconds", 0, 30 * 86400, &audit_s)) {
    cfg.audit_interval_ms = audit_s * 1000;
  }
  int64_t index_s = cfg.index_interval_ms / 1000;
  if (c.Int(*t, "index_interval_seconds", 0, 86400, &index_s)) {
    cfg.index_interval_ms = index_s * 1000;
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
  int64_t limit = o.max_connections;
  if (c.Int(*t, "max_connections", 1, 1'000'000, &limit))
    o.max_connections = static_cast<int>(limit);
  limit = o.max_connections_per_address;
  if (c.Int(*t, "max_connections_per_address", 1, 1'000'000, &limit)) {
    o.max_connections_per_address = static_cast<int>(limit);
  }
  limit = o.max_open_streams;
  if (c.Int(*t, "max_open_streams", 1, 1'000'000, &limit))
    o.max_open_streams = static_cast<int>(limit);
  limit = o.max_new_epochs_per_agent;
  if (c.Int(*t, "max_new_epochs_per_agent", 1, 1'000'000, &limit)) {
    o.max_new_epochs_per_agent = static_cast<int>(limit);
  }
  c.Int(*t, "new_epoch_window_seconds", 1, 30 * 86400, &o.new_epoch_window_s);
  int64_t handshake_ms = o.handshake_timeout_ms;
  if (c.Int(*t, "handshake_timeout_ms", 100, 600'000, &handshake_ms)) {
    o.handshake_timeout_ms = handshake_ms;
  }
  ParseWitnesses(c, *t, &o);
  ParseArchive(c, *t, &o);
  config::ParseAlerts(c, root, &cfg.alerts, {}, /*watchdog_default=*/true,
                      "collector@" + config::HostName());
  ParseOutputs(c, root, &o);
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
  if (cfg.alerts.journal.empty()) cfg.alerts.journal = store::Layout(o.data_dir).AlertJournal();
  if (!c.ok()) return InvalidArgumentError(c.errors());
  return cfg;
}

StatusOr<CollectorConfig> LoadCollectorConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, env::ReadFileToString(env::Env::Posix(), path));
  return ParseCollectorConfig(text, path);
}

}  // namespace gapless::collector
