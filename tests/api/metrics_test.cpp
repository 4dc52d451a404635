#include "api/metrics/registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <thread>

#include "tests/api/exposition.h"
#include "tests/api/test_util.h"

namespace herd::metrics {
namespace {

using api::testing::Exposition;
using api::testing::HaveExecutable;
using api::testing::MakeTempDir;
using api::testing::ParseExposition;
using api::testing::RunCommand;

TEST(Metrics, ExpositionHasEveryNameLabelAndValue) {
  Registry r;
  auto& c = r.AddCounter("herd_test_requests_total", "Requests served.", {"route", "code"});
  c.WithLabels({"/b", "200"}).Increment(3);
  c.WithLabels({"/a", "404"}).Increment();
  auto& g = r.AddGauge("herd_test_workers", "Workers by state.", {"state"});
  g.WithLabels({"idle"}).Set(2.5);
  g.WithLabels({"busy"}).Increment(4);
  g.WithLabels({"busy"}).Decrement();
  auto& h = r.AddHistogram("herd_test_latency_seconds", "Latency.", {}, {0.25, 1});
  Histogram& hm = h.WithLabels({});
  hm.Observe(0.0625);
  hm.Observe(1);  // le is inclusive: counts in the le="1" bucket
  hm.Observe(1.5);
  r.AddGauge("herd_test_up", "Always one.").WithLabels({}).Set(1);

  const std::string text = r.Serialize();
  Exposition e = ParseExposition(text);
  EXPECT_EQ(e.type, (std::map<std::string, std::string>{{"herd_test_latency_seconds", "histogram"},
                                                         {"herd_test_requests_total", "counter"},
                                                         {"herd_test_up", "gauge"},
                                                         {"herd_test_workers", "gauge"}}))
      << text;
  EXPECT_EQ(e.help["herd_test_requests_total"], "Requests served.");
  EXPECT_EQ(e.help["herd_test_latency_seconds"], "Latency.");
  // Positional label values land on the names given at registration.
  EXPECT_EQ(e.Value("herd_test_requests_total", {{"route", "/b"}, {"code", "200"}}), 3);
  EXPECT_EQ(e.Value("herd_test_requests_total", {{"route", "/a"}, {"code", "404"}}), 1);
  EXPECT_EQ(e.Value("herd_test_workers", {{"state", "busy"}}), 3);
  EXPECT_EQ(e.Value("herd_test_workers", {{"state", "idle"}}), 2.5);
  EXPECT_EQ(e.Value("herd_test_up"), 1);
  // Cumulative buckets with the registered bounds, then +Inf.
  EXPECT_EQ(e.Value("herd_test_latency_seconds_bucket", {{"le", "0.25"}}), 1);
  EXPECT_EQ(e.Value("herd_test_latency_seconds_bucket", {{"le", "1"}}), 2);
  EXPECT_EQ(e.Value("herd_test_latency_seconds_bucket", {{"le", "+Inf"}}), 3);
  EXPECT_EQ(e.CountSeries("herd_test_latency_seconds_bucket"), 3u);
  EXPECT_EQ(e.Value("herd_test_latency_seconds_sum"), 2.5625);
  EXPECT_EQ(e.Value("herd_test_latency_seconds_count"), 3);
  EXPECT_EQ(e.samples.size(), 10u) << text;  // nothing else
}

TEST(Metrics, EscapingOfHelpAndLabelValues) {
  Registry r;
  const std::string help = "line one\nline \\two \"q\"";
  const std::string value = "C:\\dir \"q\"\n";
  r.AddCounter("herd_test_total", help, {"path"}).WithLabels({value}).Increment();
  const std::string text = r.Serialize();
  // Text format 0.0.4: HELP escapes backslash and newline (quotes stay); label
  // values also escape the double quote.
  EXPECT_NE(text.find("# HELP herd_test_total line one\\nline \\\\two \"q\"\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("{path=\"C:\\\\dir \\\"q\\\"\\n\"} 1\n"), std::string::npos) << text;
  Exposition e = ParseExposition(text);
  EXPECT_EQ(e.help["herd_test_total"], help);
  EXPECT_EQ(e.Value("herd_test_total", {{"path", value}}), 1);
}

TEST(Metrics, ValuesParseBackExactly) {
  Registry r;
  auto& g = r.AddGauge("herd_test_values", "v", {"case"});
  const std::vector<std::pair<std::string, double>> cases = {
      {"zero", 0},     {"one", 1},        {"tenth", 0.1},
      {"neg", -2.5},   {"big", 1e21},     {"int", 12345678},
      {"tiny", 5e-4},  {"pinf", HUGE_VAL}, {"ninf", -HUGE_VAL}};
  for (const auto& [k, v] : cases) g.WithLabels({k}).Set(v);
  g.WithLabels({"nan"}).Set(std::nan(""));
  Exposition e = ParseExposition(r.Serialize());
  for (const auto& [k, v] : cases) EXPECT_EQ(e.Value("herd_test_values", {{"case", k}}), v) << k;
  auto nan = e.Value("herd_test_values", {{"case", "nan"}});
  ASSERT_TRUE(nan.has_value());
  EXPECT_TRUE(std::isnan(*nan));
}

TEST(Metrics, NameValidationAndReRegistration) {
  Registry r;
  EXPECT_THROW(r.AddCounter("9bad", "x"), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("bad-name", "x"), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("herd_x_total", "x", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("herd_x_total", "x", {"a-b"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("herd_x_total", "x", {"a:b"}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("herd_h_seconds", "x", {"le"}, {1}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("herd_h_seconds", "x", {}, {1, 1}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("herd_h_seconds", "x", {}, {2, 1}), std::invalid_argument);
  EXPECT_THROW(r.AddHistogram("herd_h_seconds", "x", {}, {1, HUGE_VAL}), std::invalid_argument);
  auto& a = r.AddCounter("herd_x_total", "x", {"k"});
  EXPECT_EQ(&a, &r.AddCounter("herd_x_total", "other help", {"k"}));
  EXPECT_THROW(r.AddGauge("herd_x_total", "x", {"k"}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("herd_x_total", "x", {"other"}), std::invalid_argument);
  auto& h = r.AddHistogram("herd_h_seconds", "x", {}, {1, 2});
  EXPECT_EQ(&h, &r.AddHistogram("herd_h_seconds", "x", {}, {1, 2}));
  EXPECT_THROW(r.AddHistogram("herd_h_seconds", "x", {}, {1, 3}), std::invalid_argument);
  EXPECT_THROW(r.AddCounter("herd_h_seconds", "x"), std::invalid_argument);
  EXPECT_NO_THROW(r.AddGauge("herd:colon_ok", "x", {"k_9"}));
}

TEST(Metrics, CounterIgnoresNegativeAndReferencesStayValid) {
  Registry r;
  auto& f = r.AddCounter("herd_c_total", "c", {"k"});
  Counter& c = f.WithLabels({"a"});
  c.Increment(2);
  c.Increment(-5);
  for (int i = 0; i < 100; ++i) f.WithLabels({std::to_string(i)}).Increment();  // map grows
  EXPECT_EQ(&c, &f.WithLabels({"a"}));
  EXPECT_EQ(c.Value(), 2);
}

TEST(Metrics, UnlabelledCountersAndHistogramsStartAtZeroEmptyFamiliesAreListed) {
  Registry r;
  r.AddCounter("herd_c_total", "c");
  r.AddHistogram("herd_h_seconds", "h", {}, {0.5});
  auto& g = r.AddGauge("herd_g", "g");
  r.AddCounter("herd_l_total", "l", {"k"});
  Exposition e = ParseExposition(r.Serialize());
  EXPECT_EQ(e.Value("herd_c_total"), 0);
  EXPECT_EQ(e.Value("herd_h_seconds_count"), 0);
  EXPECT_EQ(e.Value("herd_h_seconds_bucket", {{"le", "+Inf"}}), 0);
  EXPECT_FALSE(e.Value("herd_g").has_value());  // 0 could be a lie
  EXPECT_EQ(e.CountSeries("herd_l_total"), 0u);
  // Families without series still show their HELP and TYPE.
  EXPECT_EQ(e.type["herd_g"], "gauge");
  EXPECT_EQ(e.help["herd_g"], "g");
  EXPECT_EQ(e.type["herd_l_total"], "counter");
  EXPECT_EQ(e.type.size(), 4u);
  g.WithLabels({}).Set(7);
  EXPECT_EQ(ParseExposition(r.Serialize()).Value("herd_g"), 7);
}

#ifdef NDEBUG
TEST(Metrics, WrongLabelCountIsNeverExported) {
  Registry r;
  auto& f = r.AddCounter("herd_c_total", "c", {"a", "b"});
  f.WithLabels({"only-one"}).Increment();
  EXPECT_EQ(ParseExposition(r.Serialize()).CountSeries("herd_c_total"), 0u);
}
#endif

TEST(Metrics, ConcurrentIncrementsAreNotLost) {
  Registry r;
  Counter& c = r.AddCounter("herd_c_total", "c").WithLabels({});
  Histogram& h = r.AddHistogram("herd_h_seconds", "h", {}, {0.5}).WithLabels({});
  constexpr int kThreads = 4, kPer = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < kPer; ++i) {
        c.Increment();
        h.Observe(i % 2 ? 0.25 : 1.0);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.Value(), kThreads * kPer);  // integers below 2^53 are exact in double
  auto s = h.Collect().histogram;
  EXPECT_EQ(s.sample_count, static_cast<uint64_t>(kThreads * kPer));
  ASSERT_EQ(s.bucket.size(), 2u);
  EXPECT_EQ(s.bucket[0].upper_bound, 0.5);
  EXPECT_EQ(s.bucket[0].cumulative_count, static_cast<uint64_t>(kThreads * kPer / 2));
  EXPECT_EQ(s.sample_sum, kThreads * (kPer / 2) * (0.25 + 1.0));  // sums of dyadic values: exact
}

TEST(Metrics, CollectHooksRunBeforeSerialize) {
  Registry r;
  Gauge& g = r.AddGauge("herd_g", "g").WithLabels({});
  int calls = 0;
  r.AddCollectHook([&] { g.Set(++calls * 10); });
  EXPECT_EQ(ParseExposition(r.Serialize()).Value("herd_g"), 10);
  EXPECT_EQ(ParseExposition(r.Serialize()).Value("herd_g"), 20);
  // The wrapped prometheus::Registry holds the same series.
  auto families = r.prometheus_registry()->Collect();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, "herd_g");
  EXPECT_EQ(families[0].metric.at(0).gauge.value, 20);
}

TEST(Metrics, PromtoolCheckMetricsPasses) {
  if (!HaveExecutable("promtool")) GTEST_SKIP() << "promtool not installed (Debian: prometheus)";
  Registry r;
  auto& c = r.AddCounter("herd_http_requests_total", "HTTP responses by route and code.",
                         {"route", "code"});
  c.WithLabels({"/v1/runs/{run}", "200"}).Increment(7);
  c.WithLabels({"/odd \"route\"\\\n", "404"}).Increment();
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
  r.AddCounter("herd_requests", "Requests.").WithLabels({}).Increment();
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
