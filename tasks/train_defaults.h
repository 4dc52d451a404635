#pragma once
// The training defaults the task contract (train.h) shares with the
// engine's trainer (workers/train/trainer.h); light enough for any header.
#include <cstdint>
#include <string>
#include <vector>

namespace herd::tasks {

// Defaults the engine's trainer (workers/train/trainer.h) shares.
inline constexpr int64_t kDefaultBatchRows = 8;   // packed rows per step
inline constexpr int64_t kDefaultSeqLen = 512;    // tokens per packed row
inline constexpr int64_t kDefaultSeed = 1;        // data order and init

// The preference strengths whose pairs train (train_rm, train_dpo, the
// greedy average's selection): the paper's two strongest.
inline std::vector<std::string> DefaultTrainedStrengths() { return {"significantly_better", "better"}; }

}  // namespace herd::tasks
