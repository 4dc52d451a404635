#pragma once
// The open-file limit of a server process. Every connection is a file
// descriptor, and so is every RocksDB table file, log and worker pipe: a
// daemon that keeps the common soft limit of 1024 runs out of descriptors
// long before it runs out of anything else, and a RocksDB that cannot open
// a file during a flush stops accepting writes. So herdd raises its soft
// limit to the hard limit at startup (what the hard limit is for) and keeps
// its connection bound below what is left after a reserve.
#include <cstdint>

namespace herd {

struct FileLimit {
  uint64_t soft = 0;  // RLIMIT_NOFILE after RaiseFileLimit (RLIM_INFINITY as UINT64_MAX)
  uint64_t hard = 0;
  uint64_t before = 0;  // the soft limit found at startup
  bool ok = true;       // false when getrlimit/setrlimit failed (soft/hard as found)
};

// Raises the soft RLIMIT_NOFILE of this process to its hard limit (capped
// at /proc/sys/fs/nr_open when the hard limit is unlimited, which setrlimit
// refuses). Never lowers it.
FileLimit RaiseFileLimit();

// Descriptors kept back from connections for the store, logs and worker
// processes.
constexpr uint64_t kReservedFds = 512;

// The number of connections a process with `soft_limit` descriptors can
// serve while keeping kReservedFds (half the limit when it is small)
// for everything else: min(wanted, soft_limit - reserve), at least 1.
int ConnectionBudget(uint64_t soft_limit, int wanted);

}  // namespace herd
