// bench_sample: rejection-sampling generation throughput (issue 5 §7).
// Small config (d=512, 8 layers, 8 heads, 4 KV heads, intermediate 1536,
// vocab 32000), random weights, no early stop (every sample runs
// max_new_tokens). K in {1, 16, 30} x prompts of 128 and 1024 tokens x 128
// new tokens, prompt sharing on vs off under the same KV budget: the budget
// holds all K samples of 4 prompts at once in the shared mode. Prints
// generated tokens/s, peak KV blocks in use, running batch (mean / peak),
// prefill share of the time, and single-sequence decode tokens/s.
//
// Usage: bench_sample [--prompts N] [--new T] [--k K] [--prompt-len P] [--quick]
//   defaults: 4 prompts, 128 new tokens, K in {1,16,30}, P in {128,1024};
//   --k / --prompt-len run one value only.
// Prints figures; never fails on time.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <ctime>
#include <string>
#include <vector>

#include "kernels/cpu/blas.h"
#include "workers/generate/generator.h"

using namespace herd;
using namespace herd::generate;

namespace {

struct Weights {
  std::vector<float> buf;
  std::vector<model::ParamView> views;
};

Weights RandomWeights(const model::LlamaConfig& c) {
  const int64_t d = c.hidden_size, f = c.intermediate_size, V = c.vocab_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> specs;
  specs.push_back({"model.embed_tokens.weight", {V, d}});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    specs.push_back({p + "input_layernorm.weight", {d}});
    specs.push_back({p + "self_attn.q_proj.weight", {c.q_dim(), d}});
    specs.push_back({p + "self_attn.k_proj.weight", {c.kv_dim(), d}});
    specs.push_back({p + "self_attn.v_proj.weight", {c.kv_dim(), d}});
    specs.push_back({p + "self_attn.o_proj.weight", {d, c.q_dim()}});
    specs.push_back({p + "post_attention_layernorm.weight", {d}});
    specs.push_back({p + "mlp.gate_proj.weight", {f, d}});
    specs.push_back({p + "mlp.up_proj.weight", {f, d}});
    specs.push_back({p + "mlp.down_proj.weight", {d, f}});
  }
  specs.push_back({"model.norm.weight", {d}});
  specs.push_back({"lm_head.weight", {V, d}});
  int64_t total = 0;
  for (auto& s : specs) {
    int64_t n = 1;
    for (auto x : s.second) n *= x;
    total += n;
  }
  Weights w;
  w.buf.resize(static_cast<size_t>(total));
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  int64_t off = 0;
  for (auto& s : specs) {
    model::ParamView v{s.first, s.second, w.buf.data() + off};
    const bool norm = s.second.size() == 1;
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.second.back()));
    for (int64_t i = 0; i < v.numel(); ++i) v.data[i] = norm ? 1.0f : scale * nd(rng);
    off += v.numel();
    w.views.push_back(v);
  }
  return w;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU seconds of this process (all threads). On a shared box wall time
// depends on everyone else's load; CPU time mostly does not (spin-waits of
// our pool and OpenBLAS's are included, so it is an upper bound on work).
double CpuNow() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Cell {
  double tok_s = 0, tok_cpu_s = 0;
  int32_t peak_blocks = 0, peak_running = 0;
  double mean_running = 0, prefill_share = 0, seconds = 0;
  int64_t prompt_blocks = 0;
};

