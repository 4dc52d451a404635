// The REST API of a real herdd with --auth-file: roles, problem+json for
// bad input, uploads (mixed formats, atomic, re-upload, Idempotency-Key),
// pagination, promtool on the live /metrics, Debian's prometheus scraping
// herdd, and herdctl against it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spawn.h>

#include <filesystem>
#include <fstream>

#include "api/wire/problem.h"
#include "herdd_process.h"
#include "common/sha256.h"

extern char** environ;

namespace herd::testing {
namespace {

using nlohmann::json;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(tmp_.path() + "/base");
    std::ofstream(tmp_.path() + "/base/config.json") << R"({"vocab_size": 264})";  // herd's byte vocabulary: read with the byte tokenizer
    std::ofstream auth(tmp_.path() + "/auth.jsonl");
    for (const char* role : {"admin", "annotator", "worker", "viewer"}) {
      std::string token = std::string("tok-") + role;
      auth << json{{"name", role}, {"role", role}, {"token_sha256", Sha256Hex(token)}}.dump() << "\n";
      std::ofstream(tmp_.path() + "/" + role + ".token") << token << "\n";
    }
    auth.close();
    ASSERT_TRUE(herdd_.Start({"--auth-file", tmp_.path() + "/auth.jsonl"})) << herdd_.Log();
    admin_ = herdd_.Client("tok-admin");
  }
  std::string CreateRun() {
    json cfg = {{"name", "api"}, {"base_checkpoint", tmp_.path() + "/base"}};
    auto r = admin_->Request("POST", "/v1/runs", cfg.dump());
    EXPECT_EQ(r->status, 201) << r->body;
    return json::parse(r->body)["run"]["id"];
  }
  static void ExpectProblem(const Result<api::Response>& r, int status, const std::string& slug,
                            const std::string& detail_part = "") {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->content_type, "application/problem+json") << r->body;
    auto p = api::ParseProblem(r->body);
    EXPECT_EQ(p.type, "urn:herd:problem:" + slug) << r->body;
    EXPECT_EQ(p.status, status);
    if (!detail_part.empty()) {
      EXPECT_NE(p.detail.find(detail_part), std::string::npos) << p.detail;
    }
  }

  TempDir tmp_{"api"};
  HerddProcess herdd_{tmp_.path() + "/data"};
  std::unique_ptr<api::HttpClient> admin_;
};

TEST_F(ApiTest, RolesAreEnforced) {
  auto anon = herdd_.Client();
  EXPECT_EQ(anon->Request("GET", "/healthz")->status, 200);
  ExpectProblem(anon->Request("GET", "/v1/runs"), 401, "unauthenticated");
  ExpectProblem(herdd_.Client("wrong")->Request("GET", "/v1/runs"), 401, "unauthenticated");
  auto viewer = herdd_.Client("tok-viewer");
  EXPECT_EQ(viewer->Request("GET", "/v1/runs")->status, 200);
  ExpectProblem(viewer->Request("POST", "/v1/runs", "{}"), 403, "permission-denied");
  std::string run = CreateRun();
  ExpectProblem(herdd_.Client("tok-worker")->Request("POST", "/v1/runs/" + run + "/annotations", "{}\n"), 403,
                "permission-denied");
  ExpectProblem(herdd_.Client("tok-annotator")->Request("POST", "/v1/runs/" + run + ":start"), 403,
                "permission-denied");
  ExpectProblem(viewer->Request("POST", "/v1/workers", "{}"), 403, "permission-denied");
}

TEST_F(ApiTest, BadInputGetsProblemJsonNamingTheField) {
  ExpectProblem(admin_->Request("POST", "/v1/runs", "{\"name\": "), 400, "invalid-argument", "byte");
  ExpectProblem(admin_->Request("POST", "/v1/runs", R"({"name": "x", "base_checkpoint": 7})"), 400,
                "invalid-argument", "base_checkpoint: must be a string");
  ExpectProblem(admin_->Request("POST", "/v1/runs", json{{"name", "x"}, {"base_checkpoint", tmp_.path() + "/base"},
                                                        {"sft", {{"lr", "fast"}}}}.dump()),
                400, "invalid-argument", "sft.lr: must be a number");
  ExpectProblem(admin_->Request("POST", "/v1/runs", std::string(9 << 20, ' ')), 413, "payload-too-large");
  std::string run = CreateRun();
  ExpectProblem(admin_->Request("POST", "/v1/runs/" + run + "/annotation-requests/nope:answer",
                                "{\"choice\": \"\xff\"}"), 400, "invalid-argument", "UTF-8");
  ExpectProblem(admin_->Request("POST", "/v1/runs/" + run + "/annotation-requests/nope:answer", R"({"choice": 1})"),
                400, "invalid-argument", "field 'choice'");
  ExpectProblem(admin_->Request("GET", "/v1/runs/run-999"), 404, "not-found");
  ExpectProblem(admin_->Request("GET", "/v1/nothing"), 404, "not-found");
  ExpectProblem(admin_->Request("PUT", "/v1/runs"), 405, "method-not-allowed");
  ExpectProblem(admin_->Request("GET", "/v1/runs?page_size=ten"), 400, "invalid-argument", "page_size");
  ExpectProblem(admin_->Request("GET", "/v1/runs/" + run + "/rounds/zero"), 400, "invalid-argument", "round");
  ExpectProblem(admin_->Request("POST", "/v1/runs/" + run + ":pause"), 409, "failed-precondition", "created");
  ExpectProblem(admin_->Request("GET", "/v1/tasks?state=sleeping"), 400, "invalid-argument", "state");
  ExpectProblem(herdd_.Client("tok-worker")->Request("POST", "/v1/workers/w/lease?wait=forever"), 400,
                "invalid-argument", "wait");
  // herdd is still up and nothing stored was harmed.
  EXPECT_EQ(admin_->Request("GET", "/v1/runs/" + run)->status, 200);
}

