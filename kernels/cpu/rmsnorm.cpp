#include "kernels/cpu/rmsnorm.h"

#include <cmath>

namespace herd::kernels::cpu {

void RmsNormForward(float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                    float eps) {
  for (int64_t n = 0; n < N; ++n) {
    const float* __restrict xr = x + n * C;
    float* __restrict yr = out + n * C;
    float ss = 0.0f;
    for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    rstd[n] = r;
    for (int64_t c = 0; c < C; ++c) yr[c] = w[c] * (xr[c] * r);
  }
}

void RmsNormBackward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                     const float* rstd, int64_t N, int64_t C) {
  // With xh = x*r: dw += dy*xh;  dx = r * (dy*w - xh * mean(dy*w*xh)).
  for (int64_t n = 0; n < N; ++n) {
    const float* __restrict xr = x + n * C;
    const float* __restrict gr = dout + n * C;
    float* __restrict dxr = dx + n * C;
    const float r = rstd[n];
    float dot = 0.0f;
    for (int64_t c = 0; c < C; ++c) {
      const float xh = xr[c] * r;
      dot += gr[c] * w[c] * xh;
      dw[c] += gr[c] * xh;
    }
    const float m = dot / static_cast<float>(C);
    for (int64_t c = 0; c < C; ++c) dxr[c] += r * (gr[c] * w[c] - xr[c] * r * m);
  }
}

}  // namespace herd::kernels::cpu
