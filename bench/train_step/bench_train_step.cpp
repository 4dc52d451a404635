// Training-step throughput of the CPU engine: forward + cross-entropy +
// backward + grad clip + AdamW on full rows (one causal segment per row),
// for a tiny and a small Llama config. Prints tokens/s, achieved GFLOP/s and
// the OpenBLAS sgemm rate measured in this process at the model's own matmul
// shapes, with the ratio, and peak RSS. Figures only; nothing passes or fails.
//
// FLOPs per trained token (forward + backward = 3x forward):
//   6 * N_mm + 6 * L * T * H*hd
// N_mm = matmul parameters: L * (d*(H+2Hkv)*hd + H*hd*d + 3*d*f) + V*d (LM
// head; the embedding lookup does no FLOPs). The attention term counts
// causal QK^T and PV (T/2 keys per query on average, 2 FLOPs per MAC).
//
// Usage: bench_train_step [tiny|small|all] [steps]   (default: all, 3 steps)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/thread_pool.h"
#include "workers/model/llama.h"
#include "workers/train/adamw.h"
#include "workers/train/grad_clip.h"

namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct BenchConfig {
  const char* name;
  herd::model::LlamaConfig c;
  int64_t B, T;
};

BenchConfig Tiny() {
  herd::model::LlamaConfig c;
  c.hidden_size = 128;
  c.intermediate_size = 384;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.vocab_size = 512;
  c.rope_theta = 500000.0f;
  return {"tiny (d128 L4 H4 Hkv2 f384 V512, 8x128)", c, 8, 128};
}

BenchConfig Small() {
  herd::model::LlamaConfig c;
  c.hidden_size = 512;
  c.intermediate_size = 1536;
  c.num_hidden_layers = 8;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.vocab_size = 32000;
  c.rope_theta = 500000.0f;
  return {"small (d512 L8 H8 Hkv4 f1536 V32000, 8x256)", c, 8, 256};
}

struct Shape {
  int64_t M, N, K;
  bool ta, tb;
};

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// The model's linear-layer matmuls (forward, dX, dW of every projection
// and the LM head), each weighted by how often a step runs it; buffers are
// allocated once. RunOnce() times one pass over all shapes.
class SgemmShapes {
 public:
  SgemmShapes(const herd::model::LlamaConfig& c, int64_t tokens) {
    const int64_t d = c.hidden_size, f = c.intermediate_size, V = c.vocab_size,
                  L = c.num_hidden_layers;
    const int64_t qd = c.q_dim(), qkv = qd + 2 * c.kv_dim();
    struct Lin {
      int64_t out, in, times;
    };
    const Lin lins[] = {{qkv, d, L}, {d, qd, L}, {2 * f, d, L}, {d, f, L}, {V, d, 1}};
    size_t a = 0, b = 0, cc = 0;
    for (const Lin& l : lins) {
      const Shape sh[] = {{tokens, l.out, l.in, false, true},   // Y = X W^T
                          {tokens, l.in, l.out, false, false},  // dX = dY W
                          {l.out, l.in, tokens, true, false}};  // dW = dY^T X
      for (const Shape& s : sh) {
        shapes_.push_back({s, l.times});
        a = std::max(a, static_cast<size_t>(s.M * s.K));
        b = std::max(b, static_cast<size_t>(s.K * s.N));
        cc = std::max(cc, static_cast<size_t>(s.M * s.N));
        flops_ += 2.0 * s.M * s.N * s.K * l.times;
      }
    }
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1, 1);
    A_.resize(a);
    B_.resize(b);
    C_.resize(cc);
    for (auto& x : A_) x = u(rng);
    for (auto& x : B_) x = u(rng);
  }
  // Wall seconds for one step's worth of these matmuls; *cpu gets the
  // process CPU seconds they took.
  double RunOnce(double* cpu = nullptr) {
    double secs = 0, cpu_secs = 0;
    for (const auto& [s, times] : shapes_) {
      const double c0 = CpuSeconds();
      auto t0 = Clock::now();
      herd::kernels::cpu::Sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A_.data(), B_.data(), 0.0f,
                                C_.data());
      secs += Seconds(t0, Clock::now()) * static_cast<double>(times);
      cpu_secs += (CpuSeconds() - c0) * static_cast<double>(times);
    }
    if (cpu) *cpu = cpu_secs;
    return secs;
  }
  double flops() const { return flops_; }

 private:
  std::vector<std::pair<Shape, int64_t>> shapes_;
  std::vector<float> A_, B_, C_;
  double flops_ = 0;
};

