#include "workers/model/llama.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <thread>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cpu/thread_pool.h"

namespace herd::model {

namespace k = herd::kernels::cpu;

LayerDims LayerDims::From(const LlamaConfig& c) {
  LayerDims d;
  d.d = c.hidden_size;
  d.f = c.intermediate_size;
  d.H = c.num_attention_heads;
  d.Hkv = c.num_key_value_heads;
  d.hd = c.head_dim;
  d.eps = c.rms_norm_eps;
  return d;
}

namespace {

// Rows per thread below which a loop over rows of C floats runs inline:
// about 16K floats of work per thread.
inline int64_t MinRows(int64_t C) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, C)); }

// Row-parallel wrappers: the element-wise ops split by rows over the pool
// (between sgemms, so never while OpenBLAS runs). Each row's arithmetic is
// the same as the serial loop, so results do not depend on the split, except
// the norm-weight gradients, which are summed per thread and then folded.
void RmsNormForwardP(k::ThreadPool* pool, float* out, float* rstd, const float* x, const float* w,
                     int64_t N, int64_t C, float eps) {
  k::ParallelFor(
      pool, N,
      [&](int64_t b, int64_t e, int) {
        k::RmsNormForward(out + b * C, rstd + b, x + b * C, w, e - b, C, eps);
      },
      MinRows(C));
}

// dw partials per thread in dw_scratch (threads, C), folded into dw.
void RmsNormBackwardP(k::ThreadPool* pool, float* dw_scratch, float* dx, float* dw,
                      const float* dout, const float* x, const float* w, const float* rstd,
                      int64_t N, int64_t C) {
  if (pool == nullptr || pool->size() == 1 || N < MinRows(C) * pool->size()) {
    k::RmsNormBackward(dx, dw, dout, x, w, rstd, N, C);
    return;
  }
  std::memset(dw_scratch, 0, sizeof(float) * pool->size() * C);
  pool->For(N, [&](int64_t b, int64_t e, int t) {
    k::RmsNormBackward(dx + b * C, dw_scratch + t * C, dout + b * C, x + b * C, w, rstd + b, e - b,
                       C);
  });
  for (int t = 0; t < pool->size(); ++t) k::AddInPlace(dw, dw_scratch + t * C, C);
}

void RopeP(k::ThreadPool* pool, bool backward, float* x, int64_t N, int64_t heads, int64_t hd,
           int64_t ld, const float* cos, const float* sin) {
  const int64_t half = hd / 2;
  k::ParallelFor(
      pool, N,
      [&](int64_t b, int64_t e, int) {
        if (backward)
          k::RopeBackward(x + b * ld, e - b, heads, hd, ld, cos + b * half, sin + b * half);
        else
          k::RopeForward(x + b * ld, e - b, heads, hd, ld, cos + b * half, sin + b * half);
      },
      MinRows(heads * hd));
}

void SwiGluForwardP(k::ThreadPool* pool, float* h, const float* gu, int64_t N, int64_t F) {
  k::ParallelFor(
      pool, N,
      [&](int64_t b, int64_t e, int) { k::SwiGluForward(h + b * F, gu + b * 2 * F, e - b, F); },
      MinRows(F));
}

void SwiGluBackwardP(k::ThreadPool* pool, float* dgu, const float* dh, const float* gu, int64_t N,
                     int64_t F) {
  k::ParallelFor(
      pool, N,
      [&](int64_t b, int64_t e, int) {
        k::SwiGluBackward(dgu + b * 2 * F, dh + b * F, gu + b * 2 * F, e - b, F);
      },
      MinRows(F));
}

void CopyP(k::ThreadPool* pool, float* dst, const float* src, int64_t n) {
  k::ParallelFor(
      pool, n,
      [&](int64_t b, int64_t e, int) { std::memcpy(dst + b, src + b, sizeof(float) * (e - b)); },
      int64_t{1} << 16);
}

}  // namespace

void LayerQkvForward(const LayerTensors& w, const LayerDims& dm, int64_t n, const float* x,
                     float* ln1, float* rstd1, float* qkv, const float* cos, const float* sin,
                     k::ThreadPool* pool) {
  const int64_t ld = dm.qkv_dim();
  RmsNormForwardP(pool, ln1, rstd1, x, w.input_norm, n, dm.d, dm.eps);
  // qkv (n, qkv_dim) = ln1 (n, d) . Wqkv^T (d, qkv_dim)
  k::Sgemm(false, true, n, ld, dm.d, 1.0f, ln1, w.qkv, 0.0f, qkv);
  // RoPE on the q heads and the k heads (contiguous columns: H + Hkv heads).
  RopeP(pool, false, qkv, n, dm.H + dm.Hkv, dm.hd, ld, cos, sin);
}

