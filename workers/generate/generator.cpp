#include "workers/generate/generator.h"

#include <algorithm>
#include <string>

namespace herd::generate {
namespace {
using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
// The pool's workers spin this long after a call before sleeping: decode
// issues calls back to back, and a condition-variable wake costs tens of µs.
constexpr auto kDecodeSpin = std::chrono::microseconds(200);
}  // namespace

Result<std::unique_ptr<Generator>> Generator::Create(const PagedLlama* model,
                                                     const GeneratorOptions& o) {
  if (model == nullptr) return Status::InvalidArgument("Generator: model is null");
  if (o.max_batch < 1) return Status::InvalidArgument("GeneratorOptions.max_batch must be >= 1");
  if (o.threads < 1) return Status::InvalidArgument("GeneratorOptions.threads must be >= 1");
  HERD_ASSIGN_OR_RETURN(KvCache cache,
                        KvCache::Create(model->CacheShape(o.block_size), o.kv_budget_bytes));
  return std::unique_ptr<Generator>(new Generator(model, o, std::move(cache)));
}

Generator::Generator(const PagedLlama* model, const GeneratorOptions& o, KvCache cache)
    : model_(model), opt_(o), cache_(std::move(cache)), pool_(o.threads, kDecodeSpin) {
  const int64_t V = model_->config().vocab_size;
  for (int t = 0; t < pool_.size(); ++t) samplers_.emplace_back(V);
  model_->PrepareWorkspace(ws_, o.max_batch);
  const auto mb = static_cast<size_t>(o.max_batch);
  logits_.resize(mb * static_cast<size_t>(V));
  prefill_logits_.resize(static_cast<size_t>(V));
  tok_.resize(mb);
  pos_.resize(mb);
  slot_block_.resize(mb);
  slot_row_.resize(mb);
  table_begin_.resize(mb);
  kv_len_.resize(mb);
  draws_.resize(mb);
}

int64_t Generator::BlocksNeeded(int64_t P, int32_t K, int32_t M) const {
  const int64_t bs = cache_.block_size();
  const int64_t n = CeilDiv(P + M - 1, bs);     // one sequence's table at its longest
  if (!opt_.share_prompt) return static_cast<int64_t>(K) * n;
  // Shared: the prompt's ceil(P/bs) blocks once; each sample's blocks past
  // them; plus K-1 copies of a partly filled last prompt block (the last
  // sample to write into it finds refcount 1 and takes it over).
  const int64_t prompt = CeilDiv(P, bs);
  const int64_t cow = (P % bs != 0) ? K - 1 : 0;
  return prompt + static_cast<int64_t>(K) * (n - prompt) + cow;
}

int64_t Generator::UnitNeed(const Unit& u) const {
  const auto& r = requests_[static_cast<size_t>(u.request)];
  return BlocksNeeded(static_cast<int64_t>(r.prompt.size()), u.idx_end - u.idx_begin,
                      r.sampling.max_new_tokens);
}

Result<int64_t> Generator::Submit(GenerationRequest r) {
  const auto& cfg = model_->config();
  const int64_t id = static_cast<int64_t>(requests_.size());
  const std::string who = "request " + std::to_string(id);
  if (r.prompt.empty()) return Status::InvalidArgument(who + ": prompt is empty");
  for (size_t i = 0; i < r.prompt.size(); ++i)
    if (r.prompt[i] < 0 || r.prompt[i] >= cfg.vocab_size)
      return Status::InvalidArgument(who + ": prompt[" + std::to_string(i) + "] = " +
                                     std::to_string(r.prompt[i]) + " outside [0, vocab_size " +
                                     std::to_string(cfg.vocab_size) + ")");
  if (r.num_samples < 1)
    return Status::InvalidArgument(who + ": num_samples must be >= 1, got " +
                                   std::to_string(r.num_samples));
  HERD_RETURN_IF_ERROR(ValidateSamplingParams(r.sampling, cfg.vocab_size).WithContext(who));
  const int64_t P = static_cast<int64_t>(r.prompt.size());
  const int64_t longest = P + r.sampling.max_new_tokens - 1;
  if (longest > cfg.max_position_embeddings)
    return Status::InvalidArgument(who + ": prompt (" + std::to_string(P) +
                                   ") + max_new_tokens - 1 = " + std::to_string(longest) +
                                   " exceeds max_position_embeddings " +
                                   std::to_string(cfg.max_position_embeddings));
  const int32_t unit_k = opt_.share_prompt ? r.num_samples : 1;
  if (unit_k > opt_.max_batch)
    return Status::InvalidArgument(who + ": num_samples " + std::to_string(r.num_samples) +
                                   " exceeds max_batch " + std::to_string(opt_.max_batch) +
                                   " (all samples of a shared prompt run together)");
  const int64_t need = BlocksNeeded(P, unit_k, r.sampling.max_new_tokens);
  if (need > cache_.num_blocks())
    return Status::ResourceExhausted(
        who + ": needs " + std::to_string(need) + " KV blocks (prompt " + std::to_string(P) +
        " tokens, " + std::to_string(unit_k) + " sequence(s) of up to " +
        std::to_string(r.sampling.max_new_tokens) + " new tokens, block size " +
        std::to_string(cache_.block_size()) + ") but the whole cache holds " +
        std::to_string(cache_.num_blocks()) + " blocks (" +
        std::to_string(opt_.kv_budget_bytes) + " bytes); raise kv_budget_bytes or lower "
        "num_samples / max_new_tokens");
  if (opt_.share_prompt) {
    pending_.push_back(Unit{id, 0, r.num_samples});
  } else {
    for (int32_t i = 0; i < r.num_samples; ++i) pending_.push_back(Unit{id, i, i + 1});
  }
  results_.emplace_back(static_cast<size_t>(r.num_samples));
  requests_.push_back(std::move(r));
  return id;
}

void Generator::ClearQueued() {
  pending_.clear();
  results_.clear();
  requests_.clear();
}

Status Generator::Admit(const Unit& u) {
  const auto& r = requests_[static_cast<size_t>(u.request)];
  const int64_t P = static_cast<int64_t>(r.prompt.size());
  const int64_t bs = cache_.block_size();
  auto group = std::make_unique<Group>();
  group->request = u.request;
  group->reserved_left = UnitNeed(u);
  group->max_blocks = CeilDiv(P + r.sampling.max_new_tokens - 1, bs);
  group->live = u.idx_end - u.idx_begin;

  // Prefill once into the group's first blocks.
  const auto t0 = Clock::now();
  SeqBlocks prompt;
  prompt.blocks.reserve(static_cast<size_t>(group->max_blocks));
  HERD_ASSIGN_OR_RETURN(int32_t got, cache_.Grow(prompt, P));
  group->reserved_left -= got;
  HERD_RETURN_IF_ERROR(model_->Prefill(r.prompt.data(), P, prompt, cache_, prefill_logits_.data(),
                                       ws_, pool_));
  stats_.prefills += 1;
  stats_.prefill_tokens += P;
  stats_.prefill_seconds += Seconds(t0, Clock::now());

  Group* g = group.get();
  groups_.push_back(std::move(group));
  // Fork every sample first and drop the prompt's own references, so the
  // refcounts Accept/Finish see are the samples' alone.
  std::vector<std::unique_ptr<Seq>> seqs;
  seqs.reserve(static_cast<size_t>(u.idx_end - u.idx_begin));
  for (int32_t i = u.idx_begin; i < u.idx_end; ++i) {
    auto s = std::make_unique<Seq>();
    s->request = u.request;
    s->idx = i;
    s->key = StreamKey(r.seed, static_cast<uint64_t>(i));
    s->kv = cache_.Fork(prompt);
    s->kv.blocks.reserve(static_cast<size_t>(g->max_blocks));
    s->group = g;
    auto& out = results_[static_cast<size_t>(u.request)][static_cast<size_t>(i)];
    out.request = u.request;
    out.idx = i;
    out.tokens.reserve(static_cast<size_t>(r.sampling.max_new_tokens));
    out.logprobs.reserve(static_cast<size_t>(r.sampling.max_new_tokens));
    seqs.push_back(std::move(s));
  }
  HERD_RETURN_IF_ERROR(cache_.Free(prompt));
  for (auto& s : seqs) {
    // Token 0 of every sample comes from the one set of prompt logits.
    const TokenDraw d =
        samplers_[0].Sample(prefill_logits_.data(), r.sampling, UniformAt(s->key, 0));
    HERD_RETURN_IF_ERROR(Accept(*s, d));
    if (!s->done) running_.push_back(std::move(s));
  }
  return Status::Ok();
}

Status Generator::Accept(Seq& s, const TokenDraw& d) {
  const auto& r = requests_[static_cast<size_t>(s.request)];
  auto& out = results_[static_cast<size_t>(s.request)][static_cast<size_t>(s.idx)];
  out.tokens.push_back(d.token);
  out.logprobs.push_back(d.logprob);
  out.logprob_sum += d.logprob;
  ++stats_.generated_tokens;
  if (d.token == r.sampling.eot_id) {
    out.finish = FinishReason::kStop;
    return Finish(s);
  }
  if (static_cast<int32_t>(out.tokens.size()) >= r.sampling.max_new_tokens) {
    out.finish = FinishReason::kLength;
    return Finish(s);
  }
  s.next_token = d.token;
  return Status::Ok();
}

Status Generator::Finish(Seq& s) {
  // Return the reservation this sequence will not use: the blocks it would
  // still have grown into, plus the copy-on-write it would still have made
  // of a shared, partly filled last block.
  const int64_t bs = cache_.block_size();
  int64_t left = s.group->max_blocks - static_cast<int64_t>(s.kv.blocks.size());
  if (s.kv.len % bs != 0 && cache_.blocks().refcount(s.kv.blocks.back()) > 1) left += 1;
  if (left < 0 || left > s.group->reserved_left)
    return Status::Internal("generator: reservation accounting broke for request " +
                            std::to_string(s.request));
  HERD_RETURN_IF_ERROR(cache_.blocks().Unreserve(left));
  s.group->reserved_left -= left;
  HERD_RETURN_IF_ERROR(cache_.Free(s.kv));
  s.done = true;
  if (--s.group->live == 0 && s.group->reserved_left != 0)
    return Status::Internal("generator: request " + std::to_string(s.request) + " ended with " +
                            std::to_string(s.group->reserved_left) + " blocks still reserved");
  return Status::Ok();
}

Status Generator::DecodeStep() {
  const int64_t B = static_cast<int64_t>(running_.size());
  const int64_t V = model_->config().vocab_size;
  const int64_t bs = cache_.block_size();
  const auto t0 = Clock::now();
  size_t nb = 0;
  for (int64_t b = 0; b < B; ++b) {
    Seq& s = *running_[static_cast<size_t>(b)];
    int32_t allocated = 0;
    HERD_RETURN_IF_ERROR(cache_.AppendSlot(s.kv, &allocated));
    s.group->reserved_left -= allocated;
    if (s.group->reserved_left < 0)
      return Status::Internal("generator: request " + std::to_string(s.request) +
                              " allocated past its reservation");
    const int32_t p = s.kv.len - 1;
    tok_[static_cast<size_t>(b)] = s.next_token;
    pos_[static_cast<size_t>(b)] = p;
    slot_block_[static_cast<size_t>(b)] = s.kv.blocks.back();
    slot_row_[static_cast<size_t>(b)] = static_cast<int32_t>(p % bs);
    kv_len_[static_cast<size_t>(b)] = s.kv.len;
    table_begin_[static_cast<size_t>(b)] = static_cast<int32_t>(nb);
    if (block_ids_.size() < nb + s.kv.blocks.size()) block_ids_.resize(2 * (nb + s.kv.blocks.size()));
    std::copy(s.kv.blocks.begin(), s.kv.blocks.end(), block_ids_.begin() + static_cast<int64_t>(nb));
    nb += s.kv.blocks.size();
  }
  stats_.peak_blocks_used = std::max(stats_.peak_blocks_used, cache_.blocks().num_used());
  DecodeBatch batch;
  batch.B = B;
  batch.tokens = tok_.data();
  batch.positions = pos_.data();
  batch.slot_block = slot_block_.data();
  batch.slot_row = slot_row_.data();
  batch.queries.n = B;
  batch.queries.table_begin = table_begin_.data();
  batch.queries.kv_len = kv_len_.data();
  batch.queries.block_ids = block_ids_.data();
  HERD_RETURN_IF_ERROR(model_->Decode(batch, cache_, logits_.data(), ws_, pool_));
  const auto t1 = Clock::now();

  // Sampling, rows split across the threads; each row draws from its own
  // stream at counter = tokens it has so far.
  auto sample = [&](int part, int parts) {
    for (int64_t b = B * part / parts; b < B * (part + 1) / parts; ++b) {
      const Seq& s = *running_[static_cast<size_t>(b)];
      const auto& r = requests_[static_cast<size_t>(s.request)];
      const auto t = results_[static_cast<size_t>(s.request)][static_cast<size_t>(s.idx)].tokens.size();
      draws_[static_cast<size_t>(b)] = samplers_[static_cast<size_t>(part)].Sample(
          logits_.data() + b * V, r.sampling, UniformAt(s.key, t));
    }
  };
  pool_.ForEachPart(sample);
  for (int64_t b = 0; b < B; ++b)
    HERD_RETURN_IF_ERROR(Accept(*running_[static_cast<size_t>(b)], draws_[static_cast<size_t>(b)]));
  // Finished sequences leave the batch (order of the rest kept).
  running_.erase(std::remove_if(running_.begin(), running_.end(),
                                [](const std::unique_ptr<Seq>& s) { return s->done; }),
                 running_.end());
  const auto t2 = Clock::now();
  stats_.decode_steps += 1;
  stats_.running_sum += B;
  stats_.peak_running = std::max(stats_.peak_running, static_cast<int32_t>(B));
  stats_.decode_seconds += Seconds(t0, t1);
  stats_.sample_seconds += Seconds(t1, t2);
  return Status::Ok();
}

Result<std::vector<GeneratedSample>> Generator::Run() {
  while (!pending_.empty() || !running_.empty()) {
    // Admission, first come first served: the head of the queue joins when
    // its whole reservation fits (and the batch has room for its samples).
    int admitted = 0;
    while (!pending_.empty()) {
      const Unit u = pending_.front();
      const int32_t k = u.idx_end - u.idx_begin;
      if (static_cast<int64_t>(running_.size()) + k > opt_.max_batch) break;
      if (!cache_.blocks().Reserve(UnitNeed(u)).ok()) break;
      pending_.pop_front();
      HERD_RETURN_IF_ERROR(Admit(u));
      ++admitted;
      stats_.peak_blocks_used = std::max(stats_.peak_blocks_used, cache_.blocks().num_used());
    }
    groups_.erase(std::remove_if(groups_.begin(), groups_.end(),
                                 [](const std::unique_ptr<Group>& g) { return g->live == 0; }),
                  groups_.end());
    if (running_.empty()) {
      // Everything admitted may have finished at once (eot or M = 1); with
      // nothing running and nothing admitted, the head can never fit:
      // report it rather than spin.
      if (!pending_.empty() && admitted == 0)
        return Status::Internal("generator: nothing running and request " +
                                std::to_string(pending_.front().request) + " cannot be admitted (" +
                                std::to_string(cache_.blocks().num_free()) + " blocks free, " +
                                std::to_string(cache_.blocks().reserved()) + " reserved)");
      continue;
    }
    HERD_RETURN_IF_ERROR(DecodeStep());
  }
  groups_.clear();
  std::vector<GeneratedSample> out;
  for (auto& per : results_)
    for (auto& s : per) out.push_back(std::move(s));
  results_.clear();
  requests_.clear();
  return out;
}

}  // namespace herd::generate
