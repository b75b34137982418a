// What agent and collector expose over HTTP: /metrics in the Prometheus text format
// (version 0.0.4) and /health, 200 "ok" or 503 with the reasons, for load balancers,
// orchestrators and people. docs/metrics.md lists every metric and health rule.
//
// Thread contract: Exposition is a plain value. RecentIncrease is used by one thread
// (the endpoint's). The endpoint calls its functions on its own thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "http/server.h"

namespace gapless::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Builds a Prometheus text exposition. Samples of one name must be added together
// (HELP and TYPE are written once, before the first).
class Exposition {
 public:
  void Counter(const std::string& name, const std::string& help, double value,
               const Labels& labels = {});
  void Gauge(const std::string& name, const std::string& help, double value,
             const Labels& labels = {});
  const std::string& text() const { return text_; }

 private:
  void Sample(const std::string& name, const char* type, const std::string& help, double value,
              const Labels& labels);
  std::string text_;
  std::string last_name_;
};

// Whether a counter grew within `window_ns` before `now_ns`, as seen by the calls: the
// health rules that say "refused a write lately" without state in the counted code.
class RecentIncrease {
 public:
  bool Check(uint64_t value, int64_t now_ns, int64_t window_ns);

 private:
  bool seen_ = false;
  uint64_t last_ = 0;
  int64_t increased_ns_ = INT64_MIN / 2;
};

struct Health {
  std::vector<std::string> problems;  // empty: healthy
};

// Serves GET /metrics and GET /health on `listen` ("address:port").
StatusOr<std::unique_ptr<http::Server>> StartEndpoint(const std::string& listen,
                                                      std::function<std::string()> metrics,
                                                      std::function<Health()> health,
                                                      const std::string& what);

}  // namespace gapless::metrics
