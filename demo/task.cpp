#include "demo/task.h"

#include <algorithm>

namespace herd::demo {

std::vector<Question> Questions(uint64_t seed) {
  static const char* kForms[] = {"What is %d+%d?", "Compute %d + %d.", "%d plus %d =", "Add %d and %d."};
  std::vector<Question> qs;
  for (int a = 0; a < 10; ++a) {
    for (int b = 0; b < 10; ++b) {
      for (int f = 0; f < 4; ++f) {
        char buf[64];
        std::snprintf(buf, sizeof buf, kForms[f], a, b);
        qs.push_back({"q" + std::to_string(a) + std::to_string(b) + "f" + std::to_string(f), buf, a, b, "train"});
      }
    }
  }
  std::mt19937_64 rng(seed);
  std::shuffle(qs.begin(), qs.end(), rng);
  for (size_t i = 0; i < qs.size(); ++i) qs[i].split = i % 5 == 0 ? "eval" : "train";
  return qs;
}

std::vector<CorpusLine> NoisyCorpus(const std::vector<Question>& qs, int copies, double p_correct, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<CorpusLine> out;
  for (int c = 0; c < copies; ++c) {
    for (const auto& q : qs) {
      if (q.split != "train") continue;
      int sum = q.a + q.b;
      double x = u(rng);
      int ans = x < p_correct ? sum : x < p_correct + (1 - p_correct) * 0.8 ? sum + 1 : sum + (u(rng) < 0.5 ? -1 : 2);
      out.push_back({q.text, std::to_string(ans)});
    }
  }
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

}  // namespace herd::demo