// Seconds of the attention op alone (forward + backward, all L layers) for
// full causal rows, on a pool like the model's, so the step's non-sgemm
// share can be attributed.
double AttentionSeconds(const herd::model::LlamaConfig& c, int64_t B, int64_t T, int threads) {
  namespace k = herd::kernels::cpu;
  const int64_t hd = c.head_dim, H = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const int64_t ld = (H + 2 * Hkv) * hd, N = B * T;
  const k::AttentionDims d{B, T, H, Hkv, hd, ld, ld, H * hd};
  std::vector<float> qkv(N * ld), dqkv(N * ld), out(N * H * hd), probs(B * H * T * T),
      scratch(k::AttentionScratchFloats(d, threads));
  k::ThreadPool pool(threads);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (auto& x : qkv) x = nd(rng);
  std::vector<int32_t> seg(N, 0), par(N, -1), ks(N);
  k::AttentionKeyStart(ks.data(), seg.data(), par.data(), B, T);
  auto run = [&] {
    k::AttentionForward(out.data(), probs.data(), qkv.data(), qkv.data() + H * hd,
                        qkv.data() + (H + Hkv) * hd, seg.data(), par.data(), ks.data(), d, &pool);
    k::AttentionBackward(dqkv.data(), dqkv.data() + H * hd, dqkv.data() + (H + Hkv) * hd,
                         scratch.data(), out.data(), probs.data(), qkv.data(), qkv.data() + H * hd,
                         qkv.data() + (H + Hkv) * hd, ks.data(), d, &pool);
  };
  run();
  auto t0 = Clock::now();
  run();
  return Seconds(t0, Clock::now()) * c.num_hidden_layers;
}

long PeakRssMiB() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

