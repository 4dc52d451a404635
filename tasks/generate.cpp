#include "tasks/generate.h"

namespace herd::tasks {

using nlohmann::json;

json ToJson(const GenerateSpec& s) {
  json j{{"policies", s.policies},
              {"policy_ids", s.policy_ids},
              {"prompts", ToJson(s.prompts)},
              {"temperature", s.temperature},
              {"top_p", s.top_p},
              {"max_new_tokens", s.max_new_tokens},
              {"kv_budget_bytes", s.kv_budget_bytes},
              {"seed", s.seed}};
  PutText(&j, s.text);
  return j;
}

json ToJson(const GenerateResult& r) {
  json a = json::array();
  for (const auto& x : r.responses) a.push_back({{"prompt_id", x.prompt_id}, {"a", x.a}, {"b", x.b}});
  return json{{"responses", a}};
}

Result<GenerateSpec> DecodeGenerateSpec(const json& text) {
  return DecodeWith<GenerateSpec>(text, "spec", [](FieldReader& r, GenerateSpec* s) {
    r.StrList("policies", &s->policies, {}, /*required=*/true);
    if (r.ok() && s->policies.size() != 2) r.Fail(r.Path("policies"), "must hold two checkpoint paths");
    r.StrList("policy_ids", &s->policy_ids);
    if (r.ok() && !s->policy_ids.empty() && s->policy_ids.size() != 2) {
      r.Fail(r.Path("policy_ids"), "must hold two checkpoint ids");
    }
    ReadPrompts(r, "prompts", &s->prompts, /*required=*/true);
    r.Num("temperature", &s->temperature, 0.0, 10.0);
    r.Num("top_p", &s->top_p, 1e-6, 1.0);
    r.Int("max_new_tokens", &s->max_new_tokens, 1, 1 << 20);
    r.Int("kv_budget_bytes", &s->kv_budget_bytes, 1 << 16, INT64_MAX);
    r.U64("seed", &s->seed);
    ReadText(r, &s->text);
  });
}

Result<GenerateResult> DecodeGenerateResult(const std::string& text) {
  return DecodeWith<GenerateResult>(text, "result", [](FieldReader& r, GenerateResult* x) {
    r.Objects("responses", [&](FieldReader& e, size_t) {
      GenerateResult::Response resp;
      e.Str("prompt_id", &resp.prompt_id, /*required=*/true);
      e.Str("a", &resp.a, /*required=*/true);
      e.Str("b", &resp.b, /*required=*/true);
      x->responses.push_back(std::move(resp));
    }, /*required=*/true);
  });
}

std::string Encode(const GenerateSpec& x) { return ToJson(x).dump(); }
std::string Encode(const GenerateResult& x) { return ToJson(x).dump(); }
Result<GenerateSpec> DecodeGenerateSpec(const std::string& text) {
  return ParseThen<GenerateSpec>(text, "spec", [](const json& j) { return DecodeGenerateSpec(j); });
}

}  // namespace herd::tasks
