// Loss-side cost of a training step at the small engine config's head:
// N = B*T = 8*256 rows, V = 32000. Prints ms per call and GB/s of logits
// touched (each loss reads the (N, V) logits and writes the gradient in
// place: 2 * N * V * 4 bytes). Not a test: figures only.
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "kernels/cpu/cross_entropy.h"
#include "workers/train/dpo.h"
#include "workers/train/losses.h"
#include "workers/train/row_packing.h"

namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double BestMs(int reps, F f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main() {
  using namespace herd;
  const int64_t B = 8, T = 256, V = 32000, N = B * T;
  std::mt19937_64 rng(1);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> logits(static_cast<size_t>(N * V)), work(logits.size());
  for (auto& x : logits) x = nd(rng);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(V - 1));

  // SFT-like batch: every position has a target, all trained.
  std::vector<int32_t> targets(N);
  for (auto& t : targets) t = tok(rng);
  std::vector<float> w(N, 1.0f);
  const double bytes = 2.0 * static_cast<double>(N) * V * 4;

  auto reset = [&] { std::copy(logits.begin(), logits.end(), work.begin()); };
  double ms_copy = BestMs(3, reset);
  double ms_ce = BestMs(3,
                        [&] {
                          reset();
                          (void)train::CrossEntropy(work.data(), N, V, targets, w, 0, work.data());
                        }) -
                 ms_copy;
  double ms_kernel = BestMs(3,
                            [&] {
                              reset();
                              kernels::cpu::SoftmaxCrossEntropyInPlace(
                                  work.data(), nullptr, targets.data(), w.data(), N, V, 1.0f / N);
                            }) -
                     ms_copy;

  // DPO batch: 8 rows, each two pairs of prompt 40 + chosen 40 + rejected 40.
  std::vector<train::DpoSample> samples;
  for (int k = 0; k < 16; ++k) {
    train::DpoSample s;
    s.pair_id = "p" + std::to_string(k);
    for (int i = 0; i < 40; ++i) s.prompt.push_back(tok(rng));
    for (int i = 0; i < 40; ++i) s.chosen.push_back(tok(rng));
    for (int i = 0; i < 40; ++i) s.rejected.push_back(tok(rng));
    s.chosen_formatting.assign(40, 0);
    s.rejected_formatting.assign(40, 0);
    s.chosen_formatting.back() = s.rejected_formatting.back() = 1;
    samples.push_back(s);
  }
  train::DpoBatch batch;
  const auto packed = train::PackDpo(samples, B, T, &batch);
  train::DpoWorkspace ws;
  std::vector<train::SequenceLogProb> ref(batch.pair_ids.size(), {-300.0, -310.0});
  int64_t response_rows = 0;
  for (auto f : batch.flags) response_rows += f != 0;
  double ms_dpo = BestMs(3,
                         [&] {
                           reset();
                           (void)train::DpoLoss(batch, work.data(), V, ref, {}, &ws, work.data());
                         }) -
                  ms_copy;

  std::printf("objectives bench: N = %lld rows (B=%lld, T=%lld), V = %lld\n",
              static_cast<long long>(N), static_cast<long long>(B), static_cast<long long>(T),
              static_cast<long long>(V));
  std::printf("  %-44s %9.1f ms  %6.1f GB/s\n", "train::CrossEntropy (fused, in place)", ms_ce,
              bytes / ms_ce / 1e6);
  std::printf("  %-44s %9.1f ms  %6.1f GB/s\n", "kernels::cpu::SoftmaxCrossEntropyInPlace",
              ms_kernel, bytes / ms_kernel / 1e6);
  std::printf("  %-44s %9.1f ms  (%lld pairs packed, %lld response rows of %lld)\n",
              "train::DpoLoss (+ backward, in place)", ms_dpo,
              static_cast<long long>(packed.ok() ? packed.value() : -1),
              static_cast<long long>(response_rows), static_cast<long long>(N));
  return 0;
}
