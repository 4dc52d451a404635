#pragma once
// Answers of uploads kept under their Idempotency-Key, so a client that
// retries (after a timeout, say) gets the first answer again and nothing is
// stored twice. The key is the caller's ("annotations/<run>/<key>").
#include <optional>
#include <string>

#include "common/status.h"
#include "daemon/records.h"

namespace herd::stores {
class Store;
}

namespace herd::daemon {

class IdempotencyLog {
 public:
  // store is not owned and must outlive this.
  explicit IdempotencyLog(stores::Store* store) : store_(store) {}

  // The answer stored under key, or nullopt when there is none.
  Result<std::optional<IdempotencyRecord>> Get(const std::string& key);
  // Stores (or replaces) r under r.key, synced.
  Status Put(const IdempotencyRecord& r);

 private:
  stores::Store* store_;
};

}  // namespace herd::daemon
