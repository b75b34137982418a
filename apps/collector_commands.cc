#include "collector_commands.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "alert/alert.h"
#include "base/log.h"
#include "collector/collector.h"
#include "collector/collector_config.h"
#include "collector/service.h"
#include "event/event.h"
#include "identity/identity.h"
#include "ledger/ledger.h"
#include "monitor/monitor.h"
#include "spool/loss_record.h"
#include "store/stream_store.h"

namespace gapless::cli {

int Keygen(const std::string& out_path, const std::string& agent_id) {
  auto key = identity::SigningKey::Generate();
  Status s = key.ok() ? (*key)->Save(out_path) : key.status();
  if (!s.ok()) {
    std::fprintf(stderr, "gapless keygen: %s\n", s.ToString().c_str());
    return 1;
  }
  std::string id = agent_id;
  if (id.empty()) {
    char host[256] = {};
    id = ::gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0' ? host : "localhost";
  }
  std::fprintf(stderr,
               "wrote %s (mode 0600). Enroll the agent: add this line to the collector's "
               "enrolled_keys file:\n",
               out_path.c_str());
  std::printf("%s %s\n", id.c_str(), identity::FormatPublicKey((*key)->public_key()).c_str());
  return 0;
}

int RunCollector(const std::string& config_path) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto cfg = collector::LoadCollectorConfig(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
    return 1;
  }
  collector::ServiceOptions so;
  so.collector = cfg->options;
  so.alerts = cfg->alerts;
  so.monitors = cfg->monitors;
  so.metrics_listen = cfg->metrics_listen;
  so.console = cfg->console;
  so.audit_interval_ms = cfg->audit_interval_ms;
  so.index_interval_ms = cfg->index_interval_ms;
  auto service = collector::Service::Start(std::move(so));
  if (!service.ok()) {
    std::fprintf(stderr, "gapless collector: %s\n", service.status().ToString().c_str());
    return 1;
  }
  std::string ports;
  for (uint16_t p : (*service)->collector()->ports()) {
    ports += (ports.empty() ? "" : ", ") + std::to_string(p);
  }
  LogInfo("collector " + cfg->options.name + " listening (TLS 1.3) on port(s) " + ports +
          "; data in " + cfg->options.data_dir + "; alerts in " + cfg->alerts.journal +
          (cfg->metrics_listen.empty() ? "" : "; /metrics and /health on " + cfg->metrics_listen) +
          (cfg->console.listen.empty()
               ? ""
               : "; console on " +
                     std::string(console::IsLoopbackListen(cfg->console.listen) &&
                                         cfg->console.client_ca.empty()
                                     ? "http://"
                                     : "https://") +
                     cfg->console.listen + "/") +
          "; SIGTERM stops");
  const timespec second{1, 0};
  while (sigtimedwait(&set, nullptr, &second) < 0) (*service)->Tick();  // each second
  LogInfo("stopping");
  (*service)->Stop();
  return 0;
}

int StoreInspect(const std::string& data_dir, bool records) {
  env::Env* env = env::Env::Posix();
  const store::Layout layout(data_dir);
  auto streams = layout.ListStreams(env);
  if (Status s = streams.ok() ? layout.CheckFormat(env) : streams.status(); !s.ok()) {
    std::fprintf(stderr, "gapless store inspect: %s\n", s.message().c_str());
    return 1;
  }
  int status = 0;
  for (const store::StreamRef& stream : *streams) {
    {
      const std::string& dir = stream.dir;
      uint64_t count = 0, loss = 0, next = 0;
      Status s = store::ForEachStoredRecord(
          env, dir, [&](uint64_t seq, spool::FrameType type, std::string_view p) {
            ++count;
            next = seq + 1;
            if (type == spool::FrameType::kLoss) ++loss;
            if (!records) return;
            if (type == spool::FrameType::kLoss) {
              auto l = spool::LossRecord::Decode(p);
              std::printf("  seq %llu LOSS %s\n", static_cast<unsigned long long>(seq),
                          l.ok() ? std::string(spool::LossReasonName(l->reason)).c_str() : "?");
              return;
            }
            event::Event e;
            if (event::DecodeEvent(p, &e).ok()) {
              std::printf("  seq %llu %s\n", static_cast<unsigned long long>(seq),
                          event::DescribeEvent(e).c_str());
            } else {
              std::printf("  seq %llu (%zu bytes)\n", static_cast<unsigned long long>(seq),
                          p.size());
            }
          });
      if (!s.ok()) {
        std::fprintf(stderr, "%s: %s\n", dir.c_str(), s.ToString().c_str());
        status = 1;
        continue;
      }
      const bool flagged = env->FileExists(store::StreamFiles(dir).Flagged());
      std::printf("stream %s epoch %s: %llu records (%llu LOSS), next seq %llu%s%s\n",
                  stream.agent.c_str(), stream.epoch.c_str(),
                  static_cast<unsigned long long>(count), static_cast<unsigned long long>(loss),
                  static_cast<unsigned long long>(next),
                  count != next ? ", with gaps (see the LOSS records and the gaps file)" : "",
                  flagged ? ", FLAGGED: equivocation evidence kept" : "");
    }
  }
  return status;
}

}  // namespace gapless::cli
