// The round state machine over a real RocksDB store, with an in-process
// fake worker that answers every task kind with well-formed results. The
// real worker processes are exercised by tests/integration.
#include "daemon/orchestrator.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include "daemon/stages/stage.h"
#include "stores/artifacts.h"
#include "stores/store.h"
#include "tasks/average.h"
#include "tasks/eval.h"
#include "tasks/generate.h"
#include "tasks/protocol.h"
#include "tasks/rejection_sample.h"
#include "tasks/train.h"
#include "workers/model/tokenizer.h"

namespace herd::daemon {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class OrchestratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("herd-orch-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "base");
    std::ofstream(dir_ / "base" / "config.json") << R"({"vocab_size": 264})";  // herd's byte vocabulary: read with the byte tokenizer
    Open();
  }
  void TearDown() override {
    Close();
    fs::remove_all(dir_);
  }
  void Open() {
    stores::StoreOptions o;
    o.data_dir = dir_.string();
    auto s = stores::Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    artifacts_ = std::make_unique<stores::ArtifactStore>((dir_ / "artifacts").string());
    sched_ = std::make_unique<Scheduler>(&clock_, &ids_);
    orch_ = std::make_unique<Orchestrator>(store_.get(), artifacts_.get(), sched_.get(), &clock_);
    ASSERT_TRUE(orch_->Recover().ok());
    WorkerInfo w;
    w.name = "fake";
    w.device = "cpu";
    w.protocol = tasks::kProtocolVersion;
    auto reg = orch_->RegisterWorker(w);
    ASSERT_TRUE(reg.ok());
    worker_ = reg->id;
  }
  void Close() {
    orch_.reset();
    sched_.reset();
    artifacts_.reset();
    store_.reset();
  }

  std::string Config(int rounds, int k, int variants, const json& patch = json::object()) {
    json v = json::array();
    for (int i = 0; i < variants; ++i) v.push_back({{"name", "v" + std::to_string(i)}, {"seed", i + 1}});
    json c = {{"name", "t"},
              {"base_checkpoint", (dir_ / "base").string()},
              {"rounds", rounds},
              {"reward_model", {{"variants", v}, {"held_out_fraction", 0.2}}},
              {"sft", {{"variants", v}}},
              {"dpo", {{"variants", v}}},
              {"rejection_sampling", {{"k", k}, {"prompts_per_task", 3}}},
              {"annotation", {{"comparisons_per_round", 4}, {"min_answers", 4}}}};
    c.merge_patch(patch);
    return c.dump();
  }

  // n prompts p0.., every fifth one (p4, p9, ..) in the eval split.
  static std::vector<stores::Prompt> TestPrompts(int n) {
    std::vector<stores::Prompt> ps;
    for (int i = 0; i < n; ++i) {
      stores::Prompt p;
      p.id = "p" + std::to_string(i);
      p.messages = {{"user", "question " + std::to_string(i)}};
      p.split = i % 5 == 4 ? "eval" : "train";
      ps.push_back(p);
    }
    return ps;
  }

  std::string MakeRun(int rounds, int k, int variants, int prompts) {
    auto run = orch_->CreateRun(Config(rounds, k, variants));
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    EXPECT_TRUE(orch_->AddPrompts(run->id, TestPrompts(prompts)).ok());
    return run->id;
  }

