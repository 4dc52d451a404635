#include "common/fd_limit.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace herd {
namespace {

TEST(FdLimit, ConnectionBudgetKeepsAReserve) {
  EXPECT_EQ(ConnectionBudget(1 << 20, 1024), 1024);
  EXPECT_EQ(ConnectionBudget(65536, 100000), 65536 - 512);
  EXPECT_EQ(ConnectionBudget(1024, 1024), 512);  // the common default soft limit
  EXPECT_EQ(ConnectionBudget(600, 1024), 300);   // small limits: half
  EXPECT_EQ(ConnectionBudget(1, 1024), 1);
  EXPECT_EQ(ConnectionBudget(1 << 20, 0), 1);
}

// In a child, so the test process keeps its limits.
TEST(FdLimit, RaiseFileLimitLiftsTheSoftLimitToTheHardOne) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    rlimit rl{64, 300};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(10);
    FileLimit f = RaiseFileLimit();
    if (!f.ok || f.before != 64 || f.soft != 300 || f.hard != 300) _exit(11);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur != 300) _exit(12);
    // Already at the hard limit: unchanged.
    f = RaiseFileLimit();
    _exit(f.ok && f.before == 300 && f.soft == 300 ? 0 : 13);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

}  // namespace
}  // namespace herd
