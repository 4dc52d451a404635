#pragma once
// Token embedding lookup. Token ids must already be checked to lie in
// [0, V) by the caller (the model validates its PackedBatch).
#include <cstdint>

namespace herd::kernels::cpu {

// out(N, C) = table(V, C)[tokens[n]]
void EmbeddingForward(float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C);

// dtable(V, C)[tokens[n]] += dout(N, C)[n]   (accumulates; repeated ids add up)
void EmbeddingBackward(float* dtable, const float* dout, const int32_t* tokens, int64_t N,
                       int64_t C);

}  // namespace herd::kernels::cpu
