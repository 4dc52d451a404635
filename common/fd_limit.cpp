#include "common/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>
#include <fstream>

namespace herd {
namespace {

uint64_t AsU64(rlim_t v) { return v == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(v); }

}  // namespace

FileLimit RaiseFileLimit() {
  FileLimit out;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    out.ok = false;
    return out;
  }
  out.before = out.soft = AsU64(rl.rlim_cur);
  out.hard = AsU64(rl.rlim_max);
  rlim_t target = rl.rlim_max;
  if (target == RLIM_INFINITY) {
    // Linux refuses a soft limit above fs.nr_open.
    uint64_t nr_open = 1u << 20;
    std::ifstream f("/proc/sys/fs/nr_open");
    f >> nr_open;
    target = static_cast<rlim_t>(nr_open);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= target) return out;
  rl.rlim_cur = target;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    out.ok = false;
    return out;
  }
  out.soft = AsU64(target);
  return out;
}

int ConnectionBudget(uint64_t soft_limit, int wanted) {
  const uint64_t reserve = std::min(kReservedFds, soft_limit / 2);
  const uint64_t room = soft_limit - reserve;
  const uint64_t budget = std::min<uint64_t>(static_cast<uint64_t>(std::max(wanted, 1)), room);
  return static_cast<int>(std::max<uint64_t>(budget, 1));
}

}  // namespace herd