void LayerOutForward(const LayerTensors& w, const LayerDims& dm, int64_t n, const float* x,
                     const float* att, float* x_mid, float* ln2, float* rstd2, float* gu, float* h,
                     float* out, k::ThreadPool* pool) {
  // x_mid (n, d) = x + att (n, qd) . Wo^T (qd, d)
  CopyP(pool, x_mid, x, n * dm.d);
  k::Sgemm(false, true, n, dm.d, dm.q_dim(), 1.0f, att, w.o, 1.0f, x_mid);
  RmsNormForwardP(pool, ln2, rstd2, x_mid, w.post_norm, n, dm.d, dm.eps);
  // gu (n, 2f) = ln2 . Wgu^T
  k::Sgemm(false, true, n, 2 * dm.f, dm.d, 1.0f, ln2, w.gate_up, 0.0f, gu);
  SwiGluForwardP(pool, h, gu, n, dm.f);
  // out (n, d) = x_mid + h (n, f) . Wdown^T (f, d)
  CopyP(pool, out, x_mid, n * dm.d);
  k::Sgemm(false, true, n, dm.d, dm.f, 1.0f, h, w.down, 1.0f, out);
}

LlamaModel::LlamaModel(ParamLayout layout, int64_t max_batch, int64_t max_seq)
    : layout_(std::move(layout)),
      dims_(LayerDims::From(layout_.config())),
      max_batch_(max_batch),
      max_seq_(max_seq) {}

LlamaModel::~LlamaModel() = default;

