#include "workers/model_tool/format.h"

#include <algorithm>
#include <cstdio>

namespace herd::model_tool {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string ConfigLine(const model::LlamaConfig& c) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "d=%lld L=%lld H=%lld Hkv=%lld hd=%lld f=%lld V=%lld ctx=%lld rope_theta=%g eps=%g",
                static_cast<long long>(c.hidden_size), static_cast<long long>(c.num_hidden_layers),
                static_cast<long long>(c.num_attention_heads),
                static_cast<long long>(c.num_key_value_heads), static_cast<long long>(c.head_dim),
                static_cast<long long>(c.intermediate_size), static_cast<long long>(c.vocab_size),
                static_cast<long long>(c.max_position_embeddings), c.rope_theta, c.rms_norm_eps);
  std::string s = buf;
  if (c.rope_scaling) {
    std::snprintf(buf, sizeof buf, " rope_scaling=llama3(factor %g, original %lld)",
                  c.rope_scaling->factor,
                  static_cast<long long>(c.rope_scaling->original_max_position_embeddings));
    s += buf;
  }
  s += c.tie_word_embeddings ? " tied" : " untied";
  return s;
}

std::string CountsText(const std::map<std::string, int64_t>& counts) {
  std::vector<std::pair<std::string, int64_t>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string s;
  for (const auto& [name, n] : v) s += (s.empty() ? "" : ", ") + name + " " + std::to_string(n);
  return s;
}

std::string HumanCount(int64_t n) {
  char buf[32];
  if (n >= 1000000000) {
    std::snprintf(buf, sizeof buf, "%.2fB", static_cast<double>(n) / 1e9);
  } else if (n >= 1000000) {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
  } else if (n >= 1000) {
    std::snprintf(buf, sizeof buf, "%.1fK", static_cast<double>(n) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  }
  return buf;
}

std::string FirstLine(const std::string& text, size_t max_chars) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.size() > max_chars) line = line.substr(0, max_chars - 3) + "...";
  return line;
}

}  // namespace herd::model_tool
