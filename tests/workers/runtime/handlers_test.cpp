// The training handlers end to end on a tiny model: datasets in the JSONL
// formats herdd materialises, checkpoints out as HF directories.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tasks/average.h"
#include "tasks/eval.h"
#include "tasks/generate.h"
#include "tasks/protocol.h"
#include "tasks/rejection_sample.h"
#include "tasks/train.h"
#include "workers/model/chat_format.h"
#include "workers/model/checkpoint.h"
#include "workers/model/gguf_import.h"
#include "workers/model/llama.h"
#include "workers/model/tokenizer.h"
#include "workers/runtime/checkers.h"
#include "workers/runtime/handlers.h"
#include "workers/runtime/task_io.h"
#include "tests/testing/real_model.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tiny_llama.h"

namespace herd::worker {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class TrainHandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("herd-th-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Status base = herd::testing::SaveTinyChatModel(Base(), 1);
    ASSERT_TRUE(base.ok()) << base.ToString();
    WriteLines(Pairs(), {
        R"({"id":"a","prompt":[{"role":"user","content":"2+2"}],"chosen":"4","rejected":"5","strength":"better"})",
        R"({"id":"b","prompt":[{"role":"user","content":"3+3"}],"chosen":"6","rejected":"7","strength":"significantly_better"})",
        R"({"id":"c","prompt":[{"role":"user","content":"1+1"}],"chosen":"2","rejected":"3","strength":"slightly_better"})"});
    WriteLines(Convs(), {
        R"({"id":"x","messages":[{"role":"user","content":"2+2"},{"role":"assistant","content":"4"}]})",
        R"({"id":"y","messages":[{"role":"user","content":"3+3"},{"role":"assistant","content":"6"}]})"});
    AddBuiltinHandlers(worker_);
    AddEngineHandlers(worker_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
    std::ofstream f(path);
    for (const auto& l : lines) f << l << "\n";
  }
  std::string Base() const { return (dir_ / "base").string(); }
  std::string Pairs() const { return (dir_ / "pairs.jsonl").string(); }
  std::string Convs() const { return (dir_ / "sft.jsonl").string(); }
  static tasks::TrainHparams Hparams(int steps) {
    return {.lr = 1e-2, .steps = steps, .batch_rows = 2, .seq_len = 64, .seed = 3};
  }
  // A training spec from the dataset `data` into `out`.
  tasks::TrainSpec Train(const std::string& data, const std::string& out, int steps) const {
    tasks::TrainSpec s;
    s.base = Base();
    s.dataset = data;
    s.out = out;
    s.checkpoint_id = "ck-" + fs::path(out).filename().string();
    s.hparams = Hparams(steps);
    return s;
  }
  template <typename Spec>
  Result<json> Run(const char* kind, const Spec& spec) {
    return worker_.RunLocal(kind, tasks::ToJson(spec));
  }

  fs::path dir_;
  static WorkerOptions LocalOnly() {
    WorkerOptions o;
    o.daemon_url = "http://127.0.0.1:1";  // never contacted: RunLocal only
    return o;
  }
  Worker worker_{LocalOnly()};
};

TEST_F(TrainHandlersTest, SftTrainsAndWritesALoadableCheckpoint) {
  std::string out = (dir_ / "sft").string();
  auto r = Run(tasks::kTrainSft, Train(Convs(), out, 20));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["metrics"]["steps"], 20);
  EXPECT_LT((*r)["metrics"]["loss"].get<double>(), 3.0);  // from ~ln(264) = 5.6
  EXPECT_EQ((*r)["checkpoint"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(fs::exists(out + "/tokenizer.json"));
  auto m = LoadModel(out, 1, 16);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_F(TrainHandlersTest, CheckpointsKeepTheirSourcesTokenizerFiles) {
  // A base whose tokenizer_config.json has a field of its own and whose
  // template is a separate chat_template.jinja that trims content.
  json cfg = json::parse(ReadAll(Base() + "/tokenizer_config.json"));
  cfg["model_max_length"] = 777;
  std::ofstream(Base() + "/tokenizer_config.json") << cfg.dump(2);
  const std::string jinja = model::ChatTemplateJinja({model::ChatTemplateKind::kLlama3, "", true});
  std::ofstream(Base() + "/chat_template.jinja") << jinja;
  fs::remove(Base() + "/" + kChecksumsFile);  // a base from elsewhere, not written by herd

  std::string out = (dir_ / "kept").string();
  auto r = Run(tasks::kTrainSft, Train(Convs(), out, 2));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}) {
    EXPECT_EQ(ReadAll(out + "/" + f), ReadAll(Base() + "/" + f)) << f;
  }
  auto kept = model::LoadChatFormatter(out);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_TRUE(kept->chat_template().trim_content);
  EXPECT_EQ(json::parse(ReadAll(out + "/generation_config.json"))["eos_token_id"], json::array({model::kEotId}));

  // A run that chooses the format: the checkpoint's template says so, the
  // rest of tokenizer_config.json is the source's.
  std::string chosen = (dir_ / "chosen").string();
  tasks::TrainSpec spec = Train(Convs(), chosen, 2);
  spec.text.chat_format = "llama3";
  r = Run(tasks::kTrainSft, spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(fs::exists(chosen + "/chat_template.jinja"));
  const json saved = json::parse(ReadAll(chosen + "/tokenizer_config.json"));
  EXPECT_EQ(saved["model_max_length"], 777);
  EXPECT_EQ(saved["chat_template"], model::ChatTemplateJinja({model::ChatTemplateKind::kLlama3, "", false}));
  auto f = model::LoadChatFormatter(chosen);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_FALSE(f->chat_template().trim_content);

  // A format the tokenizer cannot do fails the task, naming spec.text.
  spec.out = (dir_ / "never").string();
  spec.text.chat_format = "chatml";
  r = Run(tasks::kTrainSft, spec);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("spec.text"), std::string::npos) << r.status().message();
}

TEST_F(TrainHandlersTest, RewardModelFromTheLmBackboneFiltersStrengths) {
  std::string out = (dir_ / "rm").string();
  tasks::TrainSpec spec = Train(Pairs(), out, 30);
  spec.heldout = Pairs();
  auto r = Run(tasks::kTrainRm, spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Two of the three pairs have a training strength; they are memorised.
  EXPECT_DOUBLE_EQ((*r)["metrics"]["heldout_accuracy"].get<double>(), 1.0) << r->dump();
  auto cfg = model::LoadCheckpointConfig(out);
  ASSERT_TRUE(cfg.ok());
  EXPECT_TRUE(cfg->is_reward_model);
}

TEST_F(TrainHandlersTest, DpoRaisesRewardAccuracyAndAverageMixes) {
  std::string a = (dir_ / "dpo-a").string(), b = (dir_ / "dpo-b").string();
  for (const auto& out : {a, b}) {
    tasks::TrainSpec spec = Train(Pairs(), out, 15);
    spec.ref = Base();
    spec.beta = 0.1;
    auto r = Run(tasks::kTrainDpo, spec);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_GT((*r)["metrics"]["reward_accuracy"].get<double>(), 0.5) << r->dump();
  }
  std::string avg = (dir_ / "avg").string();
  auto r = Run(tasks::kAverage, tasks::AverageSpec{.inputs = {a, b}, .weights = {0.5, 0.5}, .out = avg,
                                                    .checkpoint_id = "ck-avg"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(LoadModel(avg, 1, 16).ok());
}

// Greedy averaging: a variant that would make the average worse on the
// selection pairs is left out; an equally good one is kept.
TEST_F(TrainHandlersTest, GreedyAverageLeavesOutAVariantThatHurts) {
  std::string good = (dir_ / "rm-good").string(), bad = (dir_ / "rm-bad").string(),
              twin = (dir_ / "rm-twin").string();
  auto r = Run(tasks::kTrainRm, Train(Pairs(), good, 30));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // "bad" ranks every pair backwards (its score head negated); "twin" is a
  // copy of "good".
  for (const auto& [dir, sign] : {std::pair{bad, -1.0f}, std::pair{twin, 1.0f}}) {
    auto m = LoadModel(good, 1, 16);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    for (auto& v : (*m)->ParamViews()) {
      if (v.name == "score.weight") {
        for (int64_t i = 0; i < v.numel(); ++i) v.data[i] *= sign;
      }
    }
    ASSERT_TRUE(SaveModel(**m, dir, model::ChatFormatter::Bytes(), "", {}).ok());
  }
  const tasks::AverageSelect select{.dataset = Pairs(), .batch_rows = 2, .seq_len = 64};
  std::string out = (dir_ / "soup").string();
  r = Run(tasks::kAverage, tasks::AverageSpec{.inputs = {bad, good}, .weights = {0.5, 0.5}, .out = out,
                                              .checkpoint_id = "ck-soup", .select = select});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const json& sel = (*r)["metrics"]["selection"];
  EXPECT_EQ(sel["input_accuracy"], json({0.0, 1.0})) << r->dump();
  EXPECT_EQ(sel["pairs"], 2);  // the slightly_better pair is not a training strength
  EXPECT_EQ(sel["chosen"], json({1})) << r->dump();
  EXPECT_EQ(sel["trials"][0]["kept"], false);
  // The uniform average zeroes the score head: every pair a tie, none right.
  EXPECT_DOUBLE_EQ(sel["trials"][0]["accuracy"].get<double>(), 0.0);
  EXPECT_EQ((*r)["weights"], json({0.0, 1.0}));
  EXPECT_FALSE(fs::exists(out + ".trial"));
  // The output is the good model, bit for bit.
  auto a = LoadModel(out, 1, 16), g = LoadModel(good, 1, 16);
  ASSERT_TRUE(a.ok() && g.ok());
  auto av = (*a)->ParamViews(), gv = (*g)->ParamViews();
  ASSERT_EQ(av.size(), gv.size());
  for (size_t t = 0; t < av.size(); ++t) {
    ASSERT_EQ(0, std::memcmp(av[t].data, gv[t].data, sizeof(float) * av[t].numel())) << av[t].name;
  }

  r = Run(tasks::kAverage,
          tasks::AverageSpec{.inputs = {good, twin}, .out = out, .checkpoint_id = "ck-soup", .select = select});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["metrics"]["selection"]["chosen"], json({0, 1})) << r->dump();
  EXPECT_EQ((*r)["weights"], json({0.5, 0.5}));

  // Selection needs reward models.
  r = Run(tasks::kAverage,
          tasks::AverageSpec{.inputs = {Base(), Base()}, .out = out, .checkpoint_id = "ck-soup", .select = select});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is not a reward model"), std::string::npos) << r.status().message();
}

TEST_F(TrainHandlersTest, BadSpecsNameTheField) {
  json no_dataset = tasks::ToJson(Train(Convs(), "x", 1));
  no_dataset.erase("dataset");
  auto r = worker_.RunLocal(tasks::kTrainSft, no_dataset);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "spec.dataset: required field missing");
  WriteLines(Convs(), {R"({"id":"x","messages":[{"role":"user","content":"no answer"}]})"});
  r = Run(tasks::kTrainSft, Train(Convs(), "x", 1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sft.jsonl:1"), std::string::npos) << r.status().message();
  WriteLines(Convs(), {R"({"id":"x","mesages":[]})"});
  r = Run(tasks::kTrainSft, Train(Convs(), "x", 1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sft.jsonl:1"), std::string::npos) << r.status().message();
  tasks::TrainSpec missing = Train(Convs(), "x", 1);
  missing.base = "/nonexistent";
  r = Run(tasks::kTrainSft, missing);
  ASSERT_FALSE(r.ok());
  // DPO needs its reference.
  r = Run(tasks::kTrainDpo, Train(Pairs(), "x", 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "spec.ref: required for train_dpo");
}

}  // namespace
}  // namespace herd::worker

namespace herd::worker {
namespace {

TEST_F(TrainHandlersTest, GenerateRejectionSampleAndEvalRunOnTheTinyModel) {
  std::string rm = (dir_ / "rm").string();
  ASSERT_TRUE(Run(tasks::kTrainRm, Train(Pairs(), rm, 5)).ok());
  std::vector<tasks::Prompt> prompts;
  for (int i = 0; i < 5; ++i) {
    prompts.push_back({"p" + std::to_string(i), {{"user", "What is " + std::to_string(i) + "+2?"}}});
  }
  auto g = Run(tasks::kGenerate, tasks::GenerateSpec{.policies = {Base(), Base()}, .prompts = prompts,
                                                     .temperature = 1.0, .max_new_tokens = 6, .seed = 9});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_EQ((*g)["responses"].size(), 5u);
  EXPECT_EQ((*g)["responses"][3]["prompt_id"], "p3");

  const tasks::RejectionSampleSpec rs_spec{.policy = Base(), .rm = rm, .prompts = prompts, .k = 4,
                                           .temperature = 1.0, .max_new_tokens = 6, .seed = 11};
  auto rs = Run(tasks::kRejectionSample, rs_spec);
  ASSERT_TRUE(rs.ok()) << rs.status().ToString();
  const json& samples = (*rs)["samples"];
  ASSERT_EQ(samples.size(), 20u);  // K per prompt
  for (const auto& s : samples) {
    EXPECT_LE(s["tokens"].size(), 6u);
    EXPECT_TRUE(s["rm_score"].is_number());
  }
  // Same seed, same samples: reproducible however it was batched.
  auto again = Run(tasks::kRejectionSample, rs_spec);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["samples"], samples);

  auto ev = Run(tasks::kEval, tasks::EvalSpec{.policy = Base(), .previous = Base(), .rm = rm,
                                              .rm_heldout = Pairs(), .prompts = prompts, .checker = "arithmetic",
                                              .samples_per_prompt = 2, .max_new_tokens = 6, .seed = 5});
  ASSERT_TRUE(ev.ok()) << ev.status().ToString();
  const json& m = (*ev)["metrics"];
  EXPECT_TRUE(m.contains("accuracy_greedy"));
  EXPECT_TRUE(m.contains("accuracy_sampled"));
  EXPECT_EQ(m["win_rate_vs_previous"], 0.5);  // the same model: every prompt a tie
  EXPECT_EQ(m["rm_heldout_pairs"], 3);
  auto bad = Run(tasks::kEval, tasks::EvalSpec{.policy = Base(), .prompts = prompts, .checker = "chess"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "spec.checker: unknown checker 'chess'");
}

TEST(Checkers, ArithmeticAndReverse) {
  const Checker* a = FindChecker("arithmetic");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->Answer("What is 12+30?").value(), "42");
  EXPECT_EQ(a->Answer("What is 7-9?").value(), "-2");
  EXPECT_EQ(a->Score("What is 6*7?", "The answer is 42."), 1.0);
  EXPECT_EQ(a->Score("What is 6*7?", "43"), 0.0);
  EXPECT_EQ(a->Score("What is 6*7?", "no idea"), 0.0);
  // Every phrasing of the demo task (demo/task.cpp).
  EXPECT_EQ(a->Answer("Compute 4 + 5.").value(), "9");
  EXPECT_EQ(a->Answer("6 plus 5 =").value(), "11");
  EXPECT_EQ(a->Answer("Add 9 and 6.").value(), "15");
  EXPECT_EQ(a->Answer("9 minus 6").value(), "3");
  EXPECT_FALSE(a->Answer("no numbers here").has_value());
  EXPECT_EQ(a->Score("What is 3+4?", "3 + 4 = 7"), 0.0);  // the first integer is the answer
  const Checker* f = FindChecker("arithmetic_final");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->Score("What is 3+4?", "3 + 4 = 7"), 1.0);  // the last one is
  EXPECT_EQ(f->Score("What is 3+4?", "7, not 8"), 0.0);
  EXPECT_EQ(f->Stated("3 + 4 = 7").value(), 7);
  EXPECT_EQ(a->Stated("3 + 4 = 7").value(), 3);
  EXPECT_FALSE(f->Stated("seven").has_value());
  const Checker* r = FindChecker("reverse");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->Score("Reverse: abc", " cba "), 1.0);
  EXPECT_GT(r->Score("Reverse: abcd", "dcxx"), 0.0);
  EXPECT_LT(r->Score("Reverse: abcd", "dcxx"), 1.0);
  EXPECT_EQ(FindChecker("chess"), nullptr);
}

// The real model through a training task: SmolLM2-135M-Instruct imported
// from its GGUF, two SFT steps on ChatML conversations; the checkpoint keeps
// the tokenizer and the template with its default system prompt.
TEST(RealModelTraining, SftKeepsSmolLM2sTokenizerAndTemplate) {
  const std::string gguf = testing::RealModelPath();
  if (gguf.empty()) GTEST_SKIP() << testing::kRealModelSkip;
  testing::TempDir tmp("real-sft");
  const std::string base = tmp.path() + "/base";
  auto imported = model::ImportGguf(gguf, base);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  const std::string data = tmp.path() + "/sft.jsonl";
  std::ofstream(data) << R"({"id":"a","messages":[{"role":"user","content":"What is 3+4?"},{"role":"assistant","content":"7"}]})"
                      << "\n"
                      << R"({"id":"b","messages":[{"role":"user","content":"What is 2+5?"},{"role":"assistant","content":"7"}]})"
                      << "\n";
  WorkerOptions o;
  o.daemon_url = "http://127.0.0.1:1";
  Worker w(o);
  AddEngineHandlers(w);
  tasks::TrainSpec spec;
  spec.base = base;
  spec.dataset = data;
  spec.out = tmp.path() + "/sft";
  spec.checkpoint_id = "ck-sft";
  spec.hparams = {.lr = 1e-5, .steps = 2, .batch_rows = 1, .seq_len = 64, .seed = 1};
  auto r = w.RunLocal(tasks::kTrainSft, tasks::ToJson(spec));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(std::isfinite((*r)["metrics"]["loss"].get<double>()));
  EXPECT_EQ(ReadAll(spec.out + "/tokenizer.json"), ReadAll(base + "/tokenizer.json"));
  EXPECT_EQ(ReadAll(spec.out + "/tokenizer_config.json"), ReadAll(base + "/tokenizer_config.json"));
  auto f = model::LoadChatFormatter(spec.out);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->chat_template().kind, model::ChatTemplateKind::kChatML);
  EXPECT_NE(f->chat_template().default_system.find("SmolLM"), std::string::npos);
  EXPECT_EQ(f->end_of_turn(), 2);  // <|im_end|>
  const json gen = json::parse(ReadAll(spec.out + "/generation_config.json"));
  EXPECT_EQ(gen["eos_token_id"], json::array({2}));  // the config's EOS is <|im_end|> already
}

}  // namespace
}  // namespace herd::worker
