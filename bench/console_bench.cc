// The console's overview with 5,000 streams (issue 18): what a browser fetches to show the
// first page — the page, its script and style, and /api/overview — over a real loopback
// HTTP connection to the console, timed, with the bytes transferred. The ledger holds
// 5,000 streams (three with a gap, a loss or an alert) and an hour of per-minute counts
// of one source each (300,000 rows), as a collector of 5,000 agents would.
//   console_bench --dir DIR [--streams N] [--rounds R]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "console/console.h"
#include "http/client.h"
#include "ledger/ledger.h"
#include "report/status_report.h"
#include "store/layout.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace g = gapless;

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "./build/bench-data/console";
  int streams = 5000, rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    if (std::strcmp(argv[i], "--streams") == 0) streams = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/streams");
  const g::store::Layout layout(dir);
  if (!layout.EnsureFormat(g::env::Env::Posix()).ok()) return 1;
  auto ledger = g::ledger::Ledger::Open(layout.Ledger());
  if (!ledger.ok()) {
    std::fprintf(stderr, "%s\n", ledger.status().ToString().c_str());
    return 1;
  }
  const int64_t now = g::report::WallNowNanos();
  const int64_t minute = now / 60'000'000'000;
  g::ledger::Delta d;
  for (int i = 0; i < streams; ++i) {
    char agent[32], epoch[40];
    std::snprintf(agent, sizeof(agent), "host-%05d", i);
    std::snprintf(epoch, sizeof(epoch), "%032x", i * 2654435761u);
    d.streams.push_back({agent, epoch, now, now, now, 100000, 100000, now, 1 << 20, 1 << 30});
    for (int m = 0; m < 60; ++m) d.counts.push_back({agent, "syslog:udp:514", minute - m, 600});
    if (i == 17) d.gaps.push_back({agent, epoch, 5, 9, now, 0});
    if (i == 42) d.losses.push_back({agent, epoch, 1, 3, "spool_full_drop_oldest", now});
    if (i == 99)
      d.alerts.push_back(
          {"agent_silent", std::string(agent) + "/" + epoch, "critical", "quiet", now});
  }
  d.replace_alerts = true;
  if (auto s = (*ledger)->Write(d); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  g::console::ServeOptions so;
  so.listen = "127.0.0.1:0";
  g::console::ConsoleOptions co;
  co.data_dir = dir;
  co.alert_journal = dir + "/alerts.jsonl";
  auto server = g::console::Serve(so, co);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  const std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());
  g::http::ClientOptions opts;
  opts.max_body = 64 << 20;
  double best = 1e9, worst = 0, api_best = 1e9;
  size_t bytes = 0, api_bytes = 0;
  for (int r = 0; r < rounds; ++r) {
    const auto start = Clock::now();
    size_t total = 0;
    double api = 0;
    for (const char* path : {"/", "/app.js", "/app.css", "/api/overview"}) {
      const auto t = Clock::now();
      auto got = g::http::Get(base + path, opts);
      if (!got.ok() || got->status != 200) {
        std::fprintf(stderr, "GET %s failed\n", path);
        return 1;
      }
      total += got->body.size();
      if (std::strcmp(path, "/api/overview") == 0) {
        api = std::chrono::duration<double>(Clock::now() - t).count();
        api_bytes = got->body.size();
      }
    }
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::min(best, s);
    worst = std::max(worst, s);
    api_best = std::min(api_best, api);
    bytes = total;
  }
  std::printf(
      "console overview, %d streams: first page in %.3f s best, %.3f s worst of %d "
      "(/api/overview %.3f s); %zu bytes transferred (%zu of them /api/overview), "
      "uncompressed\n",
      streams, best, worst, rounds, api_best, bytes, api_bytes);
  return 0;
}
