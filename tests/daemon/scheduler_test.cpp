// Scheduler rules with an injected clock and deterministic ids.
#include "daemon/scheduler.h"

#include <gtest/gtest.h>

#include <thread>

namespace herd::daemon {
namespace {

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() : ids_(42), sched_(&clock_, &ids_, Opts()) {
    cpu_.id = "w-cpu";
    cpu_.device = "cpu";
    cpu_.memory_bytes = 1 << 30;
    gpu_.id = "w-gpu";
    gpu_.device = "cuda";
    gpu_.memory_bytes = 80ll << 30;
  }
  static SchedulerOptions Opts() {
    SchedulerOptions o;
    o.lease_ttl_ms = 10'000;
    o.backoff_base_ms = 1'000;
    o.backoff_max_ms = 8'000;
    o.restart_grace_ms = 30'000;
    return o;
  }
  // Records every commit, like the store would.
  CommitFn Recorder() {
    return [this](const std::vector<TaskChange>& changes) {
      for (const TaskChange& c : changes) committed_.push_back(c.after);
      return Status::Ok();
    };
  }
  Task Make(const std::string& kind, int prio = 0, const std::string& run = "r1") {
    Task t;
    t.kind = kind;
    t.priority = prio;
    t.run = run;
    t.max_attempts = 3;
    return t;
  }
  std::vector<Task> Submit(std::vector<Task> ts) {
    auto r = sched_.Submit(std::move(ts), Recorder());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<Task>{};
  }
  std::optional<Task> LeaseNow(const WorkerInfo& w) {
    auto r = sched_.Lease(w, 0, Recorder());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  FakeClock clock_;
  RandomIdSource ids_;
  Scheduler sched_;
  WorkerInfo cpu_, gpu_;
  std::vector<Task> committed_;
};

TEST_F(SchedulerTest, PriorityThenFifo) {
  auto ts = Submit({Make("a", 0), Make("b", 5), Make("c", 0), Make("d", 5)});
  std::vector<std::string> order;
  while (auto t = LeaseNow(cpu_)) order.push_back(t->kind);
  EXPECT_EQ(order, (std::vector<std::string>{"b", "d", "a", "c"}));
}

TEST_F(SchedulerTest, RequirementsMatchTheWorker) {
  Task g = Make("train_sft");
  g.needs.device = "cuda";
  g.needs.min_memory_bytes = 40ll << 30;
  Submit({g});
  EXPECT_FALSE(LeaseNow(cpu_).has_value());
  auto t = LeaseNow(gpu_);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->worker_id, "w-gpu");
}

TEST_F(SchedulerTest, ExpiredLeaseRetriesWithBackoffThenFails) {
  Submit({Make("rejection_sample")});
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto t = LeaseNow(cpu_);
    ASSERT_TRUE(t.has_value()) << "attempt " << attempt;
    EXPECT_EQ(t->attempt, attempt);
    clock_.Advance(10'001);  // past the TTL, no heartbeat
    auto n = sched_.ExpireLeases(Recorder());
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 1);
    auto now = sched_.Get(t->id);
    if (attempt < 3) {
      EXPECT_EQ(now->state, TaskState::kQueued);
      // Backoff 1 s, 2 s: not leasable until it passes.
      EXPECT_FALSE(LeaseNow(cpu_).has_value());
      clock_.Advance(1'000 << (attempt - 1));
    } else {
      EXPECT_EQ(now->state, TaskState::kFailed);
      EXPECT_NE(now->error.find("expired"), std::string::npos);
    }
  }
  EXPECT_FALSE(LeaseNow(cpu_).has_value());
}

TEST_F(SchedulerTest, HeartbeatKeepsTheLeaseAlive) {
  Submit({Make("train_dpo")});
  auto t = LeaseNow(cpu_);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(6'000);
    auto hb = sched_.Heartbeat(t->lease_id, R"({"step":1})");
    ASSERT_TRUE(hb.ok()) << hb.status().ToString();
    EXPECT_FALSE(hb->cancel);
    EXPECT_EQ(*sched_.ExpireLeases(Recorder()), 0);
  }
  EXPECT_EQ(sched_.Get(t->id)->progress, R"({"step":1})");
}

TEST_F(SchedulerTest, StaleLeaseIsFencedAndCompletionIsIdempotent) {
  Submit({Make("train_rm")});
  auto first = LeaseNow(cpu_);
  clock_.Advance(10'001);
  ASSERT_EQ(*sched_.ExpireLeases(Recorder()), 1);
  clock_.Advance(1'000);
  auto second = LeaseNow(gpu_.device == "cpu" ? gpu_ : cpu_);
  ASSERT_TRUE(second.has_value());
  ASSERT_NE(first->lease_id, second->lease_id);

  // The first worker comes back late: everything it sends is refused.
  EXPECT_EQ(sched_.CheckLease(first->lease_id), LeaseCheck::kStale);
  EXPECT_FALSE(sched_.Heartbeat(first->lease_id, "").ok());
  auto stale = sched_.Complete(first->lease_id, R"({"from":"first"})", Recorder());
  EXPECT_FALSE(stale.ok());
  EXPECT_FALSE(sched_.Fail(first->lease_id, "x", true, Recorder()).ok());

  size_t commits = committed_.size();
  auto ok = sched_.Complete(second->lease_id, R"({"from":"second"})", Recorder());
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, CompleteOutcome::kCompleted);
  EXPECT_EQ(committed_.size(), commits + 1);
  auto again = sched_.Complete(second->lease_id, R"({"from":"second"})", Recorder());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, CompleteOutcome::kAlreadyDone);
  EXPECT_EQ(committed_.size(), commits + 1);  // nothing committed twice
  EXPECT_EQ(sched_.Get(second->id)->result, R"({"from":"second"})");
}

TEST_F(SchedulerTest, FailedCommitChangesNothing) {
  Submit({Make("average")});
  auto refuse = [](const std::vector<TaskChange>&) { return Status::IoError("disk full"); };
  auto r = sched_.Lease(cpu_, 0, refuse);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "disk full");
  auto t = LeaseNow(cpu_);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->attempt, 1);  // the refused lease did not count
  EXPECT_FALSE(sched_.Complete(t->lease_id, "{}", refuse).ok());
  EXPECT_EQ(sched_.Get(t->id)->state, TaskState::kLeased);
}

