#pragma once
// A batch of packed rows: B rows of T tokens each. Every token carries a
// position id (for RoPE), a segment id and its segment's parent segment.
//
// Attention rule (one rule for SFT packing, RM and DPO rows): query token i
// may attend to key token j of the same row iff
//     j <= i  and  segment[j] >= 0  and
//     (segment[j] == segment[i]  or  segment[j] == parent[i]).
// A parent segment must lie before its children in the row. Padding tokens
// have segment -1: they attend to nothing, nothing attends to them, and
// their outputs are zero.
//
// Examples (row of one prompt P and responses A, B):
//   SFT packing:  segments 0 0 0 1 1 1 2 2, parents -1 everywhere.
//   RM/DPO row:   tokens  P P P A A B B
//                 segment 0 0 0 1 1 2 2
//                 parent -1-1-1 0 0 0 0   (A and B each see P and themselves)
//                 positions 0 1 2 3 4 3 4 (B continues from the prompt, as if alone)
#include <cstdint>
#include <vector>

namespace herd::model {

struct PackedBatch {
  int64_t B = 0;                  // rows
  int64_t T = 0;                  // tokens per row (padded)
  std::vector<int32_t> tokens;    // (B*T) token ids; any valid id on padding
  std::vector<int32_t> positions; // (B*T) RoPE position ids
  std::vector<int32_t> segments;  // (B*T) segment id within the row, -1 = padding
  std::vector<int32_t> parents;   // (B*T) parent segment of the token's segment, -1 = none
  std::vector<int32_t> targets;   // (B*T) next-token target for LM losses, -1 = no target
  std::vector<float> loss_weights;// (B*T) per-token loss weight (0 where no loss)

  // Sizes every vector to B*T and fills padding defaults (segment -1,
  // parent -1, target -1, weight 0, token 0, position 0). Reuses capacity.
  void Resize(int64_t rows, int64_t tokens_per_row) {
    B = rows;
    T = tokens_per_row;
    const auto n = static_cast<size_t>(rows * tokens_per_row);
    tokens.assign(n, 0);
    positions.assign(n, 0);
    segments.assign(n, -1);
    parents.assign(n, -1);
    targets.assign(n, -1);
    loss_weights.assign(n, 0.0f);
  }
  int64_t size() const { return B * T; }
};

}  // namespace herd::model
