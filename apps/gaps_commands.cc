#include "gaps_commands.h"

#include <algorithm>
#include <cstdio>

#include "base/json_text.h"
#include "env/env.h"
#include "output/output.h"
#include "report/gaps_report.h"
#include "report/outputs_report.h"
#include "store/layout.h"

namespace gapless::cli {

int Gaps(const GapsFlags& f) {
  int64_t from_ns = INT64_MIN, to_ns = INT64_MAX;
  if (!f.from.empty()) {
    auto t = report::ParseGapsTime(f.from);
    if (!t) {
      std::fprintf(stderr,
                   "gapless gaps: --from %s: give RFC 3339 UTC (2026-11-22T10:00:00Z) "
                   "or unix seconds\n",
                   f.from.c_str());
      return 3;
    }
    from_ns = *t;
  }
  if (!f.to.empty()) {
    auto t = report::ParseGapsTime(f.to);
    if (!t) {
      std::fprintf(stderr, "gapless gaps: --to %s: give RFC 3339 UTC or unix seconds\n",
                   f.to.c_str());
      return 3;
    }
    to_ns = *t;
  }
  auto streams = report::ReadGaps(f.data_dir, f.agent, from_ns, to_ns);
  if (!streams.ok()) {
    std::fprintf(stderr, "gapless gaps: %s\n", streams.status().message().c_str());
    return 3;
  }
  if (streams->empty()) {
    std::fprintf(stderr, "gapless gaps: no stream matched in %s\n", f.data_dir.c_str());
    return 3;
  }
  int worst = 0;
  for (const report::StreamGaps& g : *streams) {
    if (!g.error.ok()) {
      std::fprintf(stderr, "gapless gaps: %s/%s: %s\n", g.agent.c_str(), g.epoch.c_str(),
                   g.error.ToString().c_str());
      worst = 3;
      continue;
    }
    worst = std::max(worst, g.status());
    if (f.json) continue;
    std::printf("stream %s/%s: %s\n", g.agent.c_str(), g.epoch.c_str(), g.verdict());
    const uint64_t expected = g.hi - g.lo;
    if (expected == 0) {
      std::printf("  no records in the window\n");
      continue;
    }
    std::printf("  seqs %llu..%llu: expected %llu, received %llu\n",
                static_cast<unsigned long long>(g.lo), static_cast<unsigned long long>(g.hi - 1),
                static_cast<unsigned long long>(expected),
                static_cast<unsigned long long>(g.received));
    for (const report::MissingRange& r : g.missing) {
      std::printf("  missing %llu..%llu (%llu): %s\n", static_cast<unsigned long long>(r.first),
                  static_cast<unsigned long long>(r.last),
                  static_cast<unsigned long long>(r.last - r.first + 1),
                  r.declared ? ("declared lost: " + r.reason).c_str()
                             : "NOT declared by the agent: investigate");
    }
    for (const auto& u : g.unsequenced) std::printf("  %s\n", u.c_str());
  }
  if (f.json) std::fputs(report::GapsJson(*streams).c_str(), stdout);
  return worst;
}

int OutputsReport(const OutputsFlags& flags) {
  if (Status s = store::Layout(flags.data_dir).CheckFormat(env::Env::Posix()); !s.ok()) {
    std::fprintf(stderr, "gapless outputs: %s\n", s.message().c_str());
    return 3;
  }
  auto report = output::ReadReport(env::Env::Posix(), flags.data_dir);
  if (!report.ok()) {
    std::fprintf(stderr, "gapless outputs: %s\n", report.status().message().c_str());
    return 3;
  }
  bool behind = false;
  const std::string json = report::OutputsJson(*report, &behind);
  if (report->empty() && !flags.json) {
    std::printf("no output has run on %s\n", flags.data_dir.c_str());
  }
  for (const output::OutputReport& o : *report) {
    if (flags.json) break;
    std::printf("output %s%s%s%s\n", o.name.c_str(), o.type.empty() ? "" : " (", o.type.c_str(),
                o.type.empty()
                    ? ""
                    : (o.confirmed ? ")" : ": sent, unconfirmed — syslog has no acknowledgement)"));
    for (const output::ReportRow& r : o.streams) {
      const uint64_t waiting = r.signed_size > r.delivered ? r.signed_size - r.delivered : 0;
      std::printf("  %s/%s: should have %llu, confirmed %llu, waiting %llu, refused %llu%s%s\n",
                  r.agent.c_str(), r.epoch.c_str(), static_cast<unsigned long long>(r.signed_size),
                  static_cast<unsigned long long>(r.delivered),
                  static_cast<unsigned long long>(waiting),
                  static_cast<unsigned long long>(r.rejected),
                  !r.selected    ? " (not selected by this output)"
                  : r.has_cursor ? ""
                                 : " (nothing confirmed yet)",
                  r.problem.empty() ? "" : (" — " + r.problem).c_str());
    }
  }
  if (flags.json) std::printf("%s\n", json.c_str());
  return behind ? 1 : 0;
}

}  // namespace gapless::cli
