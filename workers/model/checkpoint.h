#pragma once
// HF checkpoint directories (what transformers' save_pretrained writes and
// from_pretrained / vLLM load):
//   config.json, generation_config.json,
//   model.safetensors  or  model-0000i-of-0000n.safetensors + model.safetensors.index.json,
//   tokenizer.json + tokenizer_config.json [+ chat_template.jinja] (when a tokenizer is given).
// The engine hands its parameters over as ParamViews, so this file never
// knows the engine's layout. See docs/checkpoints.md.
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "workers/model/config.h"
#include "workers/model/param_view.h"
#include "workers/model/safetensors.h"

namespace herd::model {

// An HF tensor name and its (PyTorch) shape.
struct TensorShape {
  std::string name;
  std::vector<int64_t> shape;
};

// Every tensor of a Llama checkpoint for this config, in HF
// named_parameters order: model.embed_tokens.weight (V, d); per layer i,
// model.layers.i.self_attn.{q (H*hd, d), k (Hkv*hd, d), v (Hkv*hd, d),
// o (d, H*hd)}_proj.weight, mlp.{gate (f, d), up (f, d), down (d, f)}_proj.weight,
// input_layernorm.weight (d), post_attention_layernorm.weight (d);
// model.norm.weight (d); then score.weight (1, d) for a reward model, else
// lm_head.weight (V, d) unless tied.
std::vector<TensorShape> LlamaTensorShapes(const LlamaConfig& c);

struct SaveOptions {
  // Split the weights into shards of at most this many bytes (a larger
  // tensor gets a shard of its own). Default: 0 (one model.safetensors).
  uint64_t max_shard_bytes = 0;
  // An existing dir is replaced atomically (renameat2 RENAME_EXCHANGE) when
  // true, refused with AlreadyExists when false. Default: false.
  bool overwrite = false;
  // Written verbatim as tokenizer.json / tokenizer_config.json when not
  // empty (see tokenizer.h: TokenizerJson, TokenizerConfigJson).
  // Default: empty (no tokenizer files).
  std::string tokenizer_json;
  std::string tokenizer_config_json;
  // Written verbatim as chat_template.jinja when not empty (transformers'
  // separate template file; it wins over tokenizer_config.json's).
  // Default: empty.
  std::string chat_template_jinja;
  // generation_config.json eos_token_id; chat models stop on <|eot_id|> as
  // well as <|end_of_text|>. Default: empty (config.eos_token_id alone).
  std::vector<int64_t> generation_eos_token_ids;
};

// Writes dir as an HF checkpoint with tensors stored as dtype (F32 or
// BF16; F16 also works). params must be exactly LlamaTensorShapes(config)
// (any order; names and shapes are checked). The directory is built under a
// temporary sibling name and renamed into place, so a crash never leaves a
// half-written checkpoint at dir.
Status SaveCheckpoint(const std::string& dir, const LlamaConfig& config,
                      const std::vector<ParamView>& params, DType dtype = DType::kF32,
                      const SaveOptions& options = {});

struct LoadOptions {
  // Tensors in the checkpoint that are not expected are an error unless
  // true (e.g. an lm_head.weight stored beside tied embeddings).
  // Default: false.
  bool allow_unexpected = false;
};

// Fills each expected view's buffer (fp32) from dir's safetensors, by name.
// Missing tensor, shape mismatch, a dtype other than F32/BF16/F16, or an
// unexpected extra tensor: an error naming the file and the tensor; all are
// checked before any buffer is written.
Status LoadCheckpointInto(const std::string& dir, const std::vector<ParamView>& expected,
                          const LoadOptions& options = {});

// dir/config.json.
Result<LlamaConfig> LoadCheckpointConfig(const std::string& dir);

}  // namespace herd::model