  // A fake worker's answer to one task, built from the task contracts.
  std::string FakeResult(const Task& t) {
    if (t.kind == tasks::kGenerate) {
      auto spec = tasks::DecodeGenerateSpec(t.spec);
      EXPECT_TRUE(spec.ok()) << spec.status().ToString();
      tasks::GenerateResult res;
      for (const auto& p : spec->prompts) res.responses.push_back({p.id, "A says " + p.id, "B says " + p.id});
      return tasks::Encode(res);
    }
    if (t.kind == tasks::kRejectionSample) {
      auto spec = tasks::DecodeRejectionSampleSpec(t.spec);
      EXPECT_TRUE(spec.ok()) << spec.status().ToString();
      tasks::RejectionSampleResult res;
      for (const auto& p : spec->prompts) {
        for (int i = 0; i < spec->k; ++i) {
          res.samples.push_back({.prompt_id = p.id, .idx = static_cast<uint32_t>(i), .tokens = {1, 2, i},
                                 .text = "answer " + std::to_string(i), .logprob = -1.5,
                                 .rm_score = (i * 7) % 5, .seed = 100u + static_cast<uint64_t>(i)});
        }
      }
      res.metrics = {{"tokens", 3}};
      return tasks::Encode(res);
    }
    if (t.kind == tasks::kEval) return tasks::Encode(tasks::EvalResult{.metrics = {{"accuracy_greedy", 0.5}}});
    // Training and averaging: write a checkpoint directory.
    const tasks::CheckpointInfo ck{.sha256 = "00", .size_bytes = 10};
    if (t.kind == tasks::kAverage) {
      auto spec = tasks::DecodeAverageSpec(t.spec);
      EXPECT_TRUE(spec.ok()) << spec.status().ToString();
      WriteFakeCheckpoint(spec->out, t);
      avg_specs_[t.stage] = *spec;
      tasks::AverageResult res{.checkpoint = ck, .metrics = {{"loss", 0.25}}};
      // Greedy averaging that kept only the last input.
      if (spec->select) {
        res.weights.assign(spec->inputs.size(), 0.0);
        res.weights.back() = 1.0;
      }
      return tasks::Encode(res);
    }
    auto spec = tasks::DecodeTrainSpec(t.spec);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    WriteFakeCheckpoint(spec->out, t);
    return tasks::Encode(tasks::TrainResult{.checkpoint = ck, .metrics = {{"loss", 0.25}}});
  }
  static void WriteFakeCheckpoint(const std::string& out, const Task& t) {
    fs::create_directories(out);
    std::ofstream(out + "/model.safetensors") << t.kind << t.id;
  }

  // A one-round run whose first task failed for good: the run is failed.
  std::string RunWithAFailedCollect() {
    std::string run = MakeRun(1, 2, 1, 5);
    EXPECT_TRUE(orch_->StartRun(run).ok());
    EXPECT_TRUE(orch_->Tick().ok());
    auto lease = orch_->Lease(worker_, 0);
    EXPECT_TRUE(lease.ok() && lease->has_value());
    if (lease.ok() && lease->has_value()) {
      EXPECT_TRUE(orch_->Fail((*lease)->lease_id, "CUDA out of memory", false).ok());
    }
    EXPECT_TRUE(orch_->Tick().ok());
    return run;
  }

  // Works until nothing is leasable; answers pending annotation requests.
  // Returns the number of tasks completed. `limit` stops early (for crashes).
  int Work(const std::string& run, int limit = 1 << 30) {
    int done = 0;
    for (int spin = 0; spin < 10000 && done < limit; ++spin) {
      EXPECT_TRUE(orch_->Tick().ok());
      auto lease = orch_->Lease(worker_, 0);
      EXPECT_TRUE(lease.ok()) << lease.status().ToString();
      if (lease.ok() && lease->has_value()) {
        const Task& t = **lease;
        kinds_.push_back(t.stage + ":" + t.kind);
        specs_.push_back(t.spec);
        const std::string res = FakeResult(t);
        if (t.kind == tasks::kAverage && avg_specs_[t.stage].select) {
          // Weights that do not match the inputs are refused.
          auto bad = tasks::DecodeAverageResult(res).value();
          bad.weights = {1.0};
          auto b = orch_->Complete(t.lease_id, tasks::Encode(bad));
          EXPECT_FALSE(b.ok());
          EXPECT_NE(b.status().message().find("one entry per input"), std::string::npos) << b.status().message();
        }
        auto c = orch_->Complete(t.lease_id, res);
        EXPECT_TRUE(c.ok()) << c.status().ToString();
        ++done;
        continue;
      }
      int answered = answer_ ? AnswerAll(run) : 0;
      if (answered == 0) {
        auto p = orch_->Progress(run);
        if (!p.ok() || p->run.state != "running") break;
      }
    }
    return done;
  }