Cell RunCell(const PagedLlama& m, bool share, int32_t K, int64_t P, int32_t new_tokens,
             int prompts, int64_t budget_blocks) {
  GeneratorOptions o;
  o.share_prompt = share;
  o.kv_budget_bytes = budget_blocks * KvCache::BytesPerBlock(m.CacheShape(o.block_size));
  o.max_batch = 256;
  auto g = Generator::Create(&m, o);
  if (!g.ok()) {
    std::fprintf(stderr, "%s\n", g.status().ToString().c_str());
    std::exit(1);
  }
  std::mt19937 rng(static_cast<uint32_t>(P * 7 + K));
  for (int p = 0; p < prompts; ++p) {
    GenerationRequest r;
    r.prompt.resize(static_cast<size_t>(P));
    for (auto& t : r.prompt) t = static_cast<int32_t>(rng() % 32000);
    r.num_samples = K;
    r.sampling.temperature = 1.0f;
    r.sampling.top_p = 0.9f;
    r.sampling.max_new_tokens = new_tokens;
    r.sampling.eot_id = -1;
    r.seed = static_cast<uint64_t>(p);
    auto id = (*g)->Submit(std::move(r));
    if (!id.ok()) {
      std::fprintf(stderr, "%s\n", id.status().ToString().c_str());
      std::exit(1);
    }
  }
  const double t0 = Now(), c0 = CpuNow();
  auto out = (*g)->Run();
  const double t1 = Now(), c1 = CpuNow();
  if (!out.ok()) {
    std::fprintf(stderr, "%s\n", out.status().ToString().c_str());
    std::exit(1);
  }
  const auto& st = (*g)->stats();
  Cell c;
  c.seconds = t1 - t0;
  c.tok_s = static_cast<double>(st.generated_tokens) / c.seconds;
  c.tok_cpu_s = static_cast<double>(st.generated_tokens) / (c1 - c0);
  c.peak_blocks = st.peak_blocks_used;
  c.peak_running = st.peak_running;
  c.mean_running = st.mean_running();
  c.prefill_share = st.prefill_seconds / c.seconds;
  c.prompt_blocks = (share ? 1 : K) * ((P + 15) / 16);
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  int prompts = 4;
  int32_t new_tokens = 128;
  bool quick = false;
  int32_t only_k = 0;
  int64_t only_p = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--prompts") && i + 1 < argc) prompts = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--new") && i + 1 < argc) new_tokens = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--k") && i + 1 < argc) only_k = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--prompt-len") && i + 1 < argc) only_p = std::atoll(argv[++i]);
  }
  kernels::cpu::SetBlasThreads(2);
  model::LlamaConfig c;
  c.hidden_size = 512;
  c.intermediate_size = 1536;
  c.num_hidden_layers = 8;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 64;
  c.vocab_size = 32000;
  c.max_position_embeddings = 4096;
  c.rope_theta = 500000.0f;
  Weights w = RandomWeights(c);
  auto m = PagedLlama::Create(c, w.views);
  if (!m.ok()) {
    std::fprintf(stderr, "%s\n", m.status().ToString().c_str());
    return 1;
  }
  const int64_t bpb = KvCache::BytesPerBlock(m->CacheShape(16));
  std::printf("bench_sample: d=512 L=8 H=8 Hkv=4 f=1536 V=32000, block 16 tokens = %lld KiB, "
              "%d prompts per cell, %d new tokens, temperature 1, top_p 0.9\n",
              static_cast<long long>(bpb / 1024), prompts, new_tokens);

  // Single-sequence decode: one prompt of 128, one sample, decode time only.
  {
    GeneratorOptions o;
    o.kv_budget_bytes = 64 * bpb;
    auto g = Generator::Create(&*m, o);
    GenerationRequest r;
    r.prompt.assign(128, 5);
    r.sampling.max_new_tokens = new_tokens;
    r.sampling.eot_id = -1;
    (void)(*g)->Submit(r);
    const double c0 = CpuNow();
    auto out = (*g)->Run();
    const double c1 = CpuNow();
    const auto& st = (*g)->stats();
    std::printf("single-sequence decode: %.1f tokens/s wall (%lld decode steps in %.3f s, sampling "
                "%.3f s); whole run incl. prefill %.1f tokens per CPU-second\n",
                static_cast<double>(st.decode_steps) / (st.decode_seconds + st.sample_seconds),
                static_cast<long long>(st.decode_steps), st.decode_seconds, st.sample_seconds,
                static_cast<double>(st.generated_tokens) / (c1 - c0));
  }

  std::printf("\n| K | prompt | sharing | budget blocks | tokens/s (wall) | tokens/CPU-s | peak blocks | "
              "running mean/peak | prompt KV blocks/prompt | prefill share | seconds | speed-up wall / CPU |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::vector<int32_t> Ks = {1, 16, 30};
  std::vector<int64_t> Ps = {128, 1024};
  if (quick) {
    Ks = {16};
    Ps = {128};
  }
  if (only_k) Ks = {only_k};
  if (only_p) Ps = {only_p};
  for (int64_t P : Ps)
    for (int32_t K : Ks) {
      // Budget: the shared mode holds all K samples of 4 prompts at once.
      const int64_t n = (P + new_tokens - 1 + 15) / 16;
      const int64_t pb = (P + 15) / 16;
      const int64_t shared_need = pb + static_cast<int64_t>(K) * (n - pb) + (P % 16 ? K - 1 : 0);
      const int64_t budget = 4 * shared_need;
      Cell on = RunCell(*m, true, K, P, new_tokens, prompts, budget);
      Cell off = RunCell(*m, false, K, P, new_tokens, prompts, budget);
      for (int s = 0; s < 2; ++s) {
        const Cell& x = s == 0 ? on : off;
        char speed[64] = "";
        if (s == 0)
          std::snprintf(speed, sizeof speed, "%.2fx / %.2fx", on.tok_s / off.tok_s,
                        on.tok_cpu_s / off.tok_cpu_s);
        std::printf("| %d | %lld | %s | %lld | %.1f | %.1f | %d | %.1f / %d | %lld | %.0f%% | %.2f | %s |\n",
                    K, static_cast<long long>(P), s == 0 ? "on" : "off",
                    static_cast<long long>(budget), x.tok_s, x.tok_cpu_s, x.peak_blocks,
                    x.mean_running, x.peak_running, static_cast<long long>(x.prompt_blocks),
                    100.0 * x.prefill_share, x.seconds, speed);
        std::fflush(stdout);
      }
    }
  return 0;
}
