// generate, rejection_sample and eval (docs/tasks.md): the paged-KV
// generator for the policy, a shared-prompt reward-model scorer, and the
// checkers for tasks with verifiable answers.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "tasks/datasets.h"
#include "tasks/eval.h"
#include "tasks/generate.h"
#include "tasks/protocol.h"
#include "tasks/rejection_sample.h"
#include "workers/generate/generator.h"
#include "workers/generate/paged_llama.h"
#include "workers/generate/rejection_sampling.h"
#include "workers/model/chat_format.h"
#include "workers/runtime/checkers.h"
#include "workers/runtime/handlers.h"
#include "workers/runtime/task_io.h"
#include "workers/train/examples.h"

namespace herd::worker {

using nlohmann::json;

namespace {

struct SpecPrompt {
  std::string id;
  std::string text;                 // the last user message, for checkers
  std::vector<model::ChatMessage> messages;
  std::vector<int32_t> tokens;      // formatted, ending in the assistant header
};

Result<std::vector<SpecPrompt>> Prompts(const model::ChatFormatter& format,
                                        const std::vector<tasks::Prompt>& prompts) {
  std::vector<SpecPrompt> out;
  model::ChatFormatOptions fo;
  fo.add_generation_prompt = true;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::string where = "spec.prompts[" + std::to_string(i) + "]";
    SpecPrompt sp;
    sp.id = prompts[i].id;
    HERD_ASSIGN_OR_RETURN(sp.messages, ChatMessages(prompts[i].messages, where + ".messages"));
    sp.text = sp.messages.back().content;  // the contract has no empty conversations
    HERD_ASSIGN_OR_RETURN(model::ChatTokens ct, format.Format(sp.messages, fo));
    sp.tokens = ct.ids;
    out.push_back(std::move(sp));
  }
  return out;
}

// A policy ready to sample: weights (held by a LlamaModel), the paged view
// of them, and a generator with its KV pool.
struct Policy {
  std::unique_ptr<model::LlamaModel> weights;
  std::unique_ptr<generate::PagedLlama> paged;
  std::unique_ptr<generate::Generator> gen;
};

Result<std::unique_ptr<Policy>> LoadPolicy(const std::string& dir, int64_t kv_budget) {
  auto p = std::make_unique<Policy>();
  HERD_ASSIGN_OR_RETURN(p->weights, LoadModel(dir, 1, 8));
  HERD_ASSIGN_OR_RETURN(generate::PagedLlama pl,
                        generate::PagedLlama::Create(p->weights->config(), p->weights->ParamViews()));
  p->paged = std::make_unique<generate::PagedLlama>(std::move(pl));
  generate::GeneratorOptions go;
  go.kv_budget_bytes = kv_budget;
  HERD_ASSIGN_OR_RETURN(p->gen, generate::Generator::Create(p->paged.get(), go));
  return p;
}

generate::SamplingParams Sampling(const model::ChatFormatter& format, double temperature, double top_p,
                                  int64_t top_k, int64_t max_new_tokens) {
  generate::SamplingParams sp;
  sp.temperature = static_cast<float>(temperature);
  sp.top_p = static_cast<float>(top_p);
  sp.top_k = static_cast<int32_t>(top_k);
  sp.max_new_tokens = static_cast<int32_t>(max_new_tokens);
  sp.eot_id = format.end_of_turn();
  return sp;
}

// K samples per prompt: [prompt][idx].
Result<std::vector<std::vector<generate::GeneratedSample>>> Sample(
    Policy& p, const std::vector<SpecPrompt>& prompts, int32_t k, const generate::SamplingParams& sp,
    uint64_t seed) {
  for (size_t i = 0; i < prompts.size(); ++i) {
    generate::GenerationRequest r;
    r.prompt = prompts[i].tokens;
    r.num_samples = k;
    r.sampling = sp;
    r.seed = generate::PromptSeed(seed, static_cast<int64_t>(i));
    auto id = p.gen->Submit(std::move(r));
    if (!id.ok()) {
      p.gen->ClearQueued();
      return id.status().WithContext("prompt " + prompts[i].id);
    }
  }
  HERD_ASSIGN_OR_RETURN(auto samples, p.gen->Run());
  std::vector<std::vector<generate::GeneratedSample>> out(prompts.size());
  for (auto& s : samples) out[static_cast<size_t>(s.request)].push_back(std::move(s));
  return out;
}

// Reward model scoring: one packed row per prompt with every response a
// child segment of the prompt (the prompt is computed once), or one row
// per response when that row would not fit.
class RmScorer final : public generate::ResponseScorer {
 public:
  static Result<std::unique_ptr<RmScorer>> Load(const std::string& dir, std::string id, int32_t end_of_turn,
                                                int64_t max_prompt, int64_t max_response, int64_t k) {
    auto s = std::unique_ptr<RmScorer>(new RmScorer());
    s->id_ = std::move(id);
    s->eot_ = end_of_turn;
    s->shared_ = max_prompt + k * max_response <= 4096;
    s->T_ = s->shared_ ? max_prompt + k * max_response : max_prompt + max_response;
    s->B_ = s->shared_ ? 1 : k;
    HERD_ASSIGN_OR_RETURN(s->rm_, LoadModel(dir, s->B_, s->T_));
    if (!s->rm_->config().is_reward_model) return Status::InvalidArgument("spec.rm: " + dir + " is not a reward model");
    return s;
  }
  std::string id() const override { return id_; }

