#pragma once
// The demo's verifiable task (docs/demo.md): single-digit addition asked in
// several phrasings. The checker is workers/runtime/checkers.h "arithmetic".
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace herd::demo {

struct Question {
  std::string id;
  std::string text;   // "What is 3+4?"
  int a = 0, b = 0;
  std::string split;  // "train" | "eval"
};

// Every (a, b, phrasing); a seeded 20% of them held out for eval.
std::vector<Question> Questions(uint64_t seed);

// The noisy pre-training corpus: each train question answered correctly
// with probability p_correct, otherwise with the systematic slip a+b+1
// (or a nearby wrong sum), so the base model's most likely answer is wrong
// but the right one is often among its samples.
struct CorpusLine {
  std::string question, answer;
};
std::vector<CorpusLine> NoisyCorpus(const std::vector<Question>& qs, int copies, double p_correct, uint64_t seed);

}  // namespace herd::demo
