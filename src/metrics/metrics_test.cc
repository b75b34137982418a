// The Prometheus text exposition, the "increased lately" rule behind health, and the
// endpoint over real HTTP: /metrics, /health 200 and 503 with its reasons, 404, 405.
#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <atomic>

#include "http/client.h"

namespace gapless::metrics {
namespace {

constexpr int64_t kS = 1'000'000'000;

TEST(ExpositionTest, HelpAndTypeOnceThenEachSampleWithEscapedLabels) {
  Exposition e;
  e.Counter("gapless_x_total", "Things.", 3, {{"a", "one"}});
  e.Counter("gapless_x_total", "Things.", 4.5, {{"a", "t\"w\\o\n"}});
  e.Gauge("gapless_y", "A level.", 0);
  EXPECT_EQ(e.text(),
            "# HELP gapless_x_total Things.\n"
            "# TYPE gapless_x_total counter\n"
            "gapless_x_total{a=\"one\"} 3\n"
            "gapless_x_total{a=\"t\\\"w\\\\o\\n\"} 4.5\n"
            "# HELP gapless_y A level.\n"
            "# TYPE gapless_y gauge\n"
            "gapless_y 0\n");
}

TEST(RecentIncreaseTest, TrueWithinTheWindowAfterACallSawItGrow) {
  RecentIncrease r;
  EXPECT_FALSE(r.Check(5, 100 * kS, 60 * kS));  // the first value is a baseline
  EXPECT_FALSE(r.Check(5, 110 * kS, 60 * kS));
  EXPECT_TRUE(r.Check(6, 120 * kS, 60 * kS));
  EXPECT_TRUE(r.Check(6, 180 * kS, 60 * kS));
  EXPECT_FALSE(r.Check(6, 181 * kS, 60 * kS));
}

TEST(EndpointTest, ServesMetricsAndHealth) {
  std::atomic<bool> sick{false};
  auto server = StartEndpoint(
      "127.0.0.1:0", [] { return std::string("gapless_up 1\n"); },
      [&] { return sick ? Health{{"the spool refuses writes"}} : Health{}; }, "test");
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string base = "http://127.0.0.1:" + std::to_string((*server)->port());
  auto get = [&](const std::string& path, const std::string& method = "GET") {
    http::Request r;
    r.method = method;
    r.url = base + path;
    auto res = http::Send(r);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    return res.ok() ? *res : http::Response{};
  };
  auto m = get("/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.body, "gapless_up 1\n");
  EXPECT_NE(m.content_type.find("version=0.0.4"), std::string::npos);
  EXPECT_EQ(get("/health").status, 200);
  sick = true;
  auto h = get("/health?verbose");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.body, "unhealthy\n- the spool refuses writes\n");
  EXPECT_EQ(get("/other").status, 404);
  EXPECT_EQ(get("/metrics", "POST").status, 405);
}

}  // namespace
}  // namespace gapless::metrics
