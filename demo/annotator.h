#pragma once
// The simulated annotator (Llama 3 §4.2.1 humans, played by a checker): an
// API client that answers herd's pending annotation requests exactly as a
// labeling tool would, through the public REST API.
#include <cstdint>
#include <map>
#include <random>
#include <string>

#include "api/client/client.h"

namespace herd::demo {

struct AnnotatorOptions {
  // Self-disagreement: the chance an answer is flipped on a close call
  // (slightly or marginally better). Clearer calls flip less, as people
  // rarely reverse an obvious one: half as often for "better", a quarter
  // for "significantly better". Default: 0.1
  double disagree_rate = 0.1;
  double edit_rate = 0.3;      // a wrong chosen answer gets corrected. Default: 0.3
  uint64_t seed = 1;
  std::string name = "sim-annotator";
  // The verifier that plays the human (workers/runtime/checkers.h).
  // Default: arithmetic (the tiny demo's); the real-model demo uses the
  // run config's eval checker.
  std::string checker = "arithmetic";
};

class SimulatedAnnotator {
 public:
  explicit SimulatedAnnotator(AnnotatorOptions o) : o_(std::move(o)), rng_(o_.seed) {}
  // Answers every pending request of the run; returns how many.
  int AnswerPending(api::HttpClient& c, const std::string& run);
  int64_t answered() const { return answered_; }
  // Answers given and answers flipped (self-disagreement), by strength: a
  // reward model can agree with at most 1 - flipped/answered of the labels.
  const std::map<std::string, std::pair<int64_t, int64_t>>& by_strength() const { return by_strength_; }

 private:
  AnnotatorOptions o_;
  std::mt19937_64 rng_;
  int64_t answered_ = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> by_strength_;  // strength -> (answered, flipped)
};

}  // namespace herd::demo
