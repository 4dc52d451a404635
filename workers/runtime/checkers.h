#pragma once
// Verifiers for tasks whose answers can be checked (the eval stage's
// accuracy and the demo's simulated annotator). A checker reads the
// question from the prompt itself, so eval prompts need no stored answer.
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
};

// "arithmetic": integers joined by + - * or plus/minus/times ("What is
// 3+4?", "3 plus 4 ="), or "Add A and B"; the first integer in the
// response must equal the result.
// "reverse": "Reverse: <word>"; the response (trimmed) must be the word
// reversed; partial credit is the share of correct leading characters.
// nullptr for an unknown name.
const Checker* FindChecker(std::string_view name);

}  // namespace herd::worker
