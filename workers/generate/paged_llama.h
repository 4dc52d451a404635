#pragma once
// The decode model path of the generation engine: a Llama forward that
// writes K/V into the paged cache and attends over block tables.
//
// Why a forward of its own: the training engine's forward (workers/model)
// computes whole packed rows at once and keeps no cache; generation needs a
// prefill that leaves K/V in paged blocks and a one-token-per-sequence decode
// step over block tables. Both run the same weights (ParamViews with HF
// names) and the same math as HF LlamaForCausalLM: RMSNorm, rotate_half RoPE
// with llama3 scaling, GQA attention, SwiGLU, final norm, (tied) LM head.
//
// Prefill uses OpenBLAS sgemm (its rows never depend on other sequences:
// a prompt is always prefilled alone). Decode uses InvariantLinear, so each
// row's logits are bit-identical whatever the batch (docs/generate.md).
#include <cstdint>
#include <vector>

#include "common/status.h"
#include "kernels/cpu/thread_pool.h"
#include "workers/generate/kv_cache.h"
#include "workers/model/config.h"
#include "workers/model/param_view.h"

namespace herd::generate {

// One decode step's batch, as data. Row b feeds tokens[b] at position
// positions[b]; its K/V go to row slot_row[b] of block slot_block[b]; it then
// attends to positions 0..positions[b] through its block table
// (queries.table_begin[b], queries.kv_len[b] = positions[b] + 1).
struct DecodeBatch {
  int64_t B = 0;
  const int32_t* tokens = nullptr;      // (B)
  const int32_t* positions = nullptr;   // (B)
  const int32_t* slot_block = nullptr;  // (B)
  const int32_t* slot_row = nullptr;    // (B)
  kernels::cpu::PagedQueries queries;   // n = B
};

// Scratch sized once (decode: max_batch rows) and grown on demand for the
// longest prompt seen (prefill happens once per admitted prompt, not per step).
struct ForwardWorkspace {
  int64_t max_batch = 0;
  // (rows, width): x, h (d); q, att (H*hd); k, v (Hkv*hd); g (2f) = gate | up;
  // u (f) = silu(gate) * up.
  std::vector<float> x, h, q, k, v, att, g, u;
  std::vector<float> cos, sin;                  // (rows, hd/2)
  std::vector<float> rstd;                      // (rows)
  std::vector<int32_t> table_begin, kv_len;     // prefill queries (P)
  int64_t rows = 0;                             // rows the buffers hold
};

class PagedLlama {
 public:
  // Binds the weights by HF tensor name; a missing tensor or a shape that
  // does not match the config is InvalidArgument naming the tensor. The
  // views must outlive the model (no copy is made).
  static Result<PagedLlama> Create(const model::LlamaConfig& config,
                                   const std::vector<model::ParamView>& params);

  const model::LlamaConfig& config() const { return cfg_; }
  KvCacheShape CacheShape(int64_t block_size) const;

  // Sizes ws for decode batches of up to max_batch rows.
  void PrepareWorkspace(ForwardWorkspace& ws, int64_t max_batch) const;

  // Runs the prompt tokens(P) at positions 0..P-1 of `seq` (whose table
  // already covers P positions, seq.len == P), writing every layer's K/V
  // into its blocks; last_logits(V) = logits of the last prompt token.
  Status Prefill(const int32_t* tokens, int64_t P, const SeqBlocks& seq, KvCache& cache,
                 float* last_logits, ForwardWorkspace& ws, kernels::cpu::ThreadPool& pool) const;

  // One token for each of batch.B sequences; logits(B, V).
  Status Decode(const DecodeBatch& batch, KvCache& cache, float* logits, ForwardWorkspace& ws,
                kernels::cpu::ThreadPool& pool) const;

 private:
  struct Layer {
    const float* attn_norm;  // (d)
    const float* wq;         // (H*hd, d)
    const float* wk;         // (Hkv*hd, d)
    const float* wv;         // (Hkv*hd, d)
    const float* wo;         // (d, H*hd)
    const float* mlp_norm;   // (d)
    const float* wg;         // (f, d)
    const float* wu;         // (f, d)
    const float* wd;         // (d, f)
  };
  void EnsureRows(ForwardWorkspace& ws, int64_t rows) const;
  void RopeTables(ForwardWorkspace& ws, const int32_t* positions, int64_t n) const;

  model::LlamaConfig cfg_;
  const float* embed_ = nullptr;    // (V, d)
  std::vector<Layer> layers_;
  const float* final_norm_ = nullptr;  // (d)
  const float* lm_head_ = nullptr;     // (V, d); the embedding when tied
  std::vector<double> inv_freq_;       // (hd/2) RoPE inverse frequencies, llama3-scaled
};

}  // namespace herd::generate
