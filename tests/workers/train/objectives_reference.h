#pragma once
// Float64 reference implementations for the objective tests, written
// directly from the formulas (no code shared with workers/train), plus the
// random data and norm helpers those tests use.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace herd::train::testref {

inline std::vector<float> RandomLogits(int64_t N, int64_t V, uint64_t seed, float scale = 2.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> x(static_cast<size_t>(N * V));
  for (auto& v : x) v = d(rng);
  return x;
}

// log softmax(x)[t] in float64 from fp32 logits (or float64 logits).
template <typename F>
double LogProb(const F* row, int64_t V, int32_t t) {
  double m = row[0];
  for (int64_t v = 1; v < V; ++v) m = std::max(m, static_cast<double>(row[v]));
  double s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(row[v]) - m);
  return static_cast<double>(row[t]) - m - std::log(s);
}

// ‖a − b‖ / ‖b‖ over equal-length vectors; 0 when both are zero.
template <typename A, typename B>
double RelErr(const std::vector<A>& a, const std::vector<B>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    num += d * d;
    den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  if (den == 0) return std::sqrt(num);
  return std::sqrt(num / den);
}

// Central finite differences of a float64 function of float64 inputs:
// grad[k] = (f(x + h e_k) − f(x − h e_k)) / 2h. Truncation error O(h²).
template <typename Fn>
std::vector<double> FiniteDiff(std::vector<double> x, Fn f, double h = 1e-5) {
  std::vector<double> g(x.size());
  for (size_t k = 0; k < x.size(); ++k) {
    const double x0 = x[k];
    x[k] = x0 + h;
    const double fp = f(x);
    x[k] = x0 - h;
    const double fm = f(x);
    x[k] = x0;
    g[k] = (fp - fm) / (2 * h);
  }
  return g;
}

inline double Softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }

}  // namespace herd::train::testref
