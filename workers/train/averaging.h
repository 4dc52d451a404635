#pragma once
// Model averaging (Llama 3 §4.1.5): the weighted mean of N HF checkpoints
// with identical configs and tensor sets,
//   out[t] = Σ_i w_i · in_i[t]  / Σ_i w_i      for every tensor t,
// streamed tensor by tensor: one fp32 read buffer and one float64
// accumulator of the current tensor's size, whatever N is. The result is an
// HF checkpoint directory (config.json and the tokenizer / generation files
// copied from the first input, model.safetensors) with averaging.json
// beside the weights recording the inputs, their weights and the sha256 of
// every input and output weight file.
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "workers/model/safetensors.h"

namespace herd::train {

struct AverageInput {
  std::string dir;    // an HF checkpoint directory
  double weight = 1;  // >= 0; normalised by the sum. Default: 1 (uniform)
};

struct AverageOptions {
  // Stored dtype of the output tensors (F32, BF16 or F16). Default: F32.
  model::DType dtype = model::DType::kF32;
  // Replace an existing output directory. Default: false (AlreadyExists).
  bool overwrite = false;
};

struct AverageReport {
  std::vector<double> weights;  // normalised, one per input
  int64_t tensors = 0;
  int64_t parameters = 0;     // Σ numel
  std::string output_sha256;  // of out_dir/model.safetensors
};

// Averages inputs into out_dir. Errors (nothing is left at out_dir):
// fewer than one input, a negative/non-finite weight or a zero weight sum
// (InvalidArgument naming inputs[i]); configs that differ (naming the input
// and the first differing config.json field); tensor sets or shapes that
// differ (naming the input and the tensor); unreadable files (naming them).
Result<AverageReport> AverageCheckpoints(const std::vector<AverageInput>& inputs,
                                         const std::string& out_dir,
                                         const AverageOptions& opts = {});

}  // namespace herd::train
