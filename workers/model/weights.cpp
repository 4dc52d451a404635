#include "workers/model/weights.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <random>

namespace herd::model {

Result<LlamaConfig> NormalizeForEngine(const LlamaConfig& in) {
  LlamaConfig c = in;
  auto bad = [](const char* field, const std::string& why) {
    return Status::InvalidArgument(std::string("LlamaConfig: field '") + field + "' " + why);
  };
  if (c.hidden_size <= 0) return bad("hidden_size", "must be positive");
  if (c.intermediate_size <= 0) return bad("intermediate_size", "must be positive");
  if (c.num_hidden_layers <= 0) return bad("num_hidden_layers", "must be positive");
  if (c.num_attention_heads <= 0) return bad("num_attention_heads", "must be positive");
  if (c.vocab_size <= 0) return bad("vocab_size", "must be positive");
  if (c.num_key_value_heads == 0) c.num_key_value_heads = c.num_attention_heads;
  if (c.num_key_value_heads < 0 || c.num_attention_heads % c.num_key_value_heads != 0)
    return bad("num_key_value_heads", "must divide num_attention_heads");
  if (c.head_dim == 0) {
    if (c.hidden_size % c.num_attention_heads != 0)
      return bad("head_dim", "missing and hidden_size is not a multiple of num_attention_heads");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) return bad("head_dim", "must be positive and even");
  if (!(c.rms_norm_eps > 0.0f)) return bad("rms_norm_eps", "must be positive");
  if (!(c.rope_theta > 0.0f)) return bad("rope_theta", "must be positive");
  if (c.rope_scaling) {
    const auto& s = *c.rope_scaling;
    if (!(s.factor > 0.0f)) return bad("rope_scaling.factor", "must be positive");
    if (!(s.low_freq_factor > 0.0f)) return bad("rope_scaling.low_freq_factor", "must be positive");
    if (!(s.high_freq_factor > s.low_freq_factor))
      return bad("rope_scaling.high_freq_factor", "must exceed low_freq_factor");
    if (s.original_max_position_embeddings <= 0)
      return bad("rope_scaling.original_max_position_embeddings", "must be positive");
  }
  return c;
}

Result<ParamLayout> ParamLayout::Create(const LlamaConfig& in) {
  HERD_ASSIGN_OR_RETURN(LlamaConfig c, NormalizeForEngine(in));
  ParamLayout p;
  p.config_ = c;
  const int64_t d = c.hidden_size, f = c.intermediate_size, V = c.vocab_size;
  const int64_t qd = c.q_dim(), kvd = c.kv_dim();
  int64_t off = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    TensorSlot s{std::move(name), std::move(shape), off};
    off += s.numel();
    p.tensors_.push_back(std::move(s));
    return p.tensors_.back().offset;
  };
  p.embed_ = add("model.embed_tokens.weight", {V, d});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string pre = "model.layers." + std::to_string(i) + ".";
    LayerOffsets l;
    l.qkv = add(pre + "self_attn.q_proj.weight", {qd, d});
    add(pre + "self_attn.k_proj.weight", {kvd, d});
    add(pre + "self_attn.v_proj.weight", {kvd, d});
    l.o = add(pre + "self_attn.o_proj.weight", {d, qd});
    l.gate_up = add(pre + "mlp.gate_proj.weight", {f, d});
    add(pre + "mlp.up_proj.weight", {f, d});
    l.down = add(pre + "mlp.down_proj.weight", {d, f});
    l.input_norm = add(pre + "input_layernorm.weight", {d});
    l.post_norm = add(pre + "post_attention_layernorm.weight", {d});
    p.layers_.push_back(l);
  }
  p.final_norm_ = add("model.norm.weight", {d});
  if (c.is_reward_model) {
    p.score_ = add("score.weight", {1, d});
  } else if (c.tie_word_embeddings) {
    p.lm_head_ = p.embed_;
  } else {
    p.lm_head_ = add("lm_head.weight", {V, d});
  }
  p.numel_ = off;
  return p;
}

const TensorSlot* ParamLayout::Find(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

LayerTensors ParamLayout::Layer(int64_t i, float* base) const {
  const LayerOffsets& l = layer(i);
  return {base + l.qkv,  base + l.o,          base + l.gate_up,
          base + l.down, base + l.input_norm, base + l.post_norm};
}

std::vector<ParamView> ParamLayout::Views(float* base) const {
  std::vector<ParamView> v;
  v.reserve(tensors_.size());
  for (const auto& t : tensors_) v.push_back(ParamView{t.name, t.shape, base + t.offset});
  return v;
}

std::vector<std::pair<int64_t, int64_t>> ParamLayout::NoDecayRanges() const {
  std::vector<std::pair<int64_t, int64_t>> r;
  for (const auto& t : tensors_)
    if (t.shape.size() == 1) r.emplace_back(t.offset, t.numel());
  return r;
}

FloatBuffer::FloatBuffer(int64_t n) : size_(n) {
  const size_t bytes = ((static_cast<size_t>(n) * sizeof(float) + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
  if (p == nullptr) throw std::bad_alloc();  // construction-time only (model creation)
  data_.reset(static_cast<float*>(p));
  Zero();
}

void FloatBuffer::Zero() {
  if (size_ > 0) std::memset(data_.get(), 0, sizeof(float) * static_cast<size_t>(size_));
}

void FloatBuffer::Free::operator()(float* p) const { std::free(p); }

void InitParams(const ParamLayout& layout, float* params, uint64_t seed, float std) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, std);
  for (const auto& t : layout.tensors()) {
    float* p = params + t.offset;
    if (t.shape.size() == 1) {
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = 1.0f;
    } else {
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = nd(rng);
    }
  }
}

}  // namespace herd::model
