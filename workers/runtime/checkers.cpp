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
  // final: the response's last integer is its answer ("3 + 4 = 7");
  // otherwise its first ("7, because ...").
  explicit Arithmetic(bool final) : final_(final) {}

  std::optional<std::string> Answer(std::string_view prompt) const override {
    // "3+4", "3 - 4", "3 plus 4", "3 minus 4", "3 times 4", "Add 3 and 4".
    static const std::regex infix(R"((-?\d{1,9})\s*(\+|-|\*|plus|minus|times)\s*(-?\d{1,9}))",
                                  std::regex::icase);
    static const std::regex add(R"(add\s+(-?\d{1,9})\s+and\s+(-?\d{1,9}))", std::regex::icase);
    std::cmatch m;
    int64_t a = 0, b = 0;
    char op = '+';
    if (std::regex_search(prompt.data(), prompt.data() + prompt.size(), m, add)) {
      a = std::stoll(m[1].str());
      b = std::stoll(m[2].str());
    } else if (std::regex_search(prompt.data(), prompt.data() + prompt.size(), m, infix)) {
      a = std::stoll(m[1].str());
      b = std::stoll(m[3].str());
      std::string o = m[2].str();
      for (auto& ch : o) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      op = o == "+" || o == "plus" ? '+' : o == "-" || o == "minus" ? '-' : '*';
    } else {
      return std::nullopt;
    }
    int64_t r = op == '+' ? a + b : op == '-' ? a - b : a * b;
    return std::to_string(r);
  }
  std::optional<int64_t> Stated(std::string_view response) const override {
    static const std::regex num(R"(-?\d{1,18})");
    std::optional<int64_t> got;
    for (std::cregex_iterator it(response.data(), response.data() + response.size(), num), end; it != end;
         ++it) {
      got = std::stoll((*it)[0].str());
      if (!final_) break;
    }
    return got;
  }
  double Score(std::string_view prompt, std::string_view response) const override {
    auto want = Answer(prompt);
    auto got = Stated(response);
    if (!want || !got) return 0.0;
    return std::to_string(*got) == *want ? 1.0 : 0.0;
  }

 private:
  bool final_ = false;
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
  static const Arithmetic arithmetic(/*final=*/false), arithmetic_final(/*final=*/true);
  static const Reverse reverse;
  if (name == "arithmetic") return &arithmetic;
  if (name == "arithmetic_final") return &arithmetic_final;
  if (name == "reverse") return &reverse;
  return nullptr;
}

}  // namespace herd::worker
