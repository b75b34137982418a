#include "collector/service.h"

#include <chrono>
#include <memory>

#include "base/log.h"
#include "query/query.h"
#include "store/layout.h"

namespace gapless::collector {

StatusOr<std::unique_ptr<Service>> Service::Start(ServiceOptions o) {
  std::unique_ptr<Service> s(new Service);
  if (Status c = env::Env::Posix()->CreateDir(o.collector.data_dir); !c.ok()) {  // the journal
    return Status(c.code(), "cannot create data_dir " + o.collector.data_dir + ": " + c.message());
  }
  ASSIGN_OR_RETURN(s->alerts_, alert::Alerts::Open(env::Env::Posix(), o.alerts));
  ASSIGN_OR_RETURN(s->ledger_, ledger::Ledger::Open(store::Layout(o.collector.data_dir).Ledger()));
  s->monitors_ = std::make_unique<monitor::Monitors>(s->alerts_.get(), env::Env::Posix()->clock(),
                                                     o.monitors, s->ledger_.get());
  if (Status st = s->monitors_->Load(); !st.ok()) {
    // Derived state: without it the baselines start over, nothing else is lost.
    LogError("collector: the ledger could not be read, monitors start empty: " + st.ToString());
  }
  s->disk_watch_ = std::make_unique<alert::DiskSpaceWatch>(
      s->alerts_.get(), std::vector<std::string>{o.collector.data_dir});
  o.collector.alerts = s->alerts_.get();
  o.collector.monitors = s->monitors_.get();
  ASSIGN_OR_RETURN(s->collector_, Collector::Start(env::Env::Posix(), o.collector));
  if (o.audit_interval_ms > 0) {
    auto audit = Auditing::Start(o.collector.data_dir, s->collector_->verifier_key(),
                                 o.audit_interval_ms, s->alerts_.get());
    if (!audit.ok()) {
      s->Stop();
      return audit.status();
    }
    s->audit_ = std::move(*audit);
  }
  if (o.index_interval_ms > 0) {
    s->indexer_ = std::make_unique<PeriodicWorker>(
        PeriodicWorker::Options{.interval_ms = o.index_interval_ms, .final_round = false},
        [dir = o.collector.data_dir,
         state = std::make_shared<query::IndexerState>()](bool) {  // the worker's thread only
          auto r = query::IndexStore(env::Env::Posix(), dir, state.get());
          if (!r.ok()) {
            LogWarning("collector: the query index was not brought up to date: " +
                       r.status().ToString());
          }
          // Damage found on the way is the self-audit's and `gapless verify`'s to report.
        });
  }
  if (!o.metrics_listen.empty()) {
    Service* p = s.get();
    auto m = metrics::StartEndpoint(
        o.metrics_listen,
        [p] { return MetricsText(*p->collector_, p->monitors_.get(), p->alerts_.get()); },
        [p] {
          const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count();
          return p->health_.Check(*p->collector_, p->monitors_.get(), p->alerts_.get(), now);
        },
        "collector");
    if (!m.ok()) {
      s->Stop();
      return m.status();
    }
    s->metrics_ = std::move(*m);
  }
  if (!o.console.listen.empty()) {
    console::ServeOptions c = o.console;
    if (c.tls_cert.empty()) c.tls_cert = o.collector.tls_cert;  // the collector's own pair
    if (c.tls_key.empty()) c.tls_key = o.collector.tls_key;
    console::ConsoleOptions co;
    co.data_dir = o.collector.data_dir;
    co.alert_journal = o.alerts.journal;
    co.baseline = o.monitors.baseline;
    co.volume_drop_ratio = o.monitors.volume_drop_ratio;
    co.agent_silent_s = o.monitors.agent_silent_s;
    auto served = console::Serve(c, std::move(co));
    if (!served.ok()) {
      s->Stop();
      return Status(served.status().code(), "console: " + served.status().message());
    }
    s->console_ = std::move(*served);
  }
  return s;
}

void Service::Tick() {
  monitors_->Tick();
  disk_watch_->Observe(env::Env::Posix()->clock()->MonotonicNanos());
  WriteOutputs();
}

// Each output's account per stream into the ledger (docs/outputs.md), each second.
void Service::WriteOutputs() {
  ledger::Delta d;
  const int64_t now = env::Env::Posix()->clock()->NowNanos();
  for (const output::OutputStats& o : collector_->stats().outputs) {
    for (const output::StreamAccount& a : o.streams) {
      d.outputs.push_back({o.name, a.agent, a.epoch, o.type, o.confirmed, a.signed_size,
                           a.delivered, a.retried, a.rejected,
                           static_cast<int64_t>(a.lag_seconds * 1000), a.stalled, now});
    }
  }
  if (d.outputs.empty()) return;
  if (Status s = ledger_->Write(d); !s.ok()) {
    LogError("collector: the outputs' accounts could not be written to the ledger: " +
             s.ToString());
  }
}

void Service::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (metrics_) metrics_->Stop();
  if (console_) console_->Stop();
  if (audit_) audit_->Stop();
  if (indexer_) indexer_->Stop();
  if (collector_) collector_->Stop();
  if (monitors_) monitors_->Tick();  // the last word to the ledger
  if (collector_ && ledger_) WriteOutputs();
  if (alerts_) alerts_->Stop();
}

Service::~Service() { Stop(); }

}  // namespace gapless::collector
