#include "metrics/metrics.h"

#include <cmath>
#include <cstdio>

namespace gapless::metrics {
namespace {

// Label values escape backslash, double quote and newline (the text format's rules).
std::string LabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.6g", v);
  }
  return buf;
}

}  // namespace

void Exposition::Sample(const std::string& name, const char* type, const std::string& help,
                        double value, const Labels& labels) {
  if (name != last_name_) {
    text_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    last_name_ = name;
  }
  text_ += name;
  if (!labels.empty()) {
    text_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      text_ += (i == 0 ? "" : ",") + labels[i].first + "=\"" + LabelValue(labels[i].second) + "\"";
    }
    text_ += '}';
  }
  text_ += " " + Number(value) + "\n";
}

void Exposition::Counter(const std::string& name, const std::string& help, double value,
                         const Labels& labels) {
  Sample(name, "counter", help, value, labels);
}

void Exposition::Gauge(const std::string& name, const std::string& help, double value,
                       const Labels& labels) {
  Sample(name, "gauge", help, value, labels);
}

bool RecentIncrease::Check(uint64_t value, int64_t now_ns, int64_t window_ns) {
  if (seen_ && value > last_) increased_ns_ = now_ns;
  seen_ = true;
  last_ = value;
  return now_ns - increased_ns_ <= window_ns;
}

StatusOr<std::unique_ptr<http::Server>> StartEndpoint(const std::string& listen,
                                                      std::function<std::string()> metrics,
                                                      std::function<Health()> health,
                                                      const std::string& what) {
  // One request at a time reaches the functions: the server has one thread.
  auto handle = [metrics = std::move(metrics),
                 health = std::move(health)](const http::ServerRequest& req) {
    http::ServerResponse res;
    const std::string path = req.target.substr(0, req.target.find('?'));
    if (path != "/metrics" && path != "/health") {
      res.status = 404;
      res.body = "this endpoint serves GET /metrics and GET /health\n";
    } else if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.allow = "GET";
      res.body = path + " takes GET\n";
    } else if (path == "/metrics") {
      res.content_type = "text/plain; version=0.0.4; charset=utf-8";
      res.body = metrics();
    } else {
      const Health h = health();
      res.status = h.problems.empty() ? 200 : 503;
      res.body = h.problems.empty() ? "ok\n" : "unhealthy\n";
      for (const std::string& p : h.problems) res.body += "- " + p + "\n";
    }
    return res;
  };
  http::ServerOptions o;
  o.max_body = 1024;
  o.idle_seconds = 10;
  o.what = what + " metrics endpoint";
  return http::Server::Start(listen, std::move(handle), o);
}

}  // namespace gapless::metrics
