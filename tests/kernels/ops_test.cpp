// Every CPU op against an independent float64 reference written here from
// the op's definition: the forward output directly, the backward against
// central finite differences of that reference (h = 1e-6 in float64, so the
// FD error is ~1e-9 and the comparison measures the fp32 kernel).
// Tolerances: relative Frobenius error <= 1e-5 for forward outputs and
// <= 1e-4 for gradients (fp32 accumulation over <= a few hundred terms).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <numbers>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/fast_exp.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/swiglu.h"
#include "kernels/cpu/thread_pool.h"

namespace herd::kernels::cpu {
namespace {

using Vec = std::vector<double>;
using Fn = std::function<double(const Vec&)>;

std::vector<float> Randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}
Vec ToD(const std::vector<float>& v) { return Vec(v.begin(), v.end()); }

double RelErr(const std::vector<float>& got, const Vec& want) {
  double e = 0, r = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    e += (got[i] - want[i]) * (got[i] - want[i]);
    r += want[i] * want[i];
  }
  return std::sqrt(e / std::max(r, 1e-300));
}

// Central differences of f at x for the coordinates idx (all when empty).
Vec FdGrad(const Fn& f, Vec x, const std::vector<size_t>& idx = {}) {
  const double h = 1e-6;
  std::vector<size_t> all;
  const auto& ix =
      idx.empty() ? (all.resize(x.size()), std::iota(all.begin(), all.end(), 0), all) : idx;
  Vec g(ix.size());
  for (size_t n = 0; n < ix.size(); ++n) {
    const size_t i = ix[n];
    const double x0 = x[i];
    x[i] = x0 + h;
    const double fp = f(x);
    x[i] = x0 - h;
    const double fm = f(x);
    x[i] = x0;
    g[n] = (fp - fm) / (2 * h);
  }
  return g;
}

std::vector<float> Pick(const std::vector<float>& v, const std::vector<size_t>& idx) {
  std::vector<float> out;
  for (size_t i : idx) out.push_back(v[i]);
  return out;
}

double Dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

TEST(FastExp, MatchesLibm) {
  double worst = 0;
  for (double x = -87.0; x <= 88.0; x += 0.01237) {
    const double want = std::exp(static_cast<double>(static_cast<float>(x)));
    const double got = FastExp(static_cast<float>(x));
    worst = std::max(worst, std::abs(got - want) / want);
  }
  EXPECT_LE(worst, 5e-7);
  EXPECT_EQ(FastExp(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(FastExp(-200.0f), 0.0f);
}

TEST(Embedding, ForwardAndBackward) {
  const int64_t V = 11, C = 13, N = 9;
  std::vector<int32_t> tok = {3, 0, 10, 3, 7, 3, 1, 10, 5};  // repeats accumulate
  auto table = Randn(V * C, 1);
  std::vector<float> out(N * C);
  EmbeddingForward(out.data(), tok.data(), table.data(), N, C);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) ASSERT_EQ(out[n * C + c], table[tok[n] * C + c]);
  auto R = ToD(Randn(N * C, 2));
  Fn f = [&](const Vec& t) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) s += R[n * C + c] * t[tok[n] * C + c];
    return s;
  };
  std::vector<float> dt(V * C, 0.0f), Rf(R.begin(), R.end());
  EmbeddingBackward(dt.data(), Rf.data(), tok.data(), N, C);
  EXPECT_LE(RelErr(dt, FdGrad(f, ToD(table))), 1e-5);
}

Vec RmsRef(const Vec& x, const Vec& w, int64_t N, int64_t C, double eps) {
  Vec y(N * C);
  for (int64_t n = 0; n < N; ++n) {
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += x[n * C + c] * x[n * C + c];
    const double r = 1.0 / std::sqrt(ss / C + eps);
    for (int64_t c = 0; c < C; ++c) y[n * C + c] = w[c] * x[n * C + c] * r;
  }
  return y;
}

