// bench_api: figures for issue 8's API benchmark, on loopback.
//   1. upload a 100K-line annotation JSONL file to herdd's real route:
//      lines/s end to end (HTTP + incremental parse + RocksDB through the
//      orchestrator, annotations and their pairs in synced batches), next to
//      the same upload into an in-memory writer and to parse-only;
//   2. 64 concurrent keep-alive clients on the real GET /v1/runs/{run}
//      (store reads, progress, running tasks): requests/s, p50, p99.
// Prints figures; never passes or fails on time.
//   bench_api [--lines N] [--clients C] [--requests R] [--threads T]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "api/client/client.h"
#include "api/client/json_client.h"
#include "api/ingest/upload.h"
#include "api/metrics/registry.h"
#include "api/routes/daemon_routes.h"
#include "api/server/server.h"
#include "daemon/idempotency.h"
#include "daemon/orchestrator.h"
#include "daemon/reader.h"
#include "stores/artifacts.h"
#include "stores/store.h"

namespace {

using namespace herd;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

class SetWriter : public ingest::AnnotationWriter {
 public:
  explicit SetWriter(std::unordered_set<std::string>* ids) : ids_(ids) {}
  Status Add(const ingest::Annotation& a, bool* dup) override {
    *dup = !ids_->insert(a.id).second;
    return Status::Ok();
  }
  Status Commit() override { return Status::Ok(); }
  void Abort() override {}

 private:
  std::unordered_set<std::string>* ids_;
};

std::string MakeLine(int i) {
  // A realistic-ish pairwise line: ~400 bytes of prompt and responses.
  std::string p = "Explain step " + std::to_string(i) + " of the proof in plain words, please. ";
  std::string c = "Sure. The key idea is that each term cancels with its neighbour, so the sum "
                  "telescopes and only the first and last terms remain. ";
  std::string r = "It is obvious. ";
  return R"({"id": "ann-)" + std::to_string(i) + R"(", "prompt": ")" + p + p + R"(", "chosen": ")" +
         c + c + R"(", "rejected": ")" + r + R"(", "strength": "better", "annotator": "a1"})" + "\n";
}

}  // namespace

