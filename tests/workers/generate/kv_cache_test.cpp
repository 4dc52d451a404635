// Block manager and paged cache bookkeeping: sizing from the byte budget,
// reservations, reference counts, fork, copy-on-write of a shared partial
// block, and that freeing everything returns the pool to full.
#include "workers/generate/kv_cache.h"

#include <gtest/gtest.h>

namespace herd::generate {
namespace {

KvCacheShape Shape(int64_t bs) {
  KvCacheShape s;
  s.num_layers = 3;
  s.num_kv_heads = 2;
  s.head_dim = 4;
  s.block_size = bs;
  return s;
}

TEST(BlockManager, ReserveAllocateReleaseRefcounts) {
  BlockManager m(4);
  EXPECT_EQ(m.num_free(), 4);
  EXPECT_FALSE(m.Allocate().ok());          // nothing reserved
  ASSERT_TRUE(m.Reserve(3).ok());
  EXPECT_EQ(m.available(), 1);
  EXPECT_EQ(m.Reserve(2).code(), Status::Code::kResourceExhausted);
  auto a = m.Allocate(), b = m.Allocate(), c = m.Allocate();
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_FALSE(m.Allocate().ok());          // reservation used up
  EXPECT_EQ(m.reserved(), 0);
  EXPECT_EQ(m.num_free(), 1);
  m.AddRef(*a);
  EXPECT_EQ(m.refcount(*a), 2);
  ASSERT_TRUE(m.Release(*a).ok());
  EXPECT_EQ(m.num_free(), 1);               // still held once
  ASSERT_TRUE(m.Release(*a).ok());
  EXPECT_EQ(m.num_free(), 2);
  EXPECT_FALSE(m.Release(*a).ok());         // double free is reported, not a crash
  ASSERT_TRUE(m.Release(*b).ok());
  ASSERT_TRUE(m.Release(*c).ok());
  EXPECT_EQ(m.num_free(), 4);
  EXPECT_FALSE(m.Unreserve(1).ok());
}

TEST(KvCache, SizedFromBudget) {
  const auto s = Shape(16);
  const int64_t per = KvCache::BytesPerBlock(s);
  EXPECT_EQ(per, 2 * 3 * 16 * 2 * 4 * 4);
  auto c = KvCache::Create(s, per * 10 + per / 2);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->num_blocks(), 10);
  auto bad = KvCache::Create(s, per - 1);
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("kv_budget_bytes"), std::string::npos);
  auto s2 = s;
  s2.block_size = 0;
  EXPECT_FALSE(KvCache::Create(s2, per * 10).ok());
}

TEST(KvCache, ForkSharesBlocksAndCopyOnWriteCopiesThePartialBlock) {
  const int64_t bs = 4;
  auto cr = KvCache::Create(Shape(bs), KvCache::BytesPerBlock(Shape(bs)) * 8);
  ASSERT_TRUE(cr.ok());
  KvCache& c = *cr;
  ASSERT_TRUE(c.blocks().Reserve(8).ok());
  SeqBlocks prompt;
  auto grown = c.Grow(prompt, 6);          // 6 tokens: one full block + 2 rows
  ASSERT_TRUE(grown.ok());
  EXPECT_EQ(*grown, 2);
  EXPECT_EQ(prompt.len, 6);
  // Mark every row of every layer with (layer, block, row).
  for (int64_t l = 0; l < 3; ++l)
    for (int64_t t = 0; t < 6; ++t)
      for (int64_t e = 0; e < c.row_floats(); ++e) {
        const int64_t off = c.RowOffset(prompt.blocks[static_cast<size_t>(t / bs)], t % bs) + e;
        c.k(l)[off] = static_cast<float>(1000 * l + 10 * t + e);
        c.v(l)[off] = -static_cast<float>(1000 * l + 10 * t + e);
      }
  SeqBlocks a = c.Fork(prompt), b = c.Fork(prompt);
  ASSERT_TRUE(c.Free(prompt).ok());
  EXPECT_EQ(c.blocks().refcount(a.blocks[0]), 2);
  EXPECT_EQ(c.blocks().refcount(a.blocks[1]), 2);
  EXPECT_FALSE(c.Grow(a, 1).ok());         // Grow refuses a shared partial block

  int32_t alloc = 0;
  const int32_t shared_last = a.blocks[1];
  ASSERT_TRUE(c.AppendSlot(a, &alloc).ok());   // a copies
  EXPECT_EQ(alloc, 1);
  EXPECT_NE(a.blocks[1], shared_last);
  EXPECT_EQ(a.blocks[0], b.blocks[0]);         // the full block stays shared
  EXPECT_EQ(c.blocks().refcount(shared_last), 1);
  for (int64_t l = 0; l < 3; ++l)
    for (int64_t t = 4; t < 6; ++t)
      for (int64_t e = 0; e < c.row_floats(); ++e) {
        EXPECT_EQ(c.k(l)[c.RowOffset(a.blocks[1], t % bs) + e], static_cast<float>(1000 * l + 10 * t + e));
        EXPECT_EQ(c.v(l)[c.RowOffset(a.blocks[1], t % bs) + e], -static_cast<float>(1000 * l + 10 * t + e));
      }
  ASSERT_TRUE(c.AppendSlot(b, &alloc).ok());   // b is the last holder: writes in place
  EXPECT_EQ(alloc, 0);
  EXPECT_EQ(b.blocks[1], shared_last);
  EXPECT_EQ(a.len, 7);
  EXPECT_EQ(b.len, 7);
  ASSERT_TRUE(c.AppendSlot(a, &alloc).ok());   // row 3 of a's private block
  EXPECT_EQ(alloc, 0);
  ASSERT_TRUE(c.AppendSlot(a, &alloc).ok());   // position 8: a new block
  EXPECT_EQ(alloc, 1);
  EXPECT_EQ(a.blocks.size(), 3u);
  EXPECT_EQ(c.blocks().num_used(), 4);
  ASSERT_TRUE(c.Free(a).ok());
  ASSERT_TRUE(c.Free(b).ok());
  EXPECT_EQ(c.blocks().num_free(), c.num_blocks());
  ASSERT_TRUE(c.blocks().Unreserve(c.blocks().reserved()).ok());
}

}  // namespace
}  // namespace herd::generate
