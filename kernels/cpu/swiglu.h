#pragma once
// SwiGLU activation of the Llama MLP: h = silu(gate) * up, silu(x) = x*sigmoid(x).
// gate and up are the two halves of one fused projection output row, so the
// model runs gate_proj and up_proj as one sgemm.
#include <cstdint>

namespace herd::kernels::cpu {

// h(N, F) from gu(N, 2F) = [gate(F) | up(F)] per row.
void SwiGluForward(float* h, const float* gu, int64_t N, int64_t F);

// dgu(N, 2F) = d/d[gate | up] (overwritten), from dh(N, F) and the forward's gu.
void SwiGluBackward(float* dgu, const float* dh, const float* gu, int64_t N, int64_t F);

}  // namespace herd::kernels::cpu
