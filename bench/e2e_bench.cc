// End-to-end benchmark (issue 4): syslog over TCP → `gapless agent` → TLS → `gapless
// collector`, with acknowledgements only after the collector's fsync. All three are
// separate processes on this machine: the load generator (syslog_load), the agent and
// the collector, each the real binary with a generated configuration.
//
// Reports messages/s from the first byte sent until the collector's store holds every
// message, and per process (from wait4 after a clean SIGTERM): CPU seconds per million
// messages and peak RSS. Then checks the agent's spool cursor for the destination stands
// at the end (every message acknowledged) and the collector holds exactly the seqs sent.
// With --output file (issue 15), the collector also runs a file output (NDJSON, fsynced)
// while the agent sends at full rate, and the bench reports when that output had
// confirmed every record, from the output's state on disk (output::ReadReport).
//   e2e_bench --gapless build/release/apps/gapless --load build/release/bench/syslog_load
//             [--dir DIR] [--count N] [--output none|file]
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "identity/identity.h"
#include "output/output.h"
#include "spool/spool.h"

namespace {

using namespace gapless;
using bench::FreePort;
using bench::Now;
namespace fs = std::filesystem;

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  const pid_t pid = bench::Spawn(argv, out, out);
  ::close(out);
  return pid;
}

bool Accepts(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

struct Usage {
  int status = -1;
  double cpu_s = 0;
  double max_rss_mb = 0;
};

// SIGTERM, then the child's own resource usage over its whole life.
Usage Finish(pid_t pid) {
  kill(pid, SIGTERM);
  Usage u;
  rusage ru{};
  if (wait4(pid, &u.status, 0, &ru) != pid) return u;
  u.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  u.max_rss_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;
  return u;
}

// Records the collector holds for the stream: its `leaves` file has 32 bytes per seq.
uint64_t StoredRecords(const fs::path& streams) {
  std::error_code ec;
  if (!fs::exists(streams, ec)) return 0;
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(streams, ec)) {
    n += fs::file_size(e.path() / "leaves", ec) / 32;
  }
  return n;
}

