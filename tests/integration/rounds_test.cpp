// Whole runs on real processes: herdd with --local-workers on loopback, a
// tiny random Llama as the base model, this test answering the annotation
// requests through the REST API as a labeling tool would.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <dirent.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include "herdd_process.h"
#include "tests/testing/tiny_llama.h"

namespace herd::testing {
namespace {

using nlohmann::json;

class RoundsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status base = SaveTinyChatModel(tmp_.path() + "/base", 5);
    ASSERT_TRUE(base.ok()) << base.ToString();
  }

  json Config(int rounds) const {
    json train = {{"lr", 1e-3}, {"steps", 4}, {"batch_rows", 4}, {"seq_len", 96}};
    json variants = {{{"name", "a"}, {"seed", 1}}, {{"name", "b"}, {"seed", 2}}};
    json rm = train, sft = train, dpo = train;
    rm["variants"] = sft["variants"] = dpo["variants"] = variants;
    return {{"name", "it"},
            {"base_checkpoint", tmp_.path() + "/base"},
            {"rounds", rounds},
            {"reward_model", rm},
            {"sft", sft},
            {"dpo", dpo},
            {"rejection_sampling", {{"k", 3}, {"max_new_tokens", 6}, {"prompts_per_round", 6},
                                    {"prompts_per_task", 3}}},
            {"annotation", {{"comparisons_per_round", 4}, {"min_answers", 4}, {"max_new_tokens", 6}}},
            {"eval", {{"prompts", 3}, {"checker", "arithmetic"}}}};
  }

  std::string CreateRun(api::HttpClient& c, int rounds) {
    auto run = api::SendJson(c, "POST", "/v1/runs", Config(rounds));
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    if (!run.ok()) return "";
    std::string id = (*run)["run"]["id"];
    std::string jsonl;
    for (int i = 0; i < 10; ++i) {
      jsonl += json{{"id", "q" + std::to_string(i)},
                    {"prompt", "What is " + std::to_string(i) + "+" + std::to_string(2 * i) + "?"},
                    {"split", i < 7 ? "train" : "eval"}}.dump() + "\n";
    }
    auto up = c.Request("POST", "/v1/runs/" + id + "/prompts", jsonl);
    EXPECT_EQ(up->status, 200) << up->body;
    auto st = c.Request("POST", "/v1/runs/" + id + ":start", "");
    EXPECT_EQ(st->status, 200) << st->body;
    return id;
  }

  static void AnswerPending(api::HttpClient& c, const std::string& run) { AnswerPendingRequests(c, run, "it"); }

