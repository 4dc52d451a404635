// herd-chaos: the crash loop (tests/chaos/crash_loop.h) with the issue's
// full numbers by default; deploy/crash-loop.sh runs it. Exit status 0
// when every check passed, 1 when one failed, 2 when the loop could not run.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "common/log.h"
#include "tests/chaos/crash_loop.h"

int main(int argc, char** argv) {
  herd::chaos::CrashLoopOptions o;
  o.build_dir = HERD_BINARY_DIR;
  o.work_dir = std::filesystem::temp_directory_path().string() + "/herd-chaos";
  CLI::App app{"herd-chaos: SIGKILL herdd and herd-worker at random through a run, then check nothing was lost"};
  app.add_option("--build-dir", o.build_dir, "where herdd and herd-worker were built")->capture_default_str();
  app.add_option("--work-dir", o.work_dir, "data dirs and logs (created)")->capture_default_str();
  app.add_option("--rounds", o.rounds, "rounds of the run")->capture_default_str();
  app.add_option("--workers", o.workers, "herd-worker processes")->capture_default_str();
  app.add_option("--train-steps", o.train_steps, "steps per training task")->capture_default_str();
  app.add_option("--herdd-kills", o.herdd_kills, "herdd SIGKILLs before the run may end")->capture_default_str();
  app.add_option("--worker-kills", o.worker_kills, "herd-worker SIGKILLs before the run may end")->capture_default_str();
  app.add_option("--max-gap-ms", o.max_gap_ms, "kills are max-gap/4..max-gap ms apart")->capture_default_str();
  app.add_option("--upload-batches", o.upload_batches, "annotation uploads during the run")->capture_default_str();
  app.add_option("--seed", o.seed, "the kill schedule's seed")->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "seconds before giving up")->capture_default_str();
  bool no_reference = false;
  app.add_flag("--no-reference", no_reference, "skip the uninterrupted run (no count comparison)");
  CLI11_PARSE(app, argc, argv);
  o.reference = !no_reference;
  herd::InitLogging("herd-chaos", "warn");
  std::filesystem::remove_all(o.work_dir);
  o.log = [](const std::string& s) {
    std::printf("%s\n", s.c_str());
    std::fflush(stdout);
  };
  auto r = herd::chaos::RunCrashLoop(o);
  if (!r.ok()) {
    std::fprintf(stderr, "herd-chaos: %s (logs in %s)\n", r.status().ToString().c_str(), o.work_dir.c_str());
    return 2;
  }
  std::printf("%s", r->Format().c_str());
  if (!r->ok()) std::printf("logs: %s\n", o.work_dir.c_str());
  return r->ok() ? 0 : 1;
}
