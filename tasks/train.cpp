#include "tasks/train.h"

#include <set>

namespace herd::tasks {

using nlohmann::json;

void ReadHparams(FieldReader& r, TrainHparams* hp) {
  r.Num("lr", &hp->lr, 0.0, 1.0);
  r.Num("min_lr_ratio", &hp->min_lr_ratio, 0.0, 1.0);
  r.Int("warmup_steps", &hp->warmup_steps, 0, 10'000'000);
  r.Int("steps", &hp->steps, 1, 10'000'000);
  r.Int("batch_rows", &hp->batch_rows, 1, 1 << 20);
  r.Int("seq_len", &hp->seq_len, 8, 1 << 20);
  r.Num("weight_decay", &hp->weight_decay, 0.0, 10.0);
  r.Num("grad_clip", &hp->grad_clip, 0.0, 1e9);
  r.Int("seed", &hp->seed, 0, INT64_MAX);
  r.Str("schedule", &hp->schedule);
  if (r.ok() && hp->schedule != "cosine" && hp->schedule != "linear") {
    r.Fail(r.Path("schedule"), "must be \"cosine\" or \"linear\"");
  }
}

json ToJson(const TrainHparams& h) {
  return {{"lr", h.lr},
          {"min_lr_ratio", h.min_lr_ratio},
          {"warmup_steps", h.warmup_steps},
          {"steps", h.steps},
          {"batch_rows", h.batch_rows},
          {"seq_len", h.seq_len},
          {"weight_decay", h.weight_decay},
          {"grad_clip", h.grad_clip},
          {"seed", h.seed},
          {"schedule", h.schedule}};
}

json ToJson(const TrainSpec& s) {
  json j = {{"base", s.base},
            {"dataset", s.dataset},
            {"out", s.out},
            {"checkpoint_id", s.checkpoint_id},
            {"variant", s.variant},
            {"hparams", ToJson(s.hparams)},
            {"parents", s.parents},
            {"datasets", s.datasets},
            {"strengths", s.strengths},
            {"margin", s.margin},
            {"beta", s.beta},
            {"nll_alpha", s.nll_alpha},
            {"mask_formatting", s.mask_formatting}};
  if (!s.heldout.empty()) j["heldout"] = s.heldout;
  if (!s.ref.empty()) j["ref"] = s.ref;
  PutText(&j, s.text);
  return j;
}

json ToJson(const TrainResult& r) {
  return json{{"checkpoint", ToJson(r.checkpoint)}, {"metrics", r.metrics}};
}

Result<TrainSpec> DecodeTrainSpec(const json& text) {
  return DecodeWith<TrainSpec>(text, "spec", [](FieldReader& r, TrainSpec* s) {
    const std::set<std::string> strengths(AllStrengths().begin(), AllStrengths().end());
    r.Str("base", &s->base, /*required=*/true);
    r.Str("dataset", &s->dataset, /*required=*/true);
    r.Str("out", &s->out, /*required=*/true);
    r.Str("checkpoint_id", &s->checkpoint_id, /*required=*/true);
    r.Str("variant", &s->variant);
    r.Nested("hparams", [&](FieldReader& h) { ReadHparams(h, &s->hparams); });
    r.StrList("parents", &s->parents);
    r.StrList("datasets", &s->datasets);
    r.StrList("strengths", &s->strengths, strengths);
    r.Bool("margin", &s->margin);
    r.Str("heldout", &s->heldout);
    r.Str("ref", &s->ref);
    r.Num("beta", &s->beta, 1e-6, 100.0);
    r.Num("nll_alpha", &s->nll_alpha, 0.0, 100.0);
    r.Bool("mask_formatting", &s->mask_formatting);
    ReadText(r, &s->text);
  });
}

Result<TrainResult> DecodeTrainResult(const std::string& text) {
  return DecodeWith<TrainResult>(text, "result", [](FieldReader& r, TrainResult* x) {
    r.Nested("checkpoint", [&](FieldReader& c) { Read(c, &x->checkpoint); }, /*required=*/true);
    r.Object("metrics", &x->metrics);
  });
}

std::string Encode(const TrainSpec& x) { return ToJson(x).dump(); }
std::string Encode(const TrainResult& x) { return ToJson(x).dump(); }
Result<TrainSpec> DecodeTrainSpec(const std::string& text) {
  return ParseThen<TrainSpec>(text, "spec", [](const json& j) { return DecodeTrainSpec(j); });
}

}  // namespace herd::tasks
