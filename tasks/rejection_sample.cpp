#include "tasks/rejection_sample.h"

namespace herd::tasks {

using nlohmann::json;

json ToJson(const RejectionSampleSpec& s) {
  json j{{"policy", s.policy},
              {"policy_id", s.policy_id},
              {"rm", s.rm},
              {"rm_id", s.rm_id},
              {"prompts", ToJson(s.prompts)},
              {"k", s.k},
              {"temperature", s.temperature},
              {"top_p", s.top_p},
              {"top_k", s.top_k},
              {"max_new_tokens", s.max_new_tokens},
              {"kv_budget_bytes", s.kv_budget_bytes},
              {"seed", s.seed}};
  PutText(&j, s.text);
  return j;
}

json ToJson(const RejectionSampleResult& r) {
  json a = json::array();
  for (const auto& s : r.samples) {
    json j = {{"prompt_id", s.prompt_id}, {"idx", s.idx},         {"tokens", s.tokens},
              {"text", s.text},           {"logprob", s.logprob}, {"seed", s.seed}};
    if (s.rm_score) j["rm_score"] = *s.rm_score;
    a.push_back(std::move(j));
  }
  return json{{"samples", a}, {"metrics", r.metrics}};
}

Result<RejectionSampleSpec> DecodeRejectionSampleSpec(const json& text) {
  return DecodeWith<RejectionSampleSpec>(text, "spec", [](FieldReader& r, RejectionSampleSpec* s) {
    r.Str("policy", &s->policy, /*required=*/true);
    r.Str("policy_id", &s->policy_id);
    r.Str("rm", &s->rm, /*required=*/true);
    r.Str("rm_id", &s->rm_id);
    ReadPrompts(r, "prompts", &s->prompts, /*required=*/true);
    r.Int("k", &s->k, 1, 1024);
    r.Num("temperature", &s->temperature, 0.0, 10.0);
    r.Num("top_p", &s->top_p, 1e-6, 1.0);
    r.Int("top_k", &s->top_k, 0, 1 << 20);
    r.Int("max_new_tokens", &s->max_new_tokens, 1, 1 << 20);
    r.Int("kv_budget_bytes", &s->kv_budget_bytes, 1 << 16, INT64_MAX);
    r.U64("seed", &s->seed);
    ReadText(r, &s->text);
  });
}

Result<RejectionSampleResult> DecodeRejectionSampleResult(const std::string& text) {
  return DecodeWith<RejectionSampleResult>(text, "result", [](FieldReader& r, RejectionSampleResult* x) {
    r.Objects("samples", [&](FieldReader& e, size_t) {
      RejectionSampleResult::Sample s;
      e.Str("prompt_id", &s.prompt_id, /*required=*/true);
      int64_t idx = 0;
      e.Int("idx", &idx, 0, UINT32_MAX, /*required=*/true);
      s.idx = static_cast<uint32_t>(idx);
      e.I32List("tokens", &s.tokens, /*required=*/true);
      e.Str("text", &s.text, /*required=*/true);
      e.Num("logprob", &s.logprob, -1e300, 1e300);
      e.OptNum("rm_score", &s.rm_score);
      e.U64("seed", &s.seed);
      x->samples.push_back(std::move(s));
    }, /*required=*/true);
    r.Object("metrics", &x->metrics);
  });
}

std::string Encode(const RejectionSampleSpec& x) { return ToJson(x).dump(); }
std::string Encode(const RejectionSampleResult& x) { return ToJson(x).dump(); }
Result<RejectionSampleSpec> DecodeRejectionSampleSpec(const std::string& text) {
  return ParseThen<RejectionSampleSpec>(text, "spec", [](const json& j) { return DecodeRejectionSampleSpec(j); });
}

}  // namespace herd::tasks