TEST(RmsNorm, ForwardAndBackward) {
  const int64_t N = 7, C = 37;
  const float eps = 1e-5f;
  auto x = Randn(N * C, 3), w = Randn(C, 4);
  for (auto& v : w) v += 1.0f;
  std::vector<float> y(N * C), rstd(N);
  RmsNormForward(y.data(), rstd.data(), x.data(), w.data(), N, C, eps);
  EXPECT_LE(RelErr(y, RmsRef(ToD(x), ToD(w), N, C, eps)), 1e-6);

  auto R = ToD(Randn(N * C, 5));
  std::vector<float> Rf(R.begin(), R.end());
  std::vector<float> dx(N * C, 0.5f), dw(C, 0.25f);  // += semantics: start nonzero
  RmsNormBackward(dx.data(), dw.data(), Rf.data(), x.data(), w.data(), rstd.data(), N, C);
  Vec wd = ToD(w), xd = ToD(x);
  Vec gx = FdGrad([&](const Vec& xx) { return Dot(R, RmsRef(xx, wd, N, C, eps)); }, xd);
  Vec gw = FdGrad([&](const Vec& ww) { return Dot(R, RmsRef(xd, ww, N, C, eps)); }, wd);
  for (auto& v : gx) v += 0.5;
  for (auto& v : gw) v += 0.25;
  EXPECT_LE(RelErr(dx, gx), 1e-5);
  EXPECT_LE(RelErr(dw, gw), 1e-5);
}

TEST(Rope, InvFreqLlama3Scaling) {
  // HF _compute_llama3_parameters written as its three "where" cases.
  const int64_t hd = 64;
  const double theta = 500000, factor = 8, lo = 1, hi = 4, old = 8192;
  Llama3RopeScaling s{factor, lo, hi, old};
  std::vector<double> got(hd / 2), plain(hd / 2);
  RopeInvFreq(got.data(), hd, theta, &s);
  RopeInvFreq(plain.data(), hd, theta, nullptr);
  int n_low = 0, n_mid = 0, n_high = 0;
  for (int64_t k = 0; k < hd / 2; ++k) {
    const double f = std::pow(theta, -2.0 * k / hd);
    EXPECT_NEAR(plain[k], f, 1e-15 * f);
    const double wl = 2 * std::numbers::pi / f;
    double want;
    if (wl < old / hi) {
      want = f, ++n_high;
    } else if (wl > old / lo) {
      want = f / factor, ++n_low;
    } else {
      const double sm = (old / wl - lo) / (hi - lo);
      want = (1 - sm) * f / factor + sm * f, ++n_mid;
    }
    EXPECT_NEAR(got[k], want, 1e-14 * want) << k;
  }
  // The test covers all three bands.
  EXPECT_GT(n_low, 0);
  EXPECT_GT(n_mid, 0);
  EXPECT_GT(n_high, 0);
}

TEST(Rope, ForwardMatchesRotateHalfAndBackwardIsTranspose) {
  const int64_t N = 5, Hn = 3, hd = 10, half = hd / 2, ld = Hn * hd + 4;  // padded stride
  std::vector<int32_t> pos = {0, 1, 7, 3, 1000};
  std::vector<double> inv(half);
  RopeInvFreq(inv.data(), hd, 10000.0, nullptr);
  std::vector<float> cs(N * half), sn(N * half);
  RopeTables(cs.data(), sn.data(), pos.data(), N, inv.data(), half);
  auto x = Randn(N * ld, 6);
  auto ref = [&](const Vec& xx) {  // HF: x*cos + rotate_half(x)*sin, cos = cat(c, c)
    Vec y = xx;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t h = 0; h < Hn; ++h)
        for (int64_t e = 0; e < hd; ++e) {
          const double a = pos[n] * inv[e % half];
          const int64_t base = n * ld + h * hd;
          const double rot = e < half ? -xx[base + e + half] : xx[base + e - half];
          y[base + e] = xx[base + e] * std::cos(a) + rot * std::sin(a);
        }
    return y;
  };
  std::vector<float> y = x;
  RopeForward(y.data(), N, Hn, hd, ld, cs.data(), sn.data());
  EXPECT_LE(RelErr(y, ref(ToD(x))), 1e-6);
  auto R = Randn(N * ld, 7);
  std::vector<float> g = R;
  RopeBackward(g.data(), N, Hn, hd, ld, cs.data(), sn.data());
  Vec Rd = ToD(R);
  EXPECT_LE(RelErr(g, FdGrad([&](const Vec& xx) { return Dot(Rd, ref(xx)); }, ToD(x))), 1e-5);
}

