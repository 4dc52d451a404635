// bench_api: figures for issue 8's API benchmark, on loopback.
//   1. upload a 100K-line annotation JSONL file: lines/s end to end
//      (HTTP + incremental parse + an in-memory writer standing in for the
//      store, which is not wired to the API yet), and parse-only lines/s;
//   2. 64 concurrent keep-alive clients on GET /v1/runs/{run} (a handler
//      returning a small JSON document, no store): requests/s, p50, p99.
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
#include "api/ingest/upload.h"
#include "api/server/server.h"

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

  std::unordered_set<std::string> ids;
  api::Router router;
  Status st = router.AddStreaming(
      "POST", "/v1/runs/{run}/annotations",
      [&ids](const api::Request&) -> Result<std::unique_ptr<api::BodySink>> {
        ids.clear();
        return std::unique_ptr<api::BodySink>(
            new ingest::AnnotationUpload({}, std::make_unique<SetWriter>(&ids)));
      });
  if (st.ok()) {
    st = router.Add("GET", "/v1/runs/{run}", [](const api::Request& q) {
      return api::Response::Json(200, R"({"run": ")" + q.Param("run") +
                                          R"(", "state": "running", "round": 3, "stage": "sft"})");
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

  // ---- 1. upload -------------------------------------------------------
  auto dir = std::filesystem::temp_directory_path() / ("herd-bench-api-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
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
  {
    api::ClientOptions co;
    co.base_url = base;
    auto c = api::HttpClient::Create(co);
    auto t0 = Clock::now();
    auto r = (*c)->UploadFile("POST", "/v1/runs/r1/annotations", path, "application/x-ndjson");
    double s = Seconds(Clock::now() - t0);
    if (!r.ok() || r->status != 200) {
      std::fprintf(stderr, "upload failed: %s\n",
                   r.ok() ? r->body.c_str() : r.status().ToString().c_str());
      return 1;
    }
    std::printf("upload end to end (HTTP + parse + in-memory writer): %d lines (%.1f MiB) in %.3f s: "
                "%.0f lines/s, %.1f MiB/s; reply %s\n",
                lines, mb, s, lines / s, mb / s, r->body.substr(0, 80).c_str());
  }
  std::filesystem::remove_all(dir);

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
      const std::string target = "/v1/runs/run-" + std::to_string(k);
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
  return 0;
}
