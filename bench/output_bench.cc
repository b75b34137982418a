// Output benchmark (issue 15): how fast a collector output delivers, and what it costs.
//
// Fills a store with --count records of ~250 B (syslog lines, as the collector stores
// them), then starts the outputs of the chosen type on it, declares the whole stream
// signed, and measures from then until every record is confirmed: records/s, and CPU
// seconds per million records of this process (which does nothing else meanwhile: the
// output thread's cost). For relp and syslog, a real rsyslog (imrelp or imtcp → omfile,
// direct queue) is the downstream; for nats, a real nats-server -js with a file-backed
// stream; each started by the bench, its own CPU reported apart.
//   output_bench --dir DIR [--count N] [--type file|relp|syslog|nats]
// Not measured here: the same while agents keep sending at full rate (see
// docs/benchmarks.md).
#include <nats/nats.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "base/crc32c.h"
#include "bench_util.h"
#include "event/event.h"
#include "output/output.h"
#include "spool/spool_format.h"
#include "store/layout.h"
#include "store/stream_store.h"

namespace {

using namespace gapless;
namespace fs = std::filesystem;

double CpuSeconds(int who) {
  rusage ru{};
  getrusage(who, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "output_bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "./build/bench-data/output";
  std::string type = "file";
  uint64_t count = 1'000'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--dir") {
      dir = argv[i + 1];
    } else if (flag == "--count") {
      count = std::stoull(argv[i + 1]);
    } else if (flag == "--type") {
      type = argv[i + 1];
    } else {
      return Fail("unknown flag " + flag + " (--dir, --count, --type file|relp|syslog|nats)");
    }
  }
  if (type != "file" && type != "relp" && type != "syslog" && type != "nats") {
    return Fail("--type is file, relp, syslog or nats");
  }
  fs::remove_all(dir);
  fs::create_directories(dir + "/data");
  env::Env* env = env::Env::Posix();
  const std::string data = fs::absolute(dir + "/data").string();
  const std::string agent = "bench", epoch = "00112233445566778899aabbccddeeff";
  const std::string stream = store::Layout(data).StreamDir(agent, epoch);
  {
    if (Status s = env->CreateDir(store::Layout(data).StreamsDir()); !s.ok())
      return Fail(s.ToString());
    auto st = store::StreamStore::Open(env, stream, spool::Epoch{}, {});
    if (!st.ok()) return Fail(st.status().ToString());
    const std::string pad(150, 'x');
    for (uint64_t first = 0; first < count; first += 1000) {
      const uint64_t n = std::min<uint64_t>(1000, count - first);
      std::vector<std::string> payloads(n);
      std::vector<store::Record> records;
      std::vector<Hash256> leaves;
      for (uint64_t i = 0; i < n; ++i) {
        const std::string raw =
            "<86>1 2026-12-03T12:00:00.000Z web-01 sshd 4711 AUTH - Accepted "
            "publickey for user" +
            std::to_string(first + i) + " " + pad;
        event::Event e;
        e.observed_unix_ns = 1'764'763'200'000'000'000;
        e.raw = raw;
        e.message = std::string_view(raw).substr(57);
        e.host = "web-01";
        e.app = "sshd";
        event::EncodeEvent(e, &payloads[i]);
      }
      for (const std::string& p : payloads) {
        records.push_back(store::Record{spool::FrameType::kData, crc32c::Value(p), p});
        leaves.push_back(spool::RecordLeafHash(spool::FrameType::kData, p));
      }
      auto r = (*st)->Append(store::BatchPosition{first, false}, records, leaves);
      if (!r.ok()) return Fail("append: " + r.status.ToString());
    }
    if (Status s = (*st)->Commit(); !s.ok()) return Fail(s.ToString());
  }

  pid_t downstream = -1;
  output::OutputOptions o;
  o.name = "bench";
  o.type = type;
  const uint16_t port = bench::FreePort();
  if (type == "file") {
    o.path = fs::absolute(dir).string() + "/out.ndjson";
  } else if (type == "nats") {
    const std::string work = fs::absolute(dir).string() + "/nats";
    fs::create_directories(work);
    downstream = bench::Spawn({"/usr/sbin/nats-server", "-js", "-a", "127.0.0.1", "-p",
                               std::to_string(port), "-sd", work});
    o.url = "nats://127.0.0.1:" + std::to_string(port);
    o.subject = "logs.bench";
    o.stream = "BENCH";
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    for (int i = 0; i < 100 && natsConnection_ConnectTo(&nc, o.url.c_str()) != NATS_OK; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "BENCH";
    const char* subjects[] = {"logs.bench"};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (nc == nullptr || natsConnection_JetStream(&js, nc, nullptr) != NATS_OK ||
        js_AddStream(nullptr, js, &cfg, nullptr, &jerr) != NATS_OK) {
      return Fail("cannot make the JetStream stream on " + o.url);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  } else {
    const std::string module = type == "relp" ? "imrelp" : "imtcp";
    const std::string work = fs::absolute(dir).string() + "/rsyslog";
    fs::create_directories(work);
    std::ofstream(work + "/rsyslog.conf")
        << "global(workDirectory=\"" << work << "\" processInternalMessages=\"on\")\n"
        << "main_queue(queue.type=\"Direct\")\nmodule(load=\"" << module << "\")\n"
        << "input(type=\"" << module << "\" port=\"" << port << "\")\n"
        << "template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n"
        << "action(type=\"omfile\" file=\"" << work << "/received.log\" template=\"raw\")\n";
    downstream = bench::Spawn(
        {"/usr/sbin/rsyslogd", "-n", "-f", work + "/rsyslog.conf", "-i", work + "/pid"});
    o.address = "127.0.0.1:" + std::to_string(port);
    o.shape = output::Shape::kRfc5424;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // rsyslog listens
  }
  auto outputs = output::Outputs::Start(env, data, {o}, nullptr);
  if (!outputs.ok()) return Fail(outputs.status().ToString());
  const double cpu0 = CpuSeconds(RUSAGE_SELF);
  const double t0 = bench::Now();
  (*outputs)->Signed(agent, epoch, stream, count);
  for (;;) {
    auto stats = (*outputs)->stats();
    if (!stats.empty() && !stats[0].streams.empty() && stats[0].streams[0].delivered >= count)
      break;
    if (bench::Now() - t0 > 600) return Fail("not delivered within 600 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double secs = bench::Now() - t0;
  const double cpu = CpuSeconds(RUSAGE_SELF) - cpu0;
  (*outputs)->Stop();
  double downstream_cpu = 0;
  if (downstream > 0) {
    kill(downstream, type == "nats" ? SIGINT : SIGTERM);
    int status = 0;
    rusage ru{};
    wait4(downstream, &status, 0, &ru);
    downstream_cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                     static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  const double million = static_cast<double>(count) / 1e6;
  std::printf(
      "output %s: %llu records of ~250 B delivered in %.2f s: %.0f records/s; output CPU "
      "%.2f s per million",
      type.c_str(), static_cast<unsigned long long>(count), secs, static_cast<double>(count) / secs,
      cpu / million);
  if (downstream > 0) {
    std::printf("; %s CPU %.2f s per million", type == "nats" ? "nats-server" : "rsyslog",
                downstream_cpu / million);
  }
  std::printf("\n");
  return 0;
}
