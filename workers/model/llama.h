#pragma once
// The Llama decoder on CPU: forward and backward over a PackedBatch, with
// parameters and gradients in two flat buffers laid out by ParamLayout and
// activations sized once for (max_batch, max_seq) at creation. Nothing is
// allocated per step. See docs/engine.md.
//
// Step protocol:
//   model.ZeroGrad();
//   model.Forward(batch);                    // logits() (N, V) or values() (N)
//   <loss writes dlogits, e.g. into logits() in place>
//   model.Backward(model.logits());          // or BackwardFromHidden / BackwardFromValues
//   <optimizer reads grads(), writes params()>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "workers/model/config.h"
#include "workers/model/packed_batch.h"
#include "workers/model/param_view.h"
#include "workers/model/weights.h"

namespace herd::kernels::cpu {
class ThreadPool;
}

namespace herd::model {

// Sizes one decoder layer needs; from a normalised LlamaConfig.
struct LayerDims {
  int64_t d = 0, f = 0, H = 0, Hkv = 0, hd = 0;
  float eps = 1e-5f;
  int64_t q_dim() const { return H * hd; }
  int64_t kv_dim() const { return Hkv * hd; }
  int64_t qkv_dim() const { return (H + 2 * Hkv) * hd; }
  static LayerDims From(const LlamaConfig& c);
};

// The building blocks of one decoder layer for n tokens, free of any batch
// or attention layout, so a KV-cached decode path can reuse them:
//   LayerQkvForward -> (store k, v in a cache; run attention) -> LayerOutForward.
// w points into the parameter buffer (ParamLayout::Layer).
//
// ln1 (n, d), rstd1 (n) = RMSNorm(x); qkv (n, qkv_dim) = ln1 Wqkv^T with
// RoPE applied to the q and k columns. cos/sin (n, hd/2) from RopeTables.
// pool (optional) splits the element-wise loops by rows between sgemms.
void LayerQkvForward(const LayerTensors& w, const LayerDims& dims, int64_t n, const float* x,
                     float* ln1, float* rstd1, float* qkv, const float* cos, const float* sin,
                     kernels::cpu::ThreadPool* pool = nullptr);

// x_mid = x + att Wo^T; ln2, rstd2 = RMSNorm(x_mid); gu (n, 2f) = ln2 Wgu^T;
// h (n, f) = silu(gate) * up; out (n, d) = x_mid + h Wdown^T.
// att (n, H*hd) is the attention output; out may alias nothing else.
void LayerOutForward(const LayerTensors& w, const LayerDims& dims, int64_t n, const float* x,
                     const float* att, float* x_mid, float* ln2, float* rstd2, float* gu, float* h,
                     float* out, kernels::cpu::ThreadPool* pool = nullptr);

// RoPE inverse frequencies (head_dim/2) for c, with HF's llama3 rescaling
// when c.rope_scaling is set; angles in float64 (kernels/cpu/rope.h). The
// training engine and the paged generator both take theirs from here.
std::vector<double> RopeInverseFrequencies(const LlamaConfig& c);

class LlamaModel {
 public:
  // Activations for up to max_batch rows of max_seq tokens. threads: the
  // worker threads attention runs on (between, never during, OpenBLAS
  // calls). Default: 0 = std::thread::hardware_concurrency(). Errors: a bad
  // config (field named) or ResourceExhausted when buffers cannot be had.
  static Result<std::unique_ptr<LlamaModel>> Create(const LlamaConfig& config, int64_t max_batch,
                                                    int64_t max_seq, int threads = 0);
  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  const LlamaConfig& config() const { return layout_.config(); }
  const ParamLayout& layout() const { return layout_; }
  const LayerDims& dims() const { return dims_; }
  int64_t max_batch() const { return max_batch_; }
  int64_t max_seq() const { return max_seq_; }

