#pragma once
// Verifiers for tasks whose answers can be checked (the eval stage's
// accuracy and the demo's simulated annotator). A checker reads the
// question from the prompt itself, so eval prompts need no stored answer.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herd::worker {

class Checker {
 public:
  virtual ~Checker() = default;
  // The correct answer for the prompt, or nullopt when it is not a question
  // of this task.
  virtual std::optional<std::string> Answer(std::string_view prompt) const = 0;
  // 1.0 when the response states the answer, else 0.0; partial credit in
  // between where the task has a notion of closeness.
  virtual double Score(std::string_view prompt, std::string_view response) const = 0;
  // For tasks with numeric answers, the number the response states (how
  // far it is from the answer is how wrong it is); nullopt otherwise.
  virtual std::optional<int64_t> Stated(std::string_view) const { return std::nullopt; }
};

// "arithmetic": integers joined by + - * or plus/minus/times ("What is
// 3+4?", "3 plus 4 ="), or "Add A and B"; the first integer in the
// response must equal the result.
// "arithmetic_final": the same questions; the response's last integer is
// its answer, as graders of worked answers read them ("3 + 4 = 7").
// "reverse": "Reverse: <word>"; the response (trimmed) must be the word
// reversed; partial credit is the share of correct leading characters.
// nullptr for an unknown name.
const Checker* FindChecker(std::string_view name);

}  // namespace herd::worker
