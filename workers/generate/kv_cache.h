#pragma once
// Paged KV cache: per-layer K and V block pools, a block manager (free list,
// reference counts, reservations) and per-sequence block tables.
// Layout and rules: docs/generate.md.
#include <cstdint>
#include <vector>

#include "common/status.h"
#include "kernels/cpu/paged_attention.h"

namespace herd::generate {

// Reference-counted blocks with reservations for admission control.
//
// Invariant: reserved() <= num_free(). A caller first reserves the blocks it
// may ever need (admission), then every Allocate() draws one block from the
// free list and one unit of its reservation; Unreserve() returns what it will
// not use. So an admitted sequence can never run out of blocks, and nothing
// is ever swapped out or preempted.
class BlockManager {
 public:
  explicit BlockManager(int32_t num_blocks);

  int32_t num_blocks() const { return num_blocks_; }
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }
  int32_t num_used() const { return num_blocks_ - num_free(); }
  int64_t reserved() const { return reserved_; }
  // Blocks a new reservation may still take.
  int64_t available() const { return num_free() - reserved_; }
  int32_t refcount(int32_t block) const { return refs_[static_cast<size_t>(block)]; }

  // ResourceExhausted when fewer than n blocks are available.
  Status Reserve(int64_t n);
  // Returns n reserved-but-unused blocks; n <= reserved().
  Status Unreserve(int64_t n);
  // A free block with refcount 1, taken from the reservation. FailedPrecondition
  // when nothing is reserved (a caller bug, reported rather than crashing).
  Result<int32_t> Allocate();
  void AddRef(int32_t block) { ++refs_[static_cast<size_t>(block)]; }
  // Drops one reference; the block returns to the free list at zero.
  Status Release(int32_t block);

 private:
  int32_t num_blocks_;
  std::vector<int32_t> free_;   // stack of free ids; the lowest ids are handed out first
  std::vector<int32_t> refs_;   // (num_blocks) reference counts
  int64_t reserved_ = 0;
};

// One sequence's view of the cache: its block table and how many token
// positions it holds. Token p is in blocks[p / block_size], row p % block_size.
struct SeqBlocks {
  std::vector<int32_t> blocks;
  int32_t len = 0;
};

struct KvCacheShape {
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;  // tokens per block. Default: 16
};

// K and V pools for every layer in one allocation:
//   data: (L, 2, num_blocks, block_size, Hkv, hd) fp32, [l][0] = K, [l][1] = V.
class KvCache {
 public:
  // bytes per block = 2 (K,V) * L * block_size * Hkv * hd * 4.
  static int64_t BytesPerBlock(const KvCacheShape& s);
  // num_blocks = floor(budget_bytes / BytesPerBlock). InvalidArgument for bad
  // shapes or a budget below one block (naming the field).
  static Result<KvCache> Create(const KvCacheShape& shape, int64_t budget_bytes);

  const KvCacheShape& shape() const { return shape_; }
  int64_t block_size() const { return shape_.block_size; }
  int32_t num_blocks() const { return blocks_.num_blocks(); }
  BlockManager& blocks() { return blocks_; }
  const BlockManager& blocks() const { return blocks_; }

  // (num_blocks, block_size, Hkv, hd) pools of one layer.
  float* k(int64_t layer) { return data_.data() + (2 * layer) * pool_floats_; }
  float* v(int64_t layer) { return data_.data() + (2 * layer + 1) * pool_floats_; }
  const float* k(int64_t layer) const { return data_.data() + (2 * layer) * pool_floats_; }
  const float* v(int64_t layer) const { return data_.data() + (2 * layer + 1) * pool_floats_; }
  kernels::cpu::PagedKv LayerView(int64_t layer) const;
  // Offset (floats) of token row `row` of `block` inside a layer pool.
  int64_t RowOffset(int32_t block, int64_t row) const {
    return (static_cast<int64_t>(block) * shape_.block_size + row) * row_floats_;
  }
  int64_t row_floats() const { return row_floats_; }  // Hkv * hd

  // Makes positions [seq.len, seq.len + n) writable (new blocks from the
  // reservation) and sets seq.len += n; for prefilling a fresh sequence.
  // Returns the number of blocks allocated. FailedPrecondition if the
  // partly filled last block is shared (use AppendSlot).
  Result<int32_t> Grow(SeqBlocks& seq, int64_t n);
  // Makes position seq.len writable and bumps seq.len: a new block when the
  // last is full; copy-on-write when the last block is partly filled and
  // shared (refcount > 1): a new block gets the first len % block_size rows
  // of every layer's K and V and the old block loses one reference.
  // *allocated = blocks taken from the reservation (0 or 1).
  Status AppendSlot(SeqBlocks& seq, int32_t* allocated);
  // A new table sharing every block of src (refcounts + 1).
  SeqBlocks Fork(const SeqBlocks& src);
  // Drops the sequence's references and clears it.
  Status Free(SeqBlocks& seq);

 private:
  KvCache(const KvCacheShape& s, int32_t num_blocks);
  KvCacheShape shape_;
  int64_t row_floats_;    // Hkv * hd
  int64_t pool_floats_;   // num_blocks * block_size * Hkv * hd
  BlockManager blocks_;
  std::vector<float> data_;
};

}  // namespace herd::generate
