#include "status_commands.h"

#include <cstdio>
#include <ctime>
#include <map>

#include "base/json_text.h"
#include "env/env.h"
#include "event/event.h"
#include "ledger/ledger.h"
#include "output/output.h"
#include "store/layout.h"

namespace gapless::cli {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

int64_t NowNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kSecond + ts.tv_nsec;
}

std::string Ago(int64_t then_ns, int64_t now_ns) {
  if (then_ns == 0) return "never";
  const int64_t s = (now_ns - then_ns) / kSecond;
  if (s < 120) return std::to_string(s) + " s ago";
  if (s < 7200) return std::to_string(s / 60) + " min ago";
  return std::to_string(s / 3600) + " h ago";
}

// Alerts whose subject is the stream's or under it ("<agent>/<epoch>[/...]").
int AlertsOf(const ledger::Contents& c, const std::string& stream) {
  int n = 0;
  for (const auto& a : c.alerts) {
    if (a.subject == stream || a.subject.rfind(stream + "/", 0) == 0) ++n;
  }
  return n;
}

struct SourceCounts {
  uint64_t last10 = 0, last60 = 0;
};

}  // namespace

int ShowStatus(const StatusFlags& flags) {
  const std::string path = store::Layout(flags.data_dir).Ledger();
  auto ledger = ledger::Ledger::Open(path, /*read_only=*/true);
  if (!ledger.ok()) {
    std::fprintf(stderr, "gapless status: %s\n(is %s the data_dir of a collector that has run?)\n",
                 ledger.status().message().c_str(), flags.data_dir.c_str());
    return 2;
  }
  const int64_t now = NowNanos();
  const int64_t minute = now / (60 * kSecond);
  auto c = (*ledger)->Read(minute - 60);
  if (!c.ok()) {
    std::fprintf(stderr, "gapless status: %s\n", c.status().message().c_str());
    return 2;
  }
  std::map<std::string, int> open_gaps;
  int open_total = 0;
  for (const auto& g : c->gaps) {
    if (g.closed_ns == 0) {
      ++open_gaps[g.agent + "/" + g.epoch];
      ++open_total;
    }
  }
  std::map<std::pair<std::string, std::string>, SourceCounts> sources;
  for (const auto& r : c->counts) {
    SourceCounts& s = sources[{r.agent, r.source}];
    s.last60 += r.count;
    if (r.minute >= minute - 10) s.last10 += r.count;
  }
  const int status = (c->alerts.empty() && open_total == 0) ? 0 : 1;
  // Per output, from its state on disk (output::ReadReport): what the selected streams
  // should have there, what is confirmed, what waits. A stall is an alert above.
  struct OutputLine {
    std::string name, type, delivery;
    uint64_t confirmed = 0, waiting = 0, refused = 0;
  };
  std::vector<OutputLine> outputs;
  if (auto report = output::ReadReport(env::Env::Posix(), flags.data_dir); report.ok()) {
    for (const output::OutputReport& o : *report) {
      OutputLine line{o.name, o.type.empty() ? "?" : o.type,
                      o.confirmed ? "confirmed" : "sent, unconfirmed"};
      for (const output::ReportRow& r : o.streams) {
        if (!r.selected) continue;
        line.confirmed += r.delivered;
        line.waiting += r.signed_size > r.delivered ? r.signed_size - r.delivered : 0;
        line.refused += r.rejected;
      }
      outputs.push_back(std::move(line));
    }
  } else {
    std::fprintf(stderr, "gapless status: outputs: %s\n", report.status().message().c_str());
  }

  if (flags.json) {
    std::string out = "{\"streams\": [";
    for (size_t i = 0; i < c->streams.size(); ++i) {
      const auto& s = c->streams[i];
      const std::string key = s.agent + "/" + s.epoch;
      out += std::string(i == 0 ? "" : ", ") + "{\"agent\": " + JsonString(s.agent) +
             ", \"epoch\": " + JsonString(s.epoch) +
             ", \"last_heartbeat_ns\": " + std::to_string(s.last_heartbeat_ns) +
             ", \"head\": " + std::to_string(s.head) + ", \"stored\": " + std::to_string(s.stored) +
             ", \"lag\": " + std::to_string(s.head > s.stored ? s.head - s.stored : 0) +
             ", \"spool_bytes\": " + std::to_string(s.spool_bytes) +
             ", \"spool_quota\": " + std::to_string(s.spool_quota) +
             ", \"open_gaps\": " + std::to_string(open_gaps[key]) +
             ", \"alerts\": " + std::to_string(AlertsOf(*c, key)) + "}";
    }
    out += "], \"sources\": [";
    bool first = true;
    for (const auto& [k, v] : sources) {
      out += std::string(first ? "" : ", ") + "{\"agent\": " + JsonString(k.first) +
             ", \"source\": " + JsonString(k.second) +
             ", \"last_10_min\": " + std::to_string(v.last10) +
             ", \"last_60_min\": " + std::to_string(v.last60) + "}";
      first = false;
    }
    out += "], \"outputs\": [";
    for (size_t i = 0; i < outputs.size(); ++i) {
      const OutputLine& o = outputs[i];
      out += std::string(i == 0 ? "" : ", ") + "{\"name\": " + JsonString(o.name) +
             ", \"type\": " + JsonString(o.type) + ", \"delivery\": " + JsonString(o.delivery) +
             ", \"confirmed\": " + std::to_string(o.confirmed) +
             ", \"waiting\": " + std::to_string(o.waiting) +
             ", \"refused\": " + std::to_string(o.refused) + "}";
    }
    out += "], \"alerts\": [";
    for (size_t i = 0; i < c->alerts.size(); ++i) {
      const auto& a = c->alerts[i];
      out += std::string(i == 0 ? "" : ", ") + "{\"name\": " + JsonString(a.name) +
             ", \"subject\": " + JsonString(a.subject) +
             ", \"severity\": " + JsonString(a.severity) +
             ", \"summary\": " + JsonString(a.summary) +
             ", \"started_ns\": " + std::to_string(a.started_ns) + "}";
    }
    out += "]}\n";
    std::fputs(out.c_str(), stdout);
    return status;
  }

  std::printf("%-44s %-12s %12s %12s %10s %5s %6s\n", "AGENT/EPOCH", "LAST SEEN", "HEAD", "STORED",
              "LAG", "GAPS", "ALERTS");
  for (const auto& s : c->streams) {
    const std::string key = s.agent + "/" + s.epoch;
    std::printf("%-44s %-12s %12llu %12llu %10llu %5d %6d\n", key.c_str(),
                Ago(s.last_heartbeat_ns, now).c_str(), static_cast<unsigned long long>(s.head),
                static_cast<unsigned long long>(s.stored),
                static_cast<unsigned long long>(s.head > s.stored ? s.head - s.stored : 0),
                open_gaps[key], AlertsOf(*c, key));
  }
  if (c->streams.empty()) std::printf("(no agent has connected yet)\n");
  if (!sources.empty()) {
    std::printf("\n%-44s %12s %12s\n", "AGENT SOURCE", "LAST 10 MIN", "LAST 60 MIN");
    for (const auto& [k, v] : sources) {
      const std::string name = k.first + " " + k.second;
      std::printf("%-44s %12llu %12llu\n", name.c_str(), static_cast<unsigned long long>(v.last10),
                  static_cast<unsigned long long>(v.last60));
    }
  }
  if (!outputs.empty()) {
    std::printf("\n%-24s %-14s %-18s %12s %10s %8s\n", "OUTPUT", "TYPE", "DELIVERY", "CONFIRMED",
                "WAITING", "REFUSED");
    for (const OutputLine& o : outputs) {
      std::printf("%-24s %-14s %-18s %12llu %10llu %8llu\n", o.name.c_str(), o.type.c_str(),
                  o.delivery.c_str(), static_cast<unsigned long long>(o.confirmed),
                  static_cast<unsigned long long>(o.waiting),
                  static_cast<unsigned long long>(o.refused));
    }
  }
  std::printf("\n%zu alert(s) firing\n", c->alerts.size());
  for (const auto& a : c->alerts) {
    std::printf("  %-8s %s [%s] since %s: %s\n", a.severity.c_str(), a.name.c_str(),
                a.subject.c_str(), event::FormatUnixNanos(a.started_ns).c_str(), a.summary.c_str());
  }
  return status;
}

}  // namespace gapless::cli
