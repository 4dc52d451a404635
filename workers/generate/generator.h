#pragma once
// The generation engine: a scheduler with continuous batching over a paged
// KV cache, prompt sharing across the K samples of a request, and
// admission only when every block a request may need can be reserved.
// Design: docs/generate.md.
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "common/status.h"
#include "kernels/cpu/thread_pool.h"
#include "workers/generate/kv_cache.h"
#include "workers/generate/paged_llama.h"
#include "workers/generate/sampler.h"

namespace herd::generate {

struct GeneratorOptions {
  int64_t block_size = 16;                 // tokens per KV block. Default: 16
  int64_t kv_budget_bytes = int64_t{256} << 20;  // KV pool size. Default: 256 MiB
  // true: a request's prompt is prefilled once and its blocks shared by all
  // K samples (copy-on-write of the partly filled last block). false: every
  // sample is its own request, prefilled separately into private blocks.
  bool share_prompt = true;                // Default: true
  int32_t max_batch = 256;                 // running sequences at most. Default: 256
  int threads = 2;                         // this engine's compute threads. Default: 2
};

// K samples of one prompt.
struct GenerationRequest {
  std::vector<int32_t> prompt;   // token ids, non-empty
  int32_t num_samples = 1;       // K >= 1
  SamplingParams sampling;
  uint64_t seed = 0;             // sample i draws from stream StreamKey(seed, i)
};

enum class FinishReason { kStop, kLength };

struct GeneratedSample {
  int64_t request = 0;            // Submit() order, from 0
  int32_t idx = 0;                // sample index within the request
  std::vector<int32_t> tokens;    // generated ids, the stop token included when hit
  std::vector<float> logprobs;    // (tokens) log p(token) under the raw model distribution
  double logprob_sum = 0.0;
  FinishReason finish = FinishReason::kLength;
};

struct GeneratorStats {
  int64_t decode_steps = 0;
  int64_t generated_tokens = 0;   // all sampled tokens, the first (from prefill logits) included
  int64_t prefills = 0;
  int64_t prefill_tokens = 0;
  int32_t peak_blocks_used = 0;
  int32_t peak_running = 0;
  int64_t running_sum = 0;        // sum over decode steps of the batch size
  double prefill_seconds = 0, decode_seconds = 0, sample_seconds = 0;
  double mean_running() const {
    return decode_steps ? static_cast<double>(running_sum) / static_cast<double>(decode_steps) : 0.0;
  }
};

class Generator {
 public:
  // The model must outlive the generator.
  static Result<std::unique_ptr<Generator>> Create(const PagedLlama* model,
                                                   const GeneratorOptions& options);

  // Queues a request and returns its id. Refused (nothing queued) when it
  // could never be admitted: ResourceExhausted when its blocks exceed the
  // whole cache, InvalidArgument for bad fields (each naming the value).
  Result<int64_t> Submit(GenerationRequest request);

  // Runs every queued request to completion; samples ordered by
  // (request, idx). Afterwards the pool is full again and nothing is reserved.
  // Errors here are internal (inputs were checked by Submit); a generator
  // that returned one should be discarded.
  Result<std::vector<GeneratedSample>> Run();

  // Requests submitted and not yet returned by Run().
  int64_t queued() const { return static_cast<int64_t>(requests_.size()); }
  // Forgets every queued request (none may be running: between Run calls).
  void ClearQueued();

  // Blocks the admission rule reserves for a request (docs/generate.md).
  int64_t BlocksNeeded(int64_t prompt_len, int32_t num_samples, int32_t max_new_tokens) const;

  const KvCache& cache() const { return cache_; }
  const GeneratorStats& stats() const { return stats_; }
  void ResetStats() { stats_ = GeneratorStats(); }
  const GeneratorOptions& options() const { return opt_; }

 private:
  struct Group;
  struct Seq {
    int64_t request = 0;
    int32_t idx = 0;
    uint64_t key = 0;            // RNG stream
    SeqBlocks kv;
    int32_t next_token = 0;      // sampled, to be fed at position kv.len
    bool done = false;
    Group* group = nullptr;
  };
  struct Group {
    int64_t request = 0;
    int64_t reserved_left = 0;   // blocks this group may still allocate
    int64_t max_blocks = 0;      // per sequence: ceil((P + max_new - 1) / block_size)
    int32_t live = 0;            // unfinished sequences
  };
  struct Unit {                  // what admission takes in one piece
    int64_t request;
    int32_t idx_begin, idx_end;
  };

  Generator(const PagedLlama* model, const GeneratorOptions& options, KvCache cache);
  int64_t UnitNeed(const Unit& u) const;
  Status Admit(const Unit& u);
  // Records a sampled token; finishes the sequence when it stops.
  Status Accept(Seq& s, const TokenDraw& d);
  Status Finish(Seq& s);
  Status DecodeStep();

  const PagedLlama* model_;
  GeneratorOptions opt_;
  KvCache cache_;
  kernels::cpu::ThreadPool pool_;
  std::vector<Sampler> samplers_;   // one per thread
  ForwardWorkspace ws_;

  std::vector<GenerationRequest> requests_;
  std::vector<std::vector<GeneratedSample>> results_;  // [request][idx]
  std::deque<Unit> pending_;
  std::vector<std::unique_ptr<Group>> groups_;
  std::vector<std::unique_ptr<Seq>> running_;

  // Per-step buffers, sized once for max_batch (block ids grow to the
  // largest step seen, then stay).
  std::vector<float> logits_;          // (max_batch, V)
  std::vector<float> prefill_logits_;  // (V)
  std::vector<int32_t> tok_, pos_, slot_block_, slot_row_, table_begin_, kv_len_, block_ids_;
  std::vector<TokenDraw> draws_;       // (max_batch)
  GeneratorStats stats_;
};

}  // namespace herd::generate
