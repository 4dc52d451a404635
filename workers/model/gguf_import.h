#pragma once
// GGUF (llama.cpp) Llama models → HF checkpoint directories that herd's
// LoadCheckpointInto and transformers load. Tensors are dequantized to fp32
// (gguf.h), renamed to HF names, q_proj/k_proj rows are put back in HF's
// rotate_half order, the config comes from the `llama.*` metadata and the
// tokenizer files from `tokenizer.*`. See docs/checkpoints.md, "GGUF import".
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "workers/model/config.h"
#include "workers/model/gguf.h"

namespace herd::model {

// The HF name of a GGUF Llama tensor ("blk.3.attn_q.weight" →
// "model.layers.3.self_attn.q_proj.weight"), or nullopt for a name with no
// HF Llama equivalent.
std::optional<std::string> HfTensorName(const std::string& gguf_name);

// Undoes llama.cpp's Q/K row permutation. convert_hf_to_gguf.py reorders
// the rows of q_proj (n_head = H) and k_proj (n_head = Hkv) per head,
// (n_head, 2, hd/2, cols) → (n_head, hd/2, 2, cols), so that the two halves
// rotate_half pairs become adjacent rows; GGUF row h*hd + 2i + j is HF row
// h*hd + j*hd/2 + i. w is (rows, cols) row-major, rows = n_head * hd, hd even.
void UnpermuteQkRows(float* w, int64_t rows, int64_t cols, int64_t n_head);

// The LlamaConfig a GGUF describes (general.architecture must be "llama").
// Missing or ill-typed keys are errors naming the key; values herd cannot
// run (partial rotary, rope scaling other than Llama 3's) are
// InvalidArgument naming the key or tensor.
Result<LlamaConfig> LlamaConfigFromGguf(const GgufFile& f);

// The HF tokenizer files for a GGUF's byte-level BPE vocabulary.
struct HfTokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
  // generation_config.json eos ids when the model ends turns on more than
  // one token (eos plus tokenizer.ggml.eot_token_id / eom_token_id);
  // empty when eos alone.
  std::vector<int64_t> generation_eos_token_ids;
  std::string model;  // tokenizer.ggml.model, e.g. "gpt2"
  std::string pre;    // tokenizer.ggml.pre, e.g. "smollm"
  int64_t vocab_size = 0;
  int64_t merges = 0;
  int64_t added_tokens = 0;   // control (special) + user-defined
  std::string chat_template;  // tokenizer.chat_template, may be empty
};

// tokenizer.ggml.model must be "gpt2"; tokenizer.ggml.pre one of smollm,
// starcoder, refact (digits split one by one, then GPT-2's byte-level
// regex), gpt2 (the regex alone), llama-bpe, llama3, llama-v3 (Llama 3's
// split regex, ignore_merges). Anything else is InvalidArgument
// "unsupported tokenizer: tokenizer.ggml.model 'llama' (...)" naming the
// key. model_max_length goes into tokenizer_config.json.
Result<HfTokenizerFiles> HfTokenizerFromGguf(const GgufFile& f, int64_t model_max_length);

struct ImportOptions {
  // Replace an existing out_dir (atomically, as SaveCheckpoint does).
  // Default: false (an existing dir is AlreadyExists).
  bool overwrite = false;
  // Shard the safetensors at this many bytes. Default: 0 (one file).
  uint64_t max_shard_bytes = 0;
};

struct GgufImportSummary {
  LlamaConfig config;
  int64_t gguf_tensors = 0;              // tensors in the GGUF
  std::map<std::string, int64_t> types;  // ggml type name → tensor count
  HfTokenizerFiles tokenizer;
};

// Reads gguf_path and writes out_dir as an F32 HF checkpoint with
// tokenizer.json, tokenizer_config.json and generation_config.json. Every
// GGUF tensor must map to an HF Llama tensor of the config's shape (an
// unknown tensor, a missing one, a shape mismatch or an unsupported ggml
// type is an error naming the tensor); nothing is written on error.
Result<GgufImportSummary> ImportGguf(const std::string& gguf_path, const std::string& out_dir,
                                     const ImportOptions& options = {});

}  // namespace herd::model
