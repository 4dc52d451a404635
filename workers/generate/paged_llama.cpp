#include "workers/generate/paged_llama.h"

#include <cmath>
#include <cstring>
#include <string>
#include <unordered_map>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"
#include "workers/generate/invariant_linear.h"
#include "workers/model/llama.h"

namespace herd::generate {
namespace {
// The per-row ops are the training engine's (kernels/cpu): each row is
// computed on its own, so they are batch-invariant as they stand.
using kernels::cpu::AddInPlace;
using kernels::cpu::EmbeddingForward;
using kernels::cpu::RmsNormForward;
using kernels::cpu::RopeForward;
using kernels::cpu::SwiGluForward;

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

  // inv_freq (hd/2) with HF's llama3 rescaling, as the training engine does.
  m.inv_freq_ = model::RopeInverseFrequencies(c);
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
  ws.g.resize(r * 2 * f);   // gate | up
  ws.u.resize(r * f);       // silu(gate) * up
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
  kernels::cpu::RopeTables(ws.cos.data(), ws.sin.data(), positions, n, inv_freq_.data(),
                           cfg_.head_dim / 2);
}

Status PagedLlama::Prefill(const int32_t* tokens, int64_t P, const SeqBlocks& seq, KvCache& cache,
                           float* last_logits, ForwardWorkspace& ws,
                           kernels::cpu::ThreadPool& pool) const {
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
  EmbeddingForward(x, tokens, embed_, P, d);
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
    RmsNormForward(h, ws.rstd.data(), x, L.attn_norm, P, d, cfg_.rms_norm_eps);
    Sgemm(false, true, P, qd, d, 1.0f, h, L.wq, 0.0f, q);    // (P, H*hd)
    Sgemm(false, true, P, kvd, d, 1.0f, h, L.wk, 0.0f, k);   // (P, Hkv*hd)
    Sgemm(false, true, P, kvd, d, 1.0f, h, L.wv, 0.0f, v);   // (P, Hkv*hd)
    RopeForward(q, P, H, hd, qd, ws.cos.data(), ws.sin.data());
    RopeForward(k, P, Hkv, hd, kvd, ws.cos.data(), ws.sin.data());
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
    pool.ForEachPart(attn);
    Sgemm(false, true, P, d, qd, 1.0f, att, L.wo, 0.0f, h);  // (P, d)
    AddInPlace(x, h, P * d);
    RmsNormForward(h, ws.rstd.data(), x, L.mlp_norm, P, d, cfg_.rms_norm_eps);
    // gu (P, 2f) = [gate | up] per row, then u (P, f) = silu(gate) * up.
    kernels::cpu::SgemmStrided(false, true, P, f, d, 1.0f, h, d, L.wg, d, 0.0f, g, 2 * f);
    kernels::cpu::SgemmStrided(false, true, P, f, d, 1.0f, h, d, L.wu, d, 0.0f, g + f, 2 * f);
    SwiGluForward(u, g, P, f);
    Sgemm(false, true, P, d, f, 1.0f, u, L.wd, 0.0f, h);     // (P, d)
    AddInPlace(x, h, P * d);
  }
  // Logits of the last token only: final norm, then the head (V, d).
  RmsNormForward(h, ws.rstd.data(), x + (P - 1) * d, final_norm_, 1, d, cfg_.rms_norm_eps);
  auto head = [&](int part, int parts) {
    InvariantLinear(last_logits, V, h, d, lm_head_, 1, d, V, part, parts);
  };
  pool.ForEachPart(head);
  return Status::Ok();
}

Status PagedLlama::Decode(const DecodeBatch& b, KvCache& cache, float* logits,
                          ForwardWorkspace& ws, kernels::cpu::ThreadPool& pool) const {
  const int64_t d = cfg_.hidden_size, qd = cfg_.q_dim(), kvd = cfg_.kv_dim(),
                f = cfg_.intermediate_size, V = cfg_.vocab_size, H = cfg_.num_attention_heads,
                Hkv = cfg_.num_key_value_heads, hd = cfg_.head_dim;
  const int64_t B = b.B;
  if (B < 1) return Status::Ok();
  if (B > ws.rows) return Status::Internal("Decode: batch larger than the workspace");
  HERD_RETURN_IF_ERROR(CheckTokens(b.tokens, B, V, "decode token"));
  float *x = ws.x.data(), *h = ws.h.data(), *q = ws.q.data(), *k = ws.k.data(), *v = ws.v.data(),
        *att = ws.att.data(), *g = ws.g.data(), *u = ws.u.data();
  EmbeddingForward(x, b.tokens, embed_, B, d);
  RopeTables(ws, b.positions, B);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    RmsNormForward(h, ws.rstd.data(), x, L.attn_norm, B, d, cfg_.rms_norm_eps);
    auto qkv = [&](int part, int parts) {
      InvariantLinear(q, qd, h, d, L.wq, B, d, qd, part, parts);    // (B, H*hd)
      InvariantLinear(k, kvd, h, d, L.wk, B, d, kvd, part, parts);  // (B, Hkv*hd)
      InvariantLinear(v, kvd, h, d, L.wv, B, d, kvd, part, parts);  // (B, Hkv*hd)
    };
    pool.ForEachPart(qkv);
    RopeForward(q, B, H, hd, qd, ws.cos.data(), ws.sin.data());
    RopeForward(k, B, Hkv, hd, kvd, ws.cos.data(), ws.sin.data());
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
    pool.ForEachPart(attn);
    auto oproj = [&](int part, int parts) {
      InvariantLinear(h, d, att, qd, L.wo, B, qd, d, part, parts);   // (B, d)
    };
    pool.ForEachPart(oproj);
    AddInPlace(x, h, B * d);
    RmsNormForward(h, ws.rstd.data(), x, L.mlp_norm, B, d, cfg_.rms_norm_eps);
    auto gate_up = [&](int part, int parts) {
      InvariantLinear(g, 2 * f, h, d, L.wg, B, d, f, part, parts);       // gate (B, f)
      InvariantLinear(g + f, 2 * f, h, d, L.wu, B, d, f, part, parts);   // up (B, f)
    };
    pool.ForEachPart(gate_up);
    SwiGluForward(u, g, B, f);                                           // (B, f)
    auto down = [&](int part, int parts) {
      InvariantLinear(h, d, u, f, L.wd, B, f, d, part, parts);   // (B, d)
    };
    pool.ForEachPart(down);
    AddInPlace(x, h, B * d);
  }
  RmsNormForward(h, ws.rstd.data(), x, final_norm_, B, d, cfg_.rms_norm_eps);
  auto head = [&](int part, int parts) {
    InvariantLinear(logits, V, h, d, lm_head_, B, d, V, part, parts);   // (B, V)
  };
  pool.ForEachPart(head);
  return Status::Ok();
}

}  // namespace herd::generate
