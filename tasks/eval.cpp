#include "tasks/eval.h"

namespace herd::tasks {

using nlohmann::json;

json ToJson(const EvalSpec& s) {
  json j{{"policy", s.policy},
              {"previous", s.previous},
              {"base", s.base},
              {"rm", s.rm},
              {"rm_heldout", s.rm_heldout},
              {"prompts", ToJson(s.prompts)},
              {"checker", s.checker},
              {"samples_per_prompt", s.samples_per_prompt},
              {"max_new_tokens", s.max_new_tokens},
              {"temperature", s.temperature},
              {"kv_budget_bytes", s.kv_budget_bytes},
              {"seed", s.seed}};
  PutText(&j, s.text);
  return j;
}

json ToJson(const EvalResult& r) { return json{{"metrics", r.metrics}}; }

Result<EvalSpec> DecodeEvalSpec(const json& text) {
  return DecodeWith<EvalSpec>(text, "spec", [](FieldReader& r, EvalSpec* s) {
    r.Str("policy", &s->policy, /*required=*/true);
    r.Str("previous", &s->previous);
    r.Str("base", &s->base);
    r.Str("rm", &s->rm);
    r.Str("rm_heldout", &s->rm_heldout);
    ReadPrompts(r, "prompts", &s->prompts, /*required=*/true);
    r.Str("checker", &s->checker);
    r.Int("samples_per_prompt", &s->samples_per_prompt, 0, 64);
    r.Int("max_new_tokens", &s->max_new_tokens, 1, 1 << 20);
    r.Num("temperature", &s->temperature, 0.0, 10.0);
    r.Int("kv_budget_bytes", &s->kv_budget_bytes, 1 << 16, INT64_MAX);
    r.U64("seed", &s->seed);
    ReadText(r, &s->text);
  });
}

Result<EvalResult> DecodeEvalResult(const std::string& text) {
  return DecodeWith<EvalResult>(text, "result", [](FieldReader& r, EvalResult* x) {
    r.Object("metrics", &x->metrics);
  });
}

std::string Encode(const EvalSpec& x) { return ToJson(x).dump(); }
std::string Encode(const EvalResult& x) { return ToJson(x).dump(); }
Result<EvalSpec> DecodeEvalSpec(const std::string& text) {
  return ParseThen<EvalSpec>(text, "spec", [](const json& j) { return DecodeEvalSpec(j); });
}

}  // namespace herd::tasks
