#pragma once
// Builds PackedBatch rows (workers/model/packed_batch.h) for the three
// objectives. Layouts, with P = prompt, A/B = responses (docs/objectives.md):
//
//   SFT   conv0 conv1 conv2 ...       one segment per conversation, no parents,
//                                     positions restart at 0 per conversation,
//                                     target[i] = token[i+1] inside a segment,
//                                     weight[i] = 1 iff token[i+1] is trained.
//   RM    P P P | A A | B B           prompt segment, each response a child
//                                     segment (parent = prompt), positions
//                                     continuing from the prompt end; the
//                                     reward is read at each response's last
//                                     token. Responses shuffled (seeded).
//   DPO   P P | p' C C | p' R R       the prompt minus its last token p', then
//                                     chosen and rejected segments that each
//                                     start with a copy of p'. The logit that
//                                     predicts a response's first token is at
//                                     p', and with the copy it is computed per
//                                     response, so every response token's
//                                     log-prob is exactly the one it has in a
//                                     row of its own.
//
// Several samples go into a row (next-fit, in order) until the next one does
// not fit; a pack call fills at most B rows and reports how many samples it
// consumed, which is the data position the trainer saves. The batch keeps
// only the rows it used (batch.B <= B, at least 1), so a short batch costs
// only its rows. Vectors in the output batches are reused across calls
// (capacity kept).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "workers/model/packed_batch.h"
#include "workers/train/reward.h"

namespace herd::train {

// ---- SFT -------------------------------------------------------------------

// A tokenized conversation: ids and, per token, whether SFT trains on it
// (assistant content and its <|eot_id|>; the chat format decides).
struct SftExample {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> train;  // same length as tokens; 1 = predict with loss
};

struct SftPackOptions {
  // A conversation longer than T is cut to its first T tokens instead of
  // being an error. Default: false.
  bool truncate = false;
};

// Packs examples[0..] into out (B rows of T). Returns the number of examples
// consumed (packed, in order). Loss weights are 1 on trained targets, so the
// SFT loss (sft.h) normalises by their count. Errors name the example index.
Result<int64_t> PackSft(std::span<const SftExample> examples, int64_t B, int64_t T,
                        const SftPackOptions& opts, model::PackedBatch* out);

// ---- Reward model ------------------------------------------------------------

struct RmBatch {
  model::PackedBatch batch;              // targets -1, weights 0 (no LM loss)
  std::vector<int64_t> reward_index;     // (R) flat B*T index of each response's last token
  std::vector<int32_t> response_sample;  // (R) index of the sample (in the packed span)
  std::vector<int32_t> response_rank;    // (R) index into that sample's responses (0 = best)
  std::vector<RewardPair> pairs;         // indices into reward_index
};

// Packs ranked samples: each sample's distinct responses, shuffled with a
// generator seeded by (seed, sample id) so the order does not depend on the
// batch. Samples with no trainable pair (filtered strength, identical
// responses) are consumed but not packed. A sample longer than T is an error
// naming its id.
Result<int64_t> PackRm(std::span<const RankedSample> samples, const RewardOptions& opts, int64_t B,
                       int64_t T, uint64_t seed, RmBatch* out);

// ---- DPO ---------------------------------------------------------------------

struct DpoSample {
  std::string pair_id;                     // stable id: reference log-probs are cached by it
  std::vector<int32_t> prompt;             // formatted prompt, ends with the assistant header
  std::vector<int32_t> chosen;             // response ids (content + <|eot_id|>)
  std::vector<uint8_t> chosen_formatting;  // per chosen token: 1 = formatting token
  std::vector<int32_t> rejected;
  std::vector<uint8_t> rejected_formatting;
};

// Per-position flags in a DPO batch. They sit at the position that PREDICTS
// the token (the position whose target it is), since that is where its
// log-prob and gradient live.
enum DpoTokenFlag : uint8_t {
  kDpoChosen = 1,      // target is a chosen-response token
  kDpoRejected = 2,    // target is a rejected-response token
  kDpoFormatting = 4,  // target is a formatting token (header, <|eot_id|>, ...)
};

struct DpoBatch {
  model::PackedBatch batch;           // targets set on response predictions, weights 0
  std::vector<uint8_t> flags;         // (B*T) DpoTokenFlag bits
  std::vector<int32_t> pair_of;       // (B*T) index into pair_ids, -1 elsewhere
  std::vector<std::string> pair_ids;  // (P) in packing order
  std::vector<int32_t> pair_sample;   // (P) index of the sample in the packed span
};

// Packs DPO samples with the shared-prompt layout above. Every response needs
// at least one token; formatting vectors must match their responses' length.
// A sample longer than T (prompt + 1 + |chosen| + |rejected|) is an error
// naming its pair id.
Result<int64_t> PackDpo(std::span<const DpoSample> samples, int64_t B, int64_t T, DpoBatch* out);

// Tokens a DPO sample takes in a row: |prompt| + 1 + |chosen| + |rejected|.
int64_t DpoRowLength(const DpoSample& s);

}  // namespace herd::train