void Run(const BenchConfig& bc, int steps, int threads) {
  using herd::model::LlamaModel;
  auto mr = LlamaModel::Create(bc.c, bc.B, bc.T, threads);
  if (!mr.ok()) {
    std::printf("%s: %s\n", bc.name, mr.status().ToString().c_str());
    return;
  }
  LlamaModel& m = **mr;
  m.InitRandom(1);
  const auto& c = m.config();
  herd::model::PackedBatch b;
  b.Resize(bc.B, bc.T);
  std::mt19937 rng(2);
  for (int64_t i = 0; i < b.size(); ++i) {
    b.tokens[i] = static_cast<int32_t>(rng() % c.vocab_size);
    b.positions[i] = static_cast<int32_t>(i % bc.T);
    b.segments[i] = 0;
    b.targets[i] = static_cast<int32_t>(rng() % c.vocab_size);
    b.loss_weights[i] = 1.0f;
  }
  herd::train::AdamW opt(m.num_params(), herd::train::AdamWOptions{}, m.layout().NoDecayRanges());
  const int64_t N = b.size();
  double t_fwd = 0, t_loss = 0, t_bwd = 0, t_opt = 0, t_sgemm = 0;
  long rss_model = 0;
  std::unique_ptr<SgemmShapes> ref;
  // Steps alternate with one pass of the reference sgemms, so both see the
  // same machine load (other processes share these cores). Step -1 warms up.
  double cpu_steps = 0, cpu_sgemm = 0;
  for (int s = -1; s < steps; ++s) {
    const double c0 = CpuSeconds();
    auto t0 = Clock::now();
    m.ZeroGrad();
    if (!m.Forward(b).ok()) return;
    auto t1 = Clock::now();
    herd::kernels::cpu::SoftmaxCrossEntropyInPlace(m.logits(), nullptr, b.targets.data(),
                                                   b.loss_weights.data(), N, c.vocab_size,
                                                   1.0f / static_cast<float>(N));
    auto t2 = Clock::now();
    if (!m.Backward(m.logits()).ok()) return;
    auto t3 = Clock::now();
    herd::train::ClipGradNorm(m.grads(), m.num_params(), 1.0);
    opt.Step(m.params(), m.grads(), 1e-4f);
    auto t4 = Clock::now();
    if (s >= 0) cpu_steps += CpuSeconds() - c0;
    if (s >= 0) {
      t_fwd += Seconds(t0, t1);
      t_loss += Seconds(t1, t2);
      t_bwd += Seconds(t2, t3);
      t_opt += Seconds(t3, t4);
    } else {
      rss_model = PeakRssMiB();  // before the reference buffers exist
      ref = std::make_unique<SgemmShapes>(c, N);
      ref->RunOnce();
    }
    if (s >= 0) {
      double cpu = 0;
      t_sgemm += ref->RunOnce(&cpu);
      cpu_sgemm += cpu;
    }
  }
  const double step = (t_fwd + t_loss + t_bwd + t_opt) / steps;
  const int64_t L = c.num_hidden_layers, d = c.hidden_size, f = c.intermediate_size;
  const int64_t qd = c.q_dim(), qkv = qd + 2 * c.kv_dim();
  const double n_mm = static_cast<double>(L) * (d * qkv + qd * d + 3 * d * f) +
                      static_cast<double>(c.vocab_size) * d;
  const double flop_per_token = 6.0 * n_mm + 6.0 * L * bc.T * qd;
  const double gflops = flop_per_token * N / step / 1e9;
  const double sgemm_secs = t_sgemm / steps;
  const double sgemm = ref->flops() / sgemm_secs / 1e9;
  const double attn_secs = AttentionSeconds(c, bc.B, bc.T, threads);
  std::printf("%s\n", bc.name);
  std::printf("  params %.2fM (matmul %.2fM), FLOP/token = 6*N_mm + 6*L*T*H*hd = %.3g\n",
              m.num_params() / 1e6, n_mm / 1e6, flop_per_token);
  std::printf("  step %.1f ms  (fwd %.1f, loss %.1f, bwd %.1f, clip+adamw %.1f) over %d steps\n",
              step * 1e3, t_fwd / steps * 1e3, t_loss / steps * 1e3, t_bwd / steps * 1e3,
              t_opt / steps * 1e3, steps);
  // Per CPU-second rates are less sensitive to other processes time-slicing
  // the cores (but count OpenBLAS threads spinning while they wait).
  std::printf(
      "  process CPU time per step %.1f ms (%.2f cores busy); per CPU-second: step %.1f "
      "GFLOP, sgemm %.1f GFLOP, ratio %.2f\n",
      cpu_steps / steps * 1e3, cpu_steps / steps / step,
      flop_per_token * N / (cpu_steps / steps) / 1e9, ref->flops() / (cpu_sgemm / steps) / 1e9,
      (flop_per_token * N / (cpu_steps / steps)) / (ref->flops() / (cpu_sgemm / steps)));
  std::printf("  %.0f tokens/s, %.1f GFLOP/s; sgemm at model shapes %.1f GFLOP/s; ratio %.2f\n",
              N / step, gflops, sgemm, gflops / sgemm);
  std::printf(
      "  of a step: projection/LM-head sgemms at that rate %.1f ms, attention op "
      "(fwd+bwd, all layers) %.1f ms, rest %.1f ms\n",
      sgemm_secs * 1e3, attn_secs * 1e3, (step - sgemm_secs - attn_secs) * 1e3);
  std::printf(
      "  peak RSS %ld MiB (model, optimizer and activations, before the sgemm reference buffers)\n",
      rss_model);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "all";
  const int steps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  const char* th = std::getenv("OPENBLAS_NUM_THREADS");
  // The model's attention pool gets as many threads as OpenBLAS.
  const int threads = herd::kernels::cpu::SetBlasThreads(0);
  std::printf("bench_train_step: OpenBLAS and attention threads %d (OPENBLAS_NUM_THREADS=%s)\n",
              threads, th ? th : "unset");
  if (which == "tiny" || which == "all") Run(Tiny(), steps * 5, threads);
  if (which == "small" || which == "all") Run(Small(), steps, threads);
  return 0;
}