TEST_F(ApiTest, PaginationAndTamperedTokens) {
  for (int i = 0; i < 5; ++i) CreateRun();
  auto p1 = api::GetJson(*admin_, "/v1/runs?page_size=2");
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ((*p1)["runs"].size(), 2u);
  std::string token = (*p1)["next_page_token"];
  auto p2 = api::GetJson(*admin_, "/v1/runs?page_size=2&page_token=" + token);
  ASSERT_TRUE(p2.ok());
  EXPECT_NE((*p2)["runs"][0]["id"], (*p1)["runs"][0]["id"]);
  std::string bad = token;
  bad[bad.size() / 2] = bad[bad.size() / 2] == 'A' ? 'B' : 'A';
  ExpectProblem(admin_->Request("GET", "/v1/runs?page_size=2&page_token=" + bad), 400, "invalid-argument");
  // A token of one listing is refused by another.
  ExpectProblem(admin_->Request("GET", "/v1/runs/" + std::string((*p1)["runs"][0]["id"]) +
                                       "/events?page_token=" + token), 400, "invalid-argument");
}

TEST_F(ApiTest, AnnotationUploadCountsAtomicAndIdempotent) {
  std::string run = CreateRun();
  auto ann = herdd_.Client("tok-annotator");
  std::string file =
      R"({"id":"p1","prompt":"2+2?","chosen":"4","rejected":"5","strength":"better"})" "\n"
      R"({"id":"r1","prompt":"name a colour","responses":["red","car","blue"],"ranking":[0,2,1]})" "\n"
      R"({"chosen":"\n\nHuman: hi\n\nAssistant: hello","rejected":"\n\nHuman: hi\n\nAssistant: go away"})" "\n"
      R"({"prompt":"sum 1 1","chosen":[{"role":"user","content":"sum 1 1"},{"role":"assistant","content":"2"}],"rejected":[{"role":"user","content":"sum 1 1"},{"role":"assistant","content":"3"}]})" "\n"
      R"({"id":"e1","prompt":"3+3?","chosen":"6","rejected":"7","edited":"6.","strength":"significantly_better"})" "\n"
      "{not json\n"
      R"({"id":"bad1","prompt":"x","chosen":"a","rejected":"a"})" "\n"
      R"({"id":"bad2","prompt":"x","chosen":"a","rejected":"b","strength":"much_better"})" "\n";
  auto r = ann->Request("POST", "/v1/runs/" + run + "/annotations?atomic=true", file);
  ExpectProblem(r, 422, "unprocessable");
  auto pairs = api::GetJson(*admin_, "/v1/runs/" + run + "/pairs");
  EXPECT_EQ((*pairs)["pairs"].size(), 0u);  // atomic: nothing stored

  r = ann->Request("POST", "/v1/runs/" + run + "/annotations", file);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["accepted"], 5);
  EXPECT_EQ(j["rejected"], 3);
  EXPECT_EQ(j["duplicates"], 0);
  ASSERT_EQ(j["errors"].size(), 3u);
  EXPECT_EQ(j["errors"][0]["line"], 6);
  EXPECT_EQ(j["errors"][1]["line"], 7);
  EXPECT_EQ(j["errors"][2]["line"], 8);
  // 1 + 3 (ranking of 3) + 1 + 1 + 3 (edited > chosen > rejected) implied pairs.
  pairs = api::GetJson(*admin_, "/v1/runs/" + run + "/pairs?page_size=100");
  EXPECT_EQ((*pairs)["pairs"].size(), 9u);

  r = ann->Request("POST", "/v1/runs/" + run + "/annotations", file);
  j = json::parse(r->body);
  EXPECT_EQ(j["accepted"], 0);
  EXPECT_EQ(j["duplicates"], 5);
  pairs = api::GetJson(*admin_, "/v1/runs/" + run + "/pairs?page_size=100");
  EXPECT_EQ((*pairs)["pairs"].size(), 9u);  // nothing stored twice

  api::Headers h;
  h.Set("Idempotency-Key", "upload-7");
  std::string more = R"({"id":"k1","prompt":"1+1?","chosen":"2","rejected":"3"})" "\n";
  auto first = ann->Request("POST", "/v1/runs/" + run + "/annotations", more, h);
  auto again = ann->Request("POST", "/v1/runs/" + run + "/annotations", more, h);
  EXPECT_EQ(first->body, again->body);
  EXPECT_EQ(again->headers.Get("Idempotent-Replayed").value_or(""), "true");
  EXPECT_EQ(json::parse(first->body)["accepted"], 1);
}