  int AnswerAll(const std::string& run) {
    auto page = store_->ListAnnotationRequests(run, "pending", {});
    if (!page.ok()) return 0;
    int n = 0;
    for (const auto& q : page->items) {
      Answer a;
      a.choice = "a";
      a.strength = "better";
      a.annotator = "sim";
      EXPECT_TRUE(orch_->AnswerRequest(run, q.id, a).ok());
      ++n;
    }
    return n;
  }

  struct Counts {
    int samples = 0, selected = 0, pairs = 0, checkpoints = 0, requests = 0;
    bool operator==(const Counts&) const = default;
  };
  Counts Count(const std::string& run) {
    Counts c;
    EXPECT_TRUE(store_->ForEachSample(run, std::nullopt, [&](const stores::Sample& s) {
      ++c.samples;
      c.selected += s.selected;
      return true;
    }).ok());
    EXPECT_TRUE(store_->ForEachPair(run, std::nullopt, [&](const stores::Pair&) {
      ++c.pairs;
      return true;
    }).ok());
    EXPECT_TRUE(store_->ForEachCheckpoint(run, [&](const stores::Checkpoint&) {
      ++c.checkpoints;
      return true;
    }).ok());
    auto rq = store_->ListAnnotationRequests(run, "", {});
    c.requests = rq.ok() ? static_cast<int>(rq->items.size()) : -1;
    return c;
  }

  fs::path dir_;
  FakeClock clock_;
  RandomIdSource ids_{7};
  std::unique_ptr<stores::Store> store_;
  std::unique_ptr<stores::ArtifactStore> artifacts_;
  std::unique_ptr<Scheduler> sched_;
  std::unique_ptr<Orchestrator> orch_;
  std::string worker_;
  std::vector<std::string> kinds_;
  std::vector<std::string> specs_;  // of every leased task, in order
  bool answer_ = true;              // Work answers every pending annotation request
  std::map<std::string, tasks::AverageSpec> avg_specs_;  // stage -> spec of its last average task
};

TEST_F(OrchestratorTest, TwoRoundsRunInStageOrder) {
  const int kPrompts = 10, kK = 3;  // 8 train prompts, 2 eval
  std::string run = MakeRun(2, kK, 2, kPrompts);
  ASSERT_TRUE(orch_->StartRun(run).ok());
  Work(run);
  auto p = orch_->Progress(run);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->run.state, "succeeded") << p->run.error;

  // Stage order within each round, as the tasks were leased.
  std::vector<std::string> want_round = {
      "collect:generate", "collect:generate",  // 4 prompts, 3 per task
      "rm:train_rm",      "rm:train_rm",      "rm:average",
      "rejection_sampling:rejection_sample", "rejection_sampling:rejection_sample",
      "rejection_sampling:rejection_sample",  // 8 prompts, 3 per task
      "sft:train_sft",    "sft:train_sft",    "sft:average",
      "dpo:train_dpo",    "dpo:train_dpo",    "dpo:average",
      "eval:eval"};
  std::vector<std::string> want = want_round;
  want.insert(want.end(), want_round.begin(), want_round.end());
  EXPECT_EQ(kinds_, want);

  Counts c = Count(run);
  EXPECT_EQ(c.samples, 2 * 8 * kK);     // samples per prompt = K, every round
  EXPECT_EQ(c.selected, 2 * 8);         // one best-of-K per prompt and round
  EXPECT_EQ(c.requests, 2 * 4);
  EXPECT_EQ(c.pairs, 2 * 4);
  // base + one averaged checkpoint per training stage per round; variants deleted.
  EXPECT_EQ(c.checkpoints, 1 + 2 * 3);

  for (uint32_t r = 1; r <= 2; ++r) {
    auto round = store_->GetRound(run, r);
    ASSERT_TRUE(round.ok());
    EXPECT_EQ(round->state, "succeeded");
    for (const auto& st : round->stages) EXPECT_EQ(st.state, "succeeded") << st.stage;
    json m = json::parse(round->metrics_json);
    EXPECT_TRUE(m["rejection_sampling"].contains("best_of_k_rm_score"));
    EXPECT_GE(m["rejection_sampling"]["best_of_k_rm_score"].get<double>(),
              m["rejection_sampling"]["random_rm_score"].get<double>());
    EXPECT_EQ(m["eval"]["accuracy_greedy"], 0.5);
  }
  // Lineage: the SFT set of round 2 holds the selected samples of rounds 1 and 2.
  int sft2 = 0;
  ASSERT_TRUE(store_->ForEachSftSample(run, 2, [&](const stores::Sample& s) {
    EXPECT_TRUE(s.selected);
    ++sft2;
    return true;
  }).ok());
  EXPECT_EQ(sft2, 16);
}

