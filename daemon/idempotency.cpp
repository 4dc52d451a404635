#include "daemon/idempotency.h"

#include "stores/store.h"

namespace herd::daemon {

Result<std::optional<IdempotencyRecord>> IdempotencyLog::Get(const std::string& key) {
  auto r = store_->GetIdempotency(key);
  if (r.ok()) return std::optional<IdempotencyRecord>(std::move(r).value());
  if (r.status().IsNotFound()) return std::optional<IdempotencyRecord>();
  return r.status();
}

Status IdempotencyLog::Put(const IdempotencyRecord& r) {
  stores::WriteTxn txn = store_->NewTxn();
  txn.PutIdempotency(r);
  return store_->Commit(txn, stores::Durability::kSync);
}

}  // namespace herd::daemon