std::vector<double> RopeInverseFrequencies(const LlamaConfig& c) {
  std::vector<double> inv_freq(static_cast<size_t>(c.head_dim / 2));
  k::Llama3RopeScaling s;
  if (c.rope_scaling) {
    s.factor = c.rope_scaling->factor;
    s.low_freq_factor = c.rope_scaling->low_freq_factor;
    s.high_freq_factor = c.rope_scaling->high_freq_factor;
    s.original_max_position_embeddings =
        static_cast<double>(c.rope_scaling->original_max_position_embeddings);
  }
  k::RopeInvFreq(inv_freq.data(), c.head_dim, c.rope_theta, c.rope_scaling ? &s : nullptr);
  return inv_freq;
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::Create(const LlamaConfig& config, int64_t max_batch,
                                                       int64_t max_seq, int threads) {
  if (max_batch <= 0) return Status::InvalidArgument("LlamaModel: max_batch must be positive");
  if (max_seq <= 0) return Status::InvalidArgument("LlamaModel: max_seq must be positive");
  HERD_ASSIGN_OR_RETURN(ParamLayout layout, ParamLayout::Create(config));
  std::unique_ptr<LlamaModel> m(new LlamaModel(std::move(layout), max_batch, max_seq));
  const LlamaConfig& c = m->config();
  m->inv_freq_ = RopeInverseFrequencies(c);
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  m->pool_ = std::make_unique<k::ThreadPool>(threads);
  try {
    m->params_ = FloatBuffer(m->layout_.numel());
    m->grads_ = FloatBuffer(m->layout_.numel());
    m->Carve();
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("LlamaModel: cannot allocate parameters/activations for " +
                                     std::to_string(max_batch) + " x " + std::to_string(max_seq));
  }
  return m;
}

// Sizes every activation for (max_batch, max_seq) in one buffer. With
// N = B*T: per layer 4 (N,d) + (N,qkv) + (N,qd) + 3 (N,f) + 2 (N) floats
// plus B*H*T*T probabilities.
void LlamaModel::Carve() {
  const LayerDims& dm = dims_;
  const int64_t N = max_batch_ * max_seq_, L = config().num_hidden_layers;
  const int64_t V = config().vocab_size, half = dm.hd / 2;
  const bool lm = !config().is_reward_model;
  auto round = [](int64_t n) { return (n + 15) / 16 * 16; };  // keep 64-byte alignment
  const int64_t per_layer = round(N * dm.d) * 4 + round(N) * 2 + round(N * dm.qkv_dim()) +
                            round(max_batch_ * dm.H * max_seq_ * max_seq_) + round(N * dm.q_dim()) +
                            round(N * 2 * dm.f) + round(N * dm.f);
  k::AttentionDims ad{max_batch_, max_seq_, dm.H, dm.Hkv, dm.hd, 0, 0, 0};
  const int64_t shared = round(N * dm.d) * 4 + round(N) + (lm ? round(N * V) : round(N)) +
                         round(N * half) * 2 + round(N * dm.qkv_dim()) + round(N * dm.q_dim()) +
                         round(N * 2 * dm.f) + round(N * dm.f) +
                         round(k::AttentionScratchFloats(ad, pool_->size())) +
                         round(static_cast<int64_t>(pool_->size()) * dm.d);
  acts_ = FloatBuffer(per_layer * L + shared);
  float* p = acts_.data();
  auto take = [&](int64_t n) {
    float* r = p;
    p += round(n);
    return r;
  };
  layer_acts_.resize(static_cast<size_t>(L));
  for (auto& a : layer_acts_) {
    a.x = take(N * dm.d);
    a.ln1 = take(N * dm.d);
    a.rstd1 = take(N);
    a.qkv = take(N * dm.qkv_dim());
    a.probs = take(max_batch_ * dm.H * max_seq_ * max_seq_);
    a.att = take(N * dm.q_dim());
    a.x_mid = take(N * dm.d);
    a.ln2 = take(N * dm.d);
    a.rstd2 = take(N);
    a.gu = take(N * 2 * dm.f);
    a.h = take(N * dm.f);
  }
  x_final_ = take(N * dm.d);
  hidden_ = take(N * dm.d);
  rstd_f_ = take(N);
  if (lm) {
    logits_ = take(N * V);
  } else {
    values_ = take(N);
  }
  cos_ = take(N * half);
  sin_ = take(N * half);
  dres_ = take(N * dm.d);
  dhid_ = take(N * dm.d);
  dqkv_ = take(N * dm.qkv_dim());
  datt_ = take(N * dm.q_dim());
  dgu_ = take(N * 2 * dm.f);
  dh_ = take(N * dm.f);
  attn_scratch_ = take(k::AttentionScratchFloats(ad, pool_->size()));
  dw_scratch_ = take(static_cast<int64_t>(pool_->size()) * dm.d);
  tokens_.reserve(static_cast<size_t>(N));
  segments_.reserve(static_cast<size_t>(N));
  parents_.reserve(static_cast<size_t>(N));
  key_start_.reserve(static_cast<size_t>(N));
}

Status LlamaModel::CheckBatch(const PackedBatch& b) const {
  auto bad = [](const std::string& m) { return Status::InvalidArgument("PackedBatch: " + m); };
  if (b.B <= 0 || b.B > max_batch_)
    return bad("B = " + std::to_string(b.B) + " outside [1, " + std::to_string(max_batch_) + "]");
  if (b.T <= 0 || b.T > max_seq_)
    return bad("T = " + std::to_string(b.T) + " outside [1, " + std::to_string(max_seq_) + "]");
  const size_t n = static_cast<size_t>(b.B * b.T);
  auto size_ok = [&](size_t got, const char* field) -> Status {
    if (got != n)
      return bad(std::string("field '") + field + "' has " + std::to_string(got) +
                 " entries, want B*T = " + std::to_string(n));
    return Status::Ok();
  };
  HERD_RETURN_IF_ERROR(size_ok(b.tokens.size(), "tokens"));
  HERD_RETURN_IF_ERROR(size_ok(b.positions.size(), "positions"));
  HERD_RETURN_IF_ERROR(size_ok(b.segments.size(), "segments"));
  HERD_RETURN_IF_ERROR(size_ok(b.parents.size(), "parents"));
  const int64_t V = config().vocab_size;
  for (size_t i = 0; i < n; ++i) {
    if (b.tokens[i] < 0 || b.tokens[i] >= V)
      return bad("tokens[" + std::to_string(i) + "] = " + std::to_string(b.tokens[i]) +
                 " outside [0, vocab_size = " + std::to_string(V) + ")");
    if (b.positions[i] < 0)
      return bad("positions[" + std::to_string(i) + "] = " + std::to_string(b.positions[i]) +
                 " is negative");
    if (b.segments[i] < -1)
      return bad("segments[" + std::to_string(i) + "] = " + std::to_string(b.segments[i]) +
                 " (padding is -1)");
    if (b.parents[i] < -1)
      return bad("parents[" + std::to_string(i) + "] = " + std::to_string(b.parents[i]) +
                 " (none is -1)");
  }
  // Targets are optional (a reward-model batch may leave them empty); when
  // present they must be -1 or a token id, as the loss kernels index by them.
  if (!b.targets.empty()) {
    HERD_RETURN_IF_ERROR(size_ok(b.targets.size(), "targets"));
    for (size_t i = 0; i < n; ++i)
      if (b.targets[i] < -1 || b.targets[i] >= V)
        return bad("targets[" + std::to_string(i) + "] = " + std::to_string(b.targets[i]) +
                   " outside [-1, vocab_size = " + std::to_string(V) + ")");
  }
  return Status::Ok();
}

Status LlamaModel::Forward(const PackedBatch& batch, Head head) {
  have_forward_ = false;
  HERD_RETURN_IF_ERROR(CheckBatch(batch));
  B_ = batch.B;
  T_ = batch.T;
  const LayerDims& dm = dims_;
  const int64_t N = B_ * T_, L = config().num_hidden_layers, half = dm.hd / 2;
  tokens_.assign(batch.tokens.begin(), batch.tokens.end());
  segments_.assign(batch.segments.begin(), batch.segments.end());
  parents_.assign(batch.parents.begin(), batch.parents.end());
  key_start_.resize(static_cast<size_t>(N));
  k::AttentionKeyStart(key_start_.data(), segments_.data(), parents_.data(), B_, T_);
  k::RopeTables(cos_, sin_, batch.positions.data(), N, inv_freq_.data(), half);

  float* params = params_.data();
  k::EmbeddingForward(layer_acts_[0].x, tokens_.data(), params + layout_.embed(), N, dm.d);
  const k::AttentionDims ad{B_, T_, dm.H, dm.Hkv, dm.hd, dm.qkv_dim(), dm.qkv_dim(), dm.q_dim()};
  for (int64_t l = 0; l < L; ++l) {
    LayerActs& a = layer_acts_[static_cast<size_t>(l)];
    const LayerTensors w = layout_.Layer(l, params);
    LayerQkvForward(w, dm, N, a.x, a.ln1, a.rstd1, a.qkv, cos_, sin_, pool_.get());
    k::AttentionForward(a.att, a.probs, a.qkv, a.qkv + dm.q_dim(), a.qkv + dm.q_dim() + dm.kv_dim(),
                        segments_.data(), parents_.data(), key_start_.data(), ad, pool_.get());
    float* out = l + 1 < L ? layer_acts_[static_cast<size_t>(l + 1)].x : x_final_;
    LayerOutForward(w, dm, N, a.x, a.att, a.x_mid, a.ln2, a.rstd2, a.gu, a.h, out, pool_.get());
  }
  RmsNormForwardP(pool_.get(), hidden_, rstd_f_, x_final_, params + layout_.final_norm(), N, dm.d,
                  dm.eps);
  have_head_ = head == Head::kFull;
  if (have_head_) {
    if (config().is_reward_model) {
      // values (N, 1) = hidden (N, d) . score^T (d, 1)
      k::Sgemm(false, true, N, 1, dm.d, 1.0f, hidden_, params + layout_.score(), 0.0f, values_);
    } else {
      // logits (N, V) = hidden (N, d) . W^T (d, V), W = lm_head or embed_tokens (tied)
      k::Sgemm(false, true, N, config().vocab_size, dm.d, 1.0f, hidden_, params + layout_.lm_head(),
               0.0f, logits_);
    }
  }
  have_forward_ = true;
  return Status::Ok();
}

Status LlamaModel::Backward(const float* dlogits) {
  if (config().is_reward_model)
    return Status::FailedPrecondition("LlamaModel::Backward: reward model has no LM head");
  if (!have_forward_ || !have_head_)
    return Status::FailedPrecondition("LlamaModel::Backward: needs a Forward with Head::kFull");
  const int64_t N = B_ * T_, V = config().vocab_size, d = dims_.d;
  float* W = params_.data() + layout_.lm_head();
  float* dW = grads_.data() + layout_.lm_head();
  // dhidden (N, d) = dlogits (N, V) . W (V, d);  dW (V, d) += dlogits^T . hidden
  k::Sgemm(false, false, N, d, V, 1.0f, dlogits, W, 0.0f, dhid_);
  k::Sgemm(true, false, V, d, N, 1.0f, dlogits, hidden_, 1.0f, dW);
  return BackwardFromHidden(dhid_);
}

Status LlamaModel::BackwardFromValues(const float* dvalues) {
  if (!config().is_reward_model)
    return Status::FailedPrecondition("LlamaModel::BackwardFromValues: not a reward model");
  if (!have_forward_ || !have_head_)
    return Status::FailedPrecondition(
        "LlamaModel::BackwardFromValues: needs a Forward with Head::kFull");
  const int64_t N = B_ * T_, d = dims_.d;
  const float* score = params_.data() + layout_.score();
  float* dscore = grads_.data() + layout_.score();
  // dhidden (N, d) = dvalues (N, 1) . score (1, d);  dscore (1, d) += dvalues^T . hidden
  k::Sgemm(false, false, N, d, 1, 1.0f, dvalues, score, 0.0f, dhid_);
  k::Sgemm(true, false, 1, d, N, 1.0f, dvalues, hidden_, 1.0f, dscore);
  return BackwardFromHidden(dhid_);
}

Status LlamaModel::BackwardFromHidden(const float* dhidden) {
  if (!have_forward_)
    return Status::FailedPrecondition("LlamaModel::BackwardFromHidden: no Forward to go back from");
  const LayerDims& dm = dims_;
  const int64_t N = B_ * T_, L = config().num_hidden_layers;
  const int64_t qd = dm.q_dim(), kvd = dm.kv_dim(), ld = dm.qkv_dim();
  float* params = params_.data();
  float* grads = grads_.data();
  // dres: gradient of the residual stream, carried down through the layers.
  std::memset(dres_, 0, sizeof(float) * N * dm.d);
  RmsNormBackwardP(pool_.get(), dw_scratch_, dres_, grads + layout_.final_norm(), dhidden, x_final_,
                   params + layout_.final_norm(), rstd_f_, N, dm.d);
  const k::AttentionDims ad{B_, T_, dm.H, dm.Hkv, dm.hd, ld, ld, qd};
  for (int64_t l = L - 1; l >= 0; --l) {
    LayerActs& a = layer_acts_[static_cast<size_t>(l)];
    const LayerTensors w = layout_.Layer(l, params);
    const LayerTensors g = layout_.Layer(l, grads);
    // MLP: out = x_mid + h Wdown^T
    k::Sgemm(false, false, N, dm.f, dm.d, 1.0f, dres_, w.down, 0.0f, dh_);          // dh (N, f)
    k::Sgemm(true, false, dm.d, dm.f, N, 1.0f, dres_, a.h, 1.0f, g.down);           // dWdown (d, f)
    SwiGluBackwardP(pool_.get(), dgu_, dh_, a.gu, N, dm.f);                         // dgu (N, 2f)
    k::Sgemm(false, false, N, dm.d, 2 * dm.f, 1.0f, dgu_, w.gate_up, 0.0f, dhid_);  // dln2 (N, d)
    k::Sgemm(true, false, 2 * dm.f, dm.d, N, 1.0f, dgu_, a.ln2, 1.0f, g.gate_up);   // dWgu (2f, d)
    RmsNormBackwardP(pool_.get(), dw_scratch_, dres_, g.post_norm, dhid_, a.x_mid, w.post_norm,
                     a.rstd2, N, dm.d);
    // Attention: x_mid = x + att Wo^T
    k::Sgemm(false, false, N, qd, dm.d, 1.0f, dres_, w.o, 0.0f, datt_);  // datt (N, qd)
    k::Sgemm(true, false, dm.d, qd, N, 1.0f, dres_, a.att, 1.0f, g.o);   // dWo (d, qd)
    std::memset(dqkv_, 0, sizeof(float) * N * ld);
    k::AttentionBackward(dqkv_, dqkv_ + qd, dqkv_ + qd + kvd, attn_scratch_, datt_, a.probs, a.qkv,
                         a.qkv + qd, a.qkv + qd + kvd, key_start_.data(), ad, pool_.get());
    RopeP(pool_.get(), true, dqkv_, N, dm.H + dm.Hkv, dm.hd, ld, cos_, sin_);  // q and k heads
    k::Sgemm(false, false, N, dm.d, ld, 1.0f, dqkv_, w.qkv, 0.0f, dhid_);      // dln1 (N, d)
    k::Sgemm(true, false, ld, dm.d, N, 1.0f, dqkv_, a.ln1, 1.0f, g.qkv);       // dWqkv
    RmsNormBackwardP(pool_.get(), dw_scratch_, dres_, g.input_norm, dhid_, a.x, w.input_norm,
                     a.rstd1, N, dm.d);
  }
  k::EmbeddingBackward(grads + layout_.embed(), dres_, tokens_.data(), N, dm.d);
  return Status::Ok();
}

}  // namespace herd::model