TEST_F(SchedulerTest, NonRetryableFailureAndRetry) {
  Submit({Make("eval")});
  auto t = LeaseNow(cpu_);
  ASSERT_TRUE(sched_.Fail(t->lease_id, "bad spec", false, Recorder()).ok());
  EXPECT_EQ(sched_.Get(t->id)->state, TaskState::kFailed);
  EXPECT_FALSE(sched_.Retry("nope", 3, Recorder()).ok());
  ASSERT_TRUE(sched_.Retry(t->id, 3, Recorder()).ok());
  auto again = LeaseNow(cpu_);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->id, t->id);
  EXPECT_EQ(again->attempt, 2);
}

TEST_F(SchedulerTest, CancelReachesTheWorkerThroughHeartbeat) {
  Submit({Make("train_sft"), Make("train_sft"), Make("eval", 0, "other")});
  auto running = LeaseNow(cpu_);
  ASSERT_TRUE(sched_.CancelRun("r1", Recorder()).ok());
  auto hb = sched_.Heartbeat(running->lease_id, "");
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->cancel);
  ASSERT_TRUE(sched_.Fail(running->lease_id, "cancelled by request", true, Recorder()).ok());
  EXPECT_EQ(sched_.Get(running->id)->state, TaskState::kCancelled);
  auto next = LeaseNow(cpu_);  // only the other run's task is left
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->run, "other");
}

TEST_F(SchedulerTest, RestoredLeasesCanReattachWithinGrace) {
  Submit({Make("rejection_sample"), Make("rejection_sample")});
  auto held = LeaseNow(cpu_);
  // "Restart": a new scheduler restored from what was committed.
  std::map<std::string, Task> latest;
  for (const Task& t : committed_) latest[t.id] = t;
  std::vector<Task> persisted;
  for (auto& [id, t] : latest) persisted.push_back(t);
  Scheduler restarted(&clock_, &ids_, Opts());
  restarted.Restore(persisted, sched_.next_seq());
  clock_.Advance(25'000);  // longer than the TTL, inside the grace window
  auto hb = restarted.Heartbeat(held->lease_id, "");
  ASSERT_TRUE(hb.ok()) << hb.status().ToString();
  auto other = restarted.Lease(cpu_, 0, nullptr);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other->has_value());
  EXPECT_NE((*other)->id, held->id);
  ASSERT_TRUE(restarted.Complete(held->lease_id, "{}", nullptr).ok());
}

TEST_F(SchedulerTest, LongPollWakesOnSubmit) {
  std::optional<Task> got;
  std::thread poller([&] {
    auto r = sched_.Lease(cpu_, 5'000, nullptr);
    if (r.ok()) got = *r;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Submit({Make("noop")});
  poller.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->kind, "noop");
}

TEST_F(SchedulerTest, ShutdownEndsLongPolls) {
  std::thread poller([&] {
    auto r = sched_.Lease(cpu_, 60'000, nullptr);
    EXPECT_TRUE(r.ok());
    EXPECT_FALSE(r->has_value());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  sched_.Shutdown();
  poller.join();
}

TEST_F(SchedulerTest, TerminalListenerSeesEachTerminalTaskOnce) {
  std::vector<std::string> seen;
  sched_.SetTerminalListener([&](const Task& t) { seen.push_back(t.kind + ":" + TaskStateName(t.state)); });
  Submit({Make("a"), Make("b")});
  auto a = LeaseNow(cpu_);
  auto b = LeaseNow(cpu_);
  ASSERT_TRUE(sched_.Complete(a->lease_id, "{}", nullptr).ok());
  ASSERT_TRUE(sched_.Complete(a->lease_id, "{}", nullptr).ok());  // idempotent: no second event
  ASSERT_TRUE(sched_.Fail(b->lease_id, "boom", false, nullptr).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"a:succeeded", "b:failed"}));
}

}  // namespace
}  // namespace herd::daemon
