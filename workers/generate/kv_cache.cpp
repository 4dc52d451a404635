#include "workers/generate/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace herd::generate {

BlockManager::BlockManager(int32_t num_blocks)
    : num_blocks_(num_blocks), refs_(static_cast<size_t>(num_blocks), 0) {
  free_.reserve(static_cast<size_t>(num_blocks));
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

Status BlockManager::Reserve(int64_t n) {
  if (n < 0) return Status::InvalidArgument("BlockManager::Reserve: n < 0");
  if (n > available())
    return Status::ResourceExhausted("KV cache: " + std::to_string(n) + " blocks requested, " +
                                     std::to_string(available()) + " of " +
                                     std::to_string(num_blocks_) + " available");
  reserved_ += n;
  return Status::Ok();
}

Status BlockManager::Unreserve(int64_t n) {
  if (n < 0 || n > reserved_)
    return Status::Internal("BlockManager::Unreserve(" + std::to_string(n) + ") with " +
                            std::to_string(reserved_) + " reserved");
  reserved_ -= n;
  return Status::Ok();
}

Result<int32_t> BlockManager::Allocate() {
  if (reserved_ <= 0 || free_.empty())
    return Status::FailedPrecondition("KV cache: block allocated without a reservation (" +
                                      std::to_string(reserved_) + " reserved, " +
                                      std::to_string(free_.size()) + " free)");
  const int32_t b = free_.back();
  free_.pop_back();
  --reserved_;
  refs_[static_cast<size_t>(b)] = 1;
  return b;
}

Status BlockManager::Release(int32_t block) {
  if (block < 0 || block >= num_blocks_ || refs_[static_cast<size_t>(block)] <= 0)
    return Status::Internal("KV cache: release of free or unknown block " + std::to_string(block));
  if (--refs_[static_cast<size_t>(block)] == 0) free_.push_back(block);
  return Status::Ok();
}

int64_t KvCache::BytesPerBlock(const KvCacheShape& s) {
  return 2 * s.num_layers * s.block_size * s.num_kv_heads * s.head_dim *
         static_cast<int64_t>(sizeof(float));
}

Result<KvCache> KvCache::Create(const KvCacheShape& s, int64_t budget_bytes) {
  if (s.num_layers <= 0) return Status::InvalidArgument("KvCacheShape.num_layers must be > 0");
  if (s.num_kv_heads <= 0) return Status::InvalidArgument("KvCacheShape.num_kv_heads must be > 0");
  if (s.head_dim <= 0) return Status::InvalidArgument("KvCacheShape.head_dim must be > 0");
  if (s.block_size <= 0 || s.block_size > kernels::cpu::kMaxPagedBlockSize)
    return Status::InvalidArgument("KvCacheShape.block_size must be in [1, " +
                                   std::to_string(kernels::cpu::kMaxPagedBlockSize) + "], got " +
                                   std::to_string(s.block_size));
  const int64_t per = BytesPerBlock(s);
  const int64_t n = budget_bytes / per;
  if (n < 1)
    return Status::InvalidArgument("kv_budget_bytes " + std::to_string(budget_bytes) +
                                   " is below one block (" + std::to_string(per) + " bytes)");
  if (n > (int64_t{1} << 30))
    return Status::InvalidArgument("kv_budget_bytes gives more than 2^30 blocks");
  return KvCache(s, static_cast<int32_t>(n));
}

KvCache::KvCache(const KvCacheShape& s, int32_t num_blocks)
    : shape_(s),
      row_floats_(s.num_kv_heads * s.head_dim),
      pool_floats_(static_cast<int64_t>(num_blocks) * s.block_size * s.num_kv_heads * s.head_dim),
      blocks_(num_blocks),
      data_(static_cast<size_t>(2 * s.num_layers * pool_floats_), 0.0f) {}

kernels::cpu::PagedKv KvCache::LayerView(int64_t layer) const {
  kernels::cpu::PagedKv v;
  v.k = k(layer);
  v.v = this->v(layer);
  v.num_blocks = num_blocks();
  v.block_size = shape_.block_size;
  v.num_kv_heads = shape_.num_kv_heads;
  v.head_dim = shape_.head_dim;
  return v;
}

Result<int32_t> KvCache::Grow(SeqBlocks& seq, int64_t n) {
  const int64_t bs = shape_.block_size;
  if (seq.len % bs != 0 && blocks_.refcount(seq.blocks.back()) > 1)
    return Status::FailedPrecondition("KvCache::Grow into a shared partial block");
  const int64_t need = (seq.len + n + bs - 1) / bs;
  int32_t allocated = 0;
  while (static_cast<int64_t>(seq.blocks.size()) < need) {
    HERD_ASSIGN_OR_RETURN(int32_t b, blocks_.Allocate());
    seq.blocks.push_back(b);
    ++allocated;
  }
  seq.len += static_cast<int32_t>(n);
  return allocated;
}

Status KvCache::AppendSlot(SeqBlocks& seq, int32_t* allocated) {
  const int64_t bs = shape_.block_size;
  const int64_t row = seq.len % bs;
  *allocated = 0;
  if (row == 0) {
    HERD_ASSIGN_OR_RETURN(int32_t b, blocks_.Allocate());
    seq.blocks.push_back(b);
    *allocated = 1;
  } else {
    const int32_t old = seq.blocks.back();
    if (blocks_.refcount(old) > 1) {
      // Copy on write: the first `row` token rows, K and V, every layer.
      HERD_ASSIGN_OR_RETURN(int32_t b, blocks_.Allocate());
      const size_t bytes = static_cast<size_t>(row * row_floats_) * sizeof(float);
      for (int64_t l = 0; l < shape_.num_layers; ++l) {
        std::memcpy(k(l) + RowOffset(b, 0), k(l) + RowOffset(old, 0), bytes);
        std::memcpy(v(l) + RowOffset(b, 0), v(l) + RowOffset(old, 0), bytes);
      }
      HERD_RETURN_IF_ERROR(blocks_.Release(old));
      seq.blocks.back() = b;
      *allocated = 1;
    }
  }
  ++seq.len;
  return Status::Ok();
}

SeqBlocks KvCache::Fork(const SeqBlocks& src) {
  for (int32_t b : src.blocks) blocks_.AddRef(b);
  return src;
}

Status KvCache::Free(SeqBlocks& seq) {
  Status first;
  for (int32_t b : seq.blocks) {
    Status s = blocks_.Release(b);
    if (!s.ok() && first.ok()) first = s;
  }
  seq.blocks.clear();
  seq.len = 0;
  return first;
}

}  // namespace herd::generate
