// The objectives on the real engine: shared-prompt rows against rows of
// their own, each objective moving its metric on a small synthetic task,
// and resume reproducing an uninterrupted run.
#include "workers/train/trainer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "workers/train/dpo.h"
#include "workers/train/losses.h"
#include "workers/train/reward.h"
#include "workers/train/sft.h"

namespace herd::train {
namespace {
namespace fs = std::filesystem;

// Token ids of the synthetic tasks: 1 = BOS, 2 = end of prompt (the
// assistant header's role), 3 = EOT; 4..13 "good" tokens, 14..23 "bad" ones.
constexpr int32_t kBos = 1, kSep = 2, kEot = 3;
constexpr int64_t kV = 24;

model::LlamaConfig TinyConfig(bool reward_model) {
  model::LlamaConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.vocab_size = kV;
  c.max_position_embeddings = 128;
  c.is_reward_model = reward_model;
  return c;
}

std::unique_ptr<model::LlamaModel> Model(bool rm, int64_t B, int64_t T, uint64_t seed) {
  auto m = model::LlamaModel::Create(TinyConfig(rm), B, T);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  (*m)->InitRandom(seed, 0.1f);
  return std::move(m).value();
}

std::vector<int32_t> Tokens(std::mt19937_64& rng, int n, int32_t lo, int32_t hi) {
  std::uniform_int_distribution<int32_t> d(lo, hi);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

// ---- shared prompt rows == rows of their own ---------------------------------

TEST(SharedPromptRows, RewardModelScoresEachResponseAsIfAlone) {
  std::mt19937_64 rng(1);
  std::vector<RankedSample> s(2);
  for (int k = 0; k < 2; ++k) {
    s[k].id = "s" + std::to_string(k);
    s[k].prompt = Tokens(rng, 5, 4, 23);
    s[k].prompt.insert(s[k].prompt.begin(), kBos);
    for (int r = 0; r < 3; ++r) {
      auto resp = Tokens(rng, 3 + r, 4, 23);
      resp.push_back(kEot);
      s[k].responses.push_back(resp);
    }
    s[k].strength = Strength::kSignificantlyBetter;
  }
  auto m = Model(true, 1, 48, 7);
  RmBatch shared;
  ASSERT_EQ(PackRm(s, {}, 1, 48, 3, &shared).value(), 2);
  ASSERT_TRUE(m->Forward(shared.batch).ok());
  std::vector<float> packed(shared.reward_index.size());
  for (size_t r = 0; r < packed.size(); ++r) packed[r] = m->values()[shared.reward_index[r]];
  double max_rel = 0;
  for (size_t r = 0; r < packed.size(); ++r) {
    const auto& smp = s[shared.response_sample[r]];
    std::vector<int32_t> toks = smp.prompt;
    const auto& resp = smp.responses[shared.response_rank[r]];
    toks.insert(toks.end(), resp.begin(), resp.end());
    model::PackedBatch alone;
    std::vector<SftExample> one = {{toks, std::vector<uint8_t>(toks.size(), 0)}};
    ASSERT_TRUE(PackSft(one, 1, 48, {}, &alone).ok());
    ASSERT_TRUE(m->Forward(alone).ok());
    const float want = m->values()[toks.size() - 1];
    max_rel = std::max(max_rel, std::abs(packed[r] - want) / std::max(1e-3, std::abs(1.0 * want)));
  }
  // Same math, different summation layout in attention: ≤ 1e-5 relative.
  EXPECT_LE(max_rel, 1e-5);
}

TEST(SharedPromptRows, DpoLogProbsOfEachResponseAsIfAlone) {
  std::mt19937_64 rng(2);
  std::vector<DpoSample> s(2);
  for (int k = 0; k < 2; ++k) {
    s[k].pair_id = "p" + std::to_string(k);
    s[k].prompt = Tokens(rng, 4 + k, 4, 23);
    s[k].prompt.insert(s[k].prompt.begin(), kBos);
    s[k].prompt.push_back(kSep);
    s[k].chosen = Tokens(rng, 4, 4, 23);
    s[k].chosen.push_back(kEot);
    s[k].chosen_formatting = {0, 0, 0, 0, 1};
    s[k].rejected = Tokens(rng, 2, 4, 23);
    s[k].rejected.push_back(kEot);
    s[k].rejected_formatting = {0, 0, 1};
  }
  auto m = Model(false, 1, 48, 8);
  DpoBatch shared;
  ASSERT_EQ(PackDpo(s, 1, 48, &shared).value(), 2);
  ASSERT_TRUE(m->Forward(shared.batch).ok());
  DpoOptions o;
  o.mask_formatting = false;  // every response token, the first one included
  DpoWorkspace ws;
  std::vector<SequenceLogProb> lp;
  ASSERT_TRUE(SequenceLogProbs(shared, m->logits(), kV, o, &ws, &lp).ok());
  for (size_t p = 0; p < s.size(); ++p) {
    for (int side = 0; side < 2; ++side) {
      const auto& resp = side == 0 ? s[p].chosen : s[p].rejected;
      std::vector<int32_t> toks = s[p].prompt;
      toks.insert(toks.end(), resp.begin(), resp.end());
      model::PackedBatch alone;
      std::vector<SftExample> one = {{toks, std::vector<uint8_t>(toks.size(), 1)}};
      ASSERT_TRUE(PackSft(one, 1, 48, {}, &alone).ok());
      ASSERT_TRUE(m->Forward(alone).ok());
      std::vector<float> logp(alone.size()), lse(alone.size());
      TokenLogProbs(m->logits(), alone.size(), kV, alone.targets, {}, logp, lse);
      double want = 0;
      for (size_t k = 0; k < resp.size(); ++k) want += logp[s[p].prompt.size() - 1 + k];
      const double got = side == 0 ? lp[p].chosen : lp[p].rejected;
      EXPECT_NEAR(got, want, 1e-5 * std::abs(want)) << "pair " << p << " side " << side;
    }
  }
}

// ---- each objective moves its metric ------------------------------------------

// Reverse two tokens: BOS a b SEP → b a EOT.
std::vector<SftExample> ReverseTask(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<SftExample> out;
  for (int k = 0; k < n; ++k) {
    auto ab = Tokens(rng, 2, 4, 23);
    out.push_back({{kBos, ab[0], ab[1], kSep, ab[1], ab[0], kEot}, {0, 0, 0, 0, 1, 1, 1}});
  }
  return out;
}

TEST(TrainerSft, LearnsAReversalTask) {
  auto m = Model(false, 4, 32, 11);
  auto train = MakeSftObjective(ReverseTask(64, 1));
  auto eval = MakeSftObjective(ReverseTask(32, 2));
  TrainerOptions o;
  o.steps = 120;
  o.batch_rows = 4;
  o.seq_len = 32;  // 4 conversations a row, 16 a step
  o.lr.peak_lr = 3e-3;
  o.lr.warmup_steps = 10;
  o.adamw.weight_decay = 0.0f;
  o.eval_every = 60;
  auto t = Trainer::Create(m.get(), train.get(), eval.get(), o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto before = (*t)->Evaluate();
  ASSERT_TRUE(before.ok());
  std::vector<double> evals;
  int64_t last_step = 0;
  ASSERT_TRUE((*t)->Run([&](const Progress& p) {
                    if (p.is_eval) evals.push_back(p.metrics.Get("loss"));
                    last_step = p.step;
                    EXPECT_TRUE(std::isfinite(p.metrics.Get("loss")));
                    return true;
                  })
                  .ok());
  EXPECT_EQ(last_step, 120);
  ASSERT_EQ(evals.size(), 2u);
  // Untrained: about ln 24 = 3.18 nats per token. The EOT token and the
  // copy structure are learnable; held-out loss must at least halve.
  EXPECT_GT(before->Get("loss"), 2.5);
  EXPECT_LT(evals.back(), 0.5 * before->Get("loss")) << "before " << before->Get("loss");
  EXPECT_EQ(before->Get("examples"), 96.0);  // 32 conversations × 3 trained tokens
}

// Separable preferences: reward = how many "good" tokens a response has.
std::vector<RankedSample> PreferenceTask(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<RankedSample> out;
  for (int k = 0; k < n; ++k) {
    RankedSample s;
    s.id = "r" + std::to_string(seed) + "-" + std::to_string(k);
    s.prompt = {kBos};
    auto p = Tokens(rng, 2, 4, 23);
    s.prompt.insert(s.prompt.end(), p.begin(), p.end());
    s.prompt.push_back(kSep);
    const bool three = k % 3 == 0;
    std::vector<int> goods = three ? std::vector<int>{4, 2, 0} : std::vector<int>{4, 0};
    for (int g : goods) {
      auto resp = Tokens(rng, g, 4, 13);
      auto bad = Tokens(rng, 4 - g, 14, 23);
      resp.insert(resp.end(), bad.begin(), bad.end());
      std::shuffle(resp.begin(), resp.end(), rng);
      resp.push_back(kEot);
      s.responses.push_back(resp);
    }
    s.strength = k % 2 ? Strength::kBetter : Strength::kSignificantlyBetter;
    out.push_back(s);
  }
  return out;
}

TEST(TrainerRm, HeldOutAccuracyAbove90Percent) {
  auto m = Model(true, 4, 32, 12);
  auto train = MakeRewardObjective(PreferenceTask(96, 3));
  auto eval = MakeRewardObjective(PreferenceTask(48, 4));
  TrainerOptions o;
  o.steps = 60;
  o.batch_rows = 4;
  o.seq_len = 32;
  o.lr.peak_lr = 2e-3;
  o.lr.warmup_steps = 5;
  o.adamw.weight_decay = 0.0f;
  auto t = Trainer::Create(m.get(), train.get(), eval.get(), o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto before = (*t)->Evaluate();
  ASSERT_TRUE(before.ok());
  Metrics final_eval;
  ASSERT_TRUE((*t)->Run([&](const Progress& p) {
                    if (p.is_eval) final_eval = p.metrics;
                    return true;
                  })
                  .ok());
  // 48 samples, 16 with 3 responses: 16·3 + 32 = 80 held-out pairs.
  EXPECT_EQ(final_eval.Get("examples"), 80.0);
  EXPECT_LT(before->Get("accuracy"), 0.8);  // untrained: no better than chance-ish
  EXPECT_GT(final_eval.Get("accuracy"), 0.9) << "before " << before->Get("accuracy");
  EXPECT_LT(final_eval.Get("loss"), before->Get("loss"));
}

std::vector<DpoSample> DpoTask(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<DpoSample> out;
  for (int k = 0; k < n; ++k) {
    DpoSample s;
    s.pair_id = "d" + std::to_string(seed) + "-" + std::to_string(k);
    s.prompt = {kBos};
    auto p = Tokens(rng, 2, 4, 23);
    s.prompt.insert(s.prompt.end(), p.begin(), p.end());
    s.prompt.push_back(kSep);
    s.chosen = Tokens(rng, 3, 4, 13);  // good tokens
    s.chosen.push_back(kEot);
    s.chosen_formatting = {0, 0, 0, 1};
    s.rejected = Tokens(rng, 3, 14, 23);  // bad tokens
    s.rejected.push_back(kEot);
    s.rejected_formatting = {0, 0, 0, 1};
    out.push_back(s);
  }
  return out;
}

TEST(TrainerDpo, RaisesChosenOverRejectedAccuracy) {
  const int64_t B = 4, T = 32;
  auto policy = Model(false, B, T, 13);
  auto reference = Model(false, B, T, 13);  // the same start, frozen
  auto train_data = DpoTask(64, 5);
  auto eval_data = DpoTask(32, 6);
  DpoOptions o;
  o.beta = 0.1;
  std::vector<DpoSample> all = train_data;
  all.insert(all.end(), eval_data.begin(), eval_data.end());
  auto ref = ReferenceForDpo(*reference, all, o, B, T, "sha256:test-reference");
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ((*ref)->size(), 96u);
  auto train = MakeDpoObjective(train_data, o, *ref);
  auto eval = MakeDpoObjective(eval_data, o, *ref);
  TrainerOptions to;
  to.steps = 40;
  to.batch_rows = B;
  to.seq_len = T;
  to.lr.peak_lr = 2e-3;
  to.lr.warmup_steps = 4;
  to.adamw.weight_decay = 0.0f;
  auto t = Trainer::Create(policy.get(), train.get(), eval.get(), to);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto before = (*t)->Evaluate();
  ASSERT_TRUE(before.ok());
  // Policy == reference: every implicit reward is 0 up to fp32 noise (the
  // reference saw the pairs packed in other rows), so DPO loss is ln 2 and
  // the accuracy at this point is a coin flip on that noise.
  EXPECT_NEAR(before->Get("dpo_loss"), std::log(2.0), 1e-6);
  EXPECT_NEAR(before->Get("chosen_reward"), 0.0, 1e-5);
  EXPECT_NEAR(before->Get("margin"), 0.0, 1e-5);
  Metrics after;
  ASSERT_TRUE((*t)->Run([&](const Progress& p) {
                    if (p.is_eval) after = p.metrics;
                    return true;
                  })
                  .ok());
  EXPECT_GT(after.Get("reward_accuracy"), 0.9);
  EXPECT_GT(after.Get("margin"), 0.0);
  EXPECT_LT(after.Get("dpo_loss"), std::log(2.0));
  EXPECT_GT(after.Get("chosen_reward"), after.Get("rejected_reward"));
}

// ---- resume ---------------------------------------------------------------------

TEST(TrainerResume, ResumedRunEqualsUninterruptedRun) {
  const fs::path dir =
      fs::temp_directory_path() / ("herd_trainer_resume_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  TrainerOptions o;
  o.steps = 6;
  o.batch_rows = 2;
  o.seq_len = 32;  // 8 conversations a step over 20: epochs turn mid-run
  o.lr.peak_lr = 1e-3;
  o.lr.warmup_steps = 2;
  o.seed = 99;

  auto straight = Model(false, 2, 32, 21);
  auto data_a = MakeSftObjective(ReverseTask(20, 7));
  auto ta = Trainer::Create(straight.get(), data_a.get(), nullptr, o);
  ASSERT_TRUE(ta.ok());
  ASSERT_TRUE((*ta)->Run().ok());

  // Interrupted: cancelled after step 4 (checkpoint saved at 4), then a fresh
  // process (new model with other weights, new trainer) resumes.
  auto first = Model(false, 2, 32, 21);
  auto data_b = MakeSftObjective(ReverseTask(20, 7));
  TrainerOptions ob = o;
  ob.save_every = 2;
  ob.checkpoint_dir = dir.string();
  auto tb = Trainer::Create(first.get(), data_b.get(), nullptr, ob);
  ASSERT_TRUE(tb.ok());
  auto st = (*tb)->Run([](const Progress& p) { return p.step < 4; });
  EXPECT_EQ(st.code(), Status::Code::kAborted);
  auto latest = (*tb)->LatestCheckpoint();
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ(fs::path(*latest).filename().string(), "step-00000004");

  auto resumed = Model(false, 2, 32, 555);
  auto data_c = MakeSftObjective(ReverseTask(20, 7));
  auto tc = Trainer::Create(resumed.get(), data_c.get(), nullptr, ob);
  ASSERT_TRUE(tc.ok());
  ASSERT_TRUE((*tc)->LoadState(*latest).ok());
  EXPECT_EQ((*tc)->step(), 4);
  ASSERT_TRUE((*tc)->Run().ok());
  EXPECT_EQ((*tc)->step(), 6);
  EXPECT_EQ((*tc)->epoch(), (*ta)->epoch());
  EXPECT_EQ((*tc)->cursor(), (*ta)->cursor());
  // Same data order, same optimizer state, same arithmetic: identical
  // parameters (tolerance 0; allowing 1e-6 relative would hide a skipped or
  // repeated batch only if it changed nothing, which it does).
  double max_diff = 0;
  for (int64_t k = 0; k < straight->num_params(); ++k) {
    max_diff = std::max(
        max_diff, static_cast<double>(std::abs(straight->params()[k] - resumed->params()[k])));
  }
  EXPECT_EQ(max_diff, 0.0);

  // A state for another objective or other data is refused.
  auto other = MakeSftObjective(ReverseTask(21, 7));
  auto td = Trainer::Create(resumed.get(), other.get(), nullptr, ob);
  ASSERT_TRUE(td.ok());
  auto bad = (*td)->LoadState(*latest);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("train_examples"), std::string::npos) << bad.message();
  fs::remove_all(dir);
}

// Two micro-batches of one row must give the gradient of one batch of two
// rows: the mean over all their tokens (SFT) or pairs (RM, DPO).
template <typename MakeObjective>
void ExpectMicroBatchesEqualOneBatch(bool rm, MakeObjective make) {
  std::vector<float> grads[2];
  double loss[2];
  for (int variant = 0; variant < 2; ++variant) {
    auto m = Model(rm, 2, 32, 31);
    auto obj = make();
    TrainerOptions o;
    o.steps = 1;
    o.grad_clip = 0;  // compare raw gradients
    o.seq_len = 32;
    o.batch_rows = variant == 0 ? 2 : 1;
    o.micro_batches = variant == 0 ? 1 : 2;
    auto t = Trainer::Create(m.get(), obj.get(), nullptr, o);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_TRUE((*t)->Run([&](const Progress& p) {
                      loss[variant] = p.metrics.Get("loss");
                      return true;
                    })
                    .ok());
    grads[variant].assign(m->grads(), m->grads() + m->num_params());
  }
  // Sum-then-divide vs per-batch mean: fp32 rounding only, ≤ 1e-5 relative.
  double num = 0, den = 0;
  for (size_t k = 0; k < grads[0].size(); ++k) {
    num += std::pow(grads[0][k] - grads[1][k], 2);
    den += std::pow(grads[0][k], 2);
  }
  EXPECT_GT(den, 0.0);
  EXPECT_LE(std::sqrt(num / den), 1e-5);
  EXPECT_NEAR(loss[0], loss[1], 1e-5 * std::abs(loss[0]));
}

TEST(TrainerMicroBatches, SftEqualsOneBigBatch) {
  // Conversations of 7 tokens, 4 per 32-token row: rows hold different
  // counts only if lengths differ, so vary them.
  ExpectMicroBatchesEqualOneBatch(false, [] {
    auto ex = ReverseTask(12, 3);
    ex[1].tokens.insert(ex[1].tokens.begin() + 4, 9);  // a longer answer
    ex[1].train.insert(ex[1].train.begin() + 4, 1);
    return MakeSftObjective(ex);
  });
}

TEST(TrainerMicroBatches, RewardAndDpoEqualOneBigBatch) {
  ExpectMicroBatchesEqualOneBatch(true, [] { return MakeRewardObjective(PreferenceTask(10, 8)); });
  auto data = DpoTask(10, 9);
  auto ref_model = Model(false, 2, 32, 77);
  auto ref = ReferenceForDpo(*ref_model, data, {}, 2, 32, "ref");
  ASSERT_TRUE(ref.ok());
  std::shared_ptr<const ReferenceLogProbs> table = *ref;
  ExpectMicroBatchesEqualOneBatch(false, [&] { return MakeDpoObjective(data, {}, table); });
}

TEST(Trainer, OptionErrorsNameTheOption) {
  auto m = Model(false, 2, 16, 1);
  auto data = MakeSftObjective(ReverseTask(4, 1));
  TrainerOptions o;
  o.batch_rows = 3;
  o.seq_len = 16;
  auto t = Trainer::Create(m.get(), data.get(), nullptr, o);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("batch_rows"), std::string::npos);
  o.batch_rows = 2;
  o.save_every = 1;
  t = Trainer::Create(m.get(), data.get(), nullptr, o);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("checkpoint_dir"), std::string::npos);
  // A reward objective on a language model is an error, not a crash.
  o.save_every = 0;
  auto rm = MakeRewardObjective(PreferenceTask(4, 1));
  auto t2 = Trainer::Create(m.get(), rm.get(), nullptr, o);
  ASSERT_TRUE(t2.ok());
  EXPECT_FALSE((*t2)->Run().ok());
  // A token outside the vocabulary is an error from the engine, not a crash.
  auto ex = ReverseTask(4, 1);
  ex[0].tokens[1] = static_cast<int32_t>(kV) + 5;
  auto bad = MakeSftObjective(ex);
  auto t3 = Trainer::Create(m.get(), bad.get(), nullptr, o);
  ASSERT_TRUE(t3.ok());
  auto st = (*t3)->Run();
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
}

}  // namespace
}  // namespace herd::train
