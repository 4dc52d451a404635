#include "daemon/run_config.h"

#include <nlohmann/json.hpp>

#include <regex>
#include <sstream>
#include <set>

namespace herd::daemon {
namespace {

using nlohmann::json;

using ObjectReader = tasks::FieldReader;

const std::set<std::string> kStrengths = {"significantly_better", "better", "slightly_better",
                                          "marginally_better"};

using tasks::ReadHparams;

// Reads the hparams and variants of a stage; `extra` reads stage-specific fields.
template <typename Extra>
void ReadStage(const json& root, const std::string& key, StageConfig* st, Status* err, Extra extra) {
  auto it = root.find(key);
  if (it != root.end()) {
    ObjectReader r(*it, key, err);
    ReadHparams(r, &st->hp);
    extra(r);
    const json* vs = r.Find("variants");
    if (vs) {
      if (!vs->is_array() || vs->empty()) {
        r.Fail(key + ".variants", "must be a non-empty array of objects");
      } else {
        for (size_t i = 0; i < vs->size() && r.ok(); ++i) {
          std::string p = key + ".variants[" + std::to_string(i) + "]";
          ObjectReader vr((*vs)[i], p, err);
          Variant v{"v" + std::to_string(i), st->hp};
          vr.Str("name", &v.name);
          ReadHparams(vr, &v.hp);
          vr.Finish();
          st->variants.push_back(std::move(v));
        }
      }
    }
    r.Str("averaging", &st->averaging);
    if (r.ok() && st->averaging != "uniform" && st->averaging != "greedy") {
      r.Fail(key + ".averaging", "must be \"uniform\" or \"greedy\"");
    }
    const json* w = r.Find("average_weights");
    if (w) {
      if (!w->is_array()) {
        r.Fail(key + ".average_weights", "must be an array of numbers");
      } else {
        for (size_t i = 0; i < w->size(); ++i) {
          if (!(*w)[i].is_number() || (*w)[i].get<double>() < 0) {
            r.Fail(key + ".average_weights[" + std::to_string(i) + "]", "must be a number >= 0");
            break;
          }
          st->average_weights.push_back((*w)[i].get<double>());
        }
      }
    }
    r.Finish();
  }
  if (!err->ok()) return;
  if (st->variants.empty()) st->variants.push_back({"v0", st->hp});
  if (st->average_weights.empty()) {
    st->average_weights.assign(st->variants.size(), 1.0 / static_cast<double>(st->variants.size()));
  } else if (st->average_weights.size() != st->variants.size()) {
    *err = Status::InvalidArgument(key + ".average_weights: has " +
                                   std::to_string(st->average_weights.size()) +
                                   " entries for " + std::to_string(st->variants.size()) +
                                   " variants");
  } else {
    double sum = 0;
    for (double x : st->average_weights) sum += x;
    if (sum <= 0) {
      *err = Status::InvalidArgument(key + ".average_weights: must not sum to 0");
    } else {
      for (double& x : st->average_weights) x /= sum;
    }
  }
  std::set<std::string> names;
  for (const auto& v : st->variants) {
    if (!names.insert(v.name).second && err->ok()) {
      *err = Status::InvalidArgument(key + ".variants: duplicate name '" + v.name + "'");
    }
  }
}

template <typename F>
void ReadObject(const json& root, const std::string& key, Status* err, F body) {
  auto it = root.find(key);
  if (it == root.end() || !err->ok()) return;
  ObjectReader r(*it, key, err);
  body(r);
  r.Finish();
}

json HparamsJson(const TrainHparams& h) { return tasks::ToJson(h); }

json StageJson(const StageConfig& s) {
  json j = HparamsJson(s.hp);
  j["variants"] = json::array();
  for (const auto& v : s.variants) {
    json vj = HparamsJson(v.hp);
    vj["name"] = v.name;
    j["variants"].push_back(vj);
  }
  j["average_weights"] = s.average_weights;
  j["averaging"] = s.averaging;
  return j;
}

}  // namespace

Result<RunConfig> ParseRunConfig(const std::string& json_text) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Status::InvalidArgument("config: not valid JSON");
  RunConfig c;
  Status err;
  ObjectReader r(root, "", &err);
  r.Str("name", &c.name, /*required=*/true);
  r.Str("base_checkpoint", &c.base_checkpoint, /*required=*/true);
  r.Str("tokenizer", &c.tokenizer);
  r.Str("chat_format", &c.chat_format);
  // Paths reach system calls, which would stop at a NUL and open another file.
  if (err.ok() && c.base_checkpoint.find('\0') != std::string::npos) {
    r.Fail("base_checkpoint", "must not contain a NUL byte");
  }
  if (err.ok() && c.tokenizer.find('\0') != std::string::npos) {
    r.Fail("tokenizer", "must not contain a NUL byte");
  }
  if (err.ok() && !c.chat_format.empty() && c.chat_format != "llama3" && c.chat_format != "chatml") {
    r.Fail("chat_format", "must be one of llama3, chatml");
  }
  r.Int("rounds", &c.rounds, 1, 100);
  r.Int("max_attempts", &c.max_attempts, 1, 100);
  if (err.ok() && !std::regex_match(c.name, std::regex("[A-Za-z0-9._-]{1,64}"))) {
    r.Fail("name", "must match [A-Za-z0-9._-]{1,64}");
  }
  for (const char* k : {"reward_model", "rejection_sampling", "sft", "dpo", "annotation", "eval",
                        "workers", "retention"}) {
    r.Find(k);  // read below; marks them known
  }
  r.Finish();
  if (!err.ok()) return err;

