// The decode linear against a float64 reference, and its batch invariance:
// row b's output is bit-identical for any batch size, row offset or thread
// split. Tolerance: relative Frobenius error <= 1e-5.
#include "workers/generate/invariant_linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace herd::generate {
namespace {

TEST(InvariantLinear, MatchesFloat64AndIsBatchInvariant) {
  for (auto [in, out] : {std::pair<int64_t, int64_t>{64, 96}, {53, 111}, {512, 37}, {17, 5}}) {
    const int64_t B = 13;
    std::mt19937 rng(static_cast<uint32_t>(in * 31 + out));
    std::normal_distribution<float> nd;
    std::vector<float> W(static_cast<size_t>(in * out)), x(static_cast<size_t>(B * in));
    for (auto& v : W) v = nd(rng);
    for (auto& v : x) v = nd(rng);
    std::vector<float> y(static_cast<size_t>(B * out));
    InvariantLinear(y.data(), out, x.data(), in, W.data(), B, in, out);
    double err = 0, ref = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t o = 0; o < out; ++o) {
        double s = 0;
        for (int64_t i = 0; i < in; ++i) s += static_cast<double>(x[b * in + i]) * W[o * in + i];
        err += (y[b * out + o] - s) * (y[b * out + o] - s);
        ref += s * s;
      }
    EXPECT_LE(std::sqrt(err / ref), 1e-5) << in << "x" << out;
    // Every sub-batch [b0, b0 + n), and 2- and 3-way splits of the columns.
    for (int64_t n = 1; n <= B; ++n)
      for (int64_t b0 = 0; b0 + n <= B; b0 += 3) {
        std::vector<float> ys(static_cast<size_t>(n * out));
        InvariantLinear(ys.data(), out, x.data() + b0 * in, in, W.data(), n, in, out);
        ASSERT_EQ(0, std::memcmp(ys.data(), y.data() + b0 * out, sizeof(float) * n * out))
            << "B=" << n << " at " << b0;
      }
    for (int parts : {2, 3}) {
      std::vector<float> ys(y.size());
      for (int p = 0; p < parts; ++p)
        InvariantLinear(ys.data(), out, x.data(), in, W.data(), B, in, out, p, parts);
      EXPECT_EQ(0, std::memcmp(ys.data(), y.data(), sizeof(float) * y.size())) << parts;
    }
  }
}

}  // namespace
}  // namespace herd::generate
