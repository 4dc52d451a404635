#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/thread_pool.h"

namespace herd::kernels::cpu {

void AttentionKeyStart(int32_t* key_start, const int32_t* seg, const int32_t* par, int64_t B,
                       int64_t T) {
  for (int64_t b = 0; b < B; ++b) {
    const int32_t* s = seg + b * T;
    const int32_t* p = par + b * T;
    for (int64_t i = 0; i < T; ++i) {
      int32_t start = static_cast<int32_t>(T);
      if (s[i] >= 0) {
        for (int64_t j = 0; j <= i; ++j) {
          if (s[j] >= 0 && (s[j] == s[i] || s[j] == p[i])) {
            start = static_cast<int32_t>(j);
            break;
          }
        }
      }
      key_start[b * T + i] = start;
    }
  }
}

namespace {

// Query blocks: maximal runs of queries of one row with the same key start,
// at most kAttnQueryBlock long. Every query of a block then has the same
// window start k0 = key_start, and the window ends after the block's last
// query. A segment therefore gets the same blocks, windows and sgemm shapes
// whether it is packed with others or runs alone, so packing changes its
// results only through segments it may see (its parent).
inline int64_t BlockEnd(const int32_t* ks, int64_t i0, int64_t T) {
  int64_t i1 = i0 + 1;
  while (i1 < T && i1 - i0 < kAttnQueryBlock && ks[i1] == ks[i0]) ++i1;
  return i1;
}

}  // namespace

namespace {

// Runs body(b, g) for every (row, KV head) pair: inline, or split over the
// pool with OpenBLAS held at one thread meanwhile.
template <class Body>
void ForEachRowGroup(const AttentionDims& d, ThreadPool* pool, Body&& body) {
  const int64_t items = d.B * d.Hkv;
  auto run = [&](int64_t begin, int64_t end, int thread) {
    for (int64_t it = begin; it < end; ++it) body(it / d.Hkv, it % d.Hkv, thread);
  };
  if (pool == nullptr || pool->size() == 1) {
    run(0, items, 0);
    return;
  }
  const int prev = SetBlasThreads(1);
  pool->For(items, run);
  SetBlasThreads(prev);
}

}  // namespace

void AttentionForward(float* out, float* probs, const float* q, const float* k, const float* v,
                      const int32_t* seg, const int32_t* par, const int32_t* key_start,
                      const AttentionDims& d, ThreadPool* pool) {
  const int64_t T = d.T, hd = d.hd, group = d.H / d.Hkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  ForEachRowGroup(d, pool, [&](int64_t b, int64_t g, int) {
    const int32_t* s = seg + b * T;
    const int32_t* p = par + b * T;
    const int32_t* ks = key_start + b * T;
    for (int64_t i0 = 0, i1 = 0; i0 < T; i0 = i1) {
      i1 = BlockEnd(ks, i0, T);
      const int64_t rows = i1 - i0;
      const int64_t k0 = ks[i0], k1 = i1;  // k0 == T: a block of padding queries
      if (k1 <= k0) {
        for (int64_t h = g * group; h < (g + 1) * group; ++h)
          for (int64_t i = i0; i < i1; ++i)
            std::memset(out + (b * T + i) * d.ld_out + h * hd, 0, sizeof(float) * hd);
        continue;
      }
      const int64_t kw = k1 - k0;
      const float* K = k + (b * T + k0) * d.ld_kv + g * hd;  // (kw, hd), ld ld_kv
      const float* V = v + (b * T + k0) * d.ld_kv + g * hd;  // (kw, hd)
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        float* P = probs + ((b * d.H + h) * T + i0) * T + k0;  // (rows, kw), ld T
        const float* Q = q + (b * T + i0) * d.ld_q + h * hd;   // (rows, hd), ld ld_q
        // S(rows, kw) = scale * Q K^T
        SgemmStrided(false, true, rows, kw, hd, scale, Q, d.ld_q, K, d.ld_kv, 0.0f, P, T);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = i0 + r;
          float* __restrict pr = P + r * T;
          const int32_t si = s[i], pi = p[i];
          for (int64_t j = 0; j < kw; ++j) {
            const int64_t kj = k0 + j;
            const int32_t sj = s[kj];
            const bool ok = kj <= i && sj >= 0 && (sj == si || sj == pi);
            pr[j] = ok ? pr[j] : -std::numeric_limits<float>::infinity();
          }
          // Key i itself is always visible, so mx is finite.
          const float mx = MaxOf(pr, kw);
          const float inv = 1.0f / ExpShiftSum(pr, kw, mx);
          for (int64_t j = 0; j < kw; ++j) pr[j] *= inv;
        }
        // O(rows, hd) = P V
        SgemmStrided(false, false, rows, hd, kw, 1.0f, P, T, V, d.ld_kv, 0.0f,
                     out + (b * T + i0) * d.ld_out + h * hd, d.ld_out);
      }
    }
  });
}