TEST_F(OrchestratorTest, RestartMidStageGivesTheSameCounts) {
  std::string uninterrupted = MakeRun(2, 3, 2, 10);
  ASSERT_TRUE(orch_->StartRun(uninterrupted).ok());
  Work(uninterrupted);
  Counts want = Count(uninterrupted);

  std::string run = MakeRun(2, 3, 2, 10);
  ASSERT_TRUE(orch_->StartRun(run).ok());
  for (int crash = 0; crash < 4; ++crash) {
    Work(run, 4);
    // Lease a task and "crash" while it is in flight.
    ASSERT_TRUE(orch_->Tick().ok());
    auto held = orch_->Lease(worker_, 0);
    ASSERT_TRUE(held.ok());
    Close();
    Open();  // restart: a new worker registers; the old lease will expire
    clock_.Advance(120'000);
  }
  Work(run);
  auto p = orch_->Progress(run);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->run.state, "succeeded") << p->run.error;
  EXPECT_EQ(Count(run), want);
}

TEST_F(OrchestratorTest, BadResultIsRefusedAndChangesNothing) {
  std::string run = MakeRun(1, 2, 1, 5);
  ASSERT_TRUE(orch_->StartRun(run).ok());
  ASSERT_TRUE(orch_->Tick().ok());
  auto lease = orch_->Lease(worker_, 0);
  ASSERT_TRUE(lease.ok() && lease->has_value());
  auto bad = orch_->Complete((*lease)->lease_id, tasks::Encode(tasks::GenerateResult{{{"nope", "x", "y"}}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown prompt_id 'nope'"), std::string::npos);
  EXPECT_FALSE(orch_->Complete((*lease)->lease_id, "[1,2]").ok());
  EXPECT_EQ(sched_->Get((*lease)->id)->state, TaskState::kLeased);
  EXPECT_EQ(Count(run).requests, 0);
}

TEST_F(OrchestratorTest, FailedStageFailsTheRunAndCanBeRetried) {
  std::string run = RunWithAFailedCollect();
  auto p = orch_->Progress(run);
  EXPECT_EQ(p->run.state, "failed");
  EXPECT_NE(p->run.error.find("CUDA out of memory"), std::string::npos);
  EXPECT_FALSE(orch_->RetryStage(run, 1, "rm").ok());  // not the failed one
  ASSERT_TRUE(orch_->RetryStage(run, 1, "collect").ok());
  Work(run);
  EXPECT_EQ(orch_->Progress(run)->run.state, "succeeded");
}

TEST_F(OrchestratorTest, ACancelledRunsFailedStageIsNotRetried) {
  std::string run = RunWithAFailedCollect();
  ASSERT_EQ(orch_->Progress(run)->run.state, "failed");
  ASSERT_TRUE(orch_->CancelRun(run).ok());
  Status s = orch_->RetryStage(run, 1, "collect");
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("is cancelled"), std::string::npos) << s.message();
  EXPECT_EQ(orch_->Progress(run)->run.state, "cancelled");
  auto none = orch_->Lease(worker_, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());  // the failed task was not queued again
}

TEST_F(OrchestratorTest, HeartbeatsKeepAWorkerOnALongTaskSeen) {
  std::string run = MakeRun(1, 2, 1, 5);
  ASSERT_TRUE(orch_->StartRun(run).ok());
  ASSERT_TRUE(orch_->Tick().ok());
  auto lease = orch_->Lease(worker_, 0);
  ASSERT_TRUE(lease.ok() && lease->has_value());
  for (int i = 0; i < 60; ++i) {  // ten minutes on one task, heartbeating every 10 s
    clock_.Advance(10'000);
    ASSERT_TRUE(orch_->Heartbeat((*lease)->lease_id, R"({"step": 1})").ok()) << i;
  }
  bool found = false;
  for (const auto& w : orch_->Workers()) {
    if (w.id != worker_) continue;
    found = true;
    EXPECT_EQ(w.last_seen_ms, clock_.NowMs());
  }
  EXPECT_TRUE(found);
}

TEST_F(OrchestratorTest, PauseStopsLeasingAndCancelEndsTheRun) {
  std::string run = MakeRun(1, 2, 1, 5);
  ASSERT_TRUE(orch_->StartRun(run).ok());
  ASSERT_TRUE(orch_->Tick().ok());
  ASSERT_TRUE(orch_->PauseRun(run).ok());
  auto none = orch_->Lease(worker_, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(orch_->PauseRun(run).ok());  // already paused
  ASSERT_TRUE(orch_->ResumeRun(run).ok());
  auto some = orch_->Lease(worker_, 0);
  ASSERT_TRUE(some.ok());
  EXPECT_TRUE(some->has_value());
  ASSERT_TRUE(orch_->CancelRun(run).ok());
  EXPECT_EQ(orch_->Progress(run)->run.state, "cancelled");
  auto hb = orch_->Heartbeat((*some)->lease_id, "");
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->cancel);
}

TEST_F(OrchestratorTest, ARunsTokenizerAndChatFormatAreCheckedAtCreationAndReachEveryTask) {
  // A real vocabulary without tokenizer.json: refused, naming the field.
  std::ofstream(dir_ / "base" / "config.json") << R"({"vocab_size": 32000})";
  auto none = orch_->CreateRun(Config(1, 2, 1));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(none.status().message().rfind("base_checkpoint: ", 0), 0u) << none.status().message();
  EXPECT_NE(none.status().message().find("no tokenizer.json"), std::string::npos);

  // herd's byte tokenizer with a chat template herd does not know.
  std::ofstream(dir_ / "base" / "config.json") << R"({"vocab_size": 264})";
  std::ofstream(dir_ / "base" / "tokenizer.json") << model::ByteTokenizer::TokenizerJson();
  std::ofstream(dir_ / "base" / "tokenizer_config.json")
      << json{{"chat_template", "{% for m in messages %}[INST] {{ m.content }}{% endfor %}"}}.dump();
  auto unknown = orch_->CreateRun(Config(1, 2, 1));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("chat_format"), std::string::npos) << unknown.status().message();
  auto typo = orch_->CreateRun(Config(1, 2, 1, {{"chat_format", "llama-3"}}));
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("chat_format"), std::string::npos) << typo.status().message();
  auto cant = orch_->CreateRun(Config(1, 2, 1, {{"chat_format", "chatml"}}));  // no <|im_start|>
  ASSERT_FALSE(cant.ok());
  EXPECT_NE(cant.status().message().find("<|im_start|>"), std::string::npos) << cant.status().message();

  // Choosing the format works, and every task that formats chat says so.
  auto run = orch_->CreateRun(Config(1, 2, 1, {{"chat_format", "llama3"}}));
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  ASSERT_TRUE(orch_->AddPrompts(run->id, TestPrompts(5)).ok());
  ASSERT_TRUE(orch_->StartRun(run->id).ok());
  Work(run->id);
  EXPECT_EQ(orch_->Progress(run->id)->run.state, "succeeded");
  int with_text = 0;
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (kinds_[i].find(tasks::kAverage) != std::string::npos) continue;
    const json spec = json::parse(specs_[i]);
    ASSERT_TRUE(spec.contains("text")) << kinds_[i];
    EXPECT_EQ(spec["text"]["chat_format"], "llama3") << kinds_[i];
    ++with_text;
  }
  EXPECT_GE(with_text, 5);  // generate, train_rm, rejection_sample, train_sft, train_dpo, eval
}