// Float64 attention straight from the PackedBatch rule.
struct AttnCase {
  AttentionDims d;
  std::vector<int32_t> seg, par;
};

Vec AttnRef(const AttnCase& c, const Vec& q, const Vec& k, const Vec& v) {
  const auto& d = c.d;
  Vec out(d.B * d.T * d.ld_out, 0.0);
  const int64_t group = d.H / d.Hkv;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t i = 0; i < d.T; ++i) {
        const int64_t qi = b * d.T + i;
        std::vector<double> s(d.T, -INFINITY);
        double mx = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {
          const int64_t kj = b * d.T + j;
          const bool ok = c.seg[qi] >= 0 && c.seg[kj] >= 0 &&
                          (c.seg[kj] == c.seg[qi] || c.seg[kj] == c.par[qi]);
          if (!ok) continue;
          double dot = 0;
          for (int64_t e = 0; e < d.hd; ++e)
            dot += q[qi * d.ld_q + h * d.hd + e] * k[kj * d.ld_kv + (h / group) * d.hd + e];
          s[j] = dot / std::sqrt(static_cast<double>(d.hd));
          mx = std::max(mx, s[j]);
        }
        if (mx == -INFINITY) continue;
        double z = 0;
        for (int64_t j = 0; j < d.T; ++j) z += s[j] == -INFINITY ? 0 : std::exp(s[j] - mx);
        for (int64_t j = 0; j < d.T; ++j) {
          if (s[j] == -INFINITY) continue;
          const double p = std::exp(s[j] - mx) / z;
          for (int64_t e = 0; e < d.hd; ++e)
            out[qi * d.ld_out + h * d.hd + e] +=
                p * v[(b * d.T + j) * d.ld_kv + (h / group) * d.hd + e];
        }
      }
  return out;
}

AttnCase MakeCase(int64_t T) {
  AttnCase c;
  c.d.B = 3;
  c.d.T = T;
  c.d.H = 4;
  c.d.Hkv = 2;
  c.d.hd = 6;
  c.d.ld_q = c.d.H * c.d.hd + 3;  // odd strides: slices of a wider buffer
  c.d.ld_kv = c.d.Hkv * c.d.hd + 1;
  c.d.ld_out = c.d.H * c.d.hd + 2;
  c.seg.assign(c.d.B * T, -1);
  c.par.assign(c.d.B * T, -1);
  // Row 0: SFT packing, three segments then padding.
  for (int64_t i = 0; i < T; ++i) c.seg[i] = i < T / 3 ? 0 : i < 2 * T / 3 ? 1 : i < T - 3 ? 2 : -1;
  // Row 1: prompt P, responses A, B that see P and themselves, padding.
  for (int64_t i = 0; i < T; ++i) {
    const int64_t n = T + i;
    if (i < T / 4)
      c.seg[n] = 5;
    else if (i < T / 2)
      c.seg[n] = 7, c.par[n] = 5;
    else if (i < T - 2)
      c.seg[n] = 9, c.par[n] = 5;
  }
  // Row 2: all padding.
  return c;
}

class AttentionTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(AttentionTest, ForwardAndBackward) {
  AttnCase c = MakeCase(GetParam());
  const auto& d = c.d;
  const int64_t N = d.B * d.T;
  auto q = Randn(N * d.ld_q, 8), k = Randn(N * d.ld_kv, 9), v = Randn(N * d.ld_kv, 10);
  std::vector<int32_t> ks(N);
  AttentionKeyStart(ks.data(), c.seg.data(), c.par.data(), d.B, d.T);
  std::vector<float> out(N * d.ld_out, 123.0f), probs(d.B * d.H * d.T * d.T);
  AttentionForward(out.data(), probs.data(), q.data(), k.data(), v.data(), c.seg.data(),
                   c.par.data(), ks.data(), d);
  Vec want = AttnRef(c, ToD(q), ToD(k), ToD(v));
  // Compare only the head columns (the stride padding is not the op's).
  std::vector<float> got_h;
  Vec want_h;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t e = 0; e < d.H * d.hd; ++e) {
      got_h.push_back(out[n * d.ld_out + e]);
      want_h.push_back(want[n * d.ld_out + e]);
    }
  EXPECT_LE(RelErr(got_h, want_h), 1e-5);
  // Padding queries (row 2 entirely) give exact zeros.
  for (int64_t i = 0; i < d.T; ++i)
    for (int64_t e = 0; e < d.H * d.hd; ++e) ASSERT_EQ(out[(2 * d.T + i) * d.ld_out + e], 0.0f);

  auto R = Randn(N * d.ld_out, 11);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t e = d.H * d.hd; e < d.ld_out; ++e) R[n * d.ld_out + e] = 0.0f;
  Vec Rd = ToD(R);
  std::vector<float> dq(N * d.ld_q, 0.0f), dk(N * d.ld_kv, 0.0f), dv(N * d.ld_kv, 0.0f);
  std::vector<float> scratch(AttentionScratchFloats(d));
  AttentionBackward(dq.data(), dk.data(), dv.data(), scratch.data(), R.data(), probs.data(),
                    q.data(), k.data(), v.data(), ks.data(), d);
  Vec qd = ToD(q), kd = ToD(k), vd = ToD(v);
  // A deterministic sample of coordinates in rows 0 and 1 (FD of the whole
  // tensor costs too much for T > 64).
  auto sample = [&](int64_t ld, int64_t width) {
    std::vector<size_t> idx;
    std::mt19937 rng(12);
    for (int s = 0; s < 80; ++s) {
      const int64_t n = rng() % (2 * d.T), e = rng() % width;
      idx.push_back(n * ld + e);
    }
    return idx;
  };
  auto iq = sample(d.ld_q, d.H * d.hd), ik = sample(d.ld_kv, d.Hkv * d.hd);
  Vec gq = FdGrad([&](const Vec& x) { return Dot(Rd, AttnRef(c, x, kd, vd)); }, qd, iq);
  Vec gk = FdGrad([&](const Vec& x) { return Dot(Rd, AttnRef(c, qd, x, vd)); }, kd, ik);
  Vec gv = FdGrad([&](const Vec& x) { return Dot(Rd, AttnRef(c, qd, kd, x)); }, vd, ik);
  EXPECT_LE(RelErr(Pick(dq, iq), gq), 1e-4);
  EXPECT_LE(RelErr(Pick(dk, ik), gk), 1e-4);
  EXPECT_LE(RelErr(Pick(dv, ik), gv), 1e-4);
  // The pooled version (rows x KV heads split over 2 threads, sgemm single
  // threaded) computes the same numbers: relative error <= 1e-6.
  ThreadPool pool(2);
  std::vector<float> out2(N * d.ld_out, 7.0f), probs2(probs.size());
  AttentionForward(out2.data(), probs2.data(), q.data(), k.data(), v.data(), c.seg.data(),
                   c.par.data(), ks.data(), d, &pool);
  std::vector<float> dq2(N * d.ld_q, 0.0f), dk2(N * d.ld_kv, 0.0f), dv2(N * d.ld_kv, 0.0f);
  std::vector<float> scratch2(AttentionScratchFloats(d, 2));
  AttentionBackward(dq2.data(), dk2.data(), dv2.data(), scratch2.data(), R.data(), probs2.data(),
                    q.data(), k.data(), v.data(), ks.data(), d, &pool);
  auto rel = [](const std::vector<float>& a, const std::vector<float>& b) {
    return RelErr(a, Vec(b.begin(), b.end()));
  };
  std::vector<float> out2_h;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t e = 0; e < d.H * d.hd; ++e) out2_h.push_back(out2[n * d.ld_out + e]);
  EXPECT_LE(rel(out2_h, got_h), 1e-6);
  EXPECT_LE(rel(dq2, dq), 1e-6);
  EXPECT_LE(rel(dk2, dk), 1e-6);
  EXPECT_LE(rel(dv2, dv), 1e-6);
  // No gradient reaches padding tokens.
  for (int64_t i = 0; i < d.T; ++i)
    for (int64_t e = 0; e < d.Hkv * d.hd; ++e) {
      ASSERT_EQ(dk[(2 * d.T + i) * d.ld_kv + e], 0.0f);
      ASSERT_EQ(dv[(2 * d.T + i) * d.ld_kv + e], 0.0f);
    }
}

