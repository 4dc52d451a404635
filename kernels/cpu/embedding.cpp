#include "kernels/cpu/embedding.h"

#include <cstring>

namespace herd::kernels::cpu {

void EmbeddingForward(float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n)
    std::memcpy(out + n * C, table + static_cast<int64_t>(tokens[n]) * C, sizeof(float) * C);
}

void EmbeddingBackward(float* dtable, const float* dout, const int32_t* tokens, int64_t N,
                       int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    float* __restrict d = dtable + static_cast<int64_t>(tokens[n]) * C;
    const float* __restrict g = dout + n * C;
    for (int64_t c = 0; c < C; ++c) d[c] += g[c];
  }
}

}  // namespace herd::kernels::cpu
