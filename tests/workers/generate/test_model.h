#pragma once
// Test helpers: a tiny random Llama (weights in one buffer with HF-named
// ParamViews) and an independent float64 full forward (no cache, dense
// causal attention) to check the paged engine against.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "workers/model/config.h"
#include "workers/model/param_view.h"

namespace herd::generate::testing {

inline model::LlamaConfig TinyConfig() {
  model::LlamaConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;   // GQA
  c.head_dim = 16;
  c.vocab_size = 97;
  c.rope_theta = 10000.0f;
  c.max_position_embeddings = 512;
  model::RopeScaling s;
  s.factor = 4.0f;
  s.low_freq_factor = 1.0f;
  s.high_freq_factor = 4.0f;
  s.original_max_position_embeddings = 64;  // small, so all three bands occur
  c.rope_scaling = s;
  c.tie_word_embeddings = false;
  return c;
}

struct RandomModel {
  model::LlamaConfig cfg;
  std::vector<float> buffer;
  std::vector<model::ParamView> views;
};

inline RandomModel MakeRandomModel(const model::LlamaConfig& c, uint32_t seed) {
  RandomModel m;
  m.cfg = c;
  const int64_t d = c.hidden_size, f = c.intermediate_size, V = c.vocab_size;
  const int64_t qd = c.num_attention_heads * c.head_dim, kvd = c.num_key_value_heads * c.head_dim;
  struct Spec { std::string name; std::vector<int64_t> shape; bool norm; };
  std::vector<Spec> specs;
  specs.push_back({"model.embed_tokens.weight", {V, d}, false});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    specs.push_back({p + "input_layernorm.weight", {d}, true});
    specs.push_back({p + "self_attn.q_proj.weight", {qd, d}, false});
    specs.push_back({p + "self_attn.k_proj.weight", {kvd, d}, false});
    specs.push_back({p + "self_attn.v_proj.weight", {kvd, d}, false});
    specs.push_back({p + "self_attn.o_proj.weight", {d, qd}, false});
    specs.push_back({p + "post_attention_layernorm.weight", {d}, true});
    specs.push_back({p + "mlp.gate_proj.weight", {f, d}, false});
    specs.push_back({p + "mlp.up_proj.weight", {f, d}, false});
    specs.push_back({p + "mlp.down_proj.weight", {d, f}, false});
  }
  specs.push_back({"model.norm.weight", {d}, true});
  if (!c.tie_word_embeddings) specs.push_back({"lm_head.weight", {V, d}, false});
  int64_t total = 0;
  for (auto& s : specs) {
    int64_t n = 1;
    for (auto x : s.shape) n *= x;
    total += n;
  }
  m.buffer.resize(static_cast<size_t>(total));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  int64_t off = 0;
  for (auto& s : specs) {
    model::ParamView v;
    v.name = s.name;
    v.shape = s.shape;
    v.data = m.buffer.data() + off;
    const int64_t n = v.numel();
    const float scale = s.norm ? 0.1f : 1.0f / std::sqrt(static_cast<float>(s.shape.back()));
    for (int64_t i = 0; i < n; ++i) v.data[i] = s.norm ? 1.0f + scale * nd(rng) : scale * nd(rng);
    off += n;
    m.views.push_back(v);
  }
  return m;
}

