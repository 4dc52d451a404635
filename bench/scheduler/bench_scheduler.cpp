// Scheduling overhead: no-op tasks through the real worker protocol on
// loopback (lease + complete over HTTP, each transition a synced RocksDB
// batch), next to the scheduler alone in-process. Prints figures; never
// fails on time.
//   bench_scheduler [tasks=2000]
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <vector>

#include "api/client/client.h"
#include "api/client/json_client.h"
#include "api/metrics/registry.h"
#include "api/routes/daemon_routes.h"
#include "api/server/builtin_routes.h"
#include "api/server/server.h"
#include "daemon/idempotency.h"
#include "daemon/orchestrator.h"
#include "daemon/reader.h"
#include "daemon/scheduler.h"
#include "stores/artifacts.h"
#include "stores/store.h"
#include "tasks/protocol.h"

using namespace herd;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<daemon::Task> Noops(int n) {
  std::vector<daemon::Task> ts(static_cast<size_t>(n));
  for (auto& t : ts) {
    t.kind = "noop";
    t.spec = "{}";
  }
  return ts;
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  auto dir = std::filesystem::temp_directory_path() / ("herd-bench-sched-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  stores::StoreOptions so;
  so.data_dir = dir.string();
  auto store = stores::Store::Open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  stores::ArtifactStore artifacts((dir / "artifacts").string());
  daemon::SystemClock clock;
  daemon::RandomIdSource ids;
  daemon::Scheduler sched(&clock, &ids);
  daemon::Orchestrator orch(store->get(), &artifacts, &sched, &clock);
  daemon::Reader reader(store->get(), &sched);
  daemon::IdempotencyLog idempotency(store->get());
  const api::DaemonParts parts{&orch, &reader, &idempotency, nullptr};
  // The commit the daemon does: the task rows in one synced batch.
  auto commit = [&](const std::vector<daemon::TaskChange>& cs) -> Status {
    auto txn = (*store)->NewTxn();
    for (const auto& c : cs) {
      stores::Task t;
      t.id = c.after.id;
      t.kind = c.after.kind;
      t.queue_seq = c.after.seq;
      t.state = static_cast<stores::TaskState>(static_cast<uint8_t>(c.after.state));
      t.lease_id = c.after.lease_id;
      txn.PutTask(t);
    }
    return (*store)->Commit(txn);
  };

  // 1. The scheduler alone, in-process: submit, lease, complete.
  {
    daemon::Scheduler s(&clock, &ids);
    daemon::WorkerInfo w;
    w.id = "w";
    auto t0 = Clock::now();
    (void)s.Submit(Noops(n), commit);
    auto t1 = Clock::now();
    int done = 0;
    while (true) {
      auto l = s.Lease(w, 0, commit);
      if (!l.ok() || !l->has_value()) break;
      (void)s.Complete((*l)->lease_id, "{}", commit);
      ++done;
    }
    auto t2 = Clock::now();
    double sub = std::chrono::duration<double>(t1 - t0).count();
    double run = std::chrono::duration<double>(t2 - t1).count();
    std::printf("in-process scheduler, synced RocksDB commits: submit %d tasks in one batch %.3f s; "
                "lease+complete %d tasks %.3f s = %.0f tasks/s (%.2f ms/task, 2 synced writes each)\n",
                n, sub, done, run, done / run, 1000 * run / done);
  }

  // 2. Over HTTP on loopback, the real routes.
  metrics::Registry reg;
  api::Router router;
  (void)api::AddBuiltinRoutes(router, &reg);
  (void)api::AddDaemonRoutes(router, parts, &reg);
  api::ServerOptions sopts;
  sopts.port = 0;
  sopts.threads = 4;
  api::Server server(sopts, std::move(router), nullptr, &reg);
  if (!server.Start().ok()) return 1;
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());

  for (int clients : {1, 2, 4}) {
    (void)sched.Submit(Noops(n), commit);
    std::atomic<int> done{0};
    std::vector<std::vector<double>> rtt(static_cast<size_t>(clients)), lease_ms(static_cast<size_t>(clients));
    auto t0 = Clock::now();
    std::vector<std::thread> th;
    for (int c = 0; c < clients; ++c) {
      th.emplace_back([&, c] {
        api::ClientOptions co;
        co.base_url = url;
        auto cl = api::HttpClient::Create(co);
        if (!cl.ok()) return;
        auto reg_r = api::SendJson(**cl, "POST", "/v1/workers", {{"name", "bench"}, {"device", "cpu"}, {"protocol", herd::tasks::kProtocolVersion}});
        if (!reg_r.ok()) return;
        std::string wid = (*reg_r)["worker"]["id"];
        while (true) {
          auto a = Clock::now();
          auto r = (*cl)->Request("POST", "/v1/workers/" + wid + "/lease?wait=0s", "");
          auto b = Clock::now();
          if (!r.ok() || r->status != 200) break;
          json j = json::parse(r->body);
          std::string lease = j["lease"]["id"];
          auto d = (*cl)->Request("POST", "/v1/leases/" + lease + "/complete", R"({"result":{}})");
          auto e = Clock::now();
          if (!d.ok() || d->status != 200) break;
          lease_ms[static_cast<size_t>(c)].push_back(std::chrono::duration<double, std::milli>(b - a).count());
          rtt[static_cast<size_t>(c)].push_back(std::chrono::duration<double, std::milli>(e - a).count());
          ++done;
        }
      });
    }
    for (auto& t : th) t.join();
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<double> all, leases;
    for (auto& v : rtt) all.insert(all.end(), v.begin(), v.end());
    for (auto& v : lease_ms) leases.insert(leases.end(), v.begin(), v.end());
    std::printf("HTTP loopback, %d client(s): %d no-op tasks in %.2f s = %.0f tasks/s; "
                "lease round trip p50 %.2f ms p99 %.2f ms; lease+complete p50 %.2f ms p99 %.2f ms\n",
                clients, done.load(), secs, done / secs, Pct(leases, 0.5), Pct(leases, 0.99), Pct(all, 0.5),
                Pct(all, 0.99));
  }
  server.Stop(std::chrono::milliseconds(1000));
  std::filesystem::remove_all(dir);
  return 0;
}
