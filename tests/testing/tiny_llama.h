#pragma once
// A tiny random chat model for tests that need a real checkpoint: byte
// tokenizer vocabulary, GQA, saved as an HF directory by the worker's
// SaveModel (so it carries the tokenizer and generation config).
#include <string>

#include "common/status.h"
#include "workers/model/chat_format.h"
#include "workers/model/llama.h"
#include "workers/model/tokenizer.h"
#include "workers/runtime/task_io.h"

namespace herd::testing {

inline model::LlamaConfig TinyChatConfig() {
  model::LlamaConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.vocab_size = model::ByteTokenizer::vocab_size();
  c.max_position_embeddings = 512;
  c.bos_token_id = model::kBeginOfText;
  c.eos_token_id = model::kEotId;
  return c;
}

// Random weights from `seed`, written to dir.
inline Status SaveTinyChatModel(const std::string& dir, uint64_t seed) {
  HERD_ASSIGN_OR_RETURN(auto m, model::LlamaModel::Create(TinyChatConfig(), 1, 8));
  m->InitRandom(seed);
  auto ck = worker::SaveModel(*m, dir, model::ChatFormatter::Bytes(), /*source_dir=*/"", {});
  return ck.ok() ? Status::Ok() : ck.status();
}

}  // namespace herd::testing
