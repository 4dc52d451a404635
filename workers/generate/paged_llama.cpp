#include "workers/generate/paged_llama.h"

#include <cmath>
#include <cstring>
#include <string>
#include <unordered_map>

#include "kernels/cpu/blas.h"
#include "workers/generate/invariant_linear.h"

namespace herd::generate {
namespace {

// out(n, C) = w * x / sqrt(mean(x^2) + eps), per row in index order (HF
// LlamaRMSNorm); rows never interact, so batching cannot change a row.
void RmsNormRows(float* out, const float* x, const float* w, int64_t n, int64_t C, float eps) {
  for (int64_t r = 0; r < n; ++r) {
    const float* __restrict xr = x + r * C;
    float* __restrict yr = out + r * C;
    float ss = 0.0f;
    for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
    const float rs = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    for (int64_t c = 0; c < C; ++c) yr[c] = w[c] * (xr[c] * rs);
  }
}

// rotate_half RoPE on n rows of `heads` head vectors (row stride ld):
// (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin); cos/sin (n, hd/2).
void RopeRows(float* x, int64_t n, int64_t heads, int64_t hd, int64_t ld, const float* cos,
              const float* sin) {
  const int64_t half = hd / 2;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + r * ld + h * hd;
      const float* c = cos + r * half;
      const float* s = sin + r * half;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
}

void AddInPlace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

// g = silu(g) * u, elementwise.
void SwiGlu(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

Status CheckTokens(const int32_t* t, int64_t n, int64_t V, const char* what) {
  for (int64_t i = 0; i < n; ++i)
    if (t[i] < 0 || t[i] >= V)
      return Status::InvalidArgument(std::string(what) + "[" + std::to_string(i) + "] = " +
                                     std::to_string(t[i]) + " outside [0, vocab_size " +
                                     std::to_string(V) + ")");
  return Status::Ok();
}

}  // namespace

Result<PagedLlama> PagedLlama::Create(const model::LlamaConfig& config,
                                      const std::vector<model::ParamView>& params) {
  PagedLlama m;
  m.cfg_ = config;
  auto& c = m.cfg_;
  if (c.head_dim == 0 && c.num_attention_heads > 0) c.head_dim = c.hidden_size / c.num_attention_heads;
  if (c.num_key_value_heads == 0) c.num_key_value_heads = c.num_attention_heads;
  if (c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_hidden_layers <= 0 ||
      c.num_attention_heads <= 0 || c.vocab_size <= 0 || c.head_dim <= 0)
    return Status::InvalidArgument("PagedLlama: config sizes must be positive");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    return Status::InvalidArgument("PagedLlama: num_attention_heads % num_key_value_heads != 0");
  if (c.num_attention_heads / c.num_key_value_heads > kernels::cpu::kMaxPagedGroup)
    return Status::InvalidArgument("PagedLlama: more than 64 query heads per kv head");
  if (c.head_dim % 2 != 0) return Status::InvalidArgument("PagedLlama: head_dim must be even");

  std::unordered_map<std::string, const model::ParamView*> by_name;
  for (const auto& p : params) by_name[p.name] = &p;
  Status err;
  auto get = [&](const std::string& name, std::vector<int64_t> shape) -> const float* {
    if (!err.ok()) return nullptr;
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      err = Status::InvalidArgument("PagedLlama: missing tensor '" + name + "'");
      return nullptr;
    }
    if (it->second->shape != shape || it->second->data == nullptr) {
      std::string want, got;
      for (auto s : shape) want += std::to_string(s) + ",";
      for (auto s : it->second->shape) got += std::to_string(s) + ",";
      err = Status::InvalidArgument("PagedLlama: tensor '" + name + "' has shape (" + got +
                                    ") but the config needs (" + want + ")");
      return nullptr;
    }
    return it->second->data;
  };
  const int64_t d = c.hidden_size, f = c.intermediate_size, V = c.vocab_size;
  m.embed_ = get("model.embed_tokens.weight", {V, d});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Layer L;
    L.attn_norm = get(p + "input_layernorm.weight", {d});
    L.wq = get(p + "self_attn.q_proj.weight", {c.q_dim(), d});
    L.wk = get(p + "self_attn.k_proj.weight", {c.kv_dim(), d});
    L.wv = get(p + "self_attn.v_proj.weight", {c.kv_dim(), d});
    L.wo = get(p + "self_attn.o_proj.weight", {d, c.q_dim()});
    L.mlp_norm = get(p + "post_attention_layernorm.weight", {d});
    L.wg = get(p + "mlp.gate_proj.weight", {f, d});
    L.wu = get(p + "mlp.up_proj.weight", {f, d});
    L.wd = get(p + "mlp.down_proj.weight", {d, f});
    m.layers_.push_back(L);
  }
  m.final_norm_ = get("model.norm.weight", {d});
  m.lm_head_ = c.tie_word_embeddings ? m.embed_ : get("lm_head.weight", {V, d});
  HERD_RETURN_IF_ERROR(err);

