#include "kernels/cpu/rmsnorm.h"

#include <cmath>

#include "kernels/cpu/reduce.h"

namespace herd::kernels::cpu {

void RmsNormForward(float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                    float eps) {
  for (int64_t n = 0; n < N; ++n) {
    const float* __restrict xr = x + n * C;
    float* __restrict yr = out + n * C;
    const float ss = Dot(xr, xr, C);
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
    float acc[kLanes] = {};
    int64_t c = 0;
    for (; c + kLanes <= C; c += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) {
        const float xh = xr[c + l] * r;
        acc[l] += gr[c + l] * w[c + l] * xh;
        dw[c + l] += gr[c + l] * xh;
      }
    float dot = FoldSum(acc);
    for (; c < C; ++c) {
      const float xh = xr[c] * r;
      dot += gr[c] * w[c] * xh;
      dw[c] += gr[c] * xh;
    }
    const float m = dot / static_cast<float>(C);
    for (int64_t k = 0; k < C; ++k) dxr[k] += r * (gr[k] * w[k] - xr[k] * r * m);
  }
}

}  // namespace herd::kernels::cpu