int64_t AttentionScratchFloats(const AttentionDims& d, int threads) {
  return static_cast<int64_t>(threads < 1 ? 1 : threads) * kAttnQueryBlock * d.T;
}

void AttentionBackward(float* dq, float* dk, float* dv, float* scratch, const float* dout,
                       const float* probs, const float* q, const float* k, const float* v,
                       const int32_t* key_start, const AttentionDims& d, ThreadPool* pool) {
  const int64_t T = d.T, hd = d.hd, group = d.H / d.Hkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Each (row, KV head) pair owns its dk/dv rows and its heads' dq columns,
  // so threads never write the same memory.
  ForEachRowGroup(d, pool, [&](int64_t b, int64_t g, int thread) {
    const int32_t* ks = key_start + b * T;
    float* dS = scratch + thread * kAttnQueryBlock * T;  // (rows, kw), ld kw
    for (int64_t i0 = 0, i1 = 0; i0 < T; i0 = i1) {
      i1 = BlockEnd(ks, i0, T);
      const int64_t rows = i1 - i0;
      const int64_t k0 = ks[i0], k1 = i1;
      if (k1 <= k0) continue;
      const int64_t kw = k1 - k0;
      const float* K = k + (b * T + k0) * d.ld_kv + g * hd;
      const float* V = v + (b * T + k0) * d.ld_kv + g * hd;
      float* dK = dk + (b * T + k0) * d.ld_kv + g * hd;
      float* dV = dv + (b * T + k0) * d.ld_kv + g * hd;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        const float* P = probs + ((b * d.H + h) * T + i0) * T + k0;  // (rows, kw), ld T
        const float* dO = dout + (b * T + i0) * d.ld_out + h * hd;   // (rows, hd)
        const float* Q = q + (b * T + i0) * d.ld_q + h * hd;
        // dV(kw, hd) += P^T dO
        SgemmStrided(true, false, kw, hd, rows, 1.0f, P, T, dO, d.ld_out, 1.0f, dV, d.ld_kv);
        // dP(rows, kw) = dO V^T
        SgemmStrided(false, true, rows, kw, hd, 1.0f, dO, d.ld_out, V, d.ld_kv, 0.0f, dS, kw);
        // dS = P * (dP - sum_j P dP); masked entries have P = 0 so dS = 0.
        for (int64_t r = 0; r < rows; ++r) {
          const float* __restrict pr = P + r * T;
          float* __restrict gr = dS + r * kw;
          const float dot = Dot(pr, gr, kw);
          for (int64_t j = 0; j < kw; ++j) gr[j] = pr[j] * (gr[j] - dot);
        }
        // dQ(rows, hd) += scale * dS K ;  dK(kw, hd) += scale * dS^T Q
        SgemmStrided(false, false, rows, hd, kw, scale, dS, kw, K, d.ld_kv, 1.0f,
                     dq + (b * T + i0) * d.ld_q + h * hd, d.ld_q);
        SgemmStrided(true, false, kw, hd, rows, scale, dS, kw, Q, d.ld_q, 1.0f, dK, d.ld_kv);
      }
    }
  });
}

}  // namespace herd::kernels::cpu
