// The generation engine end to end on a tiny random Llama (GQA, untied
// head, llama3 rope scaling):
//  - paged prefill + decode logits equal an independent float64 full
//    forward of the same tokens: max |a - b| / max(1, max |b|) <= 1e-5;
//  - sharing on/off, batch sizes, budgets: identical tokens (bitwise logprobs);
//  - no block leaks; too-large requests refused with a clear error;
//  - K = 1 equals plain generation; greedy is deterministic.
#include "workers/generate/generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "tests/workers/generate/test_model.h"

namespace herd::generate {
namespace {

using testing::MakeRandomModel;
using testing::RandomModel;
using testing::ReferenceLogits;
using testing::TinyConfig;

std::vector<int32_t> RandomTokens(int64_t n, int64_t V, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(V));
  return t;
}

double MaxRelErr(const float* got, const double* want, int64_t n) {
  double err = 0, scale = 1;
  for (int64_t i = 0; i < n; ++i) {
    err = std::max(err, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / scale;
}

class GeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rm_ = MakeRandomModel(TinyConfig(), 5);
    auto m = PagedLlama::Create(rm_.cfg, rm_.views);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    model_ = std::make_unique<PagedLlama>(std::move(m).value());
  }
  std::unique_ptr<Generator> Make(bool share, int64_t blocks, int64_t bs = 16, int32_t max_batch = 256) {
    GeneratorOptions o;
    o.share_prompt = share;
    o.block_size = bs;
    o.kv_budget_bytes = blocks * KvCache::BytesPerBlock(model_->CacheShape(bs));
    o.max_batch = max_batch;
    auto g = Generator::Create(model_.get(), o);
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    return std::move(g).value();
  }
  // Three prompts of different lengths (partial last blocks included), K each.
  std::vector<GenerationRequest> Requests(int32_t K, float temperature, int32_t max_new) {
    std::vector<GenerationRequest> rs;
    const int64_t lens[] = {21, 5, 40};
    for (int i = 0; i < 3; ++i) {
      GenerationRequest r;
      r.prompt = RandomTokens(lens[i], rm_.cfg.vocab_size, 100 + static_cast<uint32_t>(i));
      r.num_samples = K;
      r.sampling.temperature = temperature;
      r.sampling.top_p = 0.95f;
      r.sampling.max_new_tokens = max_new;
      r.sampling.eot_id = 3;   // a real id, so some samples stop early
      r.seed = 1000 + static_cast<uint64_t>(i);
      rs.push_back(r);
    }
    return rs;
  }
  std::vector<GeneratedSample> RunAll(Generator& g, const std::vector<GenerationRequest>& rs) {
    for (const auto& r : rs) {
      auto id = g.Submit(r);
      EXPECT_TRUE(id.ok()) << id.status().ToString();
    }
    auto out = g.Run();
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    // No leaks: every block back, nothing reserved.
    EXPECT_EQ(g.cache().blocks().num_free(), g.cache().num_blocks());
    EXPECT_EQ(g.cache().blocks().reserved(), 0);
    return out.ok() ? std::move(out).value() : std::vector<GeneratedSample>{};
  }
  static void ExpectSame(const std::vector<GeneratedSample>& a, const std::vector<GeneratedSample>& b,
                         const char* what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].request, b[i].request) << what;
      EXPECT_EQ(a[i].idx, b[i].idx) << what;
      EXPECT_EQ(a[i].tokens, b[i].tokens) << what << " request " << a[i].request << " sample " << a[i].idx;
      ASSERT_EQ(a[i].logprobs.size(), b[i].logprobs.size()) << what;
      EXPECT_EQ(0, std::memcmp(a[i].logprobs.data(), b[i].logprobs.data(),
                               sizeof(float) * a[i].logprobs.size()))
          << what << ": logprobs differ in the bits";
    }
  }
  RandomModel rm_;
  std::unique_ptr<PagedLlama> model_;
};

