#include "tasks/average.h"

namespace herd::tasks {

using nlohmann::json;

json ToJson(const AverageSpec& s) {
  json j = {{"inputs", s.inputs},         {"weights", s.weights},   {"out", s.out},
            {"checkpoint_id", s.checkpoint_id}, {"parents", s.parents}, {"datasets", s.datasets}};
  if (s.select) {
    j["select"] = {{"dataset", s.select->dataset},
                   {"strengths", s.select->strengths},
                   {"batch_rows", s.select->batch_rows},
                   {"seq_len", s.select->seq_len}};
  }
  return j;
}

json ToJson(const AverageResult& r) {
  json j = {{"checkpoint", ToJson(r.checkpoint)}, {"metrics", r.metrics}};
  if (!r.weights.empty()) j["weights"] = r.weights;
  return j;
}

Result<AverageSpec> DecodeAverageSpec(const json& text) {
  auto s = DecodeWith<AverageSpec>(text, "spec", [](FieldReader& r, AverageSpec* s) {
    r.StrList("inputs", &s->inputs, {}, /*required=*/true);
    if (r.ok() && s->inputs.empty()) r.Fail(r.Path("inputs"), "must not be empty");
    r.NumList("weights", &s->weights);
    if (r.ok() && !s->weights.empty() && s->weights.size() != s->inputs.size()) {
      r.Fail(r.Path("weights"), "must have one entry per input (" + std::to_string(s->inputs.size()) + ")");
    }
    r.Str("out", &s->out, /*required=*/true);
    r.Str("checkpoint_id", &s->checkpoint_id, /*required=*/true);
    r.StrList("parents", &s->parents);
    r.StrList("datasets", &s->datasets);
    r.Nested("select", [&](FieldReader& q) {
      AverageSelect sel;
      q.Str("dataset", &sel.dataset, /*required=*/true);
      q.StrList("strengths", &sel.strengths, {AllStrengths().begin(), AllStrengths().end()});
      q.Int("batch_rows", &sel.batch_rows, 1, 1 << 20);
      q.Int("seq_len", &sel.seq_len, 8, 1 << 20);
      s->select = std::move(sel);
    });
  });
  return s;
}

Result<AverageResult> DecodeAverageResult(const std::string& text) {
  return DecodeWith<AverageResult>(text, "result", [](FieldReader& r, AverageResult* x) {
    r.Nested("checkpoint", [&](FieldReader& c) { Read(c, &x->checkpoint); }, /*required=*/true);
    r.NumList("weights", &x->weights);
    r.Object("metrics", &x->metrics);
  });
}

std::string Encode(const AverageSpec& x) { return ToJson(x).dump(); }
std::string Encode(const AverageResult& x) { return ToJson(x).dump(); }
Result<AverageSpec> DecodeAverageSpec(const std::string& text) {
  return ParseThen<AverageSpec>(text, "spec", [](const json& j) { return DecodeAverageSpec(j); });
}

}  // namespace herd::tasks
