// The shortened demo end to end (issue: make demo): base-model
// pre-training, herdd with two local workers, the simulated annotator, two
// rounds; round 2's policy must beat the base on the held-out prompts.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "herdd_process.h"

namespace herd::testing {
namespace {

TEST(Demo, TwoRoundsBeatTheBase) {
  TempDir tmp("demo");
  std::string cmd = std::string(HERD_BINARY_DIR) + "/demo/herd-demo --build-dir " + HERD_BINARY_DIR +
                    " --data-dir " + tmp.path() + " --rounds 2 > " + tmp.path() + "/demo.log 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream log(tmp.path() + "/demo.log");
  std::string out((std::istreambuf_iterator<char>(log)), {});
  ASSERT_EQ(rc, 0) << out;
  std::ifstream f(tmp.path() + "/report.json");
  auto rep = nlohmann::json::parse(f, nullptr, false);
  ASSERT_TRUE(rep.is_object()) << out;
  ASSERT_EQ(rep["rounds"].size(), 2u) << rep.dump(2);
  const double base = rep["base_accuracy_greedy"].get<double>();
  const double r2 = rep["rounds"][1]["accuracy_greedy"].get<double>();
  std::printf("base greedy accuracy %.3f, round 2 %.3f\n%s\n", base, r2, out.c_str());
  EXPECT_GT(r2, base);
  for (const auto& r : rep["rounds"]) {
    EXPECT_GT(r["best_of_k_rm_score"].get<double>(), r["random_rm_score"].get<double>()) << r.dump();
  }
  std::ifstream html(tmp.path() + "/report.html");
  EXPECT_TRUE(html.good());
}

// When the demo fails it says why and shows where herdd's log is, with its
// last lines: here a config herdd refuses.
TEST(Demo, FailureSaysWhyAndWhereTheLogIs) {
  TempDir tmp("demo-fail");
  std::ofstream(tmp.path() + "/bad.json") << R"({"name": "bad", "rounds": "six"})";
  auto [rc, out] = Shell(std::string(HERD_BINARY_DIR) + "/demo/herd-demo --build-dir " + HERD_BINARY_DIR +
                         " --data-dir " + tmp.path() + "/data --pretrain-steps 1 --config " + tmp.path() + "/bad.json");
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("herd-demo: creating the run: 400"), std::string::npos) << out;
  EXPECT_NE(out.find("rounds"), std::string::npos) << out;
  EXPECT_NE(out.find("herd-demo: herdd's log is " + tmp.path() + "/data/herd-"), std::string::npos) << out;
}

}  // namespace
}  // namespace herd::testing
