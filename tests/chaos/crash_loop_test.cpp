// The crash loop, shortened for CI (deploy/crash-loop.sh runs the issue's
// full 20 + 20 kills through herd-chaos).
#include "tests/chaos/crash_loop.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "tests/testing/temp_dir.h"

namespace herd::chaos {
namespace {

TEST(CrashLoop, RunSurvivesRandomKillsOfHerddAndWorkers) {
  testing::TempDir tmp("crash-loop");
  CrashLoopOptions o;
  o.build_dir = HERD_BINARY_DIR;
  o.work_dir = tmp.path();
  o.rounds = 2;
  o.herdd_kills = 6;
  o.worker_kills = 6;
  o.upload_batches = 10;
  o.train_steps = 30;
  o.timeout_s = 300;
  o.seed = 7;
  o.log = [](const std::string& s) { std::printf("%s\n", s.c_str()); };
  auto r = RunCrashLoop(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::printf("%s", r->Format().c_str());
  for (const auto& c : r->checks) EXPECT_TRUE(c.ok) << c.what << ": " << c.detail;
  RecordProperty("herdd_kills", r->herdd_kills);
  RecordProperty("worker_kills", r->worker_kills);
}

}  // namespace
}  // namespace herd::chaos