TEST_F(GeneratorTest, PagedDecodeLogitsMatchFullForward) {
  const int64_t V = rm_.cfg.vocab_size, bs = 4;
  auto cache = KvCache::Create(model_->CacheShape(bs), 64 * KvCache::BytesPerBlock(model_->CacheShape(bs)));
  ASSERT_TRUE(cache.ok());
  kernels::cpu::ThreadPool pool(2);
  ForwardWorkspace ws;
  model_->PrepareWorkspace(ws, 8);
  // Two sequences decoded together in one batch: prompt 9 and 6 tokens,
  // then 12 tokens each fed one at a time.
  const std::vector<int32_t> full_a = RandomTokens(21, V, 1), full_b = RandomTokens(18, V, 2);
  const int64_t Pa = 9, Pb = 6;
  ASSERT_TRUE(cache->blocks().Reserve(40).ok());
  SeqBlocks a, b;
  ASSERT_TRUE(cache->Grow(a, Pa).ok());
  ASSERT_TRUE(cache->Grow(b, Pb).ok());
  std::vector<float> la(static_cast<size_t>(V)), lb(static_cast<size_t>(V));
  ASSERT_TRUE(model_->Prefill(full_a.data(), Pa, a, *cache, la.data(), ws, pool).ok());
  ASSERT_TRUE(model_->Prefill(full_b.data(), Pb, b, *cache, lb.data(), ws, pool).ok());
  const auto ref_a = ReferenceLogits(rm_, full_a), ref_b = ReferenceLogits(rm_, full_b);
  EXPECT_LE(MaxRelErr(la.data(), ref_a.data() + (Pa - 1) * V, V), 1e-5);
  EXPECT_LE(MaxRelErr(lb.data(), ref_b.data() + (Pb - 1) * V, V), 1e-5);
  std::vector<float> logits(static_cast<size_t>(2 * V));
  double worst = 0;
  for (int64_t step = 0; step < 12; ++step) {
    int32_t alloc;
    ASSERT_TRUE(cache->AppendSlot(a, &alloc).ok());
    ASSERT_TRUE(cache->AppendSlot(b, &alloc).ok());
    const int32_t tok[2] = {full_a[static_cast<size_t>(Pa + step)], full_b[static_cast<size_t>(Pb + step)]};
    const int32_t pos[2] = {a.len - 1, b.len - 1};
    const int32_t sb[2] = {a.blocks.back(), b.blocks.back()};
    const int32_t sr[2] = {static_cast<int32_t>((a.len - 1) % bs), static_cast<int32_t>((b.len - 1) % bs)};
    std::vector<int32_t> ids(a.blocks);
    ids.insert(ids.end(), b.blocks.begin(), b.blocks.end());
    const int32_t begin[2] = {0, static_cast<int32_t>(a.blocks.size())};
    const int32_t len[2] = {a.len, b.len};
    DecodeBatch batch;
    batch.B = 2;
    batch.tokens = tok;
    batch.positions = pos;
    batch.slot_block = sb;
    batch.slot_row = sr;
    batch.queries = {2, begin, len, ids.data()};
    ASSERT_TRUE(model_->Decode(batch, *cache, logits.data(), ws, pool).ok());
    worst = std::max(worst, MaxRelErr(logits.data(), ref_a.data() + (Pa + step) * V, V));
    worst = std::max(worst, MaxRelErr(logits.data() + V, ref_b.data() + (Pb + step) * V, V));
  }
  EXPECT_LE(worst, 1e-5);
  ASSERT_TRUE(cache->Free(a).ok());
  ASSERT_TRUE(cache->Free(b).ok());
  EXPECT_EQ(cache->blocks().num_free(), cache->num_blocks());
}

TEST_F(GeneratorTest, SameSeedsSameTokensWithSharingOnOffAndAnyBatch) {
  const auto rs = Requests(6, 1.0f, 20);
  auto base = RunAll(*Make(true, 400), rs);           // everything runs at once
  ASSERT_EQ(base.size(), 18u);
  size_t stopped = 0;
  for (auto& s : base) stopped += s.finish == FinishReason::kStop;
  ExpectSame(base, RunAll(*Make(false, 400), rs), "sharing off");
  ExpectSame(base, RunAll(*Make(true, 400, 16, 6), rs), "max_batch 6 (one group at a time)");
  ExpectSame(base, RunAll(*Make(false, 400, 16, 1), rs), "batch of 1");
  ExpectSame(base, RunAll(*Make(false, 12, 16, 256), rs), "tight budget, sharing off");
  ExpectSame(base, RunAll(*Make(true, 30, 7), rs), "block size 7, tight budget");
  // Request order and grouping do not matter either: each request alone.
  for (size_t i = 0; i < rs.size(); ++i) {
    auto one = RunAll(*Make(true, 400), {rs[i]});
    std::vector<GeneratedSample> want(base.begin() + static_cast<int64_t>(6 * i),
                                      base.begin() + static_cast<int64_t>(6 * i + 6));
    for (auto& s : one) s.request = static_cast<int64_t>(i);
    ExpectSame(want, one, "request alone");
  }
  // Samples of one prompt differ (their streams do).
  EXPECT_NE(base[0].tokens, base[1].tokens);
  // Some samples hit eot (id 3) early, so the early-finish path ran too.
  EXPECT_GT(stopped, 0u);
  EXPECT_LT(stopped, base.size());
}

