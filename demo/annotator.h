#pragma once
// The simulated annotator (Llama 3 §4.2.1 humans, played by a checker): an
// API client that answers herd's pending annotation requests exactly as a
// labeling tool would, through the public REST API.
#include <cstdint>
#include <random>
#include <string>

#include "api/client/client.h"

namespace herd::demo {

struct AnnotatorOptions {
  double disagree_rate = 0.1;  // answers flipped at random. Default: 0.1
  double edit_rate = 0.3;      // a wrong chosen answer gets corrected. Default: 0.3
  uint64_t seed = 1;
  std::string name = "sim-annotator";
};

class SimulatedAnnotator {
 public:
  explicit SimulatedAnnotator(AnnotatorOptions o) : o_(std::move(o)), rng_(o_.seed) {}
  // Answers every pending request of the run; returns how many.
  int AnswerPending(api::HttpClient& c, const std::string& run);
  int64_t answered() const { return answered_; }

 private:
  AnnotatorOptions o_;
  std::mt19937_64 rng_;
  int64_t answered_ = 0;
};

}  // namespace herd::demo
