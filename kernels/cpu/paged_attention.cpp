#include "kernels/cpu/paged_attention.h"

#include "kernels/cpu/fast_exp.h"

#include <cmath>
#include <limits>

namespace herd::kernels::cpu {
namespace {

// q . k over hd with 16 partial sums, summed in a fixed tree: GCC
// vectorises the lane loop, and the order never depends on the batch.
inline float Dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) acc[l] += a[i + l] * b[i + l];
  for (int l = 0; i < n; ++i, ++l) acc[l] += a[i] * b[i];
  for (int w = 8; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

}  // namespace

void PagedAttentionForward(float* out, int64_t ldo, const float* q, int64_t ldq, int64_t num_heads,
                           float scale, const PagedKv& kv, const PagedQueries& qs, int part,
                           int parts) {
  const int64_t hd = kv.head_dim;
  const int64_t hkv = kv.num_kv_heads;
  const int64_t bs = kv.block_size;
  const int64_t group = num_heads / hkv;           // query heads per kv head
  const int64_t tok_stride = hkv * hd;             // floats between tokens in a block
  const int64_t blk_stride = bs * tok_stride;      // floats between blocks
  const int64_t n_items = qs.n * hkv;
  const int64_t lo = n_items * part / parts;
  const int64_t hi = n_items * (part + 1) / parts;

  constexpr int64_t kChunk = 32;
  float scores[kChunk];
  const float* kptr[kChunk];
  const float* vptr[kChunk];
  float run_max[kMaxPagedGroup];
  float run_sum[kMaxPagedGroup];

  for (int64_t item = lo; item < hi; ++item) {
    const int64_t i = item / hkv;   // query
    const int64_t g = item % hkv;   // kv head
    const int64_t len = qs.kv_len[i];
    const int32_t* table = qs.block_ids + qs.table_begin[i];
    const float* qi = q + i * ldq + g * group * hd;   // (group, hd)
    float* oi = out + i * ldo + g * group * hd;       // (group, hd), used as the accumulator
    for (int64_t h = 0; h < group; ++h) {
      run_max[h] = -std::numeric_limits<float>::infinity();
      run_sum[h] = 0.0f;
      for (int64_t d = 0; d < hd; ++d) oi[h * hd + d] = 0.0f;
    }
    // Positions in fixed chunks of kChunk, whatever the block size, so the
    // online-softmax rescaling points (and hence the bits) depend on the
    // position only: block size is a memory layout, not a numerics choice.
    for (int64_t c0 = 0; c0 < len; c0 += kChunk) {
      const int64_t rows = len - c0 < kChunk ? len - c0 : kChunk;
      for (int64_t t = 0; t < rows; ++t) {
        const int64_t p = c0 + t;
        const int64_t off = static_cast<int64_t>(table[p / bs]) * blk_stride + (p % bs) * tok_stride + g * hd;
        kptr[t] = kv.k + off;
        vptr[t] = kv.v + off;
      }
      for (int64_t h = 0; h < group; ++h) {
        const float* qh = qi + h * hd;
        float* __restrict oh = oi + h * hd;
        float bmax = run_max[h];
        for (int64_t t = 0; t < rows; ++t) {
          scores[t] = Dot(qh, kptr[t], hd) * scale;
          bmax = scores[t] > bmax ? scores[t] : bmax;
        }
        // Rescale what was accumulated under the old max (exp(-inf) = 0 on
        // the first chunk, where the accumulator is still zero).
        const float corr = FastExp(run_max[h] - bmax);
        float sum = run_sum[h] * corr;
        for (int64_t d = 0; d < hd; ++d) oh[d] *= corr;
        for (int64_t t = 0; t < rows; ++t) {
          const float pr = FastExp(scores[t] - bmax);
          sum += pr;
          const float* __restrict vt = vptr[t];
          for (int64_t d = 0; d < hd; ++d) oh[d] += pr * vt[d];
        }
        run_max[h] = bmax;
        run_sum[h] = sum;
      }
    }
    for (int64_t h = 0; h < group; ++h) {
      const float inv = 1.0f / run_sum[h];
      for (int64_t d = 0; d < hd; ++d) oi[h * hd + d] *= inv;
    }
  }
}

}  // namespace herd::kernels::cpu