TEST_F(GeneratorTest, SharingUsesFewerBlocksAndLargerBatches) {
  const auto rs = Requests(8, 1.0f, 12);
  // Shared needs 9 + 8 + 18 = 35 blocks for all three requests at once
  // (prompt blocks once, 7 copies of each partial last block, growth);
  // private needs 8 * (2 + 1 + 4) = 56, so under 36 it runs fewer at a time.
  auto shared = Make(true, 36);
  auto priv = Make(false, 36);
  RunAll(*shared, rs);
  RunAll(*priv, rs);
  EXPECT_LE(shared->stats().peak_blocks_used, shared->cache().num_blocks());
  EXPECT_LE(priv->stats().peak_blocks_used, priv->cache().num_blocks());
  EXPECT_EQ(shared->stats().peak_running, 24);
  EXPECT_LT(priv->stats().peak_running, 24);
  EXPECT_GT(shared->stats().mean_running(), priv->stats().mean_running());
  EXPECT_EQ(shared->stats().prefills, 3);
  EXPECT_EQ(priv->stats().prefills, 24);
}

TEST_F(GeneratorTest, KOneEqualsPlainGeneration) {
  // Plain generation: recompute the float64 full forward over the whole
  // sequence for every token and draw with the same stream.
  GenerationRequest r;
  r.prompt = RandomTokens(13, rm_.cfg.vocab_size, 9);
  r.sampling.temperature = 0.8f;
  r.sampling.top_k = 20;
  r.sampling.max_new_tokens = 16;
  r.seed = 77;
  auto k1 = RunAll(*Make(true, 100), {r});
  ASSERT_EQ(k1.size(), 1u);
  Sampler s(rm_.cfg.vocab_size);
  std::vector<int32_t> seq = r.prompt, plain;
  const uint64_t key = StreamKey(77, 0);
  for (int t = 0; t < 16; ++t) {
    const auto ref = ReferenceLogits(rm_, seq);
    std::vector<float> last(ref.end() - rm_.cfg.vocab_size, ref.end());
    const auto d = s.Sample(last.data(), r.sampling, UniformAt(key, static_cast<uint64_t>(t)));
    plain.push_back(d.token);
    seq.push_back(d.token);
  }
  EXPECT_EQ(k1[0].tokens, plain);
  // And sample 0 of K = 5 is the K = 1 sample.
  r.num_samples = 5;
  auto k5 = RunAll(*Make(true, 100), {r});
  ASSERT_EQ(k5.size(), 5u);
  EXPECT_EQ(k5[0].tokens, k1[0].tokens);
  EXPECT_EQ(k5[0].logprobs, k1[0].logprobs);
}

TEST_F(GeneratorTest, GreedyIsDeterministic) {
  auto rs = Requests(3, 0.0f, 15);
  auto a = RunAll(*Make(true, 200), rs);
  auto b = RunAll(*Make(false, 50, 16, 2), rs);
  ExpectSame(a, b, "greedy rerun");
  for (size_t i = 0; i < a.size(); i += 3) {     // all K greedy samples agree
    EXPECT_EQ(a[i].tokens, a[i + 1].tokens);
    EXPECT_EQ(a[i].tokens, a[i + 2].tokens);
  }
  // Greedy tokens are the reference argmax at every step.
  std::vector<int32_t> seq = rs[0].prompt;
  for (size_t t = 0; t < a[0].tokens.size(); ++t) {
    const auto ref = ReferenceLogits(rm_, seq);
    const auto last = ref.end() - rm_.cfg.vocab_size;
    const int32_t arg = static_cast<int32_t>(std::max_element(last, ref.end()) - last);
    EXPECT_EQ(a[0].tokens[t], arg) << "step " << t;
    seq.push_back(arg);
  }
}