// 13: one query block; 70 and 150: several blocks with windows not starting at 0.
INSTANTIATE_TEST_SUITE_P(OddLengths, AttentionTest, ::testing::Values(13, 70, 150));

TEST(Attention, ResponsesDoNotSeeEachOther) {
  // Row P P A B: changing A's value must not change B's output, and vice versa.
  AttentionDims d{1, 4, 1, 1, 2, 2, 2, 2};
  std::vector<int32_t> seg = {0, 0, 1, 2}, par = {-1, -1, 0, 0}, ks(4);
  AttentionKeyStart(ks.data(), seg.data(), par.data(), 1, 4);
  EXPECT_EQ(ks, (std::vector<int32_t>{0, 0, 0, 0}));
  auto q = Randn(8, 13), k = Randn(8, 14), v = Randn(8, 15);
  std::vector<float> out1(8), out2(8), probs(16);
  AttentionForward(out1.data(), probs.data(), q.data(), k.data(), v.data(), seg.data(), par.data(),
                   ks.data(), d);
  EXPECT_EQ(probs[3 * 4 + 2], 0.0f);  // B does not attend to A
  v[2 * 2] += 5.0f;                   // change A's value
  AttentionForward(out2.data(), probs.data(), q.data(), k.data(), v.data(), seg.data(), par.data(),
                   ks.data(), d);
  EXPECT_EQ(out1[6], out2[6]);
  EXPECT_EQ(out1[7], out2[7]);
  EXPECT_NE(out1[4], out2[4]);  // A itself changes
}

Vec SwiGluRef(const Vec& gu, int64_t N, int64_t F) {
  Vec h(N * F);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t f = 0; f < F; ++f) {
      const double g = gu[n * 2 * F + f], u = gu[n * 2 * F + F + f];
      h[n * F + f] = g / (1 + std::exp(-g)) * u;
    }
  return h;
}

TEST(SwiGlu, ForwardAndBackward) {
  const int64_t N = 5, F = 23;
  auto gu = Randn(N * 2 * F, 16, 2.0f);
  std::vector<float> h(N * F);
  SwiGluForward(h.data(), gu.data(), N, F);
  EXPECT_LE(RelErr(h, SwiGluRef(ToD(gu), N, F)), 1e-6);
  auto R = Randn(N * F, 17);
  std::vector<float> dgu(N * 2 * F);
  SwiGluBackward(dgu.data(), R.data(), gu.data(), N, F);
  Vec Rd = ToD(R);
  EXPECT_LE(RelErr(dgu, FdGrad([&](const Vec& x) { return Dot(Rd, SwiGluRef(x, N, F)); }, ToD(gu))),
            1e-5);
}

