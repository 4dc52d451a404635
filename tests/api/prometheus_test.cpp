// Integration: Debian's real prometheus scrapes our real server's /metrics
// on loopback, and its HTTP query API returns a herd_ series.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "api/client/client.h"
#include "api/metrics/registry.h"
#include "api/server/builtin_routes.h"
#include "api/server/server.h"
#include "tests/api/test_util.h"

extern char** environ;

namespace herd::api {
namespace {

using namespace std::chrono_literals;

// A port that was free a moment ago (bind 0, read, close).
uint16_t FreePort() {
  Server s({"127.0.0.1", 0}, Router());
  if (!s.Start().ok()) return 0;
  uint16_t p = s.port();
  s.Stop(0ms);
  return p;
}

TEST(PrometheusIntegration, ScrapesHerdSeries) {
  if (!testing::HaveExecutable("prometheus")) {
    GTEST_SKIP() << "the prometheus binary is not installed (Debian package: prometheus)";
  }
  metrics::Registry reg;
  reg.AddGauge("herd_test_up", "Set by the integration test.").WithLabels({}).Set(42);
  Router r;
  ASSERT_TRUE(AddBuiltinRoutes(r, &reg).ok());
  Server server({"127.0.0.1", 0}, std::move(r), nullptr, &reg);
  ASSERT_TRUE(server.Start().ok());

  auto dir = testing::MakeTempDir("prometheus");
  const uint16_t prom_port = FreePort();
  ASSERT_NE(prom_port, 0);
  {
    std::ofstream cfg(dir / "prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n  - job_name: herd\n    metrics_path: /metrics\n"
        << "    static_configs:\n      - targets: ['127.0.0.1:" << server.port() << "']\n";
  }
  const std::string config = "--config.file=" + (dir / "prometheus.yml").string();
  const std::string storage = "--storage.tsdb.path=" + (dir / "data").string();
  const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(prom_port);
  const std::string log = (dir / "prometheus.log").string();
  std::vector<std::string> args = {"prometheus", config, storage, listen, "--log.level=warn"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawnp(&pid, "prometheus", &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);

  ClientOptions co;
  co.base_url = "http://127.0.0.1:" + std::to_string(prom_port);
  co.timeout = 2s;
  auto client = HttpClient::Create(co);
  ASSERT_TRUE(client.ok());
  // Bounded wait: 30 s for prometheus to start, scrape and answer.
  nlohmann::json found;
  std::string last;
  bool ok = testing::WaitFor(
      [&] {
        auto resp = (*client)->Request("GET", "/api/v1/query?query=herd_test_up");
        if (!resp.ok() || resp->status != 200) {
          last = resp.ok() ? resp->body : resp.status().ToString();
          std::this_thread::sleep_for(200ms);
          return false;
        }
        auto j = nlohmann::json::parse(resp->body, nullptr, false);
        last = resp->body;
        if (!j.is_object() || j.value("status", "") != "success") return false;
        const auto& result = j["data"]["result"];
        if (!result.is_array() || result.empty()) {
          std::this_thread::sleep_for(200ms);
          return false;
        }
        found = result[0];
        return true;
      },
      30s);
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  std::ifstream lf(log);
  std::string log_text((std::istreambuf_iterator<char>(lf)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(ok) << "no herd_ series within 30 s; last answer: " << last
                  << "\nprometheus log:\n" << log_text;
  EXPECT_EQ(found["metric"]["__name__"], "herd_test_up");
  EXPECT_EQ(found["metric"]["job"], "herd");
  EXPECT_EQ(found["value"][1], "42");
  // Prometheus scraped through our server: it counted those requests.
  EXPECT_GT(reg.AddCounter("herd_http_requests_total", "", {"route", "code"})
                .WithLabels({"/metrics", "200"})
                .Value(),
            0);
  server.Stop(2s);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herd::api