TEST_F(ApiTest, PromtoolAcceptsTheLiveMetrics) {
  CreateRun();
  ASSERT_EQ(admin_->Request("GET", "/v1/runs")->status, 200);
  auto m = admin_->Request("GET", "/metrics");
  ASSERT_EQ(m->status, 200);
  for (const char* name : {"herd_http_requests_total", "herd_http_request_duration_seconds", "herd_tasks",
                           "herd_workers", "herd_rocksdb_live_data_bytes", "herd_task_retries_total"}) {
    EXPECT_NE(m->body.find(std::string("# TYPE ") + name), std::string::npos) << name;
  }
  std::string path = tmp_.path() + "/metrics.txt";
  std::ofstream(path) << m->body;
  auto [rc, out] = Shell("promtool check metrics < " + path);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << out;
}

TEST_F(ApiTest, PrometheusScrapesHerdd) {
  if (Shell("command -v prometheus").first != 0) GTEST_SKIP() << "prometheus not installed (Debian: prometheus)";
  std::string addr = herdd_.url().substr(7);
  int port = 0;
  {
    // A free port for prometheus: bind 0 through a throwaway herdd-less socket.
    auto [rc, out] = Shell("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
                           "print(s.getsockname()[1])'");
    ASSERT_EQ(rc, 0) << out;
    port = std::stoi(out);
  }
  std::string dir = tmp_.path() + "/prom";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: herdd\n"
      << "    authorization: {type: Bearer, credentials_file: " << tmp_.path() << "/viewer.token}\n"
      << "    static_configs:\n      - targets: ['" << addr << "']\n";
  std::vector<std::string> args = {"prometheus", "--config.file=" + dir + "/prometheus.yml",
                                   "--storage.tsdb.path=" + dir + "/data",
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=error"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawnp(&pid, "prometheus", nullptr, nullptr, argv.data(), environ), 0);
  api::ClientOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.timeout = std::chrono::milliseconds(2000);
  bool found = false;
  for (int i = 0; i < 60 && !found; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto c = api::HttpClient::Create(o);
    if (!c.ok()) continue;
    auto r = (*c)->Request("GET", "/api/v1/query?query=herd_rocksdb_live_data_bytes");
    if (!r.ok() || r->status != 200) continue;
    json j = json::parse(r->body, nullptr, false);
    found = j.is_object() && j["status"] == "success" && !j["data"]["result"].empty();
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  EXPECT_TRUE(found) << "no herd_ series reached prometheus in 30 s";
}

TEST_F(ApiTest, HerdctlDrivesARun) {
  std::string ctl = BinaryPath("herdctl") + " --url " + herdd_.url() + " --token-file " + tmp_.path() + "/admin.token";
  std::string cfg = tmp_.path() + "/run.json";
  std::ofstream(cfg) << json{{"name", "ctl"}, {"base_checkpoint", tmp_.path() + "/base"}}.dump();
  auto [rc, id] = Shell(ctl + " runs create " + cfg);
  ASSERT_EQ(rc, 0) << id;
  while (!id.empty() && id.back() == '\n') id.pop_back();
  EXPECT_EQ(id.rfind("run-", 0), 0u) << id;
  auto [rc2, listed] = Shell(ctl + " runs list");
  EXPECT_EQ(rc2, 0);
  EXPECT_NE(listed.find(id), std::string::npos) << listed;
  auto [rc3, js] = Shell(ctl + " --json runs get " + id);
  EXPECT_EQ(rc3, 0) << js;
  EXPECT_EQ(json::parse(js)["run"]["state"], "created");
  std::string ann = tmp_.path() + "/a.jsonl";
  std::ofstream(ann) << R"({"id":"x","prompt":"p","chosen":"a","rejected":"b"})" "\n" << "oops\n";
  auto [rc4, up] = Shell(BinaryPath("herdctl") + " --url " + herdd_.url() + " --token-file " + tmp_.path() +
                         "/annotator.token annotations upload " + id + " " + ann);
  EXPECT_EQ(rc4, 1) << up;  // a rejected line makes the exit code non-zero
  EXPECT_NE(up.find("accepted 1, duplicates 0, rejected 1"), std::string::npos) << up;
  EXPECT_NE(up.find("line 2:"), std::string::npos) << up;
  auto [rc5, bad] = Shell(ctl + " runs pause " + id);
  EXPECT_EQ(rc5, 1);
  EXPECT_NE(bad.find("409"), std::string::npos) << bad;
  auto [rc6, down] = Shell(BinaryPath("herdctl") + " --url http://127.0.0.1:1 runs list");
  EXPECT_EQ(rc6, 2) << down;
}

}  // namespace
}  // namespace herd::testing