  float* params() { return params_.data(); }  // (layout().numel())
  float* grads() { return grads_.data(); }    // same layout
  int64_t num_params() const { return layout_.numel(); }
  std::vector<ParamView> ParamViews() { return layout_.Views(params_.data()); }
  std::vector<ParamView> GradViews() { return layout_.Views(grads_.data()); }
  // Rotary inverse frequencies (hd/2), llama3 scaling applied.
  const std::vector<double>& inv_freq() const { return inv_freq_; }

  void InitRandom(uint64_t seed, float std = 0.02f) { InitParams(layout_, params(), seed, std); }
  void ZeroGrad() { grads_.Zero(); }

  enum class Head {
    kFull,        // logits (LM) or values (reward model). Default.
    kHiddenOnly,  // stop after the final norm (e.g. a value head computed outside)
  };
  // Checks the batch (sizes, token ids in [0, V), targets in [-1, V) when given, segment ids),
  // naming the field and index at fault, then runs the forward pass.
  Status Forward(const PackedBatch& batch, Head head = Head::kFull);

  // Results of the last Forward, N = B*T rows.
  const float* hidden() const { return hidden_; }  // (N, d) after model.norm
  float* logits() { return logits_; }              // (N, V); null for a reward model
  const float* values() const { return values_; }  // (N) reward model score per token
  int64_t rows() const { return B_ * T_; }

  // Accumulate parameter gradients (grads() +=). dlogits (N, V) may alias
  // logits(). Need a kFull forward of an LM.
  Status Backward(const float* dlogits);
  // dvalues (N): gradient w.r.t. values(); reward model only.
  Status BackwardFromValues(const float* dvalues);
  // dhidden (N, d): gradient w.r.t. hidden(), from a head computed outside.
  Status BackwardFromHidden(const float* dhidden);

 private:
  LlamaModel(ParamLayout layout, int64_t max_batch, int64_t max_seq);
  Status CheckBatch(const PackedBatch& b) const;
  void Carve();

  struct LayerActs {
    float* x;      // (N, d) layer input (residual stream)
    float* ln1;    // (N, d)
    float* rstd1;  // (N)
    float* qkv;    // (N, qkv_dim): q, k after RoPE; v
    float* probs;  // (B, H, T, T) attention probabilities
    float* att;    // (N, H*hd) attention output
    float* x_mid;  // (N, d) residual after attention
    float* ln2;    // (N, d)
    float* rstd2;  // (N)
    float* gu;     // (N, 2f) gate | up
    float* h;      // (N, f) silu(gate) * up
  };

  ParamLayout layout_;
  LayerDims dims_;
  int64_t max_batch_, max_seq_;
  std::vector<double> inv_freq_;
  std::unique_ptr<kernels::cpu::ThreadPool> pool_;
  FloatBuffer params_, grads_, acts_;
  std::vector<LayerActs> layer_acts_;
  // Shared activations and backward scratch (pointers into acts_).
  float* x_final_ = nullptr;  // (N, d) last layer output
  float* hidden_ = nullptr;   // (N, d) after the final norm
  float* rstd_f_ = nullptr;   // (N)
  float* logits_ = nullptr;   // (N, V) LM only
  float* values_ = nullptr;   // (N) reward model only
  float* cos_ = nullptr;      // (N, hd/2)
  float* sin_ = nullptr;      // (N, hd/2)
  float* dres_ = nullptr;     // (N, d) gradient of the residual stream
  float* dhid_ = nullptr;     // (N, d) gradient of hidden / scratch
  float* dqkv_ = nullptr;     // (N, qkv_dim)
  float* datt_ = nullptr;     // (N, H*hd)
  float* dgu_ = nullptr;      // (N, 2f)
  float* dh_ = nullptr;       // (N, f)
  float* attn_scratch_ = nullptr;
  float* dw_scratch_ = nullptr;  // (threads, d) per-thread RMSNorm weight-gradient partials
  std::vector<int32_t> tokens_, segments_, parents_, key_start_;  // (N) copies of the batch
  int64_t B_ = 0, T_ = 0;
  bool have_forward_ = false, have_head_ = false;
};

}  // namespace herd::model
