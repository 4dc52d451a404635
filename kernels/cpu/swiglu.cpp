#include "kernels/cpu/swiglu.h"

#include "kernels/cpu/fast_exp.h"

namespace herd::kernels::cpu {

void SwiGluForward(float* h, const float* gu, int64_t N, int64_t F) {
  for (int64_t n = 0; n < N; ++n) {
    const float* __restrict g = gu + n * 2 * F;
    const float* __restrict u = g + F;
    float* __restrict o = h + n * F;
    for (int64_t f = 0; f < F; ++f) {
      const float sig = 1.0f / (1.0f + FastExp(-g[f]));
      o[f] = g[f] * sig * u[f];
    }
  }
}

void SwiGluBackward(float* dgu, const float* dh, const float* gu, int64_t N, int64_t F) {
  // d silu(x)/dx = sig(x) * (1 + x*(1 - sig(x)))
  for (int64_t n = 0; n < N; ++n) {
    const float* __restrict g = gu + n * 2 * F;
    const float* __restrict u = g + F;
    const float* __restrict d = dh + n * F;
    float* __restrict dg = dgu + n * 2 * F;
    float* __restrict du = dg + F;
    for (int64_t f = 0; f < F; ++f) {
      const float sig = 1.0f / (1.0f + FastExp(-g[f]));
      const float silu = g[f] * sig;
      du[f] = d[f] * silu;
      dg[f] = d[f] * u[f] * sig * (1.0f + g[f] * (1.0f - sig));
    }
  }
}

}  // namespace herd::kernels::cpu
