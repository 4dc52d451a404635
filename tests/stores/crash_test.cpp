// Crash safety: a forked child writes acknowledged (sync) batches in a loop
// and reports each acked batch number through a pipe; the parent SIGKILLs it
// at random moments, reopens the store and checks that every acknowledged
// batch is fully present and that no batch is half visible.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "stores/store.h"
#include "tests/stores/test_util.h"

namespace herd::stores {
namespace {

constexpr uint32_t kSamplesPerBatch = 8;
constexpr const char* kRun = "crash";

std::string BatchPrompt(uint64_t b) { return "b" + std::to_string(b); }

// Child body: never returns. Batch b = 8 samples + 1 event + counter += 1.
[[noreturn]] void ChildLoop(const std::string& dir, uint64_t first_batch, int ack_fd) {
  StoreOptions o;
  o.data_dir = dir;
  auto st = Store::Open(o);
  if (!st.ok()) _exit(3);
  uint64_t ready = 0;
  if (write(ack_fd, &ready, sizeof(ready)) != sizeof(ready)) _exit(4);
  WriteTxn txn = (*st)->NewTxn();
  for (uint64_t b = first_batch;; ++b) {
    txn.Clear();
    for (uint32_t i = 0; i < kSamplesPerBatch; ++i) {
      Sample s;
      s.run_id = kRun;
      s.prompt_id = BatchPrompt(b);
      s.idx = i;
      s.tokens.assign(64, int32_t(b));
      s.text = std::string(200, char('a' + i));
      txn.PutSample(s);
    }
    txn.AppendEvent(Event{kRun, 0, 0, "batch", std::to_string(b), ""});
    txn.AddCounter("crash/batches", 1);
    if (!(*st)->Commit(txn, Durability::kSync).ok()) _exit(5);
    if (write(ack_fd, &b, sizeof(b)) != sizeof(b)) _exit(6);  // ack only after the sync commit
  }
}

TEST(CrashTest, AcknowledgedBatchesSurviveSigkillAndNoBatchIsHalfVisible) {
  testing::TempDir dir;
  std::mt19937 rng(20261201);
  uint64_t present = 0;  // batches 1..present are in the store
  constexpr int kKills = 24;
  int killed_mid_write = 0;
  for (int iter = 0; iter < kKills; ++iter) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      ChildLoop(dir.path(), present + 1, fds[1]);
    }
    close(fds[1]);
    // Most kills land in the write loop (after the child signals it opened);
    // every fourth lands at a random moment of open/recovery itself.
    // For those the parent waits for the open signal and the first ack, so
    // the kill is known to land in the write loop without relying on timing.
    uint64_t acked = present, v;
    if (iter % 4 != 3) {
      uint64_t ready = ~0ull;
      ASSERT_EQ(read(fds[0], &ready, sizeof(ready)), ssize_t(sizeof(ready))) << "child failed to open";
      ASSERT_EQ(ready, 0u);
      ASSERT_EQ(read(fds[0], &v, sizeof(v)), ssize_t(sizeof(v))) << "child wrote no batch";
      acked = v;
      ++killed_mid_write;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 40000));
    kill(pid, SIGKILL);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited on its own with " << WEXITSTATUS(wstatus);
    ssize_t n;
    while ((n = read(fds[0], &v, sizeof(v))) == ssize_t(sizeof(v))) {
      if (v) acked = std::max(acked, v);
    }
    close(fds[0]);

    StoreOptions o;
    o.data_dir = dir.path();
    auto st = Store::Open(o);
    ASSERT_TRUE(st.ok()) << "reopen after kill " << iter << ": " << st.status().ToString();
    std::map<uint64_t, uint32_t> per_batch;  // batch → samples seen
    Status scan = (*st)->ForEachSample(kRun, std::nullopt, [&](const Sample& s) {
      per_batch[std::stoull(s.prompt_id.substr(1))]++;
      EXPECT_EQ(s.tokens.size(), 64u);
      return true;
    });
    ASSERT_TRUE(scan.ok()) << scan.ToString();
    uint64_t max_batch = per_batch.empty() ? 0 : per_batch.rbegin()->first;
    for (auto [b, count] : per_batch) {
      ASSERT_EQ(count, kSamplesPerBatch) << "batch " << b << " half visible after kill " << iter;
    }
    ASSERT_EQ(per_batch.size(), max_batch) << "batches are not contiguous 1.." << max_batch;
    ASSERT_GE(max_batch, acked) << "acknowledged batch lost after kill " << iter;
    // The counter and the events of the same batches are there too, exactly.
    ASSERT_EQ(*(*st)->GetCounter("crash/batches"), max_batch);
    uint64_t events = 0;
    PageRequest req;
    req.page_size = 1000;
    while (true) {
      auto page = (*st)->ListEvents(kRun, req);
      ASSERT_TRUE(page.ok());
      events += page->items.size();
      if (page->next_page_token.empty()) break;
      req.page_token = page->next_page_token;
    }
    ASSERT_EQ(events, max_batch);
    present = max_batch;
  }
  EXPECT_EQ(killed_mid_write, kKills - kKills / 4);
  EXPECT_GE(present, uint64_t(killed_mid_write));  // each of those acked ≥ 1 batch
}

}  // namespace
}  // namespace herd::stores
