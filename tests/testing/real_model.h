#pragma once
// Where the real model of the tests is: SmolLM2-135M-Instruct Q4_1, fetched
// by deploy/fetch-real-model.sh into its cache. Tests that need it skip,
// saying so, when it is absent.
#include <cstdlib>
#include <filesystem>
#include <string>

namespace herd::testing {

// $HERD_REAL_MODEL_GGUF, else the fetch script's cache path
// ($HERD_MODEL_CACHE, default ~/.cache/herd/models); "" when absent.
inline std::string RealModelPath() {
  if (const char* env = std::getenv("HERD_REAL_MODEL_GGUF"); env && *env) return env;
  std::string cache;
  if (const char* c = std::getenv("HERD_MODEL_CACHE"); c && *c) {
    cache = c;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    cache = std::string(home) + "/.cache/herd/models";
  }
  const std::string p = cache + "/smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf";
  return !cache.empty() && std::filesystem::exists(p) ? p : "";
}

inline constexpr const char* kRealModelSkip =
    "SmolLM2-135M-Instruct.Q4_1.gguf not fetched: run deploy/fetch-real-model.sh (or set "
    "HERD_REAL_MODEL_GGUF)";

}  // namespace herd::testing