  // inv_freq[k] = theta^(-2k/hd), then HF's llama3 rescaling by wavelength.
  const int64_t half = c.head_dim / 2;
  m.inv_freq_.resize(static_cast<size_t>(half));
  for (int64_t k = 0; k < half; ++k) {
    double fr = 1.0 / std::pow(static_cast<double>(c.rope_theta),
                               static_cast<double>(2 * k) / static_cast<double>(c.head_dim));
    if (c.rope_scaling) {
      const auto& s = *c.rope_scaling;
      const double old = static_cast<double>(s.original_max_position_embeddings);
      const double low_wl = old / s.low_freq_factor, high_wl = old / s.high_freq_factor;
      const double wl = 2.0 * M_PI / fr;
      if (wl > low_wl) {
        fr = fr / s.factor;
      } else if (wl >= high_wl) {
        const double sm = (old / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        fr = (1.0 - sm) * fr / s.factor + sm * fr;
      }
    }
    m.inv_freq_[static_cast<size_t>(k)] = fr;
  }
  return m;
}

KvCacheShape PagedLlama::CacheShape(int64_t block_size) const {
  KvCacheShape s;
  s.num_layers = cfg_.num_hidden_layers;
  s.num_kv_heads = cfg_.num_key_value_heads;
  s.head_dim = cfg_.head_dim;
  s.block_size = block_size;
  return s;
}

void PagedLlama::EnsureRows(ForwardWorkspace& ws, int64_t rows) const {
  if (ws.rows >= rows) return;
  const auto r = static_cast<size_t>(rows);
  const auto d = static_cast<size_t>(cfg_.hidden_size), qd = static_cast<size_t>(cfg_.q_dim()),
             kvd = static_cast<size_t>(cfg_.kv_dim()),
             f = static_cast<size_t>(cfg_.intermediate_size);
  ws.x.resize(r * d);
  ws.h.resize(r * d);
  ws.q.resize(r * qd);
  ws.k.resize(r * kvd);
  ws.v.resize(r * kvd);
  ws.att.resize(r * qd);
  ws.g.resize(r * f);
  ws.u.resize(r * f);
  ws.cos.resize(r * static_cast<size_t>(cfg_.head_dim / 2));
  ws.sin.resize(r * static_cast<size_t>(cfg_.head_dim / 2));
  ws.rstd.resize(r);
  ws.table_begin.resize(r);
  ws.kv_len.resize(r);
  ws.rows = rows;
}

void PagedLlama::PrepareWorkspace(ForwardWorkspace& ws, int64_t max_batch) const {
  ws.max_batch = max_batch;
  EnsureRows(ws, max_batch);
}

void PagedLlama::RopeTables(ForwardWorkspace& ws, const int32_t* positions, int64_t n) const {
  const int64_t half = cfg_.head_dim / 2;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < half; ++k) {
      // Angle in float64, as HF computes pos * inv_freq before cos/sin in fp32
      // only up to rounding; well inside the 1e-5 parity budget.
      const double a = static_cast<double>(positions[r]) * inv_freq_[static_cast<size_t>(k)];
      ws.cos[static_cast<size_t>(r * half + k)] = static_cast<float>(std::cos(a));
      ws.sin[static_cast<size_t>(r * half + k)] = static_cast<float>(std::sin(a));
    }
}