  Result<std::vector<float>> ScoreResponses(const std::vector<int32_t>& prompt,
                                            const std::vector<std::vector<int32_t>>& responses) override {
    std::vector<float> scores(responses.size());
    size_t next = 0;
    while (next < responses.size()) {
      // Fill up to B_ rows; each starts with the prompt.
      batch_.Resize(B_, T_);
      std::vector<std::pair<size_t, int64_t>> read;  // (response, flat index of its last token)
      for (int64_t b = 0; b < B_ && next < responses.size(); ++b) {
        int64_t pos = 0;
        auto put = [&](int32_t tok, int32_t seg, int32_t parent, int32_t position) {
          const int64_t at = b * T_ + pos++;
          batch_.tokens[at] = tok;
          batch_.segments[at] = seg;
          batch_.parents[at] = parent;
          batch_.positions[at] = position;
          return at;
        };
        if (static_cast<int64_t>(prompt.size()) >= T_) return Status::InvalidArgument("prompt longer than the RM row");
        for (size_t i = 0; i < prompt.size(); ++i) put(prompt[i], 0, -1, static_cast<int32_t>(i));
        int32_t seg = 1;
        while (next < responses.size()) {
          std::vector<int32_t> r = responses[next];
          if (r.empty() || r.back() != eot_) r.push_back(eot_);  // as trained
          if (pos + static_cast<int64_t>(r.size()) > T_) {
            if (seg == 1) r.resize(static_cast<size_t>(T_ - pos));  // a response alone: cut to fit
            else break;
          }
          int64_t last = 0;
          for (size_t i = 0; i < r.size(); ++i) {
            last = put(r[i], seg, 0, static_cast<int32_t>(prompt.size() + i));
          }
          read.emplace_back(next++, last);
          ++seg;
          if (!shared_) break;
        }
      }
      HERD_RETURN_IF_ERROR(rm_->Forward(batch_));
      for (const auto& [i, at] : read) {
        const float v = rm_->values()[at];
        if (!std::isfinite(v)) return Status::Internal("reward model gave a non-finite score");
        scores[i] = v;
      }
    }
    return scores;
  }

