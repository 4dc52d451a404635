// Paged decode attention against a float64 dense reference (GQA, odd sizes,
// shuffled block ids, several block sizes), and its batch invariance: a
// query's output is bit-identical alone, in any batch, and under any split
// of the work across threads.
// Tolerance: relative Frobenius error <= 1e-5 against float64.
#include "kernels/cpu/paged_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

namespace herd::kernels::cpu {
namespace {

struct Case {
  int64_t H, Hkv, hd, bs;
};

class PagedAttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(PagedAttentionTest, MatchesDenseFloat64AndIsBatchInvariant) {
  const auto [H, Hkv, hd, bs] = GetParam();
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  const std::vector<int32_t> lens = {1, 7, static_cast<int32_t>(bs), static_cast<int32_t>(bs + 1),
                                     111, 50, 3};
  const int64_t n = static_cast<int64_t>(lens.size());
  // Block tables over a shuffled pool, so neighbours in a table are far apart.
  int64_t total_blocks = 0;
  for (auto l : lens) total_blocks += (l + bs - 1) / bs;
  const int64_t num_blocks = total_blocks + 5;
  std::vector<int32_t> perm(static_cast<size_t>(num_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int32_t> ids, begin(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    begin[static_cast<size_t>(i)] = static_cast<int32_t>(ids.size());
    for (int64_t b = 0; b < (lens[static_cast<size_t>(i)] + bs - 1) / bs; ++b)
      ids.push_back(perm[ids.size()]);
  }
  const int64_t row = Hkv * hd;
  std::vector<float> K(static_cast<size_t>(num_blocks * bs * row)), V(K.size());
  for (auto& x : K) x = nd(rng);
  for (auto& x : V) x = nd(rng);
  const int64_t ld = H * hd + 3;   // padded row stride for q and out
  std::vector<float> q(static_cast<size_t>(n * ld));
  for (auto& x : q) x = 2.0f * nd(rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  PagedKv kv{K.data(), V.data(), num_blocks, bs, Hkv, hd};
  PagedQueries qs{n, begin.data(), lens.data(), ids.data()};
  std::vector<float> out(q.size(), 0.0f);
  PagedAttentionForward(out.data(), ld, q.data(), ld, H, scale, kv, qs);

  double err = 0, ref = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / Hkv);
      const int64_t len = lens[static_cast<size_t>(i)];
      std::vector<double> s(static_cast<size_t>(len));
      double mx = -1e300;
      for (int64_t p = 0; p < len; ++p) {
        const int64_t blk = ids[static_cast<size_t>(begin[static_cast<size_t>(i)] + p / bs)];
        const float* k = K.data() + (blk * bs + p % bs) * row + g * hd;
        double dot = 0;
        for (int64_t e = 0; e < hd; ++e) dot += static_cast<double>(q[i * ld + h * hd + e]) * k[e];
        s[static_cast<size_t>(p)] = dot * scale;
        mx = std::max(mx, s[static_cast<size_t>(p)]);
      }
      double z = 0;
      for (auto& e : s) z += (e = std::exp(e - mx));
      for (int64_t e = 0; e < hd; ++e) {
        double o = 0;
        for (int64_t p = 0; p < len; ++p) {
          const int64_t blk = ids[static_cast<size_t>(begin[static_cast<size_t>(i)] + p / bs)];
          o += s[static_cast<size_t>(p)] / z * V[(blk * bs + p % bs) * row + g * hd + e];
        }
        const double got = out[i * ld + h * hd + e];
        err += (got - o) * (got - o);
        ref += o * o;
      }
    }
  EXPECT_LE(std::sqrt(err / ref), 1e-5);

  // Batch invariance: each query alone, and the batch split 2 and 3 ways.
  for (int64_t i = 0; i < n; ++i) {
    std::vector<float> one(static_cast<size_t>(ld), -1.0f);
    PagedQueries q1{1, begin.data() + i, lens.data() + i, ids.data()};
    PagedAttentionForward(one.data(), ld, q.data() + i * ld, ld, H, scale, kv, q1);
    EXPECT_EQ(0, std::memcmp(one.data(), out.data() + i * ld, sizeof(float) * H * hd)) << "query " << i;
  }
  for (int parts : {2, 3}) {
    std::vector<float> split(q.size(), 0.0f);
    for (int p = 0; p < parts; ++p)
      PagedAttentionForward(split.data(), ld, q.data(), ld, H, scale, kv, qs, p, parts);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(0, std::memcmp(split.data() + i * ld, out.data() + i * ld, sizeof(float) * H * hd))
          << "parts " << parts << " query " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, PagedAttentionTest,
                         ::testing::Values(Case{8, 4, 64, 16}, Case{4, 4, 16, 1}, Case{6, 2, 24, 5},
                                           Case{3, 1, 7, 16}, Case{8, 1, 128, 32}));

}  // namespace
}  // namespace herd::kernels::cpu
