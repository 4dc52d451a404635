#pragma once
// Parameter layout of the engine: ONE flat fp32 buffer holding every tensor
// in HF named_parameters order and HF shapes; gradients and AdamW moments
// are buffers of the same size with the same offsets, so one ParamLayout
// describes all of them. Per decoder layer the buffer holds, contiguously,
//   q_proj (H*hd, d) | k_proj (Hkv*hd, d) | v_proj (Hkv*hd, d)  -> one (H*hd + 2*Hkv*hd, d) matrix
//   o_proj (d, H*hd)
//   gate_proj (f, d) | up_proj (f, d)                            -> one (2f, d) matrix
//   down_proj (d, f)
//   input_layernorm (d), post_attention_layernorm (d)
// so the model runs q/k/v and gate/up as single fused sgemms while the
// checkpoint code still sees separate HF tensors. See docs/engine.md.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "workers/model/config.h"
#include "workers/model/param_view.h"

namespace herd::model {

// Float offsets of one decoder layer's tensors in the flat buffer.
struct LayerOffsets {
  int64_t qkv = 0;         // q_proj; k_proj and v_proj follow: (H*hd + 2*Hkv*hd, d)
  int64_t o = 0;           // o_proj (d, H*hd)
  int64_t gate_up = 0;     // gate_proj; up_proj follows: (2f, d)
  int64_t down = 0;        // down_proj (d, f)
  int64_t input_norm = 0;  // input_layernorm (d)
  int64_t post_norm = 0;   // post_attention_layernorm (d)
};

// One decoder layer's tensors inside some mirror buffer (params or grads).
struct LayerTensors {
  float* qkv;         // (H*hd + 2*Hkv*hd, d)
  float* o;           // (d, H*hd)
  float* gate_up;     // (2f, d)
  float* down;        // (d, f)
  float* input_norm;  // (d)
  float* post_norm;   // (d)
};

struct TensorSlot {
  std::string name;            // HF name
  std::vector<int64_t> shape;  // HF shape
  int64_t offset = 0;          // floats from the buffer start
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
};

// Engine-side config checks (positive sizes, H % Hkv == 0, even head_dim)
// and the head_dim default (d / H when 0). Errors name the field.
Result<LlamaConfig> NormalizeForEngine(const LlamaConfig& c);

class ParamLayout {
 public:
  // c must pass NormalizeForEngine (Create calls it).
  static Result<ParamLayout> Create(const LlamaConfig& c);

  const LlamaConfig& config() const { return config_; }
  int64_t numel() const { return numel_; }
  const std::vector<TensorSlot>& tensors() const { return tensors_; }
  const TensorSlot* Find(std::string_view name) const;

  int64_t embed() const { return embed_; }            // (V, d)
  int64_t final_norm() const { return final_norm_; }  // (d)
  // lm_head (V, d): the embedding's offset when tied; -1 for a reward model.
  int64_t lm_head() const { return lm_head_; }
  int64_t score() const { return score_; }  // (1, d), -1 unless reward model
  const LayerOffsets& layer(int64_t i) const { return layers_[static_cast<size_t>(i)]; }
  LayerTensors Layer(int64_t i, float* base) const;

  // Named views of any buffer with this layout (params, grads, moments), in
  // HF named_parameters order. A tied lm_head has no view of its own.
  std::vector<ParamView> Views(float* base) const;

  // [offset, offset + n) ranges of the 1-D tensors (norm weights), which
  // AdamW by convention does not decay.
  std::vector<std::pair<int64_t, int64_t>> NoDecayRanges() const;

 private:
  LlamaConfig config_;
  std::vector<TensorSlot> tensors_;
  std::vector<LayerOffsets> layers_;
  int64_t numel_ = 0, embed_ = 0, final_norm_ = 0, lm_head_ = -1, score_ = -1;
};

// A zero-initialised, 64-byte aligned fp32 buffer of fixed size.
class FloatBuffer {
 public:
  FloatBuffer() = default;
  explicit FloatBuffer(int64_t n);
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  int64_t size() const { return size_; }
  void Zero();

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, Free> data_;
  int64_t size_ = 0;
};

// HF-style initialisation: matrices ~ N(0, std^2), norm weights 1.
// Deterministic for a seed. Default std 0.02 (HF initializer_range).
void InitParams(const ParamLayout& layout, float* params, uint64_t seed, float std = 0.02f);

}  // namespace herd::model