  // Answers pending requests and waits for the run to end; `tick` runs once
  // per poll (to inject failures). Returns the final run state.
  std::string Drive(HerddProcess& herdd, const std::string& run, int timeout_s,
                    const std::function<void(api::HttpClient&)>& tick = {}) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    std::string state;
    while (std::chrono::steady_clock::now() < deadline) {
      auto c = herdd.Client();
      if (!c) return "no client";
      if (tick) tick(*c);
      AnswerPending(*c, run);
      auto r = api::GetJson(*c, "/v1/runs/" + run);
        if (r.ok()) {
        state = (*r)["run"]["state"];
        if (state == "succeeded" || state == "failed" || state == "cancelled") {
          if (state == "failed") ADD_FAILURE() << "run failed: " << (*r)["run"]["error"];
          return state;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "run did not finish in " << timeout_s << " s; last state " << state;
    return state;
  }

  struct Counts {
    size_t samples = 0, selected = 0, pairs = 0, checkpoints = 0, requests = 0;
    bool operator==(const Counts&) const = default;
  };
  template <typename F>
  static void Pages(api::HttpClient& c, const std::string& path, const char* key, F f) {
    std::string token;
    do {
      auto p = api::GetJson(c, path + "?page_size=50" + (token.empty() ? "" : "&page_token=" + token));
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      for (const auto& x : (*p)[key]) f(x);
      token = p->value("next_page_token", "");
    } while (!token.empty());
  }
  Counts Count(api::HttpClient& c, const std::string& run) {
    Counts n;
    Pages(c, "/v1/runs/" + run + "/samples", "samples", [&](const json& s) {
      ++n.samples;
      n.selected += s.value("selected", false);
    });
    Pages(c, "/v1/runs/" + run + "/pairs", "pairs", [&](const json&) { ++n.pairs; });
    Pages(c, "/v1/runs/" + run + "/checkpoints", "checkpoints", [&](const json&) { ++n.checkpoints; });
    Pages(c, "/v1/runs/" + run + "/annotation-requests", "annotation_requests", [&](const json&) { ++n.requests; });
    return n;
  }

  static std::vector<pid_t> Children(pid_t parent) {
    std::vector<pid_t> out;
    DIR* d = opendir("/proc");
    while (dirent* e = d ? readdir(d) : nullptr) {
      pid_t pid = atoi(e->d_name);
      if (pid <= 0) continue;
      std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
      std::string line;
      std::getline(st, line);
      auto rp = line.rfind(')');
      if (rp == std::string::npos) continue;
      std::istringstream rest(line.substr(rp + 2));
      char state;
      pid_t ppid;
      rest >> state >> ppid;
      if (ppid == parent) out.push_back(pid);
    }
    if (d) closedir(d);
    return out;
  }

  TempDir tmp_{"rounds"};
};

TEST_F(RoundsTest, TwoRoundsWithTwoLocalWorkers) {
  HerddProcess herdd(tmp_.path() + "/data");
  ASSERT_TRUE(herdd.Start({"--local-workers", "2"})) << herdd.Log();
  auto c = herdd.Client();
  auto t0 = std::chrono::steady_clock::now();
  std::string run = CreateRun(*c, 2);
  ASSERT_EQ(Drive(herdd, run, 150), "succeeded") << herdd.Log();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("wall_seconds", std::to_string(wall));
  std::printf("two-round run: %.1f s wall\n", wall);

  Counts n = Count(*c, run);
  EXPECT_EQ(n.samples, 2u * 6 * 3);  // rounds × prompts × K
  EXPECT_EQ(n.selected, 2u * 6);     // one best-of-K per prompt
  EXPECT_EQ(n.requests, 2u * 4);
  EXPECT_EQ(n.pairs, 2u * 4);
  EXPECT_EQ(n.checkpoints, 1u + 2 * 3);  // base + one averaged RM, SFT, DPO per round

  // Stages started in order in each round.
  std::vector<std::string> started;
  Pages(*c, "/v1/runs/" + run + "/events", "events", [&](const json& e) {
    if (e["kind"] == "stage.started") started.push_back(e["message"]);
  });
  std::vector<std::string> want;
  for (int r = 1; r <= 2; ++r) {
    for (const char* s : {"collect", "rm", "rejection_sampling", "sft", "dpo", "eval"}) {
      want.push_back("round " + std::to_string(r) + " " + s);
    }
  }
  ASSERT_EQ(started.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(started[i].rfind(want[i], 0), 0u) << started[i];

  auto round = api::GetJson(*c, "/v1/runs/" + run + "/rounds/2");
  ASSERT_TRUE(round.ok());
  const json& m = (*round)["round"]["metrics"];
  EXPECT_TRUE(m["eval"].contains("accuracy_greedy")) << m.dump();
  EXPECT_TRUE(m["eval"].contains("rm_heldout_accuracy") || m["eval"].contains("rm_score_greedy")) << m.dump();
  EXPECT_GE(m["rejection_sampling"]["best_of_k_rm_score"].get<double>(),
            m["rejection_sampling"]["random_rm_score"].get<double>());
  // The exported SFT set of round 2 is the selected samples of both rounds.
  auto sft = c->Request("GET", "/v1/runs/" + run + "/rounds/2/sft-data");
  ASSERT_EQ(sft->status, 200);
  EXPECT_EQ(std::count(sft->body.begin(), sft->body.end(), '\n'), 12);
  EXPECT_EQ(herdd.Kill(SIGTERM), 0);
}

TEST_F(RoundsTest, KilledWorkerTaskIsRetried) {
  HerddProcess herdd(tmp_.path() + "/data");
  ASSERT_TRUE(herdd.Start({"--local-workers", "2", "--lease-ttl-ms", "2000"})) << herdd.Log();
  auto c = herdd.Client();
  std::string run = CreateRun(*c, 1);
  int killed = 0;
  ASSERT_EQ(Drive(herdd, run, 150, [&](api::HttpClient& cl) {
    if (killed) return;
    auto leased = api::GetJson(cl, "/v1/tasks?state=leased");
    if (!leased.ok() || (*leased)["tasks"].empty()) return;
    // Any worker holds it; kill every worker once: the task in flight dies.
    for (pid_t p : Children(herdd.pid())) kill(p, SIGKILL);
    killed = 1;
  }), "succeeded") << herdd.Log();
  EXPECT_EQ(killed, 1);
  auto tasks = api::GetJson(*c, "/v1/tasks");
  ASSERT_TRUE(tasks.ok());
  int retried = 0;
  for (const auto& t : (*tasks)["tasks"]) retried += t["attempt"].get<int>() > 1;
  EXPECT_GE(retried, 1);
}

TEST_F(RoundsTest, HerddKilledMidStageResumesWithTheSameCounts) {
  Counts want;
  {
    HerddProcess herdd(tmp_.path() + "/clean");
    ASSERT_TRUE(herdd.Start({"--local-workers", "2"})) << herdd.Log();
    auto c = herdd.Client();
    std::string run = CreateRun(*c, 1);
    ASSERT_EQ(Drive(herdd, run, 150), "succeeded") << herdd.Log();
    want = Count(*c, run);
  }
  HerddProcess herdd(tmp_.path() + "/crash");
  ASSERT_TRUE(herdd.Start({"--local-workers", "2", "--lease-ttl-ms", "3000", "--restart-grace-ms", "3000"})) << herdd.Log();
  auto c = herdd.Client();
  std::string run = CreateRun(*c, 1);
  // kill -9 three times, after 2, 6 and 10 of the run's 14 tasks finished:
  // inside the rm, rejection-sampling/sft and dpo stages, with tasks in flight.
  for (int threshold : {2, 6, 10}) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      auto cl = herdd.Client();
      AnswerPending(*cl, run);
      auto done = api::GetJson(*cl, "/v1/tasks?state=succeeded&run=" + run);
      if (done.ok() && static_cast<int>((*done)["tasks"].size()) >= threshold) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    herdd.Kill(SIGKILL);
    ASSERT_TRUE(herdd.Start({"--local-workers", "2", "--lease-ttl-ms", "3000", "--restart-grace-ms", "3000"}))
        << herdd.Log();
  }
  ASSERT_EQ(Drive(herdd, run, 150), "succeeded") << herdd.Log();
  auto c2 = herdd.Client();
  EXPECT_EQ(Count(*c2, run), want);
}

}  // namespace
}  // namespace herd::testing