// logits (T, V) in float64 for tokens at positions 0..T-1, straight from the
// HF definitions (rotate_half RoPE with llama3-scaled frequencies).
inline std::vector<double> ReferenceLogits(const RandomModel& m, const std::vector<int32_t>& tokens) {
  const auto& c = m.cfg;
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t d = c.hidden_size, f = c.intermediate_size, V = c.vocab_size, H = c.num_attention_heads,
                Hkv = c.num_key_value_heads, hd = c.head_dim, half = hd / 2;
  auto W = [&](const std::string& n) -> const float* {
    for (auto& v : m.views)
      if (v.name == n) return v.data;
    return nullptr;
  };
  std::vector<double> inv(static_cast<size_t>(half));
  for (int64_t k = 0; k < half; ++k) {
    double fr = std::pow(static_cast<double>(c.rope_theta), -2.0 * k / static_cast<double>(hd));
    if (c.rope_scaling) {
      const auto& s = *c.rope_scaling;
      const double old = static_cast<double>(s.original_max_position_embeddings);
      const double wl = 2 * M_PI / fr;
      if (wl > old / s.low_freq_factor) fr /= s.factor;
      else if (wl >= old / s.high_freq_factor) {
        const double sm = (old / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        fr = (1 - sm) * fr / s.factor + sm * fr;
      }
    }
    inv[static_cast<size_t>(k)] = fr;
  }
  auto linear = [](const std::vector<double>& x, const float* w, int64_t rows, int64_t in, int64_t out) {
    std::vector<double> y(static_cast<size_t>(rows * out), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < out; ++o) {
        double s = 0;
        for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * static_cast<double>(w[o * in + i]);
        y[r * out + o] = s;
      }
    return y;
  };
  auto rms = [&](const std::vector<double>& x, const float* w) {
    std::vector<double> y(x.size());
    for (int64_t t = 0; t < T; ++t) {
      double ss = 0;
      for (int64_t i = 0; i < d; ++i) ss += x[t * d + i] * x[t * d + i];
      const double r = 1.0 / std::sqrt(ss / d + static_cast<double>(c.rms_norm_eps));
      for (int64_t i = 0; i < d; ++i) y[t * d + i] = w[i] * x[t * d + i] * r;
    }
    return y;
  };
  auto rope = [&](std::vector<double>& x, int64_t heads) {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t k = 0; k < half; ++k) {
          double* v = &x[(t * heads + h) * hd];
          const double a = t * inv[static_cast<size_t>(k)];
          const double x1 = v[k], x2 = v[k + half];
          v[k] = x1 * std::cos(a) - x2 * std::sin(a);
          v[k + half] = x2 * std::cos(a) + x1 * std::sin(a);
        }
  };
  const float* emb = W("model.embed_tokens.weight");
  std::vector<double> x(static_cast<size_t>(T * d));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < d; ++i) x[t * d + i] = emb[tokens[static_cast<size_t>(t)] * d + i];
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto h = rms(x, W(p + "input_layernorm.weight"));
    auto q = linear(h, W(p + "self_attn.q_proj.weight"), T, d, H * hd);
    auto k = linear(h, W(p + "self_attn.k_proj.weight"), T, d, Hkv * hd);
    auto v = linear(h, W(p + "self_attn.v_proj.weight"), T, d, Hkv * hd);
    rope(q, H);
    rope(k, Hkv);
    std::vector<double> att(static_cast<size_t>(T * H * hd), 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t hh = 0; hh < H; ++hh) {
        const int64_t g = hh / (H / Hkv);
        std::vector<double> s(static_cast<size_t>(t + 1));
        double mx = -1e300;
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < hd; ++e) dot += q[(t * H + hh) * hd + e] * k[(j * Hkv + g) * hd + e];
          s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double z = 0;
        for (auto& e : s) z += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t e = 0; e < hd; ++e)
            att[(t * H + hh) * hd + e] += s[static_cast<size_t>(j)] / z * v[(j * Hkv + g) * hd + e];
      }
    auto o = linear(att, W(p + "self_attn.o_proj.weight"), T, H * hd, d);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    h = rms(x, W(p + "post_attention_layernorm.weight"));
    auto gg = linear(h, W(p + "mlp.gate_proj.weight"), T, d, f);
    auto uu = linear(h, W(p + "mlp.up_proj.weight"), T, d, f);
    for (size_t i = 0; i < gg.size(); ++i) gg[i] = gg[i] / (1 + std::exp(-gg[i])) * uu[i];
    auto dn = linear(gg, W(p + "mlp.down_proj.weight"), T, f, d);
    for (size_t i = 0; i < x.size(); ++i) x[i] += dn[i];
  }
  auto h = rms(x, W("model.norm.weight"));
  return linear(h, c.tie_word_embeddings ? emb : W("lm_head.weight"), T, d, V);
}

}  // namespace herd::generate::testing
