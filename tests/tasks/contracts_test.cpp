// The task contracts: every spec and result survives Encode → Decode, the
// defaults are the structs', and a bad field is named in the error.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tasks/average.h"
#include "tasks/datasets.h"
#include "tasks/eval.h"
#include "tasks/generate.h"
#include "tasks/protocol.h"
#include "tasks/rejection_sample.h"
#include "tasks/train.h"

namespace herd::tasks {
namespace {

using nlohmann::json;

std::vector<Prompt> TwoPrompts() {
  return {{"p1", {{"system", "be brief"}, {"user", "1+1"}}}, {"p2", {{"user", "2+2"}}}};
}

TEST(Contracts, GenerateRoundTrips) {
  GenerateSpec s{.policies = {"/a", "/b"}, .policy_ids = {"ck1", "ck2"}, .prompts = TwoPrompts(),
                 .temperature = 0.9, .top_p = 0.5, .max_new_tokens = 7, .kv_budget_bytes = 1 << 20,
                 .seed = 18446744073709551557ull};
  auto back = DecodeGenerateSpec(Encode(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
  GenerateResult r{{{"p1", "two", "2"}, {"p2", "four", "4"}}};
  auto rb = DecodeGenerateResult(Encode(r));
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(*rb, r);
}

TEST(Contracts, RejectionSampleRoundTrips) {
  RejectionSampleSpec s{.policy = "/p", .policy_id = "ck", .rm = "/rm", .rm_id = "rm1", .prompts = TwoPrompts(),
                        .k = 4, .temperature = 0.7, .top_p = 0.9, .top_k = 5, .max_new_tokens = 32,
                        .kv_budget_bytes = 1 << 24, .seed = 3};
  auto back = DecodeRejectionSampleSpec(Encode(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
  RejectionSampleResult r;
  r.samples = {{"p1", 0, {1, 2, 3}, "ab", -1.25, 0.5, 11}, {"p1", 1, {4}, "c", 0, std::nullopt, 12}};
  r.metrics = {{"tokens", 4}};
  auto rb = DecodeRejectionSampleResult(Encode(r));
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(rb->samples, r.samples);
  EXPECT_EQ(rb->metrics, r.metrics);
}

TEST(Contracts, TrainRoundTripsAndDefaultsAreTheStructs) {
  TrainSpec s;
  s.base = "/base";
  s.dataset = "/d.jsonl";
  s.out = "/out";
  s.checkpoint_id = "ck9";
  s.variant = "v1";
  s.hparams.lr = 3e-4;
  s.hparams.schedule = "linear";
  s.parents = {"ck0"};
  s.datasets = {"dpo:r2"};
  s.ref = "/ref";
  s.beta = 0.5;
  auto back = DecodeTrainSpec(Encode(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);

  // Only the required fields: everything else is the struct's default.
  auto min = DecodeTrainSpec(std::string(R"({"base": "/b", "dataset": "/d", "out": "/o", "checkpoint_id": "c"})"));
  ASSERT_TRUE(min.ok()) << min.status().ToString();
  EXPECT_EQ(min->hparams, TrainHparams{});
  EXPECT_EQ(min->hparams.batch_rows, 8);
  EXPECT_EQ(min->hparams.seq_len, 512);
  EXPECT_EQ(min->hparams.seed, 1);
  EXPECT_EQ(min->strengths, (std::vector<std::string>{"significantly_better", "better"}));
  EXPECT_DOUBLE_EQ(min->nll_alpha, 0.2);

  TrainResult r{{"abc", 42, "def"}, {{"loss", 0.5}, {"eval", {{"accuracy", 1.0}}}}};
  auto rb = DecodeTrainResult(Encode(r));
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(rb->checkpoint, r.checkpoint);
  EXPECT_EQ(rb->metrics, r.metrics);
}

TEST(Contracts, AverageRoundTripsWithAndWithoutSelection) {
  AverageSpec s{.inputs = {"/a", "/b"}, .weights = {0.25, 0.75}, .out = "/o", .checkpoint_id = "ck",
                .parents = {"c1", "c2"}, .datasets = {"rm:r1"}, .select = std::nullopt};
  auto back = DecodeAverageSpec(Encode(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
  s.select = AverageSelect{.dataset = "/val.jsonl", .strengths = {"better"}, .batch_rows = 2, .seq_len = 64};
  back = DecodeAverageSpec(Encode(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);

  AverageResult r{{"abc", 1, ""}, {0.0, 1.0}, {{"inputs", 2}}};
  auto rb = DecodeAverageResult(Encode(r));
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(rb->weights, r.weights);
}

TEST(Contracts, EvalRoundTrips) {
  EvalSpec s{.policy = "/p", .previous = "/q", .base = "/b", .rm = "/rm", .rm_heldout = "/h.jsonl",
             .prompts = TwoPrompts(), .checker = "arithmetic", .samples_per_prompt = 3, .max_new_tokens = 9,
             .temperature = 0.3, .kv_budget_bytes = 1 << 20, .seed = 5};
  auto back = DecodeEvalSpec(Encode(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
}

TEST(Contracts, DatasetRowsRoundTrip) {
  PairRow p{"a#0>1", {{"user", "hi"}}, "hello", "go away", "significantly_better", std::string("hello!")};
  auto pb = DecodePairRow(Encode(p), "pairs.jsonl:1");
  ASSERT_TRUE(pb.ok()) << pb.status().ToString();
  EXPECT_EQ(*pb, p);
  ConversationRow c{"p1/r1/0", {{"user", "1+1"}, {"assistant", "2"}}};
  auto cb = DecodeConversationRow(Encode(c), "sft.jsonl:1");
  ASSERT_TRUE(cb.ok()) << cb.status().ToString();
  EXPECT_EQ(*cb, c);
}

struct BadCase {
  std::string text;
  std::string error;
};

TEST(Contracts, ErrorsNameTheField) {
  const std::string base = R"("base": "/b", "dataset": "/d", "out": "/o", "checkpoint_id": "c")";
  const BadCase cases[] = {
      {"[1]", "spec: must be an object"},
      {"{nope", "spec: not valid JSON"},
      {R"({"dataset": "/d", "out": "/o", "checkpoint_id": "c"})", "spec.base: required field missing"},
      {"{" + base + R"(, "hparams": {"steps": 0}})", "spec.hparams.steps: must be in [1, 10000000], got 0"},
      {"{" + base + R"(, "hparams": {"lr": "fast"}})", "spec.hparams.lr: must be a number"},
      {"{" + base + R"(, "hparams": {"stepz": 3}})", "spec.hparams.stepz: unknown field"},
      {"{" + base + R"(, "strengths": ["better", "meh"]})", "spec.strengths[1]: unknown value 'meh'"},
      {"{" + base + R"(, "temprature": 1})", "spec.temprature: unknown field"},
  };
  for (const auto& c : cases) {
    auto r = DecodeTrainSpec(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().message(), c.error) << c.text;
  }
  auto g = DecodeGenerateSpec(std::string(R"({"policies": ["/a", "/b"], "prompts": [{"id": "p", "messages": [{"role": "user"}]}]})"));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().message(), "spec.prompts[0].messages[0].content: required field missing");
  auto one = DecodeGenerateSpec(std::string(R"({"policies": ["/a"], "prompts": []})"));
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.status().message(), "spec.policies: must hold two checkpoint paths");
  auto rs = DecodeRejectionSampleResult(R"({"samples": [{"prompt_id": "p", "idx": 0, "tokens": [1, 1.5], "text": ""}]})");
  ASSERT_FALSE(rs.ok());
  EXPECT_EQ(rs.status().message(), "result.samples[0].tokens[1]: must be a 32-bit integer");
  auto avg = DecodeAverageSpec(std::string(R"({"inputs": ["/a", "/b"], "weights": [1], "out": "/o", "checkpoint_id": "c"})"));
  ASSERT_FALSE(avg.ok());
  EXPECT_EQ(avg.status().message(), "spec.weights: must have one entry per input (2)");
  auto row = DecodePairRow(R"({"id": "x", "prompt": [], "chosen": "a", "rejected": "b", "strength": "best"})", "p.jsonl:3");
  ASSERT_FALSE(row.ok());
  EXPECT_EQ(row.status().message(), "p.jsonl:3.strength: unknown strength 'best'");
}

TEST(Contracts, ProtocolMismatchIsRefusedWithBothVersions) {
  EXPECT_TRUE(CheckProtocol(kProtocolVersion, "worker").ok());
  Status old = CheckProtocol(0, "worker");
  EXPECT_EQ(old.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(old.message().find("worker speaks task protocol 0"), std::string::npos) << old.message();
  EXPECT_NE(old.message().find("herdd speaks " + std::to_string(kProtocolVersion)), std::string::npos)
      << old.message();
  Status newer = CheckProtocol(kProtocolVersion + 1, "herdd");
  EXPECT_FALSE(newer.ok());
  EXPECT_NE(newer.message().find("the herdd is newer"), std::string::npos) << newer.message();
}

TEST(Contracts, RequirementsRoundTripAndDefault) {
  Requirements q{"cuda", 1 << 30};
  EXPECT_EQ(DecodeRequirements(Encode(q)), q);
  EXPECT_EQ(DecodeRequirements(""), Requirements{});
}

}  // namespace
}  // namespace herd::tasks