TEST_F(OrchestratorTest, UnansweredRequestsExpireAndTheRoundGoesOnWithoutThem) {
  auto run = orch_->CreateRun(Config(
      1, 2, 1, {{"annotation", {{"comparisons_per_round", 4}, {"min_answers", 4}, {"request_ttl_s", 60}}}}));
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  ASSERT_TRUE(orch_->AddPrompts(run->id, TestPrompts(5)).ok());
  ASSERT_TRUE(orch_->StartRun(run->id).ok());
  answer_ = false;
  Work(run->id);  // the generate tasks; then the round waits for people
  auto pending = store_->ListAnnotationRequests(run->id, "pending", {});
  ASSERT_TRUE(pending.ok());
  const size_t n = pending->items.size();
  ASSERT_GE(n, 2u);
  Answer a{.choice = "a", .strength = "better", .annotator = "alice"};
  ASSERT_TRUE(orch_->AnswerRequest(run->id, pending->items[0].id, a).ok());
  ASSERT_TRUE(orch_->Tick().ok());
  EXPECT_EQ(orch_->Progress(run->id)->run.current_stage, "collect");  // 1 of 4 answers

  clock_.Advance(30'000);  // younger than the TTL: nothing expires
  ASSERT_TRUE(orch_->Tick().ok());
  EXPECT_EQ(store_->ListAnnotationRequests(run->id, "pending", {})->items.size(), n - 1);
  EXPECT_EQ(orch_->Progress(run->id)->run.current_stage, "collect");

  clock_.Advance(31'000);  // past it: the unanswered ones expire, the answered one stays
  ASSERT_TRUE(orch_->Tick().ok());
  EXPECT_TRUE(store_->ListAnnotationRequests(run->id, "pending", {})->items.empty());
  EXPECT_EQ(store_->ListAnnotationRequests(run->id, "expired", {})->items.size(), n - 1);
  EXPECT_EQ(store_->ListAnnotationRequests(run->id, "answered", {})->items.size(), 1u);
  auto late = orch_->AnswerRequest(run->id, pending->items[1].id, a);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(late.message().find("expired"), std::string::npos) << late.message();

  // The round no longer waits for them: it trains on the one answer.
  EXPECT_NE(orch_->Progress(run->id)->run.current_stage, "collect");
  Work(run->id);
  EXPECT_EQ(orch_->Progress(run->id)->run.state, "succeeded");
  EXPECT_EQ(store_->ListAnnotationRequests(run->id, "expired", {})->items.size(), n - 1);
}

// A stage writes its dataset files in Start, before the transaction that
// records its tasks and dataset members. A crash between the two leaves a
// file that nothing records, and the stage still pending; the restarted
// Start selects again and replaces the file atomically before anything
// refers to it. Here the left-over file is planted before the stage runs.
TEST_F(OrchestratorTest, ADatasetLeftByAStartThatNeverCommittedIsReplacedBeforeUse) {
  const std::string run = MakeRun(1, 2, 1, 10);
  auto path = artifacts_->MakeDatasetPath(run, "sft-r1");
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  std::ofstream(*path) << "{\"stale\": true}\n{\"stale\": true}\n";
  ASSERT_TRUE(orch_->StartRun(run).ok());
  Work(run);
  ASSERT_EQ(orch_->Progress(run)->run.state, "succeeded");
  std::string sft_dataset;
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (kinds_[i] == std::string("sft:") + tasks::kTrainSft) sft_dataset = json::parse(specs_[i])["dataset"];
  }
  ASSERT_EQ(sft_dataset, *path);  // the task reads the planted path...
  std::ifstream in(*path);
  int lines = 0;
  for (std::string l; std::getline(in, l); ++lines) {
    EXPECT_EQ(l.find("stale"), std::string::npos) << l;  // ...which holds this attempt's rows
    EXPECT_TRUE(json::parse(l).contains("messages")) << l;
  }
  EXPECT_EQ(lines, Count(run).selected);  // one row per selected sample
}

TEST_F(OrchestratorTest, AblationsSkipTheirStages) {
  // Without DPO: the SFT model is the policy; no train_dpo tasks.
  auto run = orch_->CreateRun(Config(2, 2, 1, {{"dpo", {{"enabled", false}}}}));
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  const auto ps = TestPrompts(5);
  ASSERT_TRUE(orch_->AddPrompts(run->id, ps).ok());
  ASSERT_TRUE(orch_->StartRun(run->id).ok());
  Work(run->id);
  EXPECT_EQ(orch_->Progress(run->id)->run.state, "succeeded");
  for (const auto& k : kinds_) EXPECT_EQ(k.find("train_dpo"), std::string::npos) << k;
  auto r1 = store_->GetRound(run->id, 1);
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->stages[4].checkpoint_id, r1->stages[3].checkpoint_id);  // dpo = sft

  // Without rejection sampling: no samples and no SFT; DPO from the previous policy.
  kinds_.clear();
  auto run2 = orch_->CreateRun(Config(2, 2, 1, {{"rejection_sampling", {{"enabled", false}}}}));
  ASSERT_TRUE(run2.ok());
  ASSERT_TRUE(orch_->AddPrompts(run2->id, ps).ok());
  ASSERT_TRUE(orch_->StartRun(run2->id).ok());
  Work(run2->id);
  EXPECT_EQ(orch_->Progress(run2->id)->run.state, "succeeded") << orch_->Progress(run2->id)->run.error;
  for (const auto& k : kinds_) {
    EXPECT_EQ(k.find("rejection_sample"), std::string::npos) << k;
    EXPECT_EQ(k.find("train_sft"), std::string::npos) << k;
  }
  EXPECT_EQ(Count(run2->id).samples, 0);
  auto r2 = store_->GetRound(run2->id, 2);
  auto r1b = store_->GetRound(run2->id, 1);
  ASSERT_TRUE(r2.ok() && r1b.ok());
  EXPECT_EQ(r2->stages[3].checkpoint_id, r1b->stages[4].checkpoint_id);  // round 2 "sft" = round 1 dpo
}

