// herd-demo (make demo): the whole Llama 3 loop on one machine. It
// pre-trains a tiny, mediocre base model with herd's own engine (cached in
// the data dir), starts herdd with local workers, creates the run from
// configs/tiny.json, answers annotation requests as a simulated annotator
// through the REST API, prints live progress, and writes report.json and
// report.html. docs/demo.md explains the task and the figures.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "api/client/client.h"
#include "api/client/json_client.h"
#include "common/log.h"
#include "demo/annotator.h"
#include "demo/report.h"
#include "demo/task.h"
#include "workers/model/llama.h"
#include "workers/model/tokenizer.h"
#include "workers/runtime/task_io.h"
#include "workers/train/examples.h"
#include "workers/train/sft.h"
#include "workers/train/trainer.h"

namespace fs = std::filesystem;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

namespace {

double Since(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }

// Pre-trains the base model on the noisy corpus (herd's engine, SFT loss on
// the answers). Skipped when dir already holds it.
herd::Status Pretrain(const std::string& dir, const std::vector<herd::demo::Question>& qs, int steps) {
  if (fs::exists(dir + "/config.json")) {
    std::printf("base model: cached in %s\n", dir.c_str());
    return herd::Status::Ok();
  }
  auto t0 = Steady::now();
  herd::model::LlamaConfig c;
  c.hidden_size = 96;
  c.intermediate_size = 256;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 24;
  c.vocab_size = herd::model::ByteTokenizer::vocab_size();
  c.max_position_embeddings = 256;
  c.rope_theta = 10000;
  c.bos_token_id = herd::model::kBeginOfText;
  c.eos_token_id = herd::model::kEotId;
  const int64_t B = 16, T = 64;
  HERD_ASSIGN_OR_RETURN(auto m, herd::model::LlamaModel::Create(c, B, T));
  m->InitRandom(7);
  std::vector<herd::train::SftExample> ex;
  for (const auto& line : herd::demo::NoisyCorpus(qs, 8, 0.25, 11)) {
    HERD_ASSIGN_OR_RETURN(auto e, herd::train::SftExampleFromChat(herd::model::ChatFormatter::Bytes(),
                                      {{herd::model::Role::kUser, line.question},
                                       {herd::model::Role::kAssistant, line.answer}}));
    ex.push_back(std::move(e));
  }
  auto obj = herd::train::MakeSftObjective(std::move(ex));
  herd::train::TrainerOptions o;
  o.steps = steps;
  o.batch_rows = B;
  o.seq_len = T;
  o.lr.peak_lr = 3e-3;
  o.lr.warmup_steps = 20;
  o.lr.min_lr_ratio = 0.1;
  o.adamw.weight_decay = 0.0f;
  o.seed = 3;
  HERD_ASSIGN_OR_RETURN(auto trainer, herd::train::Trainer::Create(m.get(), obj.get(), nullptr, o));
  double loss = 0;
  HERD_RETURN_IF_ERROR(trainer->Run([&](const herd::train::Progress& p) {
    loss = p.metrics.Get("loss");
    if (p.step % 50 == 0 || p.step == p.total_steps) {
      std::printf("  pre-training base: step %lld/%lld loss %.3f %.0f tok/s\n", (long long)p.step,
                  (long long)p.total_steps, loss, p.tokens_per_s);
      std::fflush(stdout);
    }
    return true;
  }));
  HERD_ASSIGN_OR_RETURN(auto ck, herd::worker::SaveModel(*m, dir, herd::model::ChatFormatter::Bytes(), /*source_dir=*/"", {}));
  std::printf("base model: pre-trained in %.1f s (final loss %.3f), saved to %s\n", Since(t0), loss, dir.c_str());
  return herd::Status::Ok();
}

pid_t StartHerdd(const std::string& herdd, const std::string& data, int workers, std::string* url) {
  fs::create_directories(data);
  fs::remove(data + "/herdd.addr");
  std::vector<std::string> args = {herdd, "--data-dir", data, "--listen", "127.0.0.1:0",
                                   "--local-workers", std::to_string(workers), "--log-level", "warn"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = data + "/herdd.log";
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    FILE* f = freopen(log.c_str(), "a", stderr);
    (void)f;
    execv(argv[0], argv.data());
    _exit(127);
  }
  for (int i = 0; i < 400; ++i) {
    std::ifstream f(data + "/herdd.addr");
    std::string addr;
    if (f >> addr) {
      *url = "http://" + addr;
      return pid;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"herd-demo: six rounds of the Llama 3 post-training loop on a tiny model"};
  std::string build = "build", data = "demo-data", config;
  int rounds = 0, workers = 2, pretrain_steps = 400, rs_prompts = 0;
  bool no_dpo = false, no_rs = false;
  app.add_option("--build-dir", build, "where herdd was built")->capture_default_str();
  app.add_option("--data-dir", data, "herdd's data dir; the base model is cached here")->capture_default_str();
  app.add_option("--config", config, "run config. Default: configs/tiny.json of the source tree");
  app.add_option("--rounds", rounds, "override the config's rounds (0 = keep)");
  app.add_option("--rs-prompts", rs_prompts, "override prompts sampled per round (0 = keep)");
  app.add_option("--workers", workers, "local workers")->capture_default_str();
  app.add_option("--pretrain-steps", pretrain_steps, "base model pre-training steps")->capture_default_str();
  app.add_flag("--no-dpo", no_dpo, "ablation: rejection sampling + SFT only");
  app.add_flag("--no-rs", no_rs, "ablation: DPO only (no rejection sampling, no SFT)");
  std::string base, prompt_suffix;
  app.add_option("--base", base,
                 "an HF checkpoint to post-train instead of pre-training the tiny model "
                 "(make demo-real: SmolLM2-135M-Instruct imported by herd-model)");
  app.add_option("--prompt-suffix", prompt_suffix,
                 "appended to every question (e.g. \" Answer with the number only.\")");
  CLI11_PARSE(app, argc, argv);
  herd::InitLogging("herd-demo", "warn");
  auto t0 = Steady::now();
  fs::create_directories(data);
  data = fs::canonical(data).string();
  if (config.empty()) config = std::string(HERD_SOURCE_DIR) + "/configs/tiny.json";

  auto qs = herd::demo::Questions(5);
  if (base.empty()) {
    base = data + "/base";
    if (auto s = Pretrain(base, qs, pretrain_steps); !s.ok()) {
      std::fprintf(stderr, "herd-demo: pre-training failed: %s\n", s.ToString().c_str());
      return 1;
    }
  } else {
    base = fs::absolute(base).string();
    std::printf("base model: %s\n", base.c_str());
  }
  for (auto& q : qs) q.text += prompt_suffix;
  double pretrain_s = Since(t0);

  std::ifstream cf(config);
  json cfg = json::parse(cf, nullptr, false);
  if (!cfg.is_object()) {
    std::fprintf(stderr, "herd-demo: %s is not a JSON object\n", config.c_str());
    return 1;
  }
  cfg["base_checkpoint"] = base;
  if (rounds > 0) cfg["rounds"] = rounds;
  if (rs_prompts > 0) cfg["rejection_sampling"]["prompts_per_round"] = rs_prompts;
  if (no_dpo) cfg["dpo"]["enabled"] = false;
  if (no_rs) cfg["rejection_sampling"]["enabled"] = false;

  std::string herd_data = data + "/herd-" + std::to_string(time(nullptr));
  std::string url;
  pid_t herdd = StartHerdd(build + "/daemon/herdd", herd_data, workers, &url);
  if (herdd < 0) {
    std::fprintf(stderr, "herd-demo: herdd did not start (log: %s/herdd.log)\n", herd_data.c_str());
    return 1;
  }
  std::printf("herdd: %s with %d local workers, data in %s\n", url.c_str(), workers, herd_data.c_str());
  herd::api::ClientOptions co;
  co.base_url = url;
  co.timeout = std::chrono::seconds(60);
  auto client = herd::api::HttpClient::Create(co);
  if (!client.ok()) return 1;
  auto& c = **client;
  // Every failure says why, where herdd's log is, and how it ends.
  auto fail = [&](const std::string& what) {
    std::fprintf(stderr, "herd-demo: %s\n", what.c_str());
    kill(herdd, SIGTERM);
    waitpid(herdd, nullptr, 0);
    const std::string log = herd_data + "/herdd.log";
    std::ifstream in(log);
    std::vector<std::string> tail;
    for (std::string line; std::getline(in, line);) {
      tail.push_back(line);
      if (tail.size() > 20) tail.erase(tail.begin());
    }
    std::fprintf(stderr, "herd-demo: herdd's log is %s%s\n", log.c_str(),
                 tail.empty() ? " (empty)" : "; its last lines:");
    for (const auto& line : tail) std::fprintf(stderr, "  %s\n", line.c_str());
    return 1;
  };
  auto run = herd::api::SendJson(c, "POST", "/v1/runs", cfg);
  if (!run.ok()) return fail("creating the run: " + run.status().message());
  std::string id = (*run)["run"]["id"];
  std::string prompts;
  for (const auto& q : qs) prompts += json{{"id", q.id}, {"prompt", q.text}, {"split", q.split}}.dump() + "\n";
  auto up = c.Request("POST", "/v1/runs/" + id + "/prompts", prompts);
  if (!up.ok() || up->status != 200) return fail("uploading prompts: " + (up.ok() ? up->body : up.status().message()));
  if (auto s = c.Request("POST", "/v1/runs/" + id + ":start"); !s.ok() || s->status != 200) return fail("start");
  std::printf("run %s: %zu prompts, %d rounds\n", id.c_str(), qs.size(), cfg.value("rounds", 6));

  herd::demo::AnnotatorOptions ao;
  if (cfg.contains("eval") && cfg["eval"].is_object()) ao.checker = cfg["eval"].value("checker", ao.checker);
  herd::demo::SimulatedAnnotator annotator(ao);
  std::string last_line, state;
  json final_run;
  std::optional<Steady::time_point> poll_failing;
  while (true) {
    annotator.AnswerPending(c, id);
    auto r = herd::api::GetJson(c, "/v1/runs/" + id);
    if (!r.ok()) {
      // A client rides out a moment of trouble (a 5xx, a dropped
      // connection) as a person refreshing a page would; a minute of it is
      // a failure.
      if (!poll_failing) poll_failing = Steady::now();
      if (Since(*poll_failing) > 60) return fail("polling the run failed for 60 s: " + r.status().message());
      std::fprintf(stderr, "herd-demo: polling the run: %s; retrying\n", r.status().message().c_str());
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    poll_failing.reset();
    final_run = (*r)["run"];
    state = final_run["state"];
    std::ostringstream line;
    line << "round " << final_run["current_round"] << " " << final_run.value("current_stage", "");
    if (final_run.contains("round")) {
      for (const auto& s : final_run["round"]["stages"]) {
        if (s["stage"] == final_run["current_stage"]) line << " tasks " << s["tasks_done"] << "/" << s["tasks_total"];
      }
    }
    for (const auto& t : final_run["running_tasks"]) {
      const json& p = t["progress"];
      if (p.contains("loss")) line << " loss " << std::fixed << std::setprecision(3) << p["loss"].get<double>();
      if (p.contains("tokens_per_s")) line << " " << std::setprecision(0) << p["tokens_per_s"].get<double>() << " tok/s";
      break;
    }
    if (line.str() != last_line) {
      std::printf("[%6.1fs] %s\n", Since(t0), line.str().c_str());
      std::fflush(stdout);
      last_line = line.str();
    }
    if (state == "succeeded" || state == "failed" || state == "cancelled") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  if (state != "succeeded") return fail("run " + state + ": " + final_run.value("error", ""));

  auto rounds_json = herd::api::GetJson(c, "/v1/runs/" + id + "/rounds?page_size=100");
  if (!rounds_json.ok()) return fail("reading rounds: " + rounds_json.status().message());
  json report = herd::demo::BuildReport((*rounds_json)["rounds"]);
  report["run"] = id;
  report["annotations_answered"] = annotator.answered();
  json labels = json::object();
  for (const auto& [strength, counts] : annotator.by_strength()) {
    labels[strength] = {{"answered", counts.first}, {"flipped", counts.second}};
  }
  report["annotator_self_disagreement"] = labels;
  report["wall_s"] = {{"pretrain", pretrain_s}, {"total", Since(t0)}};
  std::ofstream(data + "/report.json") << report.dump(2) << "\n";
  std::ofstream(data + "/report.html") << herd::demo::RenderHtml(report);
  std::printf("\n%s\n", herd::demo::FormatTable(report).c_str());
  std::printf("total %.1f s (base pre-training %.1f s); %lld annotations answered\n", Since(t0), pretrain_s,
              (long long)annotator.answered());
  // The labels the RM is scored against are the annotator's, flips
  // included: this bounds the held-out accuracy any RM can reach.
  int64_t answered = 0, flipped = 0;
  for (const char* s : {"significantly_better", "better"}) {
    if (!annotator.by_strength().count(s)) continue;
    answered += annotator.by_strength().at(s).first;
    flipped += annotator.by_strength().at(s).second;
  }
  if (answered > 0) {
    std::printf("annotator self-disagreement on significantly_better/better answers: %.1f%% (%lld of %lld), so "
                "an RM agrees with at most ~%.1f%% of held-out labels\n",
                100.0 * flipped / answered, (long long)flipped, (long long)answered, 100.0 * (1.0 - double(flipped) / answered));
  }
  std::printf("report: %s/report.json\n        %s/report.html\n", data.c_str(), data.c_str());
  kill(herdd, SIGTERM);
  waitpid(herdd, nullptr, 0);
  return 0;
}
