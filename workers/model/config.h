#pragma once
// Llama-architecture model configuration, as in an HF LlamaForCausalLM
// config.json. Parsing and writing live in config.cpp.
#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace herd::model {

// rope_scaling of type "llama3" (Llama 3.1): frequencies below
// low_freq_factor/high_freq_factor wavelength bands are divided by factor,
// with a smooth ramp between the bands.
struct RopeScaling {
  float factor = 8.0f;                           // Default: 8 (Llama 3.1)
  float low_freq_factor = 1.0f;                  // Default: 1
  float high_freq_factor = 4.0f;                 // Default: 4
  int64_t original_max_position_embeddings = 8192;  // Default: 8192
};

struct LlamaConfig {
  int64_t hidden_size = 0;             // d
  int64_t intermediate_size = 0;       // f (SwiGLU width)
  int64_t num_hidden_layers = 0;       // L
  int64_t num_attention_heads = 0;     // H
  int64_t num_key_value_heads = 0;     // Hkv; H % Hkv == 0 (GQA). Default: H
  int64_t head_dim = 0;                // hd. Default: d / H
  float rms_norm_eps = 1e-5f;          // Default: 1e-5
  float rope_theta = 10000.0f;         // Default: 10000 (Llama 3: 500000)
  std::optional<RopeScaling> rope_scaling;  // Default: none
  int64_t vocab_size = 0;              // V
  int64_t max_position_embeddings = 2048;   // Default: 2048
  bool tie_word_embeddings = false;    // Default: false
  int64_t bos_token_id = 1;            // Default: 1 (HF LlamaConfig default)
  int64_t eos_token_id = 2;            // Default: 2; the first when a list is given
  // Reward models (LlamaForSequenceClassification, num_labels 1) carry a
  // scalar head `score.weight` (1, d) instead of lm_head.
  bool is_reward_model = false;        // Default: false

  int64_t q_dim() const { return num_attention_heads * head_dim; }    // H*hd
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }   // Hkv*hd
};

// Parses an HF config.json text. A missing required field or an unsupported
// value (e.g. rope_scaling type other than "llama3", hidden_act other than
// "silu", architectures other than LlamaForCausalLM /
// LlamaForSequenceClassification) is InvalidArgument naming the field.
Result<LlamaConfig> ParseConfigJson(const std::string& text);
Result<LlamaConfig> LoadConfig(const std::string& path);

// config.json text that transformers and vLLM load (architectures,
// model_type "llama", torch_dtype, ...). dtype: "float32" | "bfloat16".
std::string ConfigToJson(const LlamaConfig& c, const std::string& torch_dtype = "float32");

// Checks the invariants (positive sizes, H % Hkv == 0, even head_dim, ...).
Status Validate(const LlamaConfig& c);

}  // namespace herd::model
