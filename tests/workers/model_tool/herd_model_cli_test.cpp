// The herd-model binary end to end: exit codes, output, --json.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/testing/temp_dir.h"

namespace {

const std::string kBinary = std::string(HERD_BINARY_DIR) + "/workers/herd-model";
const std::string kFixtures = std::string(HERD_SOURCE_DIR) + "/tests/reference/fixtures/gguf";

struct Outcome {
  int rc = -1;
  std::string out;  // stdout and stderr
};

Outcome HerdModel(const std::string& args, bool with_stderr = true) {
  Outcome r;
  const std::string cmd = kBinary + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(HerdModelCli, ImportThenInspect) {
  herd::testing::TempDir tmp("herd-model");
  const std::string out = tmp.path() + "/tiny";
  Outcome imp = HerdModel("import " + kFixtures + "/tiny_llama.gguf " + out);
  ASSERT_EQ(imp.rc, 0) << imp.out;
  EXPECT_TRUE(Has(imp.out, "21 GGUF (")) << imp.out;
  EXPECT_TRUE(Has(imp.out, "d=64 L=2 H=4 Hkv=2 hd=16 f=128 V=300")) << imp.out;
  EXPECT_TRUE(Has(imp.out, "gpt2/smollm, 300 tokens")) << imp.out;
  EXPECT_TRUE(Has(imp.out, "chat       chatml")) << imp.out;
  EXPECT_TRUE(Has(imp.out, "time ")) << imp.out;

  Outcome again = HerdModel("import " + kFixtures + "/tiny_llama.gguf " + out);
  EXPECT_EQ(again.rc, 1);
  EXPECT_TRUE(Has(again.out, "--overwrite")) << again.out;
  EXPECT_EQ(HerdModel("import " + kFixtures + "/tiny_llama.gguf " + out + " --overwrite").rc, 0);

  Outcome text = HerdModel("inspect " + out);
  ASSERT_EQ(text.rc, 0) << text.out;
  EXPECT_TRUE(Has(text.out, "HF checkpoint")) << text.out;
  EXPECT_TRUE(Has(text.out, "eos_token  <|im_end|>")) << text.out;
  EXPECT_TRUE(Has(text.out, "chat       chatml: ")) << text.out;

  Outcome js = HerdModel("inspect --json --tensors " + out, /*with_stderr=*/false);
  ASSERT_EQ(js.rc, 0) << js.out;
  const auto j = nlohmann::json::parse(js.out);
  EXPECT_EQ(j["format"], "hf");
  EXPECT_EQ(j["config"]["hidden_size"], 64);
  EXPECT_EQ(j["tensors"]["count"], 21);
  EXPECT_EQ(j["tensors"]["list"].size(), 21u);
  EXPECT_EQ(j["tokenizer"]["vocab_size"], 300);
  EXPECT_EQ(j["tokenizer"]["special_tokens"].size(), 3u);
  EXPECT_EQ(j["chat_template"]["kind"], "chatml");
}

TEST(HerdModelCli, InspectGguf) {
  Outcome js = HerdModel("inspect --json " + kFixtures + "/tiny_llama.gguf", false);
  ASSERT_EQ(js.rc, 0) << js.out;
  const auto j = nlohmann::json::parse(js.out);
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["gguf"]["version"], 3);
  EXPECT_EQ(j["gguf"]["metadata"]["tokenizer.ggml.tokens"], "[300 x string]");
  EXPECT_EQ(j["tensors"]["dtypes"]["Q4_0"], 2);
  EXPECT_FALSE(j["tensors"].contains("list"));  // only with --tensors
  EXPECT_EQ(j["tokenizer"]["pre_tokenizer"], "smollm");
  EXPECT_EQ(j["config"]["num_key_value_heads"], 2);

  Outcome text = HerdModel("inspect --tensors " + kFixtures + "/tiny_llama.gguf");
  ASSERT_EQ(text.rc, 0);
  EXPECT_TRUE(Has(text.out, "blk.1.attn_q.weight")) << text.out;
  EXPECT_TRUE(Has(text.out, "Q4_1")) << text.out;
}

TEST(HerdModelCli, ErrorsAndUsage) {
  EXPECT_EQ(HerdModel("").rc, 2);
  EXPECT_EQ(HerdModel("frobnicate").rc, 2);
  EXPECT_EQ(HerdModel("import only-one-arg").rc, 2);
  EXPECT_EQ(HerdModel("--help").rc, 0);
  Outcome missing = HerdModel("inspect /nonexistent/dir");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_TRUE(Has(missing.out, "herd-model: /nonexistent/dir: no such file")) << missing.out;
  herd::testing::TempDir tmp("herd-model");
  Outcome arch = HerdModel("import " + kFixtures + "/types.gguf " + tmp.path() + "/x");
  EXPECT_EQ(arch.rc, 1);
  EXPECT_TRUE(Has(arch.out, "'general.architecture' is 'herd-types'")) << arch.out;
}

}  // namespace