TEST(CrossEntropy, LossAndGradient) {
  const int64_t N = 6, V = 37;
  auto logits = Randn(N * V, 18, 3.0f);
  std::vector<int32_t> tgt = {0, 36, -1, 5, 5, 20};
  std::vector<float> w = {1.0f, 0.5f, 1.0f, 2.0f, 0.0f, 1.0f};
  auto ref = [&](const Vec& x) {
    double total = 0;
    for (int64_t n = 0; n < N; ++n) {
      if (tgt[n] < 0) continue;
      double mx = -INFINITY, z = 0;
      for (int64_t j = 0; j < V; ++j) mx = std::max(mx, x[n * V + j]);
      for (int64_t j = 0; j < V; ++j) z += std::exp(x[n * V + j] - mx);
      total += w[n] * (std::log(z) + mx - x[n * V + tgt[n]]);
    }
    return total;
  };
  Vec xd = ToD(logits);
  std::vector<float> logp(N);
  TargetLogProbs(logp.data(), logits.data(), tgt.data(), N, V);
  std::vector<float> g = logits, losses(N);
  const double loss =
      SoftmaxCrossEntropyInPlace(g.data(), losses.data(), tgt.data(), w.data(), N, V, 0.25f);
  EXPECT_NEAR(loss, ref(xd), 1e-5 * std::abs(ref(xd)));
  for (int64_t n = 0; n < N; ++n) EXPECT_NEAR(-logp[n], tgt[n] < 0 ? 0.0 : losses[n], 1e-5);
  Vec fd = FdGrad(ref, xd);
  for (auto& v : fd) v *= 0.25;
  EXPECT_LE(RelErr(g, fd), 1e-5);
  for (int64_t j = 0; j < V; ++j) EXPECT_EQ(g[2 * V + j], 0.0f);  // no target: no gradient
}

TEST(ThreadPool, EveryIndexOnceAcrossRepeatedRuns) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 5, 1000}) {
      std::vector<int> hits(static_cast<size_t>(n), 0);
      for (int rep = 0; rep < 20; ++rep)
        pool.For(n, [&](int64_t b, int64_t e, int t) {
          EXPECT_GE(t, 0);
          EXPECT_LT(t, threads);
          for (int64_t i = b; i < e; ++i) ++hits[static_cast<size_t>(i)];
        });
      for (int h : hits) ASSERT_EQ(h, 20) << threads << " threads, n " << n;
    }
  }
}

TEST(ThreadPool, SpinningPoolAndEveryPartOnce) {
  for (int spin_us : {0, 200}) {
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads, std::chrono::microseconds(spin_us));
      std::vector<int> hits(static_cast<size_t>(threads), 0);
      for (int rep = 0; rep < 50; ++rep) {
        pool.ForEachPart([&](int part, int parts) {
          EXPECT_EQ(parts, threads);
          ++hits[static_cast<size_t>(part)];
        });
        std::vector<int> range(1000, 0);
        pool.For(1000, [&](int64_t b, int64_t e, int) {
          for (int64_t i = b; i < e; ++i) ++range[static_cast<size_t>(i)];
        });
        for (int h : range) ASSERT_EQ(h, 1) << threads << " threads, spin " << spin_us;
      }
      for (int h : hits) EXPECT_EQ(h, 50) << threads << " threads, spin " << spin_us;
    }
  }
}

TEST(Elementwise, SumSquaresAndAdd) {
  auto x = Randn(3001, 19);
  double want = 0;
  for (float v : x) want += static_cast<double>(v) * v;
  EXPECT_NEAR(SumSquares(x.data(), 3001), want, 1e-6 * want);
  std::vector<float> y(3001, 1.0f), z(3001);
  AddInPlace(y.data(), x.data(), 3001);
  Add(z.data(), x.data(), x.data(), 3001);
  Scale(z.data(), 0.5f, 3001);
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(y[i], 1.0f + x[i]);
    ASSERT_EQ(z[i], x[i]);
  }
}

}  // namespace
}  // namespace herd::kernels::cpu
