#include "workers/generate/invariant_linear.h"

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
// GCC 12's AVX-512 headers build shuffles from _mm512_undefined_ps() and then
// warn about it at every inlined call (a known header false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace herd::generate {
namespace {

#if defined(__AVX512F__)
// Fixed butterfly over the 16 lanes (halves, quarters, pairs, neighbours).
inline float ReduceLanes(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));
  return _mm512_cvtss_f32(v);
}

// RO rows of W against RB rows of x: RO*RB zmm accumulators, each lane l
// summing the products at indices = l (mod 16) in order; the tail is a masked
// load (zeros add exactly nothing), and the lanes are reduced by
// ReduceLanes, a fixed sequence. Any (RO, RB) gives the same bits.
template <int RO, int RB>
inline void Tile(float* y, int64_t ldy, const float* x, int64_t ldx, const float* W, int64_t in) {
  __m512 acc[RO][RB];
  for (int r = 0; r < RO; ++r)
    for (int c = 0; c < RB; ++c) acc[r][c] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= in; i += 16) {
    __m512 w[RO];
    for (int r = 0; r < RO; ++r) w[r] = _mm512_loadu_ps(W + r * in + i);
    for (int c = 0; c < RB; ++c) {
      const __m512 xv = _mm512_loadu_ps(x + c * ldx + i);
      for (int r = 0; r < RO; ++r) acc[r][c] = _mm512_fmadd_ps(w[r], xv, acc[r][c]);
    }
  }
  if (i < in) {
    const __mmask16 m = static_cast<__mmask16>((1u << (in - i)) - 1u);
    __m512 w[RO];
    for (int r = 0; r < RO; ++r) w[r] = _mm512_mask_loadu_ps(_mm512_setzero_ps(), m, W + r * in + i);
    for (int c = 0; c < RB; ++c) {
      const __m512 xv = _mm512_mask_loadu_ps(_mm512_setzero_ps(), m, x + c * ldx + i);
      for (int r = 0; r < RO; ++r) acc[r][c] = _mm512_fmadd_ps(w[r], xv, acc[r][c]);
    }
  }
  for (int r = 0; r < RO; ++r)
    for (int c = 0; c < RB; ++c) y[c * ldy + r] = ReduceLanes(acc[r][c]);
}
#else
// Portable version of the same contract (its own fixed order: 16 lanes with
// fma, then a halving tree).
template <int RO, int RB>
inline void Tile(float* y, int64_t ldy, const float* x, int64_t ldx, const float* W, int64_t in) {
  for (int r = 0; r < RO; ++r)
    for (int c = 0; c < RB; ++c) {
      float acc[16] = {};
      const float* wr = W + r * in;
      const float* xc = x + c * ldx;
      int64_t i = 0;
      for (; i + 16 <= in; i += 16)
        for (int l = 0; l < 16; ++l) acc[l] = std::fma(wr[i + l], xc[i + l], acc[l]);
      for (int l = 0; i < in; ++i, ++l) acc[l] = std::fma(wr[i], xc[i], acc[l]);
      for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
      y[c * ldy + r] = acc[0];
    }
}
#endif

template <int RO>
inline void RowBlock(float* y, int64_t ldy, const float* x, int64_t ldx, const float* W, int64_t B,
                     int64_t in) {
  int64_t b = 0;
  for (; b + 4 <= B; b += 4) Tile<RO, 4>(y + b * ldy, ldy, x + b * ldx, ldx, W, in);
  switch (B - b) {
    case 3: Tile<RO, 3>(y + b * ldy, ldy, x + b * ldx, ldx, W, in); break;
    case 2: Tile<RO, 2>(y + b * ldy, ldy, x + b * ldx, ldx, W, in); break;
    case 1: Tile<RO, 1>(y + b * ldy, ldy, x + b * ldx, ldx, W, in); break;
    default: break;
  }
}

}  // namespace

void InvariantLinear(float* y, int64_t ldy, const float* x, int64_t ldx, const float* W,
                     int64_t B, int64_t in, int64_t out, int part, int parts) {
  const int64_t tiles = (out + 3) / 4;
  const int64_t o_lo = std::min(out, 4 * (tiles * part / parts));
  const int64_t o_hi = std::min(out, 4 * (tiles * (part + 1) / parts));
  int64_t o = o_lo;
  for (; o + 4 <= o_hi; o += 4) RowBlock<4>(y + o, ldy, x, ldx, W + o * in, B, in);
  switch (o_hi - o) {
    case 3: RowBlock<3>(y + o, ldy, x, ldx, W + o * in, B, in); break;
    case 2: RowBlock<2>(y + o, ldy, x, ldx, W + o * in, B, in); break;
    case 1: RowBlock<1>(y + o, ldy, x, ldx, W + o * in, B, in); break;
    default: break;
  }
}

}  // namespace herd::generate
