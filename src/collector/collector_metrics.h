// The collector's /metrics and /health (docs/metrics.md): its counters, the state of each
// agent stream as the monitors know it, the alerts firing and their outputs' delivery.
#pragma once

#include <map>
#include <string>

#include "alert/alert.h"
#include "collector/collector.h"
#include "metrics/metrics.h"
#include "monitor/monitor.h"

namespace gapless::collector {

// `monitors` and `alerts` may be null.
std::string MetricsText(const Collector& c, const monitor::Monitors* monitors,
                        const alert::Alerts* alerts);

// Unhealthy while: a stream's store cannot write (until the collector reopened it), the ledger
// cannot be written, or an alert output has undelivered events and failed within the last 60 s
// (alerts are not reaching people). Call Check from one thread.
class HealthCheck {
 public:
  metrics::Health Check(const Collector& c, const monitor::Monitors* monitors,
                        const alert::Alerts* alerts, int64_t now_mono_ns);

 private:
  std::map<std::string, metrics::RecentIncrease> output_failures_;
};

}  // namespace gapless::collector
