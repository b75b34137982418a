// Syslog ingest benchmark (issue 3): 1,000,000 messages of ~250 bytes over TCP from a
// separate process (syslog_load) into the agent, durable in the spool (group commit).
// Reports messages/s, the agent's CPU seconds per million and its peak RSS, and in the
// same run the generator's raw rate into a null sink, so the ratio shows.
//
// The agent runs in this process (the same code as `gapless agent`), so getrusage gives
// its CPU time and peak RSS; the generator is a child process.
//   syslog_ingest_bench --load build/release/bench/syslog_load --dir DIR [--count N]
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "bench_util.h"

namespace {

using namespace gapless;
using bench::FreePort;
using bench::Now;
using bench::Spawn;

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double NullSink(const std::string& load, uint64_t count) {
  const std::string port = std::to_string(FreePort());
  int fds[2];
  if (pipe(fds) != 0) return 0;
  const pid_t sink = Spawn({load, "sink", port, std::to_string(count)}, fds[1]);
  close(fds[1]);
  char buf[64] = {};
  if (read(fds[0], buf, sizeof(buf) - 1) <= 0) return 0;  // "listening"
  const double start = Now();
  const pid_t sender = Spawn({load, "send", "127.0.0.1", port, std::to_string(count)});
  int status = 0;
  waitpid(sink, &status, 0);
  const double seconds = Now() - start;
  waitpid(sender, &status, 0);
  close(fds[0]);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  std::string load;
  std::string dir = "./build/bench-data/syslog";
  uint64_t count = 1'000'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--load") == 0) load = argv[i + 1];
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    if (std::strcmp(argv[i], "--count") == 0) count = std::strtoull(argv[i + 1], nullptr, 10);
  }
  if (load.empty()) {
    std::fprintf(stderr, "usage: syslog_ingest_bench --load PATH [--dir DIR] [--count N]\n");
    return 2;
  }
  std::filesystem::remove_all(dir);

  const double null_seconds = NullSink(load, count);

  config::AgentConfig cfg;
  cfg.id = "bench";
  cfg.data_dir = dir;
  cfg.spool.quota_bytes = 4ull << 30;
  config::InputConfig in;
  in.syslog.listen = "127.0.0.1:0";
  cfg.inputs.push_back(in);
  auto agent = agent::Agent::Start(cfg);
  if (!agent.ok()) {
    std::fprintf(stderr, "%s\n", agent.status().ToString().c_str());
    return 1;
  }
  const uint16_t port = (*agent)->Inputs().at(0).port;
  const double cpu0 = CpuSeconds();
  const double start = Now();
  const pid_t sender =
      Spawn({load, "send", "127.0.0.1", std::to_string(port), std::to_string(count)});
  spool::Spool* spool = (*agent)->spool();
  while (spool->durable_size() < count) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double seconds = Now() - start;
  const double cpu = CpuSeconds() - cpu0;
  int status = 0;
  waitpid(sender, &status, 0);
  const spool::Stats st = spool->stats();
  (*agent)->Stop();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);

  std::printf("messages            %llu of ~250 B over one TCP connection\n",
              static_cast<unsigned long long>(count));
  std::printf("null sink           %.0f msg/s (%.3f s): the generator's ceiling\n",
              static_cast<double>(count) / null_seconds, null_seconds);
  std::printf("agent, durable      %.0f msg/s (%.3f s), %.2f of the null-sink rate\n",
              static_cast<double>(count) / seconds, seconds, null_seconds / seconds);
  std::printf("agent CPU           %.3f s per million messages (all agent threads)\n",
              cpu * 1e6 / static_cast<double>(count));
  std::printf("agent peak RSS      %.1f MB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
  std::printf("spool               %llu syncs, %.1f MB written\n",
              static_cast<unsigned long long>(st.syncs), static_cast<double>(st.bytes_used) / 1e6);
  std::filesystem::remove_all(dir);
  return 0;
}
