#pragma once
// A named, shaped view into one of the engine's flat buffers (parameters,
// gradients, optimizer moments). Checkpoint I/O and averaging work on lists
// of these, so they never need to know the engine's internal layout.
#include <cstdint>
#include <string>
#include <vector>

namespace herd::model {

struct ParamView {
  std::string name;            // HF tensor name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // HF (PyTorch) shape, row-major, e.g. (out_features, in_features)
  float* data = nullptr;       // numel() contiguous fp32 values
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
};

}  // namespace herd::model
