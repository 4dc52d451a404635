#pragma once
// Global-norm gradient clipping over the flat gradient buffer.
#include <cstdint>

namespace herd::train {

// Returns the L2 norm of grads(n) (float64 accumulation) before clipping.
// When max_norm > 0 and the norm exceeds it, grads are scaled by
// max_norm / norm. A non-finite norm (inf/NaN gradients) is returned
// unchanged and nothing is scaled: the caller should skip the step.
double ClipGradNorm(float* grads, int64_t n, double max_norm);

}  // namespace herd::train