  ReadStage(root, "reward_model", &c.reward_model, &err, [&](ObjectReader& s) {
    s.StrList("strengths", &c.reward_model.strengths, kStrengths);
    s.Bool("margin", &c.reward_model.margin);
    s.Num("held_out_fraction", &c.reward_model.held_out_fraction, 0.0, 0.9);
    s.Num("val_fraction", &c.reward_model.val_fraction, 0.0, 0.9);
    s.Str("init", &c.reward_model.init);
    if (s.ok() && c.reward_model.init != "base" && c.reward_model.init != "previous") {
      s.Fail("reward_model.init", "must be \"base\" or \"previous\"");
    }
  });
  ReadStage(root, "sft", &c.sft, &err, [](ObjectReader&) {});
  ReadStage(root, "dpo", &c.dpo, &err, [&](ObjectReader& s) {
    s.Bool("enabled", &c.dpo.enabled);
    s.Num("beta", &c.dpo.beta, 1e-6, 100.0);
    s.Num("nll_alpha", &c.dpo.nll_alpha, 0.0, 100.0);
    s.Bool("mask_formatting", &c.dpo.mask_formatting);
    s.StrList("strengths", &c.dpo.strengths, kStrengths);
    s.Int("recent_rounds", &c.dpo.recent_rounds, 1, 100);
  });
  ReadObject(root, "rejection_sampling", &err, [&](ObjectReader& s) {
    auto& rs = c.rejection_sampling;
    s.Bool("enabled", &rs.enabled);
    s.Int("k", &rs.k, 1, 64);
    s.Num("temperature", &rs.temperature, 0.0, 10.0);
    s.Num("top_p", &rs.top_p, 1e-6, 1.0);
    s.Int("top_k", &rs.top_k, 0, 1 << 20);
    s.Int("max_new_tokens", &rs.max_new_tokens, 1, 1 << 20);
    s.Int("prompts_per_round", &rs.prompts_per_round, 0, INT64_MAX);
    s.Int("prompts_per_task", &rs.prompts_per_task, 1, 1 << 20);
    s.Int("kv_budget_bytes", &rs.kv_budget_bytes, 1 << 16, INT64_MAX);
  });
  ReadObject(root, "annotation", &err, [&](ObjectReader& s) {
    auto& a = c.annotation;
    s.Int("comparisons_per_round", &a.comparisons_per_round, 0, 1 << 24);
    s.Int("min_answers", &a.min_answers, 0, 1 << 24);
    s.Str("default_strength", &a.default_strength);
    if (s.ok() && !kStrengths.count(a.default_strength)) {
      s.Fail("annotation.default_strength", "unknown strength '" + a.default_strength + "'");
    }
    s.Num("temperature", &a.temperature, 0.0, 10.0);
    s.Int("max_new_tokens", &a.max_new_tokens, 1, 1 << 20);
    s.Int("request_ttl_s", &a.request_ttl_s, 0, INT64_MAX / 1000);
  });
  ReadObject(root, "eval", &err, [&](ObjectReader& s) {
    s.Int("prompts", &c.eval.prompts, 0, INT64_MAX);
    s.Int("samples_per_prompt", &c.eval.samples_per_prompt, 0, 64);
    s.Str("checker", &c.eval.checker);
  });
  ReadObject(root, "workers", &err, [&](ObjectReader& s) {
    s.Str("device", &c.workers.device);
    if (s.ok() && c.workers.device != "cpu" && c.workers.device != "cuda") {
      s.Fail("workers.device", "must be \"cpu\" or \"cuda\"");
    }
    s.Int("min_memory_bytes", &c.workers.min_memory_bytes, 0, INT64_MAX);
  });
  ReadObject(root, "retention", &err,
             [&](ObjectReader& s) { s.Bool("keep_variants", &c.retention.keep_variants); });
  if (!err.ok()) return err;
  for (const auto& [key, st] : {std::pair<const char*, const StageConfig*>{"sft", &c.sft}, {"dpo", &c.dpo}}) {
    if (st->averaging == "greedy") {
      return Status::InvalidArgument(std::string(key) +
                                     ".averaging: \"greedy\" chooses by reward-model pair accuracy, so only "
                                     "reward_model supports it");
    }
  }
  const auto& rm = c.reward_model;
  if (rm.averaging == "greedy") {
    if (rm.val_fraction <= 0) {
      return Status::InvalidArgument("reward_model.val_fraction: must be > 0 when averaging is \"greedy\"");
    }
    if (rm.held_out_fraction + rm.val_fraction >= 1) {
      return Status::InvalidArgument("reward_model.val_fraction: held_out_fraction + val_fraction must be < 1");
    }
  }
  if (c.annotation.min_answers > c.annotation.comparisons_per_round) {
    return Status::InvalidArgument("annotation.min_answers: must be <= comparisons_per_round (" +
                                   std::to_string(c.annotation.comparisons_per_round) + ")");
  }
  return c;
}