 private:
  RmScorer() = default;
  std::string id_;
  int32_t eot_ = -1;
  bool shared_ = true;
  int64_t B_ = 1, T_ = 0;
  std::unique_ptr<model::LlamaModel> rm_;
  model::PackedBatch batch_;
};

int64_t MaxPromptLen(const std::vector<SpecPrompt>& ps) {
  int64_t m = 1;
  for (const auto& p : ps) m = std::max<int64_t>(m, static_cast<int64_t>(p.tokens.size()));
  return m;
}

Result<json> Generate(TaskContext& ctx) {
  HERD_ASSIGN_OR_RETURN(tasks::GenerateSpec spec, tasks::DecodeGenerateSpec(ctx.spec()));
  // Both policies come from the same base: one tokenizer and format.
  HERD_ASSIGN_OR_RETURN(model::ChatFormatter format, LoadFormatter(spec.policies.at(0), spec.text));
  HERD_ASSIGN_OR_RETURN(auto prompts, Prompts(format, spec.prompts));
  auto sp = Sampling(format, spec.temperature, spec.top_p, 0, spec.max_new_tokens);
  std::vector<std::vector<std::string>> texts(2);
  for (int m = 0; m < 2; ++m) {
    HERD_ASSIGN_OR_RETURN(auto pol, LoadPolicy(spec.policies[static_cast<size_t>(m)], spec.kv_budget_bytes));
    HERD_ASSIGN_OR_RETURN(auto out, Sample(*pol, prompts, 1, sp, spec.seed + 7919 * static_cast<uint64_t>(m)));
    for (auto& per : out) texts[m].push_back(per.empty() ? "" : format.Text(per[0].tokens));
    ctx.Report({{"step", m + 1}, {"total_steps", 2}, {"stage", "generate"}});
    if (ctx.ShouldStop()) return Status::Aborted("stopped");
  }
  tasks::GenerateResult res;
  for (size_t i = 0; i < prompts.size(); ++i) res.responses.push_back({prompts[i].id, texts[0][i], texts[1][i]});
  return tasks::ToJson(res);
}

Result<json> RejectionSampleTask(TaskContext& ctx) {
  HERD_ASSIGN_OR_RETURN(tasks::RejectionSampleSpec spec, tasks::DecodeRejectionSampleSpec(ctx.spec()));
  HERD_ASSIGN_OR_RETURN(model::ChatFormatter format, LoadFormatter(spec.policy, spec.text));
  HERD_ASSIGN_OR_RETURN(auto prompts, Prompts(format, spec.prompts));
  const int32_t k = static_cast<int32_t>(spec.k);
  auto sp = Sampling(format, spec.temperature, spec.top_p, spec.top_k, spec.max_new_tokens);
  HERD_ASSIGN_OR_RETURN(auto pol, LoadPolicy(spec.policy, spec.kv_budget_bytes));
  HERD_ASSIGN_OR_RETURN(auto scorer, RmScorer::Load(spec.rm, spec.rm_id, format.end_of_turn(), MaxPromptLen(prompts),
                                                    sp.max_new_tokens + 1, k));
  generate::RejectionSamplingOptions ro;
  ro.num_samples = k;
  ro.sampling = sp;
  ro.seed = spec.seed;
  ro.policy_id = spec.policy_id;
  tasks::RejectionSampleResult res;
  int64_t tokens = 0;
  auto t0 = std::chrono::steady_clock::now();
  // In chunks, so heartbeats carry progress and a cancel is seen soon.
  const size_t chunk = 8;
  for (size_t b = 0; b < prompts.size(); b += chunk) {
    std::vector<generate::RejectionPrompt> rp;
    for (size_t i = b; i < std::min(prompts.size(), b + chunk); ++i) {
      rp.push_back({static_cast<int64_t>(i), prompts[i].tokens});
    }
    HERD_ASSIGN_OR_RETURN(auto rows, generate::RejectionSample(*pol->gen, *scorer, rp, ro,
                                                                [&](const std::vector<int32_t>& t) { return format.Text(t); }));
    for (auto& r : rows) {
      tokens += static_cast<int64_t>(r.tokens.size());
      tasks::RejectionSampleResult::Sample s;
      s.prompt_id = prompts[static_cast<size_t>(r.prompt_id)].id;
      s.idx = static_cast<uint32_t>(r.idx);
      s.tokens = std::move(r.tokens);
      s.text = std::move(r.text);
      s.logprob = r.logprob_sum;
      s.rm_score = r.score;
      s.seed = r.seed;
      res.samples.push_back(std::move(s));
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ctx.Report({{"step", std::min(prompts.size(), b + chunk)}, {"total_steps", prompts.size()},
                {"tokens_per_s", secs > 0 ? static_cast<double>(tokens) / secs : 0.0},
                {"stage", "rejection_sampling"}});
    if (ctx.ShouldStop()) return Status::Aborted("stopped");
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.metrics = {{"tokens", tokens}, {"tokens_per_s", secs > 0 ? static_cast<double>(tokens) / secs : 0.0}};
  return tasks::ToJson(res);
}

Result<json> Eval(TaskContext& ctx) {
  HERD_ASSIGN_OR_RETURN(tasks::EvalSpec spec, tasks::DecodeEvalSpec(ctx.spec()));
  // The policy, the previous one, the base and the RM share one format.
  HERD_ASSIGN_OR_RETURN(model::ChatFormatter format, LoadFormatter(spec.policy, spec.text));
  HERD_ASSIGN_OR_RETURN(auto prompts, Prompts(format, spec.prompts));
  const Checker* checker = nullptr;
  if (!spec.checker.empty()) {
    checker = FindChecker(spec.checker);
    if (!checker) return Status::InvalidArgument("spec.checker: unknown checker '" + spec.checker + "'");
  }
  const uint64_t seed = spec.seed;
  const int64_t kv = spec.kv_budget_bytes;
  auto greedy = Sampling(format, 0.0, 1.0, 0, spec.max_new_tokens);
  auto sampled = Sampling(format, spec.temperature, 1.0, 0, spec.max_new_tokens);
  const int32_t n_sampled = static_cast<int32_t>(spec.samples_per_prompt);
  json m = json::object();
  m["prompts"] = prompts.size();

  // Greedy responses of the policy, the previous policy and the base.
  std::map<std::string, std::vector<std::string>> greedy_text;
  const std::pair<const char*, const std::string*> models[] = {
      {"policy", &spec.policy}, {"previous", &spec.previous}, {"base", &spec.base}};
  for (const auto& [which, dir] : models) {
    if (dir->empty()) continue;
    HERD_ASSIGN_OR_RETURN(auto pol, LoadPolicy(*dir, kv));
    HERD_ASSIGN_OR_RETURN(auto g, Sample(*pol, prompts, 1, greedy, seed));
    auto& texts = greedy_text[which];
    for (auto& per : g) texts.push_back(per.empty() ? "" : format.Text(per[0].tokens));
    if (std::string(which) == "policy" && checker && n_sampled > 0) {
      HERD_ASSIGN_OR_RETURN(auto s, Sample(*pol, prompts, n_sampled, sampled, seed + 1));
      double acc = 0;
      int64_t n = 0;
      for (size_t i = 0; i < prompts.size(); ++i) {
        for (const auto& x : s[i]) {
          acc += checker->Score(prompts[i].text, format.Text(x.tokens)) >= 1.0;
          ++n;
        }
      }
      m["accuracy_sampled"] = n ? acc / static_cast<double>(n) : 0.0;
    }
    ctx.Report({{"stage", "eval"}, {"model", which}});
    if (ctx.ShouldStop()) return Status::Aborted("stopped");
  }
  auto accuracy = [&](const std::vector<std::string>& texts) {
    double a = 0;
    for (size_t i = 0; i < prompts.size(); ++i) a += checker->Score(prompts[i].text, texts[i]) >= 1.0;
    return prompts.empty() ? 0.0 : a / static_cast<double>(prompts.size());
  };
  if (checker) {
    for (const auto& [which, texts] : greedy_text) {
      m[std::string(which == "policy" ? "" : which + "_") + "accuracy_greedy"] = accuracy(texts);
    }
  }

  // The reward model: held-out pair accuracy, and scores of greedy answers.
  std::unique_ptr<RmScorer> rm;
  if (!spec.rm.empty()) {
    HERD_ASSIGN_OR_RETURN(rm, RmScorer::Load(spec.rm, "", format.end_of_turn(), 2 * MaxPromptLen(prompts) + 64,
                                             static_cast<int64_t>(greedy.max_new_tokens) * 4 + 64, 2));
  }
  std::vector<double> rm_policy, rm_prev;
  if (rm) {
    for (const char* which : {"policy", "previous"}) {
      if (!greedy_text.count(which)) continue;
      auto& out = std::string(which) == "policy" ? rm_policy : rm_prev;
      for (size_t i = 0; i < prompts.size(); ++i) {
        auto pr = train::FormatResponse(format, prompts[i].messages, greedy_text[which][i]);
        if (!pr.ok()) return pr.status();
        HERD_ASSIGN_OR_RETURN(auto s, rm->ScoreResponses(pr->prompt, {pr->response}));
        out.push_back(s[0]);
      }
    }
    if (!rm_policy.empty()) {
      double sum = 0;
      for (double x : rm_policy) sum += x;
      m["rm_score_greedy"] = sum / static_cast<double>(rm_policy.size());
    }
    const std::string& heldout = spec.rm_heldout;
    if (!heldout.empty()) {
      HERD_ASSIGN_OR_RETURN(auto rows, tasks::ReadPairRows(heldout));
      double right = 0;
      int64_t n = 0;
      for (const auto& r : rows) {
        HERD_ASSIGN_OR_RETURN(auto pm, ChatMessages(r.prompt, heldout + " prompt"));
        auto c = train::FormatResponse(format, pm, r.chosen);
        auto x = train::FormatResponse(format, pm, r.rejected);
        if (!c.ok() || !x.ok()) continue;
        HERD_ASSIGN_OR_RETURN(auto s, rm->ScoreResponses(c->prompt, {c->response, x->response}));
        right += s[0] > s[1];
        ++n;
      }
      if (n) m["rm_heldout_accuracy"] = right / static_cast<double>(n);
      m["rm_heldout_pairs"] = n;
    }
  }
  // Win rate against the previous round's model: by the checker when the
  // task has one, else by the reward model; ties count half.
  if (greedy_text.count("previous") && (checker || (!rm_policy.empty() && !rm_prev.empty()))) {
    double w = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      double a = checker ? checker->Score(prompts[i].text, greedy_text["policy"][i]) : rm_policy[i];
      double b = checker ? checker->Score(prompts[i].text, greedy_text["previous"][i]) : rm_prev[i];
      w += a > b ? 1.0 : a == b ? 0.5 : 0.0;
    }
    m["win_rate_vs_previous"] = prompts.empty() ? 0.0 : w / static_cast<double>(prompts.size());
  }
  tasks::EvalResult res;
  res.metrics = std::move(m);
  return tasks::ToJson(res);
}

}  // namespace

void AddGenerateHandlers(Worker& w) {
  w.AddHandler(tasks::kGenerate, Generate);
  w.AddHandler(tasks::kRejectionSample, RejectionSampleTask);
  w.AddHandler(tasks::kEval, Eval);
}

}  // namespace herd::worker
