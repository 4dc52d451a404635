#pragma once
// Grouped-query attention over packed rows (see workers/model/packed_batch.h
// for the rule): query i of a row may see key j of the same row iff
//     j <= i  and  seg[j] >= 0  and  (seg[j] == seg[i] or seg[j] == par[i]).
// Padding queries (seg -1) see nothing; their output rows are zero.
//
// Layout: q, k, v are token-major with explicit row strides, so they can be
// column slices of one fused (N, (H + 2*Hkv)*hd) projection output:
//   q row n, head h    at q + n*ld_q  + h*hd
//   k/v row n, head g  at k + n*ld_kv + g*hd       (g = h / (H/Hkv))
//   out row n, head h  at out + n*ld_out + h*hd
// probs (B, H, T, T): softmax probabilities kept for the backward pass. Only
// the key window each query block uses is written (see AttentionKeyStart);
// the backward pass reads exactly the same windows.
//
// Work: queries of a row are cut into blocks, maximal runs of at most
// kAttnQueryBlock queries that share their first visible key k0 (so blocks
// never straddle segments). Per (block, head): one sgemm S = scale * Q K^T
// over the key window [k0, last query + 1), masking (only the parent/own
// segment rule inside the window), softmax, and one sgemm O = P V. Causal
// rows cost about half of T*T, packed segments only their own windows.
#include <cstdint>

namespace herd::kernels::cpu {

class ThreadPool;  // kernels/cpu/thread_pool.h

inline constexpr int64_t kAttnQueryBlock = 64;

struct AttentionDims {
  int64_t B = 0, T = 0;  // rows, tokens per row
  int64_t H = 0;         // query heads
  int64_t Hkv = 0;       // key/value heads, H % Hkv == 0
  int64_t hd = 0;        // head dim
  int64_t ld_q = 0;      // row strides (floats) of q, k/v, out
  int64_t ld_kv = 0;
  int64_t ld_out = 0;
};

// key_start(B*T): for each query the first key index (within its row) it may
// see, or T for a padding query. O(T^2) per row worst case, integer work only.
void AttentionKeyStart(int32_t* key_start, const int32_t* seg, const int32_t* par, int64_t B,
                       int64_t T);

// Threads: with a pool, the (row, KV head) pairs are split across its
// threads and each sgemm runs single-threaded (OpenBLAS is set to one
// thread for the call and restored after), which beats OpenBLAS's own
// threading on these small matrices. Results do not depend on the split.

// out (see layout) = softmax(scale * q k^T + mask) v, scale = 1/sqrt(hd).
// probs (B, H, T, T) written on the windows used. pool may be null.
void AttentionForward(float* out, float* probs, const float* q, const float* k, const float* v,
                      const int32_t* seg, const int32_t* par, const int32_t* key_start,
                      const AttentionDims& d, ThreadPool* pool = nullptr);

// Floats of scratch AttentionBackward needs: threads * kAttnQueryBlock * T.
int64_t AttentionScratchFloats(const AttentionDims& d, int threads = 1);

// dq, dk, dv (same layouts as q, k, v) += gradients, from dout and the
// forward's probs. scratch: AttentionScratchFloats(d, pool threads) floats.
void AttentionBackward(float* dq, float* dk, float* dv, float* scratch, const float* dout,
                       const float* probs, const float* q, const float* k, const float* v,
                       const int32_t* key_start, const AttentionDims& d,
                       ThreadPool* pool = nullptr);

}  // namespace herd::kernels::cpu
