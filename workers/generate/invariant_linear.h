#pragma once
// Batch-invariant linear layer for decode: y(B, out) = x(B, in) W(out, in)^T
// with W in the HF (out_features, in_features) layout.
//
// Why not sgemm: OpenBLAS picks different kernels by matrix size (its small-
// matrix path, edge tiles), so row b of the product changes in the last bits
// when the batch B changes (measured on this box: M = 1..16 and 31, 46, ...
// all differ from M = 1 at N = 32000, K = 512). A sample would then depend on
// how many other sequences were running beside it. Here every y[b][o] is one
// dot product with 16 lane accumulators over `in` in index order, then a
// fixed lane tree: the same bits for any B, any tile, any thread split.
#include <cstdint>

namespace herd::generate {

// Computes the columns o in this part's share of [0, out): part p of parts
// covers [p*out/parts, (p+1)*out/parts) rounded to tiles of 4.
// x row stride ldx, y row stride ldy (floats).
void InvariantLinear(float* y, int64_t ldy, const float* x, int64_t ldx, const float* W,
                     int64_t B, int64_t in, int64_t out, int part = 0, int parts = 1);

}  // namespace herd::generate