Status PagedLlama::Prefill(const int32_t* tokens, int64_t P, const SeqBlocks& seq, KvCache& cache,
                           float* last_logits, ForwardWorkspace& ws, WorkerPool& pool) const {
  const int64_t d = cfg_.hidden_size, qd = cfg_.q_dim(), kvd = cfg_.kv_dim(),
                f = cfg_.intermediate_size, V = cfg_.vocab_size, H = cfg_.num_attention_heads,
                Hkv = cfg_.num_key_value_heads, hd = cfg_.head_dim;
  const int64_t bs = cache.block_size();
  if (P < 1) return Status::InvalidArgument("Prefill: empty prompt");
  if (seq.len != P || static_cast<int64_t>(seq.blocks.size()) * bs < P)
    return Status::Internal("Prefill: block table does not cover the prompt");
  HERD_RETURN_IF_ERROR(CheckTokens(tokens, P, V, "prompt"));
  EnsureRows(ws, P);

  float *x = ws.x.data(), *h = ws.h.data(), *q = ws.q.data(), *k = ws.k.data(), *v = ws.v.data(),
        *att = ws.att.data(), *g = ws.g.data(), *u = ws.u.data();
  for (int64_t t = 0; t < P; ++t)
    std::memcpy(x + t * d, embed_ + static_cast<int64_t>(tokens[t]) * d, sizeof(float) * d);
  for (int64_t t = 0; t < P; ++t) {
    ws.table_begin[static_cast<size_t>(t)] = 0;   // every query reads the one table
    ws.kv_len[static_cast<size_t>(t)] = static_cast<int32_t>(t + 1);  // causal
  }
  // Positions 0..P-1: reuse kv_len - 1 as the position list.
  std::vector<int32_t>& pos = ws.kv_len;
  for (int64_t t = 0; t < P; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(t);
  RopeTables(ws, pos.data(), P);
  for (int64_t t = 0; t < P; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(t + 1);

  kernels::cpu::PagedQueries qs;
  qs.n = P;
  qs.table_begin = ws.table_begin.data();
  qs.kv_len = ws.kv_len.data();
  qs.block_ids = seq.blocks.data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  using kernels::cpu::Sgemm;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    RmsNormRows(h, x, L.attn_norm, P, d, cfg_.rms_norm_eps);
    Sgemm(false, true, P, qd, d, 1.0f, h, L.wq, 0.0f, q);    // (P, H*hd)
    Sgemm(false, true, P, kvd, d, 1.0f, h, L.wk, 0.0f, k);   // (P, Hkv*hd)
    Sgemm(false, true, P, kvd, d, 1.0f, h, L.wv, 0.0f, v);   // (P, Hkv*hd)
    RopeRows(q, P, H, hd, qd, ws.cos.data(), ws.sin.data());
    RopeRows(k, P, Hkv, hd, kvd, ws.cos.data(), ws.sin.data());
    float* kp = cache.k(static_cast<int64_t>(l));
    float* vp = cache.v(static_cast<int64_t>(l));
    for (int64_t t = 0; t < P; ++t) {
      const int64_t off = cache.RowOffset(seq.blocks[static_cast<size_t>(t / bs)], t % bs);
      std::memcpy(kp + off, k + t * kvd, sizeof(float) * kvd);
      std::memcpy(vp + off, v + t * kvd, sizeof(float) * kvd);
    }
    const kernels::cpu::PagedKv view = cache.LayerView(static_cast<int64_t>(l));
    auto attn = [&](int part, int parts) {
      kernels::cpu::PagedAttentionForward(att, qd, q, qd, H, scale, view, qs, part, parts);
    };
    pool.Run(attn);
    Sgemm(false, true, P, d, qd, 1.0f, att, L.wo, 0.0f, h);  // (P, d)
    AddInPlace(x, h, P * d);
    RmsNormRows(h, x, L.mlp_norm, P, d, cfg_.rms_norm_eps);
    Sgemm(false, true, P, f, d, 1.0f, h, L.wg, 0.0f, g);     // (P, f)
    Sgemm(false, true, P, f, d, 1.0f, h, L.wu, 0.0f, u);     // (P, f)
    SwiGlu(g, u, P * f);
    Sgemm(false, true, P, d, f, 1.0f, g, L.wd, 0.0f, h);     // (P, d)
    AddInPlace(x, h, P * d);
  }
  // Logits of the last token only: final norm, then the head (V, d).
  RmsNormRows(h, x + (P - 1) * d, final_norm_, 1, d, cfg_.rms_norm_eps);
  auto head = [&](int part, int parts) {
    InvariantLinear(last_logits, V, h, d, lm_head_, 1, d, V, part, parts);
  };
  pool.Run(head);
  return Status::Ok();
}

Status PagedLlama::Decode(const DecodeBatch& b, KvCache& cache, float* logits,
                          ForwardWorkspace& ws, WorkerPool& pool) const {
  const int64_t d = cfg_.hidden_size, qd = cfg_.q_dim(), kvd = cfg_.kv_dim(),
                f = cfg_.intermediate_size, V = cfg_.vocab_size, H = cfg_.num_attention_heads,
                Hkv = cfg_.num_key_value_heads, hd = cfg_.head_dim;
  const int64_t B = b.B;
  if (B < 1) return Status::Ok();
  if (B > ws.rows) return Status::Internal("Decode: batch larger than the workspace");
  HERD_RETURN_IF_ERROR(CheckTokens(b.tokens, B, V, "decode token"));
  float *x = ws.x.data(), *h = ws.h.data(), *q = ws.q.data(), *k = ws.k.data(), *v = ws.v.data(),
        *att = ws.att.data(), *g = ws.g.data(), *u = ws.u.data();
  for (int64_t r = 0; r < B; ++r)
    std::memcpy(x + r * d, embed_ + static_cast<int64_t>(b.tokens[r]) * d, sizeof(float) * d);
  RopeTables(ws, b.positions, B);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    RmsNormRows(h, x, L.attn_norm, B, d, cfg_.rms_norm_eps);
    auto qkv = [&](int part, int parts) {
      InvariantLinear(q, qd, h, d, L.wq, B, d, qd, part, parts);    // (B, H*hd)
      InvariantLinear(k, kvd, h, d, L.wk, B, d, kvd, part, parts);  // (B, Hkv*hd)
      InvariantLinear(v, kvd, h, d, L.wv, B, d, kvd, part, parts);  // (B, Hkv*hd)
    };
    pool.Run(qkv);
    RopeRows(q, B, H, hd, qd, ws.cos.data(), ws.sin.data());
    RopeRows(k, B, Hkv, hd, kvd, ws.cos.data(), ws.sin.data());
    float* kp = cache.k(static_cast<int64_t>(l));
    float* vp = cache.v(static_cast<int64_t>(l));
    for (int64_t r = 0; r < B; ++r) {
      const int64_t off = cache.RowOffset(b.slot_block[r], b.slot_row[r]);
      std::memcpy(kp + off, k + r * kvd, sizeof(float) * kvd);
      std::memcpy(vp + off, v + r * kvd, sizeof(float) * kvd);
    }
    const kernels::cpu::PagedKv view = cache.LayerView(static_cast<int64_t>(l));
    auto attn = [&](int part, int parts) {
      kernels::cpu::PagedAttentionForward(att, qd, q, qd, H, scale, view, b.queries, part, parts);
    };
    pool.Run(attn);
    auto oproj = [&](int part, int parts) {
      InvariantLinear(h, d, att, qd, L.wo, B, qd, d, part, parts);   // (B, d)
    };
    pool.Run(oproj);
    AddInPlace(x, h, B * d);
    RmsNormRows(h, x, L.mlp_norm, B, d, cfg_.rms_norm_eps);
    auto gate_up = [&](int part, int parts) {
      InvariantLinear(g, f, h, d, L.wg, B, d, f, part, parts);   // (B, f)
      InvariantLinear(u, f, h, d, L.wu, B, d, f, part, parts);   // (B, f)
    };
    pool.Run(gate_up);
    SwiGlu(g, u, B * f);
    auto down = [&](int part, int parts) {
      InvariantLinear(h, d, g, f, L.wd, B, f, d, part, parts);   // (B, d)
    };
    pool.Run(down);
    AddInPlace(x, h, B * d);
  }
  RmsNormRows(h, x, final_norm_, B, d, cfg_.rms_norm_eps);
  auto head = [&](int part, int parts) {
    InvariantLinear(logits, V, h, d, lm_head_, B, d, V, part, parts);   // (B, V)
  };
  pool.Run(head);
  return Status::Ok();
}

}  // namespace herd::generate
