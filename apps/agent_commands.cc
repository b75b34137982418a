#include "agent_commands.h"
#include "output/output.h"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "agent/agent.h"
#include "base/log.h"
#include "collector/collector_config.h"
#include "collector/service.h"
#include "config/agent_config.h"
#include "event/event.h"
#include "identity/identity.h"
#include "store/layout.h"

namespace gapless::cli {
namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "gapless: %s\n", s.ToString().c_str());
  return 1;
}

// Blocks the signals we handle in every thread (call before any thread starts), so that
// WaitForSignal receives them synchronously.
sigset_t BlockSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// The next signal, or 0 after timeout_ms (< 0: wait forever).
int WaitForSignal(const sigset_t& set, int64_t timeout_ms) {
  if (timeout_ms < 0) {
    int sig = 0;
    return sigwait(&set, &sig) == 0 ? sig : 0;
  }
  timespec ts{static_cast<time_t>(timeout_ms / 1000),
              static_cast<long>(timeout_ms % 1000) * 1000000};
  const int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

void PrintRecovery(const spool::RecoveryReport& r) {
  LogInfo("spool recovered: " + std::to_string(r.records) + " records, next seq " +
          std::to_string(r.next_seq) + ", torn tail " + std::to_string(r.torn_bytes_truncated) +
          " bytes cut");
  for (const spool::Damage& d : r.damage) {
    LogError("spool damage in " + d.segment + " at " + std::to_string(d.offset) + ", " +
             std::to_string(d.bytes) + " bytes (" + d.reason + "); written as a LOSS record");
  }
}

}  // namespace

int Validate(const std::string& config_path) {
  auto text = env::ReadFileToString(env::Env::Posix(), config_path);
  if (!text.ok()) {
    std::fprintf(stderr, "gapless validate: %s\n", text.status().message().c_str());
    return 1;
  }
  if (config::DetectConfigKind(*text) == config::ConfigKind::kCollector) {
    // The same parser `gapless collector` starts from.
    auto cfg = collector::ParseCollectorConfig(*text, config_path);
    if (!cfg.ok()) {
      std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
      return 1;
    }
    // What can be known of each output without reaching its downstream.
    int bad = 0;
    for (const output::OutputOptions& o : cfg->options.outputs) {
      if (Status s = output::CheckOutputFiles(o); !s.ok()) {
        std::fprintf(stderr, "%s: %s\n", config_path.c_str(), s.message().c_str());
        ++bad;
      }
    }
    if (bad > 0) return 1;
    std::printf("%s: OK (collector %s, data_dir %s, %zu listeners, %zu witnesses, %zu outputs%s)\n",
                config_path.c_str(), cfg->options.name.c_str(), cfg->options.data_dir.c_str(),
                cfg->options.listen.size(), cfg->options.witnesses.size(),
                cfg->options.outputs.size(), cfg->options.archive.dir.empty() ? "" : ", archive");
    return 0;
  }
  auto cfg = config::ParseAgentConfig(*text, config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
    return 1;
  }
  std::printf("%s: OK (agent %s, data_dir %s, %zu inputs)\n", config_path.c_str(), cfg->id.c_str(),
              cfg->data_dir.c_str(), cfg->inputs.size());
  return 0;
}

int RunAgent(const std::string& config_path) {
  const sigset_t signals = BlockSignals();
  auto cfg = config::LoadAgentConfig(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
    return 1;
  }
  spool::RecoveryReport report;
  auto agent = agent::Agent::Start(*cfg, &report);
  if (!agent.ok()) return Fail(agent.status());
  PrintRecovery(report);
  LogInfo("agent " + cfg->id + " running; SIGHUP reloads " + config_path + ", SIGTERM stops");
  for (;;) {
    const int sig = WaitForSignal(signals, -1);
    if (sig != SIGHUP) break;
    auto next = config::LoadAgentConfig(config_path);
    if (!next.ok()) {
      LogError("reload refused, configuration unchanged:\n" + next.status().message());
      continue;
    }
    const Status s = (*agent)->Reload(*next);
    if (s.ok()) {
      LogInfo("reloaded " + config_path);
    } else {
      LogError(s.message());
    }
  }
  LogInfo("stopping");
  (*agent)->Stop();
  return 0;
}

namespace {

// First start of `gapless run`: the collector's TLS pair, the agent's key, and the
// enrollment of that key. Later starts reuse them.
Status PrepareDemo(const std::string& data_dir, const std::string& agent_id) {
  env::Env* env = env::Env::Posix();
  const std::string cdir = data_dir + "/collector";
  RETURN_IF_ERROR(env->CreateDir(cdir));
  if (!env->FileExists(cdir + "/tls.key")) {
    RETURN_IF_ERROR(
        identity::MakeSelfSignedTls(cdir + "/tls.key", cdir + "/tls.crt", "gapless-collector"));
  }
  if (!env->FileExists(data_dir + "/agent.key")) {
    ASSIGN_OR_RETURN(auto key, identity::SigningKey::Generate());
    RETURN_IF_ERROR(key->Save(data_dir + "/agent.key"));
    RETURN_IF_ERROR(env::WriteFileAtomically(
        env, cdir + "/enrolled",
        agent_id + " " + identity::FormatPublicKey(key->public_key()) + "\n"));
  }
  return Status::Ok();
}

}  // namespace

