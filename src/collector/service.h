// Service: a collector as `gapless collector` and `gapless run` run it — the Collector
// with its alert journal and outputs, the monitors and their ledger (data_dir/ledger.db),
// the store's self-audit, and, when metrics_listen is set, the /metrics and /health
// endpoint.
//
// Thread contract: Start, Tick and Stop from one thread (the process's main loop, which
// calls Tick each second); the parts run their own threads as their headers say.
#pragma once

#include <memory>
#include <string>

#include "alert/alert.h"
#include "alert/disk_space.h"
#include "base/status.h"
#include "collector/auditing.h"
#include "collector/collector.h"
#include "collector/collector_metrics.h"
#include "console/console.h"
#include "http/server.h"
#include "ledger/ledger.h"
#include "monitor/monitor.h"

namespace gapless::collector {

struct ServiceOptions {
  CollectorOptions collector;  // its alerts and monitors pointers are set by Start
  alert::AlertOptions alerts;  // journal: required
  monitor::MonitorOptions monitors;
  std::string metrics_listen;     // empty: no endpoint
  console::ServeOptions console;  // console.listen empty: no console (docs/console.md)
  // The store's self-audit (auditing.h) every this often; 0: off.
  int64_t audit_interval_ms = 3'600'000;
  // The query index (query::IndexStore) brought up to date every this often; 0: off.
  int64_t index_interval_ms = 60'000;
};

class Service {
 public:
  // Creates data_dir, opens the journal and the ledger (a ledger that cannot be read
  // back is logged: the monitors start empty), starts the collector and the endpoint.
  static StatusOr<std::unique_ptr<Service>> Start(ServiceOptions o);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  void Tick();  // the monitors' clock: call each second
  void Stop();  // idempotent: endpoint, collector, a last Tick, alert delivery
  Collector* collector() const { return collector_.get(); }
  alert::Alerts* alerts() const { return alerts_.get(); }
  uint16_t metrics_port() const { return metrics_ ? metrics_->port() : 0; }
  uint16_t console_port() const { return console_ ? console_->port() : 0; }

 private:
  void WriteOutputs();
  Service() = default;
  std::unique_ptr<alert::Alerts> alerts_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<monitor::Monitors> monitors_;
  std::unique_ptr<Collector> collector_;
  std::unique_ptr<Auditing> audit_;
  std::unique_ptr<PeriodicWorker> indexer_;            // query::IndexStore, on its own thread
  HealthCheck health_;                                 // the endpoint's thread
  std::unique_ptr<alert::DiskSpaceWatch> disk_watch_;  // Tick's thread
  std::unique_ptr<http::Server> metrics_;
  std::unique_ptr<http::Server> console_;
  bool stopped_ = false;
};

}  // namespace gapless::collector
