// The real model through herd-model, as a user meets it: SmolLM2-135M-
// Instruct's GGUF imported to an HF directory, then formatted with its own
// ChatML template and decoded greedily on the paged generator. The prompt
// ids and the generated ids must equal transformers' (its own GGUF load,
// float32, apply_chat_template; tests/reference/make_smollm2_greedy_fixture.py).
// Skips, saying why, when the model has not been fetched.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

#include "tests/integration/herdd_process.h"
#include "tests/testing/real_model.h"
#include "tests/testing/temp_dir.h"

namespace herd::testing {
namespace {

using nlohmann::json;

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

TEST(RealModel, ImportedSmolLM2GeneratesTransformersGreedyTokens) {
  const std::string gguf = RealModelPath();
  if (gguf.empty()) GTEST_SKIP() << kRealModelSkip;
  TempDir tmp("real-model");
  const std::string dir = tmp.path() + "/smollm2";
  const std::string tool = BinaryPath("herd-model");
  auto [rc, out] = Shell(tool + " import '" + gguf + "' '" + dir + "'");
  ASSERT_EQ(rc, 0) << out;

  const json fixture = ReadJson(std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/smollm2_greedy.json");
  const int max_new = fixture["max_new_tokens"];
  int i = 0;
  for (const json& c : fixture["cases"]) {
    const std::string messages = tmp.path() + "/messages" + std::to_string(i++) + ".json";
    std::ofstream(messages) << c["messages"].dump();
    auto [grc, gout] = Shell(tool + " generate '" + dir + "' --messages '" + messages +
                             "' --temperature 0 --max-new-tokens " + std::to_string(max_new) + " --json");
    ASSERT_EQ(grc, 0) << gout;
    const json got = json::parse(gout.substr(gout.find('{')));
    EXPECT_EQ(got["prompt_ids"], c["prompt_ids"]) << c["messages"].dump();
    EXPECT_EQ(got["ids"], c["ids"]) << c["messages"].dump() << "\nherd: " << got["text"]
                                    << "\ntransformers: " << c["text"];
    EXPECT_EQ(got["text"], c["text"]);
  }
}

TEST(RealModel, TokenizeMatchesTheImportedTokenizer) {
  const std::string gguf = RealModelPath();
  if (gguf.empty()) GTEST_SKIP() << kRealModelSkip;
  TempDir tmp("real-tokenize");
  const std::string dir = tmp.path() + "/smollm2";
  const std::string tool = BinaryPath("herd-model");
  ASSERT_EQ(Shell(tool + " import '" + gguf + "' '" + dir + "'").first, 0);
  // The first fixture prompt's user text, ids as transformers encodes it
  // inside the template (content that starts with a letter splits the same).
  const std::string text = tmp.path() + "/text.txt";
  std::ofstream(text) << "What is the capital of France?";
  auto [rc, out] = Shell(tool + " tokenize '" + dir + "' < '" + text + "'");
  ASSERT_EQ(rc, 0) << out;
  const json ids = json::parse(out);
  ASSERT_TRUE(ids.is_array());
  const json fixture = ReadJson(std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/smollm2_greedy.json");
  const json prompt = fixture["cases"][0]["prompt_ids"];
  // Find ids as a contiguous run inside the prompt.
  bool found = false;
  for (size_t s = 0; s + ids.size() <= prompt.size() && !found; ++s) {
    found = std::equal(ids.begin(), ids.end(), prompt.begin() + static_cast<std::ptrdiff_t>(s));
  }
  EXPECT_TRUE(found) << out;
  // Typed special-token text stays text unless asked.
  std::ofstream(text) << "<|im_end|>";
  auto plain = json::parse(Shell(tool + " tokenize '" + dir + "' < '" + text + "'").second);
  auto parsed = json::parse(Shell(tool + " tokenize --parse-special '" + dir + "' < '" + text + "'").second);
  EXPECT_EQ(parsed, json::array({2}));  // <|im_end|> is id 2 in SmolLM2
  EXPECT_GT(plain.size(), 1u);
}

}  // namespace
}  // namespace herd::testing