TEST_F(OrchestratorTest, RewardModelCanGoOnFromThePreviousRound) {
  for (const char* init : {"base", "previous"}) {
    auto run = orch_->CreateRun(Config(2, 2, 1, {{"reward_model", {{"init", init}}}}));
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    ASSERT_TRUE(orch_->AddPrompts(run->id, TestPrompts(5)).ok());
    ASSERT_TRUE(orch_->StartRun(run->id).ok());
    Work(run->id);
    ASSERT_EQ(orch_->Progress(run->id)->run.state, "succeeded");
    std::string base;
    ASSERT_TRUE(store_->ForEachCheckpoint(run->id, [&](const stores::Checkpoint& c) {
      if (c.stage == "base") base = c.id;
      return true;
    }).ok());
    auto r1 = store_->GetRound(run->id, 1), r2 = store_->GetRound(run->id, 2);
    ASSERT_TRUE(r1.ok() && r2.ok());
    auto rm1 = store_->GetCheckpoint(r1->stages[1].checkpoint_id), rm2 = store_->GetCheckpoint(r2->stages[1].checkpoint_id);
    ASSERT_TRUE(rm1.ok() && rm2.ok());
    EXPECT_EQ(rm1->parents, std::vector<std::string>({base})) << init;
    EXPECT_EQ(rm2->parents, std::vector<std::string>({std::string(init) == "previous" ? rm1->id : base})) << init;
  }
}

