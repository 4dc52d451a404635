// Whole-model checks of LlamaModel:
//  - gradients of every parameter tensor against central finite differences
//    of the fp32 model (loss in float64, step h = 3e-3), along two directions
//    per tensor: the analytic gradient's own direction (tolerance 1e-3
//    relative) and a random unit direction (|fd - g.u| <= 2e-3 |g|), for an
//    untied LM, a tied LM, a reward model and a hidden-only head;
//  - packed rows: every segment's logits equal those of the segment run
//    alone, relative Frobenius error <= 1e-6 (SFT packing, and a prompt with
//    two responses vs. prompt+response alone);
//  - a tiny model overfits one fixed batch (mean CE < 0.05 after 150 AdamW steps);
//  - no heap allocation inside Forward / Backward;
//  - bad batches are InvalidArgument naming the field.
#include "workers/model/llama.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "kernels/cpu/cross_entropy.h"
#include "workers/train/adamw.h"

// Counts C++ heap allocations while g_count_allocs is set (the replacement
// covers the whole test binary; only the NoAllocation test reads it).
namespace {
std::atomic<bool> g_count_allocs{false};
std::atomic<int64_t> g_allocs{0};
}  // namespace
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t n) {
  if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs.fetch_add(1);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace herd::model {
namespace {

LlamaConfig TinyConfig() {
  LlamaConfig c;
  c.hidden_size = 24;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 6;
  c.vocab_size = 29;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  RopeScaling s;
  s.factor = 4.0f;
  s.low_freq_factor = 1.0f;
  s.high_freq_factor = 4.0f;
  s.original_max_position_embeddings = 32;
  c.rope_scaling = s;
  return c;
}

// Two rows of 11: row 0 SFT-packed (segments 0 and 1, one padding token),
// row 1 prompt + two responses seeing the prompt.
PackedBatch MixedBatch(int32_t V, uint32_t seed) {
  PackedBatch b;
  b.Resize(2, 11);
  std::mt19937 rng(seed);
  for (auto& t : b.tokens) t = static_cast<int32_t>(rng() % V);
  for (int i = 0; i < 10; ++i) {
    b.segments[i] = i < 6 ? 0 : 1;
    b.positions[i] = i < 6 ? i : i - 6;
  }
  const int seg1[11] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2, -1};
  const int pos1[11] = {0, 1, 2, 3, 4, 5, 6, 4, 5, 6, 0};
  for (int i = 0; i < 11; ++i) {
    b.segments[11 + i] = seg1[i];
    b.parents[11 + i] = seg1[i] > 0 ? 0 : -1;
    b.positions[11 + i] = pos1[i];
  }
  for (size_t i = 0; i < b.tokens.size(); ++i) {
    const bool last_of_row = (i % 11) == 10;
    if (b.segments[i] >= 0 && !last_of_row) {
      b.targets[i] = b.tokens[i + 1];
      b.loss_weights[i] = 1.0f;
    }
  }
  return b;
}

void Perturb(LlamaModel& m, uint32_t seed) {
  // Random init plus non-trivial norm weights so their gradients are tested.
  m.InitRandom(seed, 0.15f);
  std::mt19937 rng(seed + 1);
  std::normal_distribution<float> nd(0.0f, 0.2f);
  for (const auto& t : m.layout().tensors())
    if (t.shape.size() == 1)
      for (int64_t i = 0; i < t.numel(); ++i) m.params()[t.offset + i] += nd(rng);
}

enum class HeadKind { kLm, kReward, kHidden };

// Loss of the current parameters, float64: LM: weighted CE; reward: sum of
// values * r; hidden: sum of hidden * r. Leaves the forward state in m.
double Loss(LlamaModel& m, const PackedBatch& b, HeadKind kind, const std::vector<double>& r) {
  const int64_t N = b.size();
  EXPECT_TRUE(m.Forward(b, kind == HeadKind::kHidden ? LlamaModel::Head::kHiddenOnly
                                                     : LlamaModel::Head::kFull)
                  .ok());
  double L = 0;
  if (kind == HeadKind::kLm) {
    const int64_t V = m.config().vocab_size;
    for (int64_t n = 0; n < N; ++n) {
      if (b.targets[n] < 0) continue;
      const float* x = m.logits() + n * V;
      double mx = -1e300, z = 0;
      for (int64_t j = 0; j < V; ++j) mx = std::max(mx, static_cast<double>(x[j]));
      for (int64_t j = 0; j < V; ++j) z += std::exp(x[j] - mx);
      L += b.loss_weights[n] * (std::log(z) + mx - x[b.targets[n]]);
    }
  } else if (kind == HeadKind::kReward) {
    for (int64_t n = 0; n < N; ++n) L += r[n] * m.values()[n];
  } else {
    for (int64_t n = 0; n < N * m.config().hidden_size; ++n) L += r[n] * m.hidden()[n];
  }
  return L;
}

void Backprop(LlamaModel& m, const PackedBatch& b, HeadKind kind, const std::vector<double>& r) {
  const int64_t N = b.size();
  m.ZeroGrad();
  Loss(m, b, kind, r);
  if (kind == HeadKind::kLm) {
    kernels::cpu::SoftmaxCrossEntropyInPlace(m.logits(), nullptr, b.targets.data(),
                                             b.loss_weights.data(), N, m.config().vocab_size, 1.0f);
    ASSERT_TRUE(m.Backward(m.logits()).ok());
  } else {
    std::vector<float> rf(r.begin(), r.end());
    if (kind == HeadKind::kReward)
      ASSERT_TRUE(m.BackwardFromValues(rf.data()).ok());
    else
      ASSERT_TRUE(m.BackwardFromHidden(rf.data()).ok());
  }
}

struct GradCase {
  const char* name;
  bool tied, reward;
  HeadKind head;
};

class ModelGradTest : public ::testing::TestWithParam<GradCase> {};

TEST_P(ModelGradTest, EveryTensorMatchesFiniteDifferences) {
  const GradCase gc = GetParam();
  LlamaConfig c = TinyConfig();
  c.tie_word_embeddings = gc.tied;
  c.is_reward_model = gc.reward;
  auto mr = LlamaModel::Create(c, 2, 11);
  ASSERT_TRUE(mr.ok()) << mr.status().ToString();
  LlamaModel& m = **mr;
  Perturb(m, 3);
  PackedBatch b = MixedBatch(29, 4);
  std::mt19937 rng(5);
  std::normal_distribution<double> nd;
  std::vector<double> r(b.size() * c.hidden_size);
  for (auto& v : r) v = nd(rng);
  Backprop(m, b, gc.head, r);
  std::vector<float> g(m.grads(), m.grads() + m.num_params());
  const double h = 3e-3;  // step along a unit direction, in parameter units
  int checked = 0;
  for (const auto& t : m.layout().tensors()) {
    const int64_t n = t.numel();
    float* p = m.params() + t.offset;
    const float* gt = g.data() + t.offset;
    double gnorm = 0;
    for (int64_t i = 0; i < n; ++i) gnorm += static_cast<double>(gt[i]) * gt[i];
    gnorm = std::sqrt(gnorm);
    if (gc.head != HeadKind::kLm && t.name == "lm_head.weight") continue;
    ASSERT_GT(gnorm, 1e-6) << t.name << " gets no gradient";
    std::vector<double> rnd(n);
    double rn = 0;
    for (auto& v : rnd) v = nd(rng), rn += v * v;
    for (int dir = 0; dir < 2; ++dir) {
      std::vector<double> u(n);
      for (int64_t i = 0; i < n; ++i) u[i] = dir == 0 ? gt[i] / gnorm : rnd[i] / std::sqrt(rn);
      std::vector<float> saved(p, p + n);
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(saved[i] + h * u[i]);
      const double lp = Loss(m, b, gc.head, r);
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(saved[i] - h * u[i]);
      const double lm = Loss(m, b, gc.head, r);
      std::copy(saved.begin(), saved.end(), p);
      const double fd = (lp - lm) / (2 * h);
      double an = 0;
      for (int64_t i = 0; i < n; ++i) an += gt[i] * u[i];
      if (dir == 0)
        EXPECT_NEAR(fd, an, 1e-3 * std::abs(an)) << gc.name << " " << t.name << " (own direction)";
      else
        EXPECT_NEAR(fd, an, 2e-3 * gnorm) << gc.name << " " << t.name << " (random direction)";
    }
    ++checked;
  }
  EXPECT_GE(checked, 2 * 9 + 2);
}

INSTANTIATE_TEST_SUITE_P(Heads, ModelGradTest,
                         ::testing::Values(GradCase{"untied_lm", false, false, HeadKind::kLm},
                                           GradCase{"tied_lm", true, false, HeadKind::kLm},
                                           GradCase{"reward", false, true, HeadKind::kReward},
                                           GradCase{"hidden_only", false, false,
                                                    HeadKind::kHidden}),
                         [](const auto& info) { return std::string(info.param.name); });

double RelErr(const float* a, const float* b, int64_t n) {
  double e = 0, r = 0;
  for (int64_t i = 0; i < n; ++i) {
    e += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    r += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(e / r);
}

// Logits of a single segment list run as one row of its own: tokens and
// positions, all one segment (parent -1).
std::vector<float> AloneLogits(LlamaModel& m, const std::vector<int32_t>& tok) {
  PackedBatch b;
  b.Resize(1, static_cast<int64_t>(tok.size()));
  for (size_t i = 0; i < tok.size(); ++i) {
    b.tokens[i] = tok[i];
    b.positions[i] = static_cast<int32_t>(i);
    b.segments[i] = 0;
  }
  EXPECT_TRUE(m.Forward(b).ok());
  const int64_t V = m.config().vocab_size;
  return std::vector<float>(m.logits(), m.logits() + b.size() * V);
}

TEST(PackedRows, SegmentsMatchRunningAlone) {
  LlamaConfig c = TinyConfig();
  c.hidden_size = 36;  // odd-ish sizes: hd 6, 6 heads, 3 KV heads
  c.num_attention_heads = 6;
  c.num_key_value_heads = 3;
  c.num_hidden_layers = 3;
  auto mr = LlamaModel::Create(c, 2, 90);
  ASSERT_TRUE(mr.ok());
  LlamaModel& m = **mr;
  m.InitRandom(7);  // HF init (std 0.02, norms 1)
  const int64_t V = c.vocab_size;
  std::mt19937 rng(8);
  auto rand_tokens = [&](int n) {
    std::vector<int32_t> t(n);
    for (auto& x : t) x = static_cast<int32_t>(rng() % V);
    return t;
  };
  // Row 0: SFT packing of three conversations (lengths 30, 41, 12) + padding.
  // Row 1: prompt P (37) + responses A (25), B (20) + padding; 90 > one query block.
  auto s0 = rand_tokens(30), s1 = rand_tokens(41), s2 = rand_tokens(12);
  auto P = rand_tokens(37), A = rand_tokens(25), Bt = rand_tokens(20);
  PackedBatch b;
  b.Resize(2, 90);
  int at = 0;
  int seg = 0;
  for (const auto* s : {&s0, &s1, &s2}) {
    for (size_t i = 0; i < s->size(); ++i, ++at) {
      b.tokens[at] = (*s)[i];
      b.positions[at] = static_cast<int32_t>(i);
      b.segments[at] = seg;
    }
    ++seg;
  }
  at = 90;
  auto put = [&](const std::vector<int32_t>& s, int segid, int parent, int pos0) {
    for (size_t i = 0; i < s.size(); ++i, ++at) {
      b.tokens[at] = s[i];
      b.positions[at] = pos0 + static_cast<int32_t>(i);
      b.segments[at] = segid;
      b.parents[at] = parent;
    }
  };
  put(P, 0, -1, 0);
  put(A, 1, 0, 37);
  put(Bt, 2, 0, 37);
  ASSERT_TRUE(m.Forward(b).ok());
  std::vector<float> packed(m.logits(), m.logits() + b.size() * V);

  int64_t off = 0;
  for (const auto* s : {&s0, &s1, &s2}) {
    auto alone = AloneLogits(m, *s);
    EXPECT_LE(RelErr(packed.data() + off * V, alone.data(), s->size() * V), 1e-6);
    off += static_cast<int64_t>(s->size());
  }
  std::vector<int32_t> PA = P, PB = P;
  PA.insert(PA.end(), A.begin(), A.end());
  PB.insert(PB.end(), Bt.begin(), Bt.end());
  auto pa = AloneLogits(m, PA), pb = AloneLogits(m, PB);
  const float* row1 = packed.data() + 90 * V;
  EXPECT_LE(RelErr(row1, pa.data(), 37 * V), 1e-6) << "prompt";
  EXPECT_LE(RelErr(row1 + 37 * V, pa.data() + 37 * V, 25 * V), 1e-6) << "response A";
  EXPECT_LE(RelErr(row1 + 62 * V, pb.data() + 37 * V, 20 * V), 1e-6) << "response B";
}

TEST(Training, TinyModelOverfitsFixedBatch) {
  LlamaConfig c = TinyConfig();
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 31;
  auto mr = LlamaModel::Create(c, 2, 11);
  ASSERT_TRUE(mr.ok());
  LlamaModel& m = **mr;
  m.InitRandom(11);
  PackedBatch b = MixedBatch(31, 12);
  double wsum = 0;
  for (float w : b.loss_weights) wsum += w;
  train::AdamWOptions o;
  o.weight_decay = 0.0f;
  train::AdamW opt(m.num_params(), o, m.layout().NoDecayRanges());
  double first = 0, loss = 0;
  for (int step = 0; step < 150; ++step) {
    m.ZeroGrad();
    ASSERT_TRUE(m.Forward(b).ok());
    loss = kernels::cpu::SoftmaxCrossEntropyInPlace(m.logits(), nullptr, b.targets.data(),
                                                    b.loss_weights.data(), b.size(), c.vocab_size,
                                                    static_cast<float>(1.0 / wsum)) /
           wsum;
    if (step == 0) first = loss;
    ASSERT_TRUE(m.Backward(m.logits()).ok());
    opt.Step(m.params(), m.grads(), 1e-2f);
  }
  EXPECT_GT(first, 3.0);  // ~log(31) at init
  EXPECT_LT(loss, 0.05);
}

TEST(Model, ThreadCountDoesNotChangeResults) {
  // The pool splits rows / (row, KV head) pairs; only summation order of the
  // norm-weight gradients and OpenBLAS's own threading may differ.
  // Tolerance: relative Frobenius error <= 1e-6 for logits and gradients.
  // 4 x 600 tokens: enough rows that the element-wise loops go parallel too.
  LlamaConfig c = TinyConfig();
  const int64_t B = 4, T = 600;
  auto m1 = LlamaModel::Create(c, B, T, 1);
  auto m3 = LlamaModel::Create(c, B, T, 3);
  ASSERT_TRUE(m1.ok() && m3.ok());
  Perturb(**m1, 21);
  std::copy((*m1)->params(), (*m1)->params() + (*m1)->num_params(), (*m3)->params());
  PackedBatch b;
  b.Resize(B, T);
  std::mt19937 rng(22);
  for (int64_t i = 0; i < B * T; ++i) {
    const int64_t t = i % T;
    b.tokens[i] = static_cast<int32_t>(rng() % c.vocab_size);
    b.segments[i] = static_cast<int32_t>(t / 150);  // four packed segments per row
    b.positions[i] = static_cast<int32_t>(t % 150);
    if (t + 1 < T) {
      b.targets[i] = static_cast<int32_t>(rng() % c.vocab_size);
      b.loss_weights[i] = 1.0f;
    }
  }
  std::vector<std::vector<float>> logits, grads;
  for (LlamaModel* m : {m1->get(), m3->get()}) {
    m->ZeroGrad();
    ASSERT_TRUE(m->Forward(b).ok());
    logits.emplace_back(m->logits(), m->logits() + b.size() * c.vocab_size);
    kernels::cpu::SoftmaxCrossEntropyInPlace(m->logits(), nullptr, b.targets.data(),
                                             b.loss_weights.data(), b.size(), c.vocab_size,
                                             1.0f / static_cast<float>(b.size()));
    ASSERT_TRUE(m->Backward(m->logits()).ok());
    grads.emplace_back(m->grads(), m->grads() + m->num_params());
  }
  EXPECT_LE(RelErr(logits[1].data(), logits[0].data(), logits[0].size()), 1e-6);
  EXPECT_LE(RelErr(grads[1].data(), grads[0].data(), grads[0].size()), 1e-6);
}

TEST(Model, NoAllocationPerStep) {
  auto mr = LlamaModel::Create(TinyConfig(), 2, 11);
  ASSERT_TRUE(mr.ok());
  LlamaModel& m = **mr;
  m.InitRandom(1);
  PackedBatch b = MixedBatch(29, 2);
  ASSERT_TRUE(m.Forward(b).ok());  // warm-up: OpenBLAS sets itself up on first use
  g_allocs = 0;
  g_count_allocs = true;
  bool ok = m.Forward(b).ok();
  kernels::cpu::SoftmaxCrossEntropyInPlace(m.logits(), nullptr, b.targets.data(),
                                           b.loss_weights.data(), b.size(), 29, 1.0f);
  ok = ok && m.Backward(m.logits()).ok();
  g_count_allocs = false;
  EXPECT_TRUE(ok);
  EXPECT_EQ(g_allocs.load(), 0);
}

TEST(Model, BadInputIsAnErrorNamingTheField) {
  auto mr = LlamaModel::Create(TinyConfig(), 2, 11);
  ASSERT_TRUE(mr.ok());
  LlamaModel& m = **mr;
  EXPECT_TRUE(m.Backward(m.logits()).code() == Status::Code::kFailedPrecondition);
  PackedBatch b = MixedBatch(29, 2);
  b.tokens[5] = 29;
  auto s = m.Forward(b);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("tokens[5]"), std::string::npos) << s.message();
  b = MixedBatch(29, 2);
  b.positions.pop_back();
  s = m.Forward(b);
  EXPECT_NE(s.message().find("positions"), std::string::npos) << s.message();
  b.Resize(3, 11);
  EXPECT_TRUE(m.Forward(b).IsInvalidArgument());
  b.Resize(1, 12);
  EXPECT_TRUE(m.Forward(b).IsInvalidArgument());
  b = MixedBatch(29, 2);
  b.targets[3] = 29;
  EXPECT_NE(m.Forward(b).message().find("targets[3]"), std::string::npos);
  b = MixedBatch(29, 2);
  b.segments[0] = -3;
  EXPECT_NE(m.Forward(b).message().find("segments[0]"), std::string::npos);
  EXPECT_TRUE(m.BackwardFromValues(nullptr).code() == Status::Code::kFailedPrecondition);

  LlamaConfig c = TinyConfig();
  c.num_key_value_heads = 3;
  auto bad = LlamaModel::Create(c, 1, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("num_key_value_heads"), std::string::npos);
}

}  // namespace
}  // namespace herd::model
