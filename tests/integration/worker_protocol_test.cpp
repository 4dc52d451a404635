// The worker protocol against a real herdd on loopback: registration,
// long-poll leases, heartbeats, fencing of stale leases, idempotent
// completion, and restart with re-attached leases.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "api/wire/problem.h"
#include "herdd_process.h"
#include "tasks/generate.h"
#include "tasks/protocol.h"

namespace herd::testing {
namespace {

using nlohmann::json;

class WorkerProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(tmp_.path() + "/base");
    std::ofstream(tmp_.path() + "/base/config.json") << R"({"vocab_size": 264})";  // herd's byte vocabulary: read with the byte tokenizer
  }
  // A run in its collect stage: 3 prompts → one generate task.
  std::string MakeRun(api::HttpClient& c) {
    json cfg = {{"name", "proto"},
                {"base_checkpoint", tmp_.path() + "/base"},
                {"annotation", {{"comparisons_per_round", 3}, {"min_answers", 3}}}};
    auto run = api::SendJson(c, "POST", "/v1/runs", cfg);
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    if (!run.ok() || !run->is_object()) ADD_FAILURE() << "create run: " << (run.ok() ? run->dump() : run.status().ToString());
    std::string id = (*run)["run"]["id"];
    std::string jsonl = "{\"id\":\"p1\",\"prompt\":\"1+1\"}\n{\"id\":\"p2\",\"prompt\":\"2+2\"}\n"
                        "{\"id\":\"p3\",\"prompt\":\"3+3\"}\n";
    auto up = c.Request("POST", "/v1/runs/" + id + "/prompts", jsonl);
    EXPECT_TRUE(up.ok());
    EXPECT_EQ(up->status, 200) << up->body;
    auto st = c.Request("POST", "/v1/runs/" + id + ":start", "");
    EXPECT_EQ(st->status, 200) << st->body;
    return id;
  }
  std::string Register(api::HttpClient& c) {
    auto w = api::SendJson(c, "POST", "/v1/workers",
                           {{"name", "test"}, {"device", "cpu"}, {"protocol", tasks::kProtocolVersion}});
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return (*w)["worker"]["id"];
  }
  json Lease(api::HttpClient& c, const std::string& worker, const char* wait = "5s") {
    auto r = c.Request("POST", "/v1/workers/" + worker + "/lease?wait=" + wait, "");
    EXPECT_TRUE(r.ok());
    if (!r.ok() || r->status == 204) return json();
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body);
  }
  static json GenerateResult(const json& leased) {
    auto spec = tasks::DecodeGenerateSpec(leased["task"]["spec"]);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    tasks::GenerateResult res;
    if (spec.ok()) {
      for (const auto& p : spec->prompts) res.responses.push_back({p.id, "four", "five"});
    }
    return {{"result", tasks::ToJson(res)}};
  }

  TempDir tmp_{"proto"};
};

TEST_F(WorkerProtocolTest, WorkerOfAnotherTaskProtocolIsRefused) {
  HerddProcess herdd(tmp_.path() + "/data");
  ASSERT_TRUE(herdd.Start()) << herdd.Log();
  auto c = herdd.Client();
  for (const json& body : {json{{"name", "old"}}, json{{"name", "next"}, {"protocol", tasks::kProtocolVersion + 1}}}) {
    auto r = c->Request("POST", "/v1/workers", body.dump());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 409) << r->body;
    auto p = api::ParseProblem(r->body);
    EXPECT_NE(p.detail.find("task protocol"), std::string::npos) << r->body;
  }
  auto bad = c->Request("POST", "/v1/workers", R"({"protocol": "one"})");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400) << bad->body;
  EXPECT_NE(bad->body.find("protocol"), std::string::npos) << bad->body;
  // The one that speaks it is told so.
  auto ok = api::SendJson(*c, "POST", "/v1/workers", {{"name", "now"}, {"protocol", tasks::kProtocolVersion}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)["protocol"], tasks::kProtocolVersion);
}