std::string RunConfigToJson(const RunConfig& c) {
  json j;
  j["name"] = c.name;
  j["base_checkpoint"] = c.base_checkpoint;
  if (!c.tokenizer.empty()) j["tokenizer"] = c.tokenizer;
  if (!c.chat_format.empty()) j["chat_format"] = c.chat_format;
  j["rounds"] = c.rounds;
  j["max_attempts"] = c.max_attempts;
  j["reward_model"] = StageJson(c.reward_model);
  j["reward_model"]["strengths"] = c.reward_model.strengths;
  j["reward_model"]["margin"] = c.reward_model.margin;
  j["reward_model"]["held_out_fraction"] = c.reward_model.held_out_fraction;
  j["reward_model"]["val_fraction"] = c.reward_model.val_fraction;
  j["reward_model"]["init"] = c.reward_model.init;
  j["sft"] = StageJson(c.sft);
  j["dpo"] = StageJson(c.dpo);
  j["dpo"]["enabled"] = c.dpo.enabled;
  j["dpo"]["beta"] = c.dpo.beta;
  j["dpo"]["nll_alpha"] = c.dpo.nll_alpha;
  j["dpo"]["mask_formatting"] = c.dpo.mask_formatting;
  j["dpo"]["strengths"] = c.dpo.strengths;
  j["dpo"]["recent_rounds"] = c.dpo.recent_rounds;
  const auto& rs = c.rejection_sampling;
  j["rejection_sampling"] = {{"enabled", rs.enabled},
                             {"k", rs.k},
                             {"temperature", rs.temperature},
                             {"top_p", rs.top_p},
                             {"top_k", rs.top_k},
                             {"max_new_tokens", rs.max_new_tokens},
                             {"prompts_per_round", rs.prompts_per_round},
                             {"prompts_per_task", rs.prompts_per_task},
                             {"kv_budget_bytes", rs.kv_budget_bytes}};
  const auto& a = c.annotation;
  j["annotation"] = {{"comparisons_per_round", a.comparisons_per_round},
                     {"min_answers", a.min_answers},
                     {"default_strength", a.default_strength},
                     {"temperature", a.temperature},
                     {"max_new_tokens", a.max_new_tokens},
                     {"request_ttl_s", a.request_ttl_s}};
  j["eval"] = {{"prompts", c.eval.prompts},
               {"samples_per_prompt", c.eval.samples_per_prompt},
               {"checker", c.eval.checker}};
  j["workers"] = {{"device", c.workers.device}, {"min_memory_bytes", c.workers.min_memory_bytes}};
  j["retention"] = {{"keep_variants", c.retention.keep_variants}};
  return j.dump(2);
}

}  // namespace herd::daemon
