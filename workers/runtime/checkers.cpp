#include "workers/runtime/checkers.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <regex>

namespace herd::worker {
namespace {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

class Arithmetic final : public Checker {
 public:
  std::optional<std::string> Answer(std::string_view prompt) const override {
    static const std::regex re(R"((-?\d{1,9})\s*([+\-*])\s*(-?\d{1,9}))");
    std::cmatch m;
    if (!std::regex_search(prompt.data(), prompt.data() + prompt.size(), m, re)) return std::nullopt;
    int64_t a = std::stoll(m[1].str()), b = std::stoll(m[3].str());
    char op = m[2].str()[0];
    int64_t r = op == '+' ? a + b : op == '-' ? a - b : a * b;
    return std::to_string(r);
  }
  double Score(std::string_view prompt, std::string_view response) const override {
    auto want = Answer(prompt);
    if (!want) return 0.0;
    static const std::regex num(R"(-?\d+)");
    std::cmatch m;
    if (!std::regex_search(response.data(), response.data() + response.size(), m, num)) return 0.0;
    return m[0].str() == *want ? 1.0 : 0.0;
  }
};

class Reverse final : public Checker {
 public:
  std::optional<std::string> Answer(std::string_view prompt) const override {
    auto p = prompt.find("Reverse:");
    if (p == std::string_view::npos) return std::nullopt;
    std::string w = Trim(prompt.substr(p + 8));
    std::reverse(w.begin(), w.end());
    return w;
  }
  double Score(std::string_view prompt, std::string_view response) const override {
    auto want = Answer(prompt);
    if (!want || want->empty()) return 0.0;
    std::string got = Trim(response);
    if (got == *want) return 1.0;
    size_t same = 0;
    while (same < got.size() && same < want->size() && got[same] == (*want)[same]) ++same;
    return 0.5 * static_cast<double>(same) / static_cast<double>(std::max(got.size(), want->size()));
  }
};

}  // namespace

const Checker* FindChecker(std::string_view name) {
  static const Arithmetic arithmetic;
  static const Reverse reverse;
  if (name == "arithmetic") return &arithmetic;
  if (name == "reverse") return &reverse;
  return nullptr;
}

}  // namespace herd::worker