static size_t CountLines(const std::string& path) {
  std::ifstream f(path);
  size_t n = 0;
  for (std::string l; std::getline(f, l);) n += !l.empty();
  return n;
}

TEST_F(OrchestratorTest, GreedyRmAveragingAndRepeatedComparisons) {
  // 4 train prompts, 10 comparisons: the prompts come round again.
  auto run = orch_->CreateRun(Config(1, 2, 2,
                                     {{"reward_model", {{"averaging", "greedy"}, {"val_fraction", 0.3}}},
                                      {"annotation", {{"comparisons_per_round", 10}, {"min_answers", 10}}}}));
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  const auto ps = TestPrompts(5);
  ASSERT_TRUE(orch_->AddPrompts(run->id, ps).ok());
  ASSERT_TRUE(orch_->StartRun(run->id).ok());
  Work(run->id);
  ASSERT_EQ(orch_->Progress(run->id)->run.state, "succeeded") << orch_->Progress(run->id)->run.error;

  auto rq = store_->ListAnnotationRequests(run->id, "", {});
  ASSERT_TRUE(rq.ok());
  std::map<std::string, int> per_prompt;
  for (const auto& q : rq->items) ++per_prompt[q.prompt_id];
  EXPECT_EQ(rq->items.size(), 10u);
  EXPECT_EQ(per_prompt.size(), 4u);  // every train prompt, none from eval
  for (const auto& [id, n] : per_prompt) EXPECT_TRUE(n == 2 || n == 3) << id << " " << n;

  // Every pair is in exactly one of train / held-out / validation.
  auto path = [&](const std::string& d) { return artifacts_->MakeDatasetPath(run->id, d).value(); };
  const size_t train = CountLines(path("rm-r1")), held = CountLines(path("rm-heldout-r1")),
               val = CountLines(path("rm-val-r1"));
  EXPECT_EQ(train + held + val, static_cast<size_t>(Count(run->id).pairs));
  EXPECT_GT(val, 0u);
  EXPECT_GT(train, 0u);

  // The RM's average chooses on the validation pairs; SFT and DPO average uniformly.
  ASSERT_TRUE(avg_specs_["rm"].select.has_value());
  EXPECT_EQ(avg_specs_["rm"].select->dataset, path("rm-val-r1"));
  EXPECT_EQ(avg_specs_["rm"].select->strengths, std::vector<std::string>({"significantly_better", "better"}));
  EXPECT_FALSE(avg_specs_["sft"].select.has_value());
  EXPECT_FALSE(avg_specs_["dpo"].select.has_value());
  // The checkpoint records the weights as applied.
  auto r1 = store_->GetRound(run->id, 1);
  ASSERT_TRUE(r1.ok());
  auto rm = store_->GetCheckpoint(r1->stages[1].checkpoint_id);
  ASSERT_TRUE(rm.ok());
  EXPECT_EQ(rm->averaging_weights, std::vector<double>({0.0, 1.0}));
  auto sft = store_->GetCheckpoint(r1->stages[3].checkpoint_id);
  ASSERT_TRUE(sft.ok());
  EXPECT_EQ(sft->averaging_weights, std::vector<double>({0.5, 0.5}));
}

