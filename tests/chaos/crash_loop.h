#pragma once
// The crash loop (issue: trust it like a database). A tiny multi-round run
// on a real herdd and real herd-worker processes, while a driver kills
// them with SIGKILL at random moments and starts them again on the same
// data dir and port. Through the kills an uploader sends annotation
// batches and an annotator answers herd's annotation requests, both
// retrying as a real client would. Afterwards the run must have succeeded
// with the same records an uninterrupted run of the same config produced,
// and every annotation the clients saw acknowledged must be stored exactly
// once. A worker kill picks a worker that holds a lease when one does. The CI test runs a short version (tests/chaos/crash_loop_test.cpp),
// deploy/crash-loop.sh the long one through herd-chaos.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace herd::chaos {

struct CrashLoopOptions {
  std::string build_dir;  // where daemon/herdd and workers/herd-worker are
  std::string work_dir;   // created; data dirs and process logs go under it
  int rounds = 3;
  int workers = 2;
  int train_steps = 300;  // per training task: longer tasks, more kills mid-task
  // Kills to reach before the run may end; the run is given more work when
  // these are larger (prompts per round scale with them).
  int herdd_kills = 20;
  int worker_kills = 20;
  // Gaps between kills are uniform in [max_gap_ms / 4, max_gap_ms], the
  // max shrunk (to no less than 100 ms) so the kills fit in 60% of the
  // uninterrupted run's wall time.
  int max_gap_ms = 1200;
  int upload_batches = 30;  // annotation uploads (5 lines each) during the run
  uint64_t seed = 1;
  int timeout_s = 900;
  bool reference = true;  // first an uninterrupted run of the same config
  // Progress lines (kills, restarts, checks). Default: none.
  std::function<void(const std::string&)> log;
};

struct CrashCheck {
  std::string what;
  bool ok = false;
  std::string detail;
};

struct CrashLoopReport {
  int herdd_kills = 0;
  int worker_kills = 0;
  int worker_kills_mid_task = 0;    // the killed worker held a lease
  int uploads_acknowledged = 0;     // annotation lines the uploader saw a 200 for
  int answers_acknowledged = 0;     // requests the annotator saw answered (200 or 409)
  int client_retries = 0;           // requests the clients had to send again
  int tasks_retried = 0;            // tasks that needed more than one attempt
  double reference_wall_s = 0;      // the uninterrupted run
  double wall_s = 0;                // the run under kills
  int max_gap_ms = 0;               // the kill gaps used
  std::vector<CrashCheck> checks;

  bool ok() const;
  std::string Format() const;
};

// The crash loop's run config (a tiny random base model in `base`,
// max_attempts raised so that killed workers cannot exhaust a task) and its
// 24 prompts, for the fault tests too.
nlohmann::json ChaosRunConfig(const CrashLoopOptions& o, const std::string& base);
std::string ChaosPromptsJsonl();

// An error only when the loop could not be run at all (a binary missing, a
// port that would not bind); a run that went wrong is a report with failed
// checks.
Result<CrashLoopReport> RunCrashLoop(const CrashLoopOptions& o);

}  // namespace herd::chaos