TEST_F(GeneratorTest, TooLargeRequestIsRefusedWithAClearError) {
  auto g = Make(true, 10);
  GenerationRequest r;
  r.prompt = RandomTokens(100, rm_.cfg.vocab_size, 3);   // 7 blocks of 16
  r.num_samples = 4;
  r.sampling.max_new_tokens = 40;                        // 4 x 3 more
  auto st = g->Submit(r);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(st.status().message().find("whole cache holds 10 blocks"), std::string::npos)
      << st.status().message();
  // Other requests still run, and nothing hangs or leaks.
  GenerationRequest ok;
  ok.prompt = RandomTokens(20, rm_.cfg.vocab_size, 4);
  ok.num_samples = 2;
  ok.sampling.max_new_tokens = 8;
  auto out = RunAll(*g, {ok});
  EXPECT_EQ(out.size(), 2u);
  // Bad fields name themselves.
  GenerationRequest bad = ok;
  bad.prompt[3] = 100000;
  EXPECT_NE(g->Submit(bad).status().message().find("prompt[3]"), std::string::npos);
  bad = ok;
  bad.sampling.top_p = 2.0f;
  EXPECT_NE(g->Submit(bad).status().message().find("top_p"), std::string::npos);
  bad = ok;
  bad.sampling.max_new_tokens = 1000;   // past max_position_embeddings 512
  EXPECT_NE(g->Submit(bad).status().message().find("max_position_embeddings"), std::string::npos);
}

TEST_F(GeneratorTest, AdmissionReservesExactlyWhatSharingNeeds) {
  auto g = Make(true, 100, 16);
  // P = 21 (one full block + 5 rows), K = 4, M = 12: n = ceil(32/16) = 2;
  // prompt 2 + 4 * 0 + 3 copies of the partial block = 5.
  EXPECT_EQ(g->BlocksNeeded(21, 4, 12), 5);
  EXPECT_EQ(g->BlocksNeeded(32, 4, 1), 2);      // full blocks only, no new token fed
  EXPECT_EQ(g->BlocksNeeded(32, 4, 2), 2 + 4);  // each sample feeds one token
  auto p = Make(false, 100, 16);
  EXPECT_EQ(p->BlocksNeeded(21, 4, 12), 8);
  // The run never exceeds what was reserved: peak == reservation when one
  // request runs alone to its full length (no eot).
  GenerationRequest r;
  r.prompt = RandomTokens(21, rm_.cfg.vocab_size, 8);
  r.num_samples = 4;
  r.sampling.max_new_tokens = 12;
  RunAll(*g, {r});
  EXPECT_EQ(g->stats().peak_blocks_used, 5);
}

TEST_F(GeneratorTest, OneNewTokenFinishesAtAdmission) {
  // M = 1: every sample finishes on the prefill logits, before any decode
  // step; the partial prompt block is released by all K without a copy.
  auto g = Make(true, 10);
  GenerationRequest r;
  r.prompt = RandomTokens(21, rm_.cfg.vocab_size, 6);
  r.num_samples = 4;
  r.sampling.max_new_tokens = 1;
  EXPECT_EQ(g->BlocksNeeded(21, 4, 1), 2 + 3);
  auto out = RunAll(*g, {r, r});
  ASSERT_EQ(out.size(), 8u);
  for (const auto& s : out) EXPECT_EQ(s.tokens.size(), 1u);
  EXPECT_EQ(g->stats().decode_steps, 0);
}

TEST(PagedLlama, MissingOrMisshapenTensorIsNamed) {
  auto rm = MakeRandomModel(TinyConfig(), 1);
  auto views = rm.views;
  views.erase(views.begin() + 3);   // layer 0 k_proj
  auto m = PagedLlama::Create(rm.cfg, views);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("model.layers.0.self_attn.k_proj.weight"), std::string::npos);
  views = rm.views;
  views[0].shape = {5, 5};
  m = PagedLlama::Create(rm.cfg, views);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("model.embed_tokens.weight"), std::string::npos);
}

}  // namespace
}  // namespace herd::generate