TEST_F(OrchestratorTest, WorkerOfAnotherProtocolIsRefused) {
  WorkerInfo w;
  w.name = "old";
  w.protocol = 0;  // from before the protocol was versioned
  auto reg = orch_->RegisterWorker(w);
  ASSERT_FALSE(reg.ok());
  EXPECT_EQ(reg.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(reg.status().message().find("task protocol 0"), std::string::npos) << reg.status().message();
  EXPECT_EQ(orch_->Workers().size(), 1u);  // only the fixture's
}

TEST(Stages, TheLoopIsTheStageTable) {
  ASSERT_EQ(stages::Loop().size(), static_cast<size_t>(kNumStages));
  for (int i = 0; i < kNumStages; ++i) {
    EXPECT_STREQ(stages::Loop()[static_cast<size_t>(i)]->name(), kStages[i]);
    EXPECT_EQ(stages::Find(kStages[i]), stages::Loop()[static_cast<size_t>(i)]);
  }
  EXPECT_EQ(stages::Find("nope"), nullptr);
}

TEST(ImpliedPairs, EditedChosenRejectedGivesThreePairs) {
  stores::Annotation a;
  a.id = "x";
  a.responses = {"chosen", "rejected"};
  a.edited = "edited";
  a.strength = "better";
  auto ps = ImpliedPairs(a);
  ASSERT_EQ(ps.size(), 3u);
  EXPECT_EQ(ps[0].chosen, "edited");
  EXPECT_EQ(ps[0].rejected, "chosen");
  EXPECT_EQ(ps[1].chosen, "edited");
  EXPECT_EQ(ps[1].rejected, "rejected");
  EXPECT_EQ(ps[2].chosen, "chosen");
  EXPECT_EQ(ps[2].rejected, "rejected");
  a.responses = {"same", "same"};
  a.edited.reset();
  EXPECT_TRUE(ImpliedPairs(a).empty());
}

}  // namespace
}  // namespace herd::daemon