int RunDemo(const RunFlags& flags) {
  const sigset_t signals = BlockSignals();
  config::AgentConfig cfg = config::DemoConfig(flags.data_dir, flags.port);
  if (Status s = PrepareDemo(flags.data_dir, cfg.id); !s.ok()) return Fail(s);
  collector::ServiceOptions so;
  collector::CollectorOptions& co = so.collector;
  co.data_dir = flags.data_dir + "/collector";
  co.listen = {"127.0.0.1:" + std::to_string(flags.collector_port)};
  co.tls_cert = co.data_dir + "/tls.crt";
  co.tls_key = co.data_dir + "/tls.key";
  co.enrolled_keys = co.data_dir + "/enrolled";
  so.alerts.journal = store::Layout(co.data_dir).AlertJournal();
  // The demo's downstream: every signed record, delivered as one JSON line (docs/outputs.md).
  output::OutputOptions delivered;
  delivered.name = "demo-file";
  delivered.type = "file";
  delivered.path = flags.data_dir + "/delivered.ndjson";
  co.outputs.push_back(delivered);
  if (flags.console_port != 0)
    so.console.listen = "127.0.0.1:" + std::to_string(flags.console_port);
  if (flags.metrics_port != 0) {
    so.metrics_listen = "127.0.0.1:" + std::to_string(flags.metrics_port);
    cfg.metrics_listen = "127.0.0.1:" + std::to_string(flags.metrics_port + 1);
  }
  auto collector = collector::Service::Start(so);
  if (!collector.ok()) return Fail(collector.status());
  transport::DestinationOptions dest;
  dest.name = "local-collector";
  dest.address = co.listen[0];
  dest.server_name = "gapless-collector";
  dest.ca_file = co.tls_cert;
  cfg.destinations.push_back(dest);
  spool::RecoveryReport report;
  auto started = agent::Agent::Start(cfg, &report);
  if (!started.ok()) return Fail(started.status());
  agent::Agent* agent = started->get();
  spool::Spool* spool = agent->spool();
  std::printf(
      "gapless run: agent %s (spool in %s/spool) → collector on 127.0.0.1:%u over TLS 1.3\n"
      "(store in %s/collector/streams). Syslog on 127.0.0.1:%u (TCP and UDP).\n"
      "Send a log from another terminal:\n"
      "  logger -n 127.0.0.1 -P %u -T \"hello from logger\"     (TCP)\n"
      "  logger -n 127.0.0.1 -P %u -d \"hello over UDP\"        (UDP)\n"
      "Each record is printed below once the collector has acknowledged it as durable.\n"
      "See what the collector stored:  gapless store inspect --data-dir %s/collector --records\n"
      "Check it against the collector's signed checkpoints (signed each second):\n"
      "  gapless verify --data-dir %s/collector\n"
      "  gapless prove --data-dir %s/collector --agent %s --seq 0\n"
      "What the collector knows of its agents, and any alert:  gapless status --data-dir "
      "%s/collector\n"
      "(alerts are also appended to %s/collector/alerts.jsonl)\n"
      "Delivered downstream (file output, one JSON line per signed record): %s/delivered.ndjson\n",
      cfg.id.c_str(), flags.data_dir.c_str(), flags.collector_port, flags.data_dir.c_str(),
      flags.port, flags.port, flags.port, flags.data_dir.c_str(), flags.data_dir.c_str(),
      flags.data_dir.c_str(), cfg.id.c_str(), flags.data_dir.c_str(), flags.data_dir.c_str(),
      flags.data_dir.c_str());
  if (flags.metrics_port != 0) {
    std::printf(
        "Metrics and health: curl http://%s/metrics  (collector), http://%s/health\n"
        "                    curl http://%s/metrics  (agent), http://%s/health\n",
        so.metrics_listen.c_str(), so.metrics_listen.c_str(), cfg.metrics_listen.c_str(),
        cfg.metrics_listen.c_str());
  }
  if (flags.console_port != 0) {
    std::printf("Console (every stream, gaps, sources, alerts, proofs): http://%s/\n",
                so.console.listen.c_str());
  }
  std::printf("Ctrl-C stops.\n\n");
  std::fflush(stdout);
  uint64_t next = 0;
  if (auto d = agent->Destinations(); !d.empty()) next = d[0].stats.acked_next;
  const auto start = std::chrono::steady_clock::now();
  auto ticked = start;
  for (;;) {
    if (WaitForSignal(signals, 200) != 0) break;
    if (std::chrono::steady_clock::now() - ticked >= std::chrono::seconds(1)) {
      ticked = std::chrono::steady_clock::now();
      (*collector)->Tick();  // the monitors' second
    }
    const auto dests = agent->Destinations();
    const uint64_t acked = dests.empty() ? 0 : dests[0].stats.acked_next;
    auto reader = spool->NewReader(std::max(next, spool->oldest_seq()));
    spool::Record rec;
    while (reader.ok() && next < acked && *(*reader)->Next(&rec) && rec.seq < acked) {
      event::Event e;
      if (rec.type == spool::FrameType::kData && event::DecodeEvent(rec.payload, &e).ok()) {
        std::printf("seq %llu stored at the collector: %s\n",
                    static_cast<unsigned long long>(rec.seq), event::DescribeEvent(e).c_str());
      }
      next = rec.seq + 1;
    }
    std::fflush(stdout);
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (flags.duration_s > 0 && elapsed >= flags.duration_s) break;
  }
  agent->Stop();
  (*collector)->Stop();
  return 0;
}

}  // namespace gapless::cli