TEST_F(WorkerProtocolTest, StaleLeaseIsRefusedAndCompletionIsIdempotent) {
  HerddProcess herdd(tmp_.path() + "/data");
  ASSERT_TRUE(herdd.Start({"--lease-ttl-ms", "600"})) << herdd.Log();
  auto c = herdd.Client();
  std::string run = MakeRun(*c);
  std::string w = Register(*c);

  json first = Lease(*c, w);
  ASSERT_FALSE(first.is_null());
  EXPECT_EQ(first["task"]["kind"], "generate");
  std::string stale = first["lease"]["id"];
  // Miss heartbeats: the lease expires and the task is leased again (after backoff).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  json second = Lease(*c, w, "10s");
  ASSERT_FALSE(second.is_null());
  EXPECT_EQ(second["task"]["id"], first["task"]["id"]);
  EXPECT_EQ(second["task"]["attempt"], 2);
  std::string current = second["lease"]["id"];
  ASSERT_NE(stale, current);

  auto hb = c->Request("POST", "/v1/leases/" + stale + "/heartbeat", "{}");
  EXPECT_EQ(hb->status, 410) << hb->body;
  auto late = c->Request("POST", "/v1/leases/" + stale + "/complete", GenerateResult(first).dump());
  EXPECT_EQ(late->status, 410) << late->body;
  EXPECT_EQ(api::ParseProblem(late->body).type, "urn:herd:problem:failed-precondition");

  auto hb2 = c->Request("POST", "/v1/leases/" + current + "/heartbeat", R"({"progress":{"step":1}})");
  EXPECT_EQ(hb2->status, 200) << hb2->body;
  auto bad = c->Request("POST", "/v1/leases/" + current + "/complete", R"({"result":{"responses":7}})");
  EXPECT_EQ(bad->status, 422) << bad->body;
  auto ok = c->Request("POST", "/v1/leases/" + current + "/complete", GenerateResult(second).dump());
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(json::parse(ok->body)["outcome"], "completed");
  auto again = c->Request("POST", "/v1/leases/" + current + "/complete", GenerateResult(second).dump());
  EXPECT_EQ(again->status, 200) << again->body;
  EXPECT_EQ(json::parse(again->body)["outcome"], "already_done");

  auto reqs = api::GetJson(*c, "/v1/runs/" + run + "/annotation-requests?state=pending");
  ASSERT_TRUE(reqs.ok()) << reqs.status().ToString();
  EXPECT_EQ((*reqs)["annotation_requests"].size(), 3u);  // stored once, not twice
  EXPECT_EQ(herdd.Kill(SIGTERM), 0);  // drains and exits 0
}

TEST_F(WorkerProtocolTest, LeaseSurvivesHerddKill9) {
  HerddProcess herdd(tmp_.path() + "/data");
  ASSERT_TRUE(herdd.Start()) << herdd.Log();
  auto c = herdd.Client();
  std::string run = MakeRun(*c);
  std::string w = Register(*c);
  json t = Lease(*c, w);
  ASSERT_FALSE(t.is_null());
  std::string lease = t["lease"]["id"];

  herdd.Kill(SIGKILL);
  ASSERT_TRUE(herdd.Start()) << herdd.Log();
  auto c2 = herdd.Client();
  // The same worker id and lease carry on after the restart.
  auto hb = c2->Request("POST", "/v1/leases/" + lease + "/heartbeat", "{}");
  EXPECT_EQ(hb->status, 200) << hb->body;
  auto done = c2->Request("POST", "/v1/leases/" + lease + "/complete", GenerateResult(t).dump());
  EXPECT_EQ(done->status, 200) << done->body;
  auto reqs = api::GetJson(*c2, "/v1/runs/" + run + "/annotation-requests?state=pending");
  ASSERT_TRUE(reqs.ok());
  EXPECT_EQ((*reqs)["annotation_requests"].size(), 3u);
  // Answer one through the API, as a labeling tool would.
  std::string rid = (*reqs)["annotation_requests"][0]["id"];
  auto ans = c2->Request("POST", "/v1/runs/" + run + "/annotation-requests/" + rid + ":answer",
                         R"({"choice":"a","strength":"better","annotator":"alice"})");
  EXPECT_EQ(ans->status, 200) << ans->body;
  auto twice = c2->Request("POST", "/v1/runs/" + run + "/annotation-requests/" + rid + ":answer",
                           R"({"choice":"b"})");
  EXPECT_EQ(twice->status, 409) << twice->body;
  auto bad = c2->Request("POST", "/v1/runs/" + run + "/annotation-requests/" + rid + ":answer",
                         R"({"choice":"c"})");
  EXPECT_EQ(bad->status, 400) << bad->body;
  auto pairs = api::GetJson(*c2, "/v1/runs/" + run + "/pairs");
  ASSERT_TRUE(pairs.ok());
  EXPECT_EQ((*pairs)["pairs"].size(), 1u);
  // The answer is counted with the uploads; the refused ones are not.
  auto m = c2->Request("GET", "/metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->body.find("herd_annotations_total{result=\"answered\"} 1\n"), std::string::npos) << m->body;
}

TEST_F(WorkerProtocolTest, LocalWorkersRegister) {
  HerddProcess herdd(tmp_.path() + "/data");
  ASSERT_TRUE(herdd.Start({"--local-workers", "2"})) << herdd.Log();
  auto c = herdd.Client();
  json workers;
  for (int i = 0; i < 100; ++i) {
    auto w = api::GetJson(*c, "/v1/workers");
    ASSERT_TRUE(w.ok());
    workers = (*w)["workers"];
    if (workers.size() == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(workers.size(), 2u) << herdd.Log();
  EXPECT_EQ(herdd.Kill(SIGTERM), 0);
}

}  // namespace
}  // namespace herd::testing
