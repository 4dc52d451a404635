#pragma once
// RMSNorm as in HF LlamaRMSNorm: y = w * x / sqrt(mean(x^2) + eps), the
// mean taken over the C features of each row.
#include <cstdint>

namespace herd::kernels::cpu {

// out(N, C), rstd(N) = 1/sqrt(mean(x^2)+eps) kept for the backward pass.
// x(N, C), w(C). out may not alias x.
void RmsNormForward(float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                    float eps);

// dx(N, C) += d/dx, dw(C) += d/dw, from dout(N, C) and the forward's x, rstd.
void RmsNormBackward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                     const float* rstd, int64_t N, int64_t C);

}  // namespace herd::kernels::cpu
