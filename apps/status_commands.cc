#include "status_commands.h"

#include <cstdio>

#include "event/event.h"
#include "ledger/ledger.h"
#include "report/status_report.h"
#include "store/layout.h"

namespace gapless::cli {
namespace {

using report::kSecond;

std::string Ago(int64_t then_ns, int64_t now_ns) {
  if (then_ns == 0) return "never";
  const int64_t s = (now_ns - then_ns) / kSecond;
  if (s < 120) return std::to_string(s) + " s ago";
  if (s < 7200) return std::to_string(s / 60) + " min ago";
  return std::to_string(s / 3600) + " h ago";
}

}  // namespace

int ShowStatus(const StatusFlags& flags) {
  const std::string path = store::Layout(flags.data_dir).Ledger();
  auto ledger = ledger::Ledger::Open(path, /*read_only=*/true);
  if (!ledger.ok()) {
    std::fprintf(stderr, "gapless status: %s\n(is %s the data_dir of a collector that has run?)\n",
                 ledger.status().message().c_str(), flags.data_dir.c_str());
    return 2;
  }
  const int64_t now = report::WallNowNanos();
  auto r = report::ReadStatus(**ledger, flags.data_dir, now);
  if (!r.ok()) {
    std::fprintf(stderr, "gapless status: %s\n", r.status().message().c_str());
    return 2;
  }
  for (const std::string& w : r->warnings) std::fprintf(stderr, "gapless status: %s\n", w.c_str());
  if (flags.json) {
    std::fputs(report::StatusJson(*r).c_str(), stdout);
    return r->exit_status();
  }
  std::printf("%-44s %-12s %12s %12s %10s %5s %8s %6s\n", "AGENT/EPOCH", "LAST SEEN", "HEAD",
              "STORED", "LAG", "GAPS", "DECLARED", "ALERTS");
  for (const report::StreamStatus& s : r->streams) {
    const std::string key = s.agent + "/" + s.epoch;
    std::printf("%-44s %-12s %12llu %12llu %10llu %5d %8llu %6d\n", key.c_str(),
                Ago(s.last_heartbeat_ns, now).c_str(), static_cast<unsigned long long>(s.head),
                static_cast<unsigned long long>(s.stored), static_cast<unsigned long long>(s.lag),
                s.open_gaps, static_cast<unsigned long long>(s.declared_losses), s.alerts);
  }
  if (r->streams.empty()) std::printf("(no agent has connected yet)\n");
  if (!r->sources.empty()) {
    std::printf("\n%-44s %12s %12s\n", "AGENT SOURCE", "LAST 10 MIN", "LAST 60 MIN");
    for (const report::SourceStatus& v : r->sources) {
      const std::string name = v.agent + " " + v.source;
      std::printf("%-44s %12llu %12llu\n", name.c_str(),
                  static_cast<unsigned long long>(v.last_10_min),
                  static_cast<unsigned long long>(v.last_60_min));
    }
  }
  if (!r->outputs.empty()) {
    std::printf("\n%-24s %-14s %-18s %12s %10s %8s\n", "OUTPUT", "TYPE", "DELIVERY", "CONFIRMED",
                "WAITING", "REFUSED");
    for (const report::OutputStatus& o : r->outputs) {
      std::printf("%-24s %-14s %-18s %12llu %10llu %8llu\n", o.name.c_str(), o.type.c_str(),
                  o.delivery.c_str(), static_cast<unsigned long long>(o.confirmed),
                  static_cast<unsigned long long>(o.waiting),
                  static_cast<unsigned long long>(o.refused));
    }
  }
  std::printf("\n%zu alert(s) firing\n", r->alerts.size());
  for (const auto& a : r->alerts) {
    std::printf("  %-8s %s [%s] since %s: %s\n", a.severity.c_str(), a.name.c_str(),
                a.subject.c_str(), event::FormatUnixNanos(a.started_ns).c_str(), a.summary.c_str());
  }
  return r->exit_status();
}

}  // namespace gapless::cli
