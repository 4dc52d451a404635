#include "api/metrics/registry.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "tests/api/test_util.h"

namespace herd::metrics {
namespace {

using api::testing::HaveExecutable;
using api::testing::MakeTempDir;
using api::testing::RunCommand;

TEST(Metrics, ExactExpositionOfASmallRegistry) {
  Registry r;
  auto& c = r.AddCounter("herd_test_requests_total", "Requests served.", {"route", "code"});
  c.WithLabels({"/b", "200"}).Inc(3);
  c.WithLabels({"/a", "404"}).Inc();
  auto& g = r.AddGauge("herd_test_workers", "Workers by state.", {"state"});
  g.WithLabels({"idle"}).Set(2.5);
  g.WithLabels({"busy"}).Inc(4);
  g.WithLabels({"busy"}).Dec();
  auto& h = r.AddHistogram("herd_test_latency_seconds", "Latency.", {}, {0.25, 1});
  Histogram& hm = h.WithLabels({});
  hm.Observe(0.0625);
  hm.Observe(1);  // le is inclusive: counts in the le="1" bucket
  hm.Observe(1.5);
  r.AddGauge("herd_test_up", "Always one.").WithLabels({}).Set(1);

  const std::string expected =
      "# HELP herd_test_latency_seconds Latency.\n"
      "# TYPE herd_test_latency_seconds histogram\n"
      "herd_test_latency_seconds_bucket{le=\"0.25\"} 1\n"
      "herd_test_latency_seconds_bucket{le=\"1\"} 2\n"
      "herd_test_latency_seconds_bucket{le=\"+Inf\"} 3\n"
      "herd_test_latency_seconds_sum 2.5625\n"
      "herd_test_latency_seconds_count 3\n"
      "# HELP herd_test_requests_total Requests served.\n"
      "# TYPE herd_test_requests_total counter\n"
      "herd_test_requests_total{route=\"/a\",code=\"404\"} 1\n"
      "herd_test_requests_total{route=\"/b\",code=\"200\"} 3\n"
      "# HELP herd_test_up Always one.\n"
      "# TYPE herd_test_up gauge\n"
      "herd_test_up 1\n"
      "# HELP herd_test_workers Workers by state.\n"
      "# TYPE herd_test_workers gauge\n"
      "herd_test_workers{state=\"busy\"} 3\n"
      "herd_test_workers{state=\"idle\"} 2.5\n";
  EXPECT_EQ(r.Serialize(), expected);
}

TEST(Metrics, EscapingOfHelpAndLabelValues) {
  EXPECT_EQ(EscapeHelp("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");  // quotes stay in HELP
  EXPECT_EQ(EscapeLabelValue("x\"y\\z\nw"), "x\\\"y\\\\z\\nw");
  Registry r;
  r.AddCounter("herd_test_total", "line one\nline \\two", {"path"})
      .WithLabels({"C:\\dir \"q\"\n"})
      .Inc();
  EXPECT_EQ(r.Serialize(),
            "# HELP herd_test_total line one\\nline \\\\two\n"
            "# TYPE herd_test_total counter\n"
            "herd_test_total{path=\"C:\\\\dir \\\"q\\\"\\n\"} 1\n");
}

TEST(Metrics, ValueFormatting) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(1), "1");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(Metrics, NameValidationAndReRegistration) {
  Registry r;
  EXPECT_THROW(r.AddCounter("9bad", "x"), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("bad-name", "x"), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("herd_x_total", "x", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("herd_x_total", "x", {"a-b"}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("herd_h_seconds", "x", {"le"}, {1}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("herd_h_seconds", "x", {}, {1, 1}), std::invalid_argument);
  auto& a = r.AddCounter("herd_x_total", "x", {"k"});
  EXPECT_EQ(&a, &r.AddCounter("herd_x_total", "x", {"k"}));
  EXPECT_THROW(r.AddGauge("herd_x_total", "x", {"k"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("herd_x_total", "x", {"other"}), std::invalid_argument);
  EXPECT_TRUE(IsValidMetricName("a:b_c9"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
}

TEST(Metrics, CounterIgnoresNegativeAndReferencesStayValid) {
  Registry r;
  auto& f = r.AddCounter("herd_c_total", "c", {"k"});
  Counter& c = f.WithLabels({"a"});
  c.Inc(2);
  c.Inc(-5);
  for (int i = 0; i < 100; ++i) f.WithLabels({std::to_string(i)}).Inc();  // map grows
  EXPECT_EQ(&c, &f.WithLabels({"a"}));
  EXPECT_EQ(c.Value(), 2);
}

TEST(Metrics, ConcurrentIncrementsAreNotLost) {
  Registry r;
  Counter& c = r.AddCounter("herd_c_total", "c").WithLabels({});
  Histogram& h = r.AddHistogram("herd_h_seconds", "h", {}, {0.5}).WithLabels({});
  constexpr int kThreads = 4, kPer = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < kPer; ++i) {
        c.Inc();
        h.Observe(i % 2 ? 0.25 : 1.0);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.Value(), kThreads * kPer);  // integers below 2^53 are exact in double
  auto s = h.Collect();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kThreads * kPer));
  EXPECT_EQ(s.cumulative[0], static_cast<uint64_t>(kThreads * kPer / 2));
  EXPECT_EQ(s.sum, kThreads * (kPer / 2) * (0.25 + 1.0));  // sums of dyadic values: exact
}

TEST(Metrics, CollectHooksRunBeforeSerialize) {
  Registry r;
  Gauge& g = r.AddGauge("herd_g", "g").WithLabels({});
  int calls = 0;
  r.AddCollectHook([&] { g.Set(++calls * 10); });
  EXPECT_NE(r.Serialize().find("herd_g 10\n"), std::string::npos);
  EXPECT_NE(r.Serialize().find("herd_g 20\n"), std::string::npos);
}

TEST(Metrics, PromtoolCheckMetricsPasses) {
  if (!HaveExecutable("promtool")) GTEST_SKIP() << "promtool not installed (Debian: prometheus)";
  Registry r;
  auto& c = r.AddCounter("herd_http_requests_total", "HTTP responses by route and code.",
                         {"route", "code"});
  c.WithLabels({"/v1/runs/{run}", "200"}).Inc(7);
  c.WithLabels({"/odd \"route\"\\\n", "404"}).Inc();
  r.AddGauge("herd_workers", "Workers by state.\nSecond line \\ with backslash.", {"state"})
      .WithLabels({"idle"})
      .Set(3);
  auto& h = r.AddHistogram("herd_http_request_duration_seconds", "Request latency.", {"route"},
                           DefaultLatencyBuckets());
  h.WithLabels({"/healthz"}).Observe(0.003);
  h.WithLabels({"/healthz"}).Observe(12);
  auto dir = MakeTempDir("promtool");
  auto path = dir / "metrics.txt";
  {
    std::ofstream out(path);
    out << r.Serialize();
  }
  auto [rc, output] = RunCommand("promtool check metrics < " + path.string());
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output, "") << "promtool printed warnings";
  std::filesystem::remove_all(dir);
}

TEST(Metrics, PromtoolCatchesABadCounterName) {
  // The check above must be able to fail: promtool flags a counter without
  // the _total suffix.
  if (!HaveExecutable("promtool")) GTEST_SKIP() << "promtool not installed (Debian: prometheus)";
  Registry r;
  r.AddCounter("herd_requests", "Requests.").WithLabels({}).Inc();
  auto dir = MakeTempDir("promtool-bad");
  auto path = dir / "metrics.txt";
  {
    std::ofstream out(path);
    out << r.Serialize();
  }
  auto [rc, output] = RunCommand("promtool check metrics < " + path.string());
  EXPECT_NE(output.find("_total"), std::string::npos) << "rc=" << rc << " output=" << output;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herd::metrics
