#pragma once
// Attention of single queries over a paged K/V cache (decode, and prefill
// written as one query per prompt token), with grouped-query heads.
//
// Cache layout, per layer (FlashInfer's "NHD" page layout):
//   k_pool, v_pool: (num_blocks, block_size, Hkv, hd) fp32, contiguous.
//   Token p of a sequence lives in block block_ids[begin + p / block_size],
//   row p % block_size.
// Query batch, as data (compare FlashInfer's indptr / indices /
// last_page_len; we keep a begin offset and a length per query instead of a
// CSR indptr, so the T queries of one prefill share one block list):
//   table_begin(n): offset of query i's block table in block_ids
//   kv_len(n):      query i attends to positions 0 .. kv_len[i]-1 of its
//                   sequence; its table has ceil(kv_len / block_size) ids
//                   and the last block holds kv_len - (that-1)*block_size.
//
// Numerics: each (query, head) is reduced on its own, in position order, in
// fixed chunks of 32 positions with an online softmax (running max and sum),
// so its result is bit-identical whatever the batch, its position in the
// batch, the split of work across threads, or the block size (batch
// invariance).
#include <cstdint>

namespace herd::kernels::cpu {

struct PagedKv {
  const float* k = nullptr;   // (num_blocks, block_size, Hkv, hd)
  const float* v = nullptr;   // (num_blocks, block_size, Hkv, hd)
  int64_t num_blocks = 0;
  int64_t block_size = 0;     // tokens per block; <= kMaxPagedBlockSize
  int64_t num_kv_heads = 0;   // Hkv
  int64_t head_dim = 0;       // hd
};

struct PagedQueries {
  int64_t n = 0;                       // queries in the batch
  const int32_t* table_begin = nullptr;  // (n)
  const int32_t* kv_len = nullptr;       // (n), >= 1
  const int32_t* block_ids = nullptr;    // concatenated block tables
};

inline constexpr int64_t kMaxPagedBlockSize = 256;
inline constexpr int64_t kMaxPagedGroup = 64;  // H / Hkv

// out(n, H*hd) row stride ldo; q(n, H*hd) row stride ldq; H = num_heads,
// a multiple of kv.num_kv_heads (query head h reads kv head h / (H/Hkv)).
// scale: usually 1/sqrt(hd). Work items are (query, kv head) pairs; this
// call computes items [part*n_items/parts, (part+1)*n_items/parts), so
// `parts` threads calling with part = 0..parts-1 cover the batch exactly once
// (any split gives the same bits). Inputs are trusted (checked by the
// caller, workers/generate); block ids must lie in [0, num_blocks).
void PagedAttentionForward(float* out, int64_t ldo, const float* q, int64_t ldq, int64_t num_heads,
                           float scale, const PagedKv& kv, const PagedQueries& qs, int part = 0,
                           int parts = 1);

}  // namespace herd::kernels::cpu
