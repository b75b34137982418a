#include "report/status_report.h"

#include <ctime>
#include <map>

#include "base/json_text.h"
#include "env/env.h"
#include "output/output.h"

namespace gapless::report {

int64_t WallNowNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kSecond + ts.tv_nsec;
}

std::string StreamOfSubject(const std::string& subject) {
  const size_t slash = subject.find('/');
  if (slash == std::string::npos) return "";
  return subject.substr(0, subject.find('/', slash + 1));
}

int StatusReport::exit_status() const {
  if (!alerts.empty()) return 1;
  for (const StreamStatus& s : streams) {
    if (s.open_gaps > 0) return 1;
  }
  return 0;
}

StatusReport MakeStatus(const ledger::Contents& c, const std::string& data_dir, int64_t now_ns) {
  StatusReport r;
  r.now_ns = now_ns;
  const int64_t minute = now_ns / (60 * kSecond);
  std::map<std::string, int> open_gaps;
  for (const auto& g : c.gaps) {
    if (g.closed_ns == 0) ++open_gaps[g.agent + "/" + g.epoch];
  }
  std::map<std::string, uint64_t> losses;
  for (const auto& l : c.losses) {
    losses[l.agent + "/" + l.epoch] += l.last >= l.first ? l.last - l.first + 1 : 0;
  }
  // Alerts per stream in one pass (not one pass over the alerts per stream).
  std::map<std::string, int> alerts;
  for (const auto& a : c.alerts) {
    if (std::string key = StreamOfSubject(a.subject); !key.empty()) ++alerts[key];
  }
  for (const auto& s : c.streams) {
    const std::string key = s.agent + "/" + s.epoch;
    r.streams.push_back({s.agent, s.epoch, s.last_heartbeat_ns, s.head, s.stored,
                         s.head > s.stored ? s.head - s.stored : 0, s.spool_bytes, s.spool_quota,
                         open_gaps[key], losses[key], alerts[key]});
  }
  std::map<std::pair<std::string, std::string>, SourceStatus> sources;
  for (const auto& row : c.counts) {
    SourceStatus& s = sources[{row.agent, row.source}];
    s.last_60_min += row.count;
    if (row.minute >= minute - 10) s.last_10_min += row.count;
  }
  for (auto& [k, v] : sources) {
    v.agent = k.first;
    v.source = k.second;
    r.sources.push_back(std::move(v));
  }
  // Per output, from its state on disk (output::ReadReport): what the selected streams
  // should have there, what is confirmed, what waits. A stall is an alert.
  if (auto report = output::ReadReport(env::Env::Posix(), data_dir); report.ok()) {
    for (const output::OutputReport& o : *report) {
      OutputStatus line{o.name, o.type.empty() ? "?" : o.type,
                        o.confirmed ? "confirmed" : "sent, unconfirmed"};
      for (const output::ReportRow& row : o.streams) {
        if (!row.selected) continue;
        line.confirmed += row.delivered;
        line.waiting += row.signed_size > row.delivered ? row.signed_size - row.delivered : 0;
        line.refused += row.rejected;
      }
      r.outputs.push_back(std::move(line));
    }
  } else {
    r.warnings.push_back("outputs: " + report.status().message());
  }
  r.alerts = c.alerts;
  return r;
}

StatusOr<StatusReport> ReadStatus(const ledger::Ledger& ledger, const std::string& data_dir,
                                  int64_t now_ns) {
  ASSIGN_OR_RETURN(ledger::Contents c, ledger.Read(now_ns / (60 * kSecond) - 60));
  return MakeStatus(c, data_dir, now_ns);
}

std::string StatusJson(const StatusReport& r) {
  std::string out = "{\"streams\": [";
  for (size_t i = 0; i < r.streams.size(); ++i) {
    const StreamStatus& s = r.streams[i];
    out += std::string(i == 0 ? "" : ", ") + "{\"agent\": " + JsonString(s.agent) +
           ", \"epoch\": " + JsonString(s.epoch) +
           ", \"last_heartbeat_ns\": " + std::to_string(s.last_heartbeat_ns) +
           ", \"head\": " + std::to_string(s.head) + ", \"stored\": " + std::to_string(s.stored) +
           ", \"lag\": " + std::to_string(s.lag) +
           ", \"spool_bytes\": " + std::to_string(s.spool_bytes) +
           ", \"spool_quota\": " + std::to_string(s.spool_quota) +
           ", \"open_gaps\": " + std::to_string(s.open_gaps) +
           ", \"declared_losses\": " + std::to_string(s.declared_losses) +
           ", \"alerts\": " + std::to_string(s.alerts) + "}";
  }
  out += "], \"sources\": [";
  for (size_t i = 0; i < r.sources.size(); ++i) {
    const SourceStatus& s = r.sources[i];
    out += std::string(i == 0 ? "" : ", ") + "{\"agent\": " + JsonString(s.agent) +
           ", \"source\": " + JsonString(s.source) +
           ", \"last_10_min\": " + std::to_string(s.last_10_min) +
           ", \"last_60_min\": " + std::to_string(s.last_60_min) + "}";
  }
  out += "], \"outputs\": [";
  for (size_t i = 0; i < r.outputs.size(); ++i) {
    const OutputStatus& o = r.outputs[i];
    out += std::string(i == 0 ? "" : ", ") + "{\"name\": " + JsonString(o.name) +
           ", \"type\": " + JsonString(o.type) + ", \"delivery\": " + JsonString(o.delivery) +
           ", \"confirmed\": " + std::to_string(o.confirmed) +
           ", \"waiting\": " + std::to_string(o.waiting) +
           ", \"refused\": " + std::to_string(o.refused) + "}";
  }
  out += "], \"alerts\": [";
  for (size_t i = 0; i < r.alerts.size(); ++i) {
    const auto& a = r.alerts[i];
    out += std::string(i == 0 ? "" : ", ") + "{\"name\": " + JsonString(a.name) +
           ", \"subject\": " + JsonString(a.subject) + ", \"severity\": " + JsonString(a.severity) +
           ", \"summary\": " + JsonString(a.summary) +
           ", \"started_ns\": " + std::to_string(a.started_ns) + "}";
  }
  out += "]}\n";
  return out;
}

}  // namespace gapless::report