int main(int argc, char** argv) {
  int lines = 100000, clients = 64, requests = 500, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--lines")) lines = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--clients")) clients = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--requests")) requests = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  }

  auto dir = std::filesystem::temp_directory_path() / ("herd-bench-api-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "base");
  std::ofstream(dir / "base" / "config.json") << "{}";
  stores::StoreOptions so;
  so.data_dir = (dir / "data").string();
  auto store = stores::Store::Open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  stores::ArtifactStore artifacts((dir / "data" / "artifacts").string());
  daemon::SystemClock clk;
  daemon::RandomIdSource ids_src;
  daemon::Scheduler sched(&clk, &ids_src);
  daemon::Orchestrator orch(store->get(), &artifacts, &sched, &clk);
  daemon::Reader daemon_reader(store->get(), &sched);
  daemon::IdempotencyLog idempotency(store->get());
  const api::DaemonParts parts{&orch, &daemon_reader, &idempotency, nullptr};
  metrics::Registry reg;

  std::unordered_set<std::string> ids;
  api::Router router;
  Status st = api::AddDaemonRoutes(router, parts, &reg);
  if (st.ok()) {
    // The same upload into memory, to see what the store costs.
    st = router.AddStreaming(
        "POST", "/bench/memory-upload",
        [&ids](const api::Request&) -> Result<std::unique_ptr<api::BodySink>> {
          ids.clear();
          return std::unique_ptr<api::BodySink>(
              new ingest::AnnotationUpload({}, std::make_unique<SetWriter>(&ids)));
        });
  }
  if (!st.ok()) {
    std::fprintf(stderr, "routes: %s\n", st.ToString().c_str());
    return 1;
  }
  api::ServerOptions opt;
  opt.port = 0;
  opt.threads = threads;
  api::Server server(opt, std::move(router));
  if (Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());

  std::string run_id;
  {
    api::ClientOptions co;
    co.base_url = base;
    auto c = api::HttpClient::Create(co);
    auto run = api::SendJson(**c, "POST", "/v1/runs", {{"name", "bench"}, {"base_checkpoint", (dir / "base").string()}});
    if (!run.ok()) {
      std::fprintf(stderr, "create run: %s\n", run.status().ToString().c_str());
      return 1;
    }
    run_id = (*run)["run"]["id"];
  }

  // ---- 1. upload -------------------------------------------------------
  const std::string path = (dir / "annotations.jsonl").string();
  std::string all;
  {
    std::ofstream out(path);
    for (int i = 0; i < lines; ++i) {
      std::string l = MakeLine(i);
      out << l;
      all += l;
    }
  }
  const double mb = static_cast<double>(all.size()) / (1 << 20);

  {
    uint64_t n = 0;
    ingest::AnnotationReader reader({}, [&](ingest::Annotation&&) { ++n; },
                                    [](ingest::LineError&&) {});
    auto t0 = Clock::now();
    for (size_t off = 0; off < all.size(); off += 65536) {
      reader.Feed(std::string_view(all).substr(off, 65536));
    }
    reader.Finish();
    double s = Seconds(Clock::now() - t0);
    std::printf("parse only: %d lines (%.1f MiB) in %.3f s: %.0f lines/s, %.1f MiB/s (%llu ok)\n",
                lines, mb, s, lines / s, mb / s, static_cast<unsigned long long>(n));
  }
  for (const char* target : {"/bench/memory-upload", "store"}) {
    const bool to_store = std::string(target) == "store";
    api::ClientOptions co;
    co.base_url = base;
    auto c = api::HttpClient::Create(co);
    auto t0 = Clock::now();
    auto r = (*c)->UploadFile("POST", to_store ? "/v1/runs/" + run_id + "/annotations" : std::string(target), path,
                              "application/x-ndjson");
    double s = Seconds(Clock::now() - t0);
    if (!r.ok() || r->status != 200) {
      std::fprintf(stderr, "upload failed: %s\n",
                   r.ok() ? r->body.c_str() : r.status().ToString().c_str());
      return 1;
    }
    std::printf("upload end to end (HTTP + parse + %s): %d lines (%.1f MiB) in %.3f s: "
                "%.0f lines/s, %.1f MiB/s; reply %s\n",
                to_store ? "RocksDB via the orchestrator, with pairs" : "in-memory writer", lines, mb, s,
                lines / s, mb / s, r->body.substr(0, 60).c_str());
  }

  // ---- 2. concurrent keep-alive GETs ------------------------------------
  std::vector<std::vector<double>> lat(clients);
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  auto t0 = Clock::now();
  for (int k = 0; k < clients; ++k) {
    ts.emplace_back([&, k] {
      api::ClientOptions co;
      co.base_url = base;
      auto c = api::HttpClient::Create(co);
      lat[k].reserve(requests);
      const std::string target = "/v1/runs/" + run_id;
      for (int i = 0; i < requests; ++i) {
        auto a = Clock::now();
        auto r = (*c)->Request("GET", target);
        lat[k].push_back(Seconds(Clock::now() - a));
        if (!r.ok() || r->status != 200) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  double wall = Seconds(Clock::now() - t0);
  std::vector<double> all_lat;
  for (auto& v : lat) all_lat.insert(all_lat.end(), v.begin(), v.end());
  std::sort(all_lat.begin(), all_lat.end());
  auto pct = [&](double p) { return all_lat[static_cast<size_t>(p * (all_lat.size() - 1))]; };
  std::printf("GET /v1/runs/{run}: %d keep-alive clients x %d requests, %d server threads: "
              "%.0f requests/s, p50 %.3f ms, p99 %.3f ms, max %.3f ms, failures %d, "
              "connections %llu\n",
              clients, requests, threads, all_lat.size() / wall, pct(0.5) * 1e3, pct(0.99) * 1e3,
              all_lat.back() * 1e3, failures.load(),
              static_cast<unsigned long long>(server.stats().connections_accepted));
  server.Stop(std::chrono::milliseconds(2000));
  std::filesystem::remove_all(dir);
  return 0;
}
