// The paged decode path against the training engine's own full forward
// (workers/model LlamaModel over one packed row): the same weights (its
// ParamViews), prefill logits of the prompt's last token and then every
// decode step's logits equal the full forward's at that position.
// Tolerance: max |paged - full| / max(1, max |full|) <= 1e-5 per position.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "workers/generate/paged_llama.h"
#include "workers/model/llama.h"

namespace herd::generate {
namespace {

model::LlamaConfig ParityConfig(bool tied) {
  model::LlamaConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 160;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 301;
  c.max_position_embeddings = 256;
  c.rope_theta = 500000.0f;
  model::RopeScaling s;
  s.factor = 8.0f;
  s.original_max_position_embeddings = 32;
  c.rope_scaling = s;
  c.tie_word_embeddings = tied;
  return c;
}

class EngineParity : public ::testing::TestWithParam<bool> {};

TEST_P(EngineParity, PagedPrefillAndDecodeMatchTheEngineForward) {
  const int64_t T = 40, P = 11, bs = 8;
  auto full = model::LlamaModel::Create(ParityConfig(GetParam()), 1, T);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  auto& engine = **full;
  engine.InitRandom(17, 0.2f);
  const auto& cfg = engine.config();
  const int64_t V = cfg.vocab_size;
  std::mt19937 rng(3);
  model::PackedBatch batch;
  batch.Resize(1, T);
  for (int64_t t = 0; t < T; ++t) {
    batch.tokens[static_cast<size_t>(t)] = static_cast<int32_t>(rng() % V);
    batch.positions[static_cast<size_t>(t)] = static_cast<int32_t>(t);
    batch.segments[static_cast<size_t>(t)] = 0;
  }
  ASSERT_TRUE(engine.Forward(batch).ok());
  const float* ref = engine.logits();   // (T, V)

  auto paged = PagedLlama::Create(cfg, engine.ParamViews());
  ASSERT_TRUE(paged.ok()) << paged.status().ToString();
  auto cache = KvCache::Create(paged->CacheShape(bs), 16 * KvCache::BytesPerBlock(paged->CacheShape(bs)));
  ASSERT_TRUE(cache.ok());
  kernels::cpu::ThreadPool pool(2);
  ForwardWorkspace ws;
  paged->PrepareWorkspace(ws, 1);
  ASSERT_TRUE(cache->blocks().Reserve(cache->num_blocks()).ok());
  SeqBlocks seq;
  ASSERT_TRUE(cache->Grow(seq, P).ok());
  std::vector<float> logits(static_cast<size_t>(V));
  auto err_at = [&](int64_t t) {
    double e = 0, s = 1;
    for (int64_t v = 0; v < V; ++v) {
      e = std::max(e, static_cast<double>(std::abs(logits[static_cast<size_t>(v)] - ref[t * V + v])));
      s = std::max(s, static_cast<double>(std::abs(ref[t * V + v])));
    }
    return e / s;
  };
  ASSERT_TRUE(paged->Prefill(batch.tokens.data(), P, seq, *cache, logits.data(), ws, pool).ok());
  double worst = err_at(P - 1);
  for (int64_t t = P; t < T; ++t) {
    int32_t alloc;
    ASSERT_TRUE(cache->AppendSlot(seq, &alloc).ok());
    const int32_t pos = static_cast<int32_t>(t), row = static_cast<int32_t>(t % bs);
    const int32_t blk = seq.blocks.back(), begin = 0, len = seq.len;
    DecodeBatch b;
    b.B = 1;
    b.tokens = &batch.tokens[static_cast<size_t>(t)];
    b.positions = &pos;
    b.slot_block = &blk;
    b.slot_row = &row;
    b.queries = {1, &begin, &len, seq.blocks.data()};
    ASSERT_TRUE(paged->Decode(b, *cache, logits.data(), ws, pool).ok());
    worst = std::max(worst, err_at(t));
  }
  EXPECT_LE(worst, 1e-5);
  RecordProperty("max_rel_err", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(Heads, EngineParity, ::testing::Values(false, true));

}  // namespace
}  // namespace herd::generate