int Fail(const std::string& what, const fs::path& dir) {
  std::fprintf(stderr, "e2e_bench: %s (logs in %s)\n", what.c_str(), dir.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string gapless_bin, load;
  fs::path dir = "./build/bench-data/e2e";
  uint64_t count = 1'000'000;
  std::string output_type = "none";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--gapless") == 0) gapless_bin = argv[i + 1];
    if (std::strcmp(argv[i], "--load") == 0) load = argv[i + 1];
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    if (std::strcmp(argv[i], "--count") == 0) count = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--output") == 0) output_type = argv[i + 1];
  }
  if (output_type != "none" && output_type != "file") {
    std::fprintf(stderr, "e2e_bench: --output is none or file\n");
    return 2;
  }
  if (gapless_bin.empty() || load.empty()) {
    std::fprintf(stderr, "usage: e2e_bench --gapless PATH --load PATH [--dir DIR] [--count N]\n");
    return 2;
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  dir = fs::absolute(dir);
  const std::string d = dir.string();
  if (!identity::MakeSelfSignedTls(d + "/tls.key", d + "/tls.crt", "collector.bench").ok()) {
    return Fail("cannot make the TLS pair", dir);
  }
  auto key = identity::SigningKey::Generate();
  if (!key.ok() || !(*key)->Save(d + "/agent.key").ok()) return Fail("cannot make a key", dir);
  std::ofstream(d + "/enrolled") << "bench " << identity::FormatPublicKey((*key)->public_key())
                                 << "\n";
  const uint16_t cport = FreePort();
  const uint16_t sport = FreePort();
  std::ofstream(d + "/collector.toml")
      << "[collector]\ndata_dir = \"" << d << "/cdata\"\nlisten = \"127.0.0.1:" << cport
      << "\"\ntls_cert = \"" << d << "/tls.crt\"\ntls_key = \"" << d
      << "/tls.key\"\nenrolled_keys = \"" << d << "/enrolled\"\n"
      << (output_type == "file" ? "[[output]]\nname = \"lake\"\ntype = \"file\"\npath = \"" + d +
                                      "/lake.ndjson\"\nmax_file_size = \"1GiB\"\n"
                                : std::string());
  std::ofstream(d + "/agent.toml")
      << "[agent]\nid = \"bench\"\ndata_dir = \"" << d << "/adata\"\nkey_file = \"" << d
      << "/agent.key\"\n[spool]\nquota = \"4GiB\"\n"
      << "[[input]]\ntype = \"syslog_tcp\"\nlisten = \"127.0.0.1:" << sport << "\"\n"
      << "[[destination]]\nname = \"main\"\naddress = \"127.0.0.1:" << cport << "\"\nca_file = \""
      << d << "/tls.crt\"\nserver_name = \"collector.bench\"\n";

  const pid_t collector =
      Spawn({gapless_bin, "collector", "--config", d + "/collector.toml"}, d + "/collector.log");
  const pid_t agent =
      Spawn({gapless_bin, "agent", "--config", d + "/agent.toml"}, d + "/agent.log");
  const double ready_by = Now() + 20;
  while (!(Accepts(cport) && Accepts(sport))) {
    if (Now() > ready_by) return Fail("agent or collector did not start", dir);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  const double start = Now();
  const pid_t sender = Spawn(
      {load, "send", "127.0.0.1", std::to_string(sport), std::to_string(count)}, d + "/load.log");
  const fs::path streams = dir / "cdata" / "streams" / "bench";
  const double give_up = start + 600;
  while (StoredRecords(streams) < count) {
    if (Now() > give_up) return Fail("the collector did not get every message in 600 s", dir);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double seconds = Now() - start;
  // With an output: until it confirmed every record (its saved cursor).
  double output_seconds = 0;
  while (output_type != "none") {
    auto report = output::ReadReport(env::Env::Posix(), d + "/cdata");
    uint64_t confirmed = 0;
    if (report.ok()) {
      for (const auto& o : *report) {
        for (const auto& r : o.streams) confirmed += r.delivered;
      }
    }
    if (confirmed >= count) {
      output_seconds = Now() - start;
      break;
    }
    if (Now() > give_up) return Fail("the output did not confirm every message in 600 s", dir);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int status = 0;
  waitpid(sender, &status, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the last acks
  const Usage a = Finish(agent);
  const Usage c = Finish(collector);
  if (a.status != 0 || c.status != 0) return Fail("agent or collector did not exit cleanly", dir);

  // Every message acknowledged: the agent's persisted cursor stands at its spool's end.
  auto spool = spool::Spool::Open(env::Env::Posix(), d + "/adata/spool", {});
  if (!spool.ok()) return Fail("reopening the agent's spool: " + spool.status().ToString(), dir);
  const uint64_t end = (*spool)->next_seq();
  auto cursor = (*spool)->CursorPosition("main");
  if (!cursor.ok() || *cursor != end) return Fail("not every record was acknowledged", dir);
  if (StoredRecords(streams) != end)
    return Fail("the collector's size differs from the spool's", dir);

  const double per_million = 1e6 / static_cast<double>(count);
  std::printf("messages            %llu of ~250 B, syslog TCP → agent → TLS → collector\n",
              static_cast<unsigned long long>(count));
  std::printf("end to end          %.0f msg/s (%.3f s until the collector held all)\n",
              static_cast<double>(count) / seconds, seconds);
  if (output_type != "none") {
    std::printf("output %-12s confirmed all %.3f s after the first byte (%.0f msg/s)\n",
                output_type.c_str(), output_seconds, static_cast<double>(count) / output_seconds);
  }
  std::printf("agent               %.3f s CPU per million, peak RSS %.1f MB\n",
              a.cpu_s * per_million, a.max_rss_mb);
  std::printf("collector           %.3f s CPU per million, peak RSS %.1f MB\n",
              c.cpu_s * per_million, c.max_rss_mb);
  std::printf("acknowledged        %llu records (the agent's cursor is at its spool's end)\n",
              static_cast<unsigned long long>(end));
  spool->reset();
  fs::remove_all(dir);
  return 0;
}
