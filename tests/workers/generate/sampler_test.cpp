// Sampler: counter-based streams, greedy, and the top-k / top-p / temperature
// distributions against exact enumeration in float64 (|p - p_exact| <= 1e-6
// per token, the float32 weights' rounding), then the draws against those
// probabilities with a chi-square test: 200000 draws, statistic below the
// 0.9999 quantile of chi-square with (kept - 1) degrees of freedom (fixed
// seeds, so the outcome is deterministic; a wrong distribution of the size
// tested here gives statistics in the thousands).
#include "workers/generate/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

namespace herd::generate {
namespace {

const std::vector<float> kLogits = {1.0f, 2.5f, -0.5f, 2.0f, 0.25f, 3.0f, -2.0f, 1.5f, 0.0f, 2.2f};

// Exact sampling distribution: softmax(l / T), restricted to the k largest,
// then to the shortest descending prefix with mass >= top_p, renormalised.
std::vector<double> Exact(const std::vector<float>& l, double T, int k, double top_p) {
  const int V = static_cast<int>(l.size());
  std::vector<int> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int a, int b) { return l[a] > l[b]; });
  if (k > 0 && k < V) idx.resize(static_cast<size_t>(k));
  const double mx = l[static_cast<size_t>(idx[0])];
  double z = 0;
  for (int i : idx) z += std::exp((l[static_cast<size_t>(i)] - mx) / T);
  std::vector<int> kept;
  double cum = 0;
  for (int i : idx) {
    kept.push_back(i);
    cum += std::exp((l[static_cast<size_t>(i)] - mx) / T) / z;
    if (cum >= top_p) break;
  }
  double zk = 0;
  for (int i : kept) zk += std::exp((l[static_cast<size_t>(i)] - mx) / T);
  std::vector<double> p(static_cast<size_t>(V), 0.0);
  for (int i : kept) p[static_cast<size_t>(i)] = std::exp((l[static_cast<size_t>(i)] - mx) / T) / zk;
  return p;
}

// chi-square 0.9999 quantiles for df = 1..9
const double kChi2_9999[] = {0, 15.14, 18.42, 21.11, 23.51, 25.74, 27.86, 29.88, 31.83, 33.72};

struct Setting {
  float T;
  int k;
  float p;
};

class SamplerDistribution : public ::testing::TestWithParam<Setting> {};

TEST_P(SamplerDistribution, MatchesEnumerationAndChiSquare) {
  const auto [T, k, top_p] = GetParam();
  SamplingParams sp;
  sp.temperature = T;
  sp.top_k = k;
  sp.top_p = top_p;
  Sampler s(static_cast<int64_t>(kLogits.size()));
  const auto want = Exact(kLogits, T, k, top_p);
  std::vector<double> got;
  s.Distribution(kLogits.data(), sp, &got);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "token " << i;

  const int N = 200000;
  std::vector<int> counts(kLogits.size(), 0);
  const uint64_t key = StreamKey(42, 3);
  for (int n = 0; n < N; ++n) ++counts[static_cast<size_t>(s.Sample(kLogits.data(), sp, UniformAt(key, n)).token)];
  double chi2 = 0;
  int df = -1;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is outside the kept set";
      continue;
    }
    const double e = N * want[i];
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++df;
  }
  if (df >= 1) {
    EXPECT_LT(chi2, kChi2_9999[df]) << "df " << df;
  }
}

INSTANTIATE_TEST_SUITE_P(Settings, SamplerDistribution,
                         ::testing::Values(Setting{1.0f, 0, 1.0f}, Setting{0.7f, 0, 1.0f},
                                           Setting{1.0f, 3, 1.0f}, Setting{1.3f, 0, 0.8f},
                                           Setting{1.0f, 5, 0.6f}, Setting{1.0f, 0, 0.05f}));

TEST(Sampler, GreedyAndLogprobs) {
  Sampler s(static_cast<int64_t>(kLogits.size()));
  SamplingParams g;
  g.temperature = 0.0f;
  double z = 0;
  for (float l : kLogits) z += std::exp(static_cast<double>(l));
  for (double u : {0.0, 0.5, 0.999}) {
    auto d = s.Sample(kLogits.data(), g, u);
    EXPECT_EQ(d.token, 5);
    EXPECT_NEAR(d.logprob, 3.0 - std::log(z), 1e-6);
  }
  // The returned log-prob is the raw model's, whatever the settings.
  SamplingParams t;
  t.temperature = 0.5f;
  t.top_k = 2;
  auto d = s.Sample(kLogits.data(), t, 0.9);
  EXPECT_NEAR(d.logprob, kLogits[static_cast<size_t>(d.token)] - std::log(z), 1e-6);
  // Ties: the lowest id wins.
  std::vector<float> tie = {0.0f, 1.0f, 1.0f};
  Sampler s3(3);
  EXPECT_EQ(s3.Sample(tie.data(), g, 0.3).token, 1);
}

TEST(Sampler, StreamsAreCounterBasedAndDistinct) {
  // UniformAt is a pure function of (key, counter).
  EXPECT_EQ(UniformAt(StreamKey(7, 2), 5), UniformAt(StreamKey(7, 2), 5));
  std::set<double> seen;
  for (uint64_t seed : {0ull, 1ull, 2ull})
    for (uint64_t i = 0; i < 30; ++i)
      for (uint64_t t = 0; t < 10; ++t) {
        const double u = UniformAt(StreamKey(seed, i), t);
        EXPECT_GE(u, 0.0);
        EXPECT_LT(u, 1.0);
        seen.insert(u);
      }
  EXPECT_EQ(seen.size(), 3u * 30u * 10u);   // no collisions across streams
  // Mean of a stream: 1e5 draws, |mean - 1/2| < 5 sigma = 5 * sqrt(1/12/1e5).
  double sum = 0;
  for (uint64_t t = 0; t < 100000; ++t) sum += UniformAt(StreamKey(9, 0), t);
  EXPECT_NEAR(sum / 1e5, 0.5, 5 * std::sqrt(1.0 / 12 / 1e5));
}

TEST(Sampler, ValidationNamesTheField) {
  SamplingParams p;
  p.top_p = 0.0f;
  auto st = ValidateSamplingParams(p, 10);
  EXPECT_NE(st.message().find("top_p"), std::string::npos);
  p = SamplingParams();
  p.eot_id = 10;
  EXPECT_NE(ValidateSamplingParams(p, 10).message().find("eot_id"), std::string::npos);
  p = SamplingParams();
  p.max_new_tokens = 0;
  EXPECT_FALSE(ValidateSamplingParams(p, 10).ok());
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams(), 10).ok());
}

}  // namespace
}  // namespace herd::generate
