// Fuzzes the console's request handling (src/console/console.h): any request target — the
// path, its query parameters and their escapes — against a small store and ledger. Bad
// input must be a 4xx with a JSON error that says what to give, never a crash or a 5xx
// (but 503 for a part of the store the fixture lacks), and an /api/ answer is always JSON.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "console/console.h"
#include "env/env.h"
#include "ledger/ledger.h"
#include "store/layout.h"

namespace {

gapless::console::Console* Fixture() {
  static gapless::console::Console* console = [] {
    const std::string dir = std::filesystem::temp_directory_path().string() +
                            "/console_api_fuzzer." + std::to_string(::getpid());
    std::filesystem::create_directories(dir + "/streams");
    const gapless::store::Layout layout(dir);
    (void)layout.EnsureFormat(gapless::env::Env::Posix());
    auto ledger = gapless::ledger::Ledger::Open(layout.Ledger());
    if (ledger.ok()) {
      gapless::ledger::Delta d;
      d.streams.push_back({"web-1", "00aa", 1, 2, 3, 100, 90, 4, 0, 0});
      d.gaps.push_back({"web-1", "00aa", 90, 99, 5, 0});
      d.losses.push_back({"web-1", "00aa", 10, 19, "spool_full_drop_oldest", 6});
      d.replace_alerts = true;
      d.alerts.push_back({"agent_silent", "web-1/00aa", "critical", "quiet", 7});
      d.counts.push_back({"web-1", "syslog", 29'000'000, 5});
      (void)(*ledger)->Write(d);
    }
    gapless::console::ConsoleOptions o;
    o.data_dir = dir;
    o.alert_journal = dir + "/alerts.jsonl";
    return new gapless::console::Console(o);
  }();
  return console;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  gapless::http::ServerRequest r;
  r.method = "GET";
  r.target.assign(reinterpret_cast<const char*>(data), size);
  const gapless::http::ServerResponse out = Fixture()->Handle(r);
  if (out.status >= 500 && out.status != 503) __builtin_trap();
  if (out.status < 200) __builtin_trap();
  std::string path;
  std::map<std::string, std::string> params;
  const bool api =
      gapless::console::ParseTarget(r.target, &path, &params).ok() && path.rfind("/api/", 0) == 0;
  if (api && (out.body.empty() || out.body[0] != '{')) __builtin_trap();
  if (out.status >= 400 && out.body.find("\"error\": ") == std::string::npos) __builtin_trap();
  return 0;
}
