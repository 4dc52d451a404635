// Rejection sampling: K rows per prompt with full lineage, the best by score
// selected (ties to the lowest idx), scorer errors reported with the prompt,
// a refused prompt leaves nothing queued.
#include "workers/generate/rejection_sampling.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/workers/generate/test_model.h"

namespace herd::generate {
namespace {

// Scores a response by how many times it contains token 7 minus its length
// / 100: deterministic, depends on the tokens only.
class CountingScorer : public ResponseScorer {
 public:
  std::string id() const override { return "rm-test"; }
  Result<std::vector<float>> ScoreResponses(const std::vector<int32_t>& prompt,
                                            const std::vector<std::vector<int32_t>>& rs) override {
    ++calls;
    last_prompt = prompt;
    if (fail) return Status::Unavailable("rm down");
    std::vector<float> out;
    for (const auto& r : rs) {
      float s = 0;
      for (int32_t t : r) s += t == 7 ? 1.0f : 0.0f;
      out.push_back(constant ? 1.0f : s - static_cast<float>(r.size()) / 100.0f);
    }
    if (short_answer) out.pop_back();
    return out;
  }
  int calls = 0;
  bool fail = false, constant = false, short_answer = false;
  std::vector<int32_t> last_prompt;
};

class RejectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rm_ = testing::MakeRandomModel(testing::TinyConfig(), 3);
    auto m = PagedLlama::Create(rm_.cfg, rm_.views);
    ASSERT_TRUE(m.ok());
    model_ = std::make_unique<PagedLlama>(std::move(m).value());
    GeneratorOptions o;
    o.kv_budget_bytes = 200 * KvCache::BytesPerBlock(model_->CacheShape(16));
    auto g = Generator::Create(model_.get(), o);
    ASSERT_TRUE(g.ok());
    gen_ = std::move(g).value();
    for (int p = 0; p < 3; ++p) {
      RejectionPrompt rp;
      rp.prompt_id = 40 + p;
      for (int t = 0; t < 10 + 7 * p; ++t) rp.tokens.push_back((t * 13 + p) % 97);
      prompts_.push_back(rp);
    }
    opt_.num_samples = 6;
    opt_.sampling.temperature = 1.0f;
    opt_.sampling.max_new_tokens = 12;
    opt_.sampling.eot_id = 3;
    opt_.seed = 5;
    opt_.policy_id = "ckpt-dpo-r1";
  }
  testing::RandomModel rm_;
  std::unique_ptr<PagedLlama> model_;
  std::unique_ptr<Generator> gen_;
  std::vector<RejectionPrompt> prompts_;
  RejectionSamplingOptions opt_;
};

TEST_F(RejectionTest, RowsCarryLineageAndTheBestIsSelected) {
  CountingScorer rm;
  auto rows = RejectionSample(*gen_, rm, prompts_, opt_,
                              [](const std::vector<int32_t>& t) { return std::to_string(t.size()); });
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 18u);
  EXPECT_EQ(rm.calls, 3);
  std::map<int64_t, int> selected;
  for (size_t i = 0; i < rows->size(); ++i) {
    const SampleRow& r = (*rows)[i];
    EXPECT_EQ(r.prompt_id, 40 + static_cast<int64_t>(i / 6));
    EXPECT_EQ(r.idx, static_cast<int32_t>(i % 6));
    EXPECT_EQ(r.policy_id, "ckpt-dpo-r1");
    EXPECT_EQ(r.rm_id, "rm-test");
    EXPECT_EQ(r.temperature, 1.0f);
    EXPECT_EQ(r.seed, PromptSeed(5, r.prompt_id));
    EXPECT_EQ(r.text, std::to_string(r.tokens.size()));
    EXPECT_FALSE(r.tokens.empty());
    EXPECT_LT(r.logprob_sum, 0.0);
    selected[r.prompt_id] += r.selected;
    if (r.selected) {
      for (size_t j = i / 6 * 6; j < i / 6 * 6 + 6; ++j) EXPECT_GE(r.score, (*rows)[j].score);
    }
  }
  for (auto& [p, n] : selected) EXPECT_EQ(n, 1) << "prompt " << p;
  // Reproducible: the same options give the same rows.
  auto again = RejectionSample(*gen_, rm, prompts_, opt_);
  ASSERT_TRUE(again.ok());
  for (size_t i = 0; i < rows->size(); ++i) EXPECT_EQ((*rows)[i].tokens, (*again)[i].tokens);
}

TEST_F(RejectionTest, TiesGoToTheLowestIndex) {
  CountingScorer rm;
  rm.constant = true;
  auto rows = RejectionSample(*gen_, rm, prompts_, opt_);
  ASSERT_TRUE(rows.ok());
  for (const auto& r : *rows) EXPECT_EQ(r.selected, r.idx == 0);
}

TEST_F(RejectionTest, ScorerAndGeneratorErrorsAreReported) {
  CountingScorer rm;
  rm.fail = true;
  auto rows = RejectionSample(*gen_, rm, prompts_, opt_);
  ASSERT_FALSE(rows.ok());
  EXPECT_NE(rows.status().message().find("prompt 40"), std::string::npos) << rows.status().message();
  EXPECT_NE(rows.status().message().find("rm down"), std::string::npos);
  rm.fail = false;
  rm.short_answer = true;
  rows = RejectionSample(*gen_, rm, prompts_, opt_);
  ASSERT_FALSE(rows.ok());
  EXPECT_NE(rows.status().message().find("returned 5 scores for 6"), std::string::npos);
  // A prompt a 20-block cache can never hold (300 tokens: 19 prompt blocks
  // + 6 growth + 5 copies = 30) after one that fits (1 + 6 + 5 = 12):
  // refused, and the first is not left queued.
  rm.short_answer = false;
  GeneratorOptions small;
  small.kv_budget_bytes = 20 * KvCache::BytesPerBlock(model_->CacheShape(16));
  auto g = Generator::Create(model_.get(), small);
  ASSERT_TRUE(g.ok());
  auto big = prompts_;
  big[1].tokens.assign(300, 1);
  rows = RejectionSample(**g, rm, big, opt_);
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(rows.status().message().find("prompt 41"), std::string::npos) << rows.status().message();
  EXPECT_EQ((*g)->queued(), 0);
  EXPECT_EQ((*g)->cache().blocks().num_free(), (*g)->cache().num_blocks());
}

}  // namespace
}  // namespace herd::generate
