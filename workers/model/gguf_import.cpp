#include "workers/model/gguf_import.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "workers/model/checkpoint.h"
#include "workers/model/tokenizer.h"

namespace herd::model {
namespace {

using ordered_json = nlohmann::ordered_json;

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// ---- tensor names --------------------------------------------------------------------

constexpr std::pair<const char*, const char*> kLayerNames[] = {
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
    {"attn_norm.weight", "input_layernorm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
};

// ---- metadata helpers ----------------------------------------------------------------

// An optional key: its value, or `fallback` when absent; a present key of
// the wrong type is still an error.
Result<int64_t> IntOr(const GgufFile& f, const std::string& key, int64_t fallback) {
  if (!f.Find(key)) return fallback;
  return f.GetInt(key);
}
Result<double> FloatOr(const GgufFile& f, const std::string& key, double fallback) {
  if (!f.Find(key)) return fallback;
  return f.GetFloat(key);
}

// Llama 3.1 GGUFs carry no rope-scaling keys; llama.cpp's converter stores
// the per-frequency divisors as the tensor rope_freqs.weight (hd/2 values:
// 1 for high frequencies, factor for low ones, a smooth ramp between). We
// recover HF's rope_scaling {factor, low 1, high 4, original 8192 or the
// GGUF's original_context_length} and check it reproduces every divisor.
Result<RopeScaling> RopeScalingFromFreqs(const GgufFile& f, const GgufTensorInfo& t,
                                         const LlamaConfig& c) {
  const std::string what = f.path() + ": tensor 'rope_freqs.weight'";
  if (t.numel() != c.head_dim / 2) {
    return Status::InvalidArgument(
        what + " has " + std::to_string(t.numel()) +
        " values, expected head_dim/2 = " + std::to_string(c.head_dim / 2));
  }
  std::vector<float> divisors(static_cast<size_t>(t.numel()));
  HERD_RETURN_IF_ERROR(f.ReadF32(t, divisors.data(), t.numel()));
  RopeScaling s;
  s.factor = 1.0f;
  for (float d : divisors) s.factor = std::max(s.factor, d);
  HERD_ASSIGN_OR_RETURN(s.original_max_position_embeddings,
                        IntOr(f, "llama.rope.scaling.original_context_length", 8192));
  const double old_len = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = old_len / s.low_freq_factor,
               high_wavelen = old_len / s.high_freq_factor;
  for (size_t i = 0; i < divisors.size(); ++i) {
    const double freq =
        1.0 / std::pow(static_cast<double>(c.rope_theta),
                       static_cast<double>(2 * i) / static_cast<double>(c.head_dim));
    const double wavelen = 2 * M_PI / freq;
    double want = 1.0;
    if (wavelen > low_wavelen) {
      want = s.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth =
          (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      want = 1.0 / ((1 - smooth) / s.factor + smooth);
    }
    if (std::fabs(divisors[i] - want) > 1e-3 * want) {
      return Status::InvalidArgument(
          what + " is not Llama 3 rope scaling (factor " + std::to_string(s.factor) +
          ", low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings " +
          std::to_string(s.original_max_position_embeddings) + "): value " + std::to_string(i) +
          " is " + std::to_string(divisors[i]) + ", expected " + std::to_string(want));
    }
  }
  return s;
}

// ---- tokenizer -----------------------------------------------------------------------


// A token as the BPE vocabulary spells it: unchanged when already in the
// byte-level alphabet, else each UTF-8 byte respelled (as transformers'
// GGUF conversion does for the odd token llama.cpp stores in plain text).
std::string VocabSpelling(const std::string& token, const std::array<uint32_t, 256>& alphabet) {
  if (IsByteLevelSpelling(token)) return token;
  std::string out;
  for (unsigned char b : token) AppendUtf8(alphabet[b], &out);
  return out;
}

constexpr const char* kLlama3Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

ordered_json ByteLevel(bool use_regex, bool add_prefix_space = false) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", add_prefix_space},
          {"trim_offsets", true},
          {"use_regex", use_regex}};
}

// The pre-tokenizer for tokenizer.ggml.pre, and whether BPE ignores merges
// for words already in the vocabulary (Llama 3 does; llama.cpp too).
Result<std::pair<ordered_json, bool>> PreTokenizer(const std::string& file,
                                                   const std::string& pre) {
  if (pre == "smollm" || pre == "starcoder" || pre == "refact") {
    // llama.cpp splits "\p{N}" first, then GPT-2's regex; the upstream
    // tokenizer.json says the same as Digits + ByteLevel.
    ordered_json digits = {{"type", "Digits"}, {"individual_digits", true}};
    return std::make_pair(
        ordered_json{{"type", "Sequence"}, {"pretokenizers", {digits, ByteLevel(true)}}}, false);
  }
  if (pre == "gpt2") return std::make_pair(ByteLevel(true), false);
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    ordered_json split = {{"type", "Split"},
                          {"pattern", {{"Regex", kLlama3Split}}},
                          {"behavior", "Isolated"},
                          {"invert", false}};
    return std::make_pair(
        ordered_json{{"type", "Sequence"}, {"pretokenizers", {split, ByteLevel(false)}}}, true);
  }
  return Status::InvalidArgument(
      "unsupported tokenizer: " + file + ": tokenizer.ggml.pre " + Quote(pre) +
      " (herd knows smollm, starcoder, refact, gpt2, llama-bpe, llama3, llama-v3)");
}

ordered_json AddedTokenJson(int64_t id, const std::string& content, bool special) {
  return ordered_json{{"id", id},          {"content", content}, {"single_word", false},
                      {"lstrip", false},   {"rstrip", false},    {"normalized", false},
                      {"special", special}};
}

// An optional special-token id, checked against the vocabulary.
Result<std::optional<int64_t>> TokenIdKey(const GgufFile& f, const std::string& key,
                                          int64_t vocab) {
  if (!f.Find(key)) return std::optional<int64_t>();
  HERD_ASSIGN_OR_RETURN(int64_t id, f.GetInt(key));
  if (id < 0 || id >= vocab) {
    return Status::InvalidArgument(f.path() + ": metadata key " + Quote(key) + " is " +
                                   std::to_string(id) + ", outside the vocabulary of " +
                                   std::to_string(vocab));
  }
  return std::optional<int64_t>(id);
}

}  // namespace

std::optional<std::string> HfTensorName(const std::string& g) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  if (g.rfind("blk.", 0) != 0) return std::nullopt;
  const size_t dot = g.find('.', 4);
  if (dot == std::string::npos || dot == 4) return std::nullopt;
  const std::string layer = g.substr(4, dot - 4);
  for (char ch : layer) {
    if (ch < '0' || ch > '9') return std::nullopt;
  }
  if (layer.size() > 1 && layer[0] == '0') return std::nullopt;
  const std::string rest = g.substr(dot + 1);
  for (const auto& [gguf, hf] : kLayerNames) {
    if (rest == gguf) return "model.layers." + layer + "." + hf;
  }
  return std::nullopt;
}

void UnpermuteQkRows(float* w, int64_t rows, int64_t cols, int64_t n_head) {
  const int64_t hd = rows / n_head, half = hd / 2;
  std::vector<float> head(static_cast<size_t>(hd * cols));
  for (int64_t h = 0; h < n_head; ++h) {
    float* base = w + h * hd * cols;
    std::memcpy(head.data(), base, head.size() * sizeof(float));
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        std::memcpy(base + (j * half + i) * cols, head.data() + (2 * i + j) * cols,
                    static_cast<size_t>(cols) * sizeof(float));
      }
    }
  }
}

Result<LlamaConfig> LlamaConfigFromGguf(const GgufFile& f) {
  HERD_ASSIGN_OR_RETURN(std::string arch, f.GetString("general.architecture"));
  if (arch != "llama") {
    return Status::InvalidArgument(f.path() + ": metadata key 'general.architecture' is " +
                                   Quote(arch) + "; herd imports 'llama' models only");
  }
  LlamaConfig c;
  HERD_ASSIGN_OR_RETURN(c.hidden_size, f.GetInt("llama.embedding_length"));
  HERD_ASSIGN_OR_RETURN(c.intermediate_size, f.GetInt("llama.feed_forward_length"));
  HERD_ASSIGN_OR_RETURN(c.num_hidden_layers, f.GetInt("llama.block_count"));
  HERD_ASSIGN_OR_RETURN(c.num_attention_heads, f.GetInt("llama.attention.head_count"));
  HERD_ASSIGN_OR_RETURN(c.num_key_value_heads,
                        IntOr(f, "llama.attention.head_count_kv", c.num_attention_heads));
  if (c.num_attention_heads <= 0) {
    return Status::InvalidArgument(f.path() +
                                   ": metadata key 'llama.attention.head_count' must be positive");
  }
  HERD_ASSIGN_OR_RETURN(
      c.head_dim, IntOr(f, "llama.attention.key_length", c.hidden_size / c.num_attention_heads));
  HERD_ASSIGN_OR_RETURN(int64_t value_length, IntOr(f, "llama.attention.value_length", c.head_dim));
  if (value_length != c.head_dim) {
    return Status::InvalidArgument(f.path() + ": metadata key 'llama.attention.value_length' (" +
                                   std::to_string(value_length) + ") differs from key_length (" +
                                   std::to_string(c.head_dim) + "); herd's Llama needs them equal");
  }
  HERD_ASSIGN_OR_RETURN(int64_t rope_dims, IntOr(f, "llama.rope.dimension_count", c.head_dim));
  if (rope_dims != c.head_dim) {
    return Status::InvalidArgument(
        f.path() + ": metadata key 'llama.rope.dimension_count' is " + std::to_string(rope_dims) +
        ", not head_dim " + std::to_string(c.head_dim) + " (partial rotary is not supported)");
  }
  HERD_ASSIGN_OR_RETURN(double eps, f.GetFloat("llama.attention.layer_norm_rms_epsilon"));
  c.rms_norm_eps = static_cast<float>(eps);
  HERD_ASSIGN_OR_RETURN(double theta, FloatOr(f, "llama.rope.freq_base", 10000.0));
  c.rope_theta = static_cast<float>(theta);
  HERD_ASSIGN_OR_RETURN(c.max_position_embeddings, IntOr(f, "llama.context_length", 2048));

  if (f.Find("llama.rope.scaling.type")) {
    HERD_ASSIGN_OR_RETURN(std::string type, f.GetString("llama.rope.scaling.type"));
    if (type != "none") {
      return Status::InvalidArgument(f.path() + ": metadata key 'llama.rope.scaling.type' is " +
                                     Quote(type) +
                                     "; herd supports Llama 3 scaling (rope_freqs.weight) only");
    }
  }
  if (const GgufTensorInfo* t = f.FindTensor("rope_freqs.weight")) {
    HERD_ASSIGN_OR_RETURN(RopeScaling s, RopeScalingFromFreqs(f, *t, c));
    c.rope_scaling = s;
  }

  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  if (!embd) return Status::InvalidArgument(f.path() + ": tensor 'token_embd.weight' missing");
  if (embd->ne.size() != 2) {
    return Status::InvalidArgument(f.path() + ": tensor 'token_embd.weight' is not 2-D");
  }
  c.vocab_size = embd->ne[1];
  HERD_ASSIGN_OR_RETURN(int64_t declared_vocab, IntOr(f, "llama.vocab_size", c.vocab_size));
  if (declared_vocab != c.vocab_size) {
    return Status::InvalidArgument(f.path() + ": metadata key 'llama.vocab_size' is " +
                                   std::to_string(declared_vocab) + " but token_embd.weight has " +
                                   std::to_string(c.vocab_size) + " rows");
  }
  c.tie_word_embeddings = f.FindTensor("output.weight") == nullptr;
  HERD_ASSIGN_OR_RETURN(c.bos_token_id, IntOr(f, "tokenizer.ggml.bos_token_id", c.bos_token_id));
  HERD_ASSIGN_OR_RETURN(c.eos_token_id, IntOr(f, "tokenizer.ggml.eos_token_id", c.eos_token_id));
  HERD_RETURN_IF_ERROR(Validate(c).WithContext(f.path()));
  return c;
}

namespace {

// A metadata string as JSON for an error message; invalid UTF-8 shows as
// U+FFFD rather than throwing.
std::string Quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Serialises JSON built from GGUF metadata strings, which nothing
// guarantees to be UTF-8: invalid text is an error naming the file.
Result<std::string> DumpMetadataJson(const ordered_json& j, const std::string& path, const char* what) {
  try {
    return j.dump(2) + "\n";
  } catch (const nlohmann::json::type_error& e) {
    return Status::InvalidArgument(path + ": " + what + " from the metadata is not valid UTF-8 (" +
                                   e.what() + ")");
  }
}

}  // namespace

Result<HfTokenizerFiles> HfTokenizerFromGguf(const GgufFile& f, int64_t model_max_length) {
  HfTokenizerFiles out;
  HERD_ASSIGN_OR_RETURN(out.model, f.GetString("tokenizer.ggml.model"));
  if (out.model != "gpt2") {
    const std::string kind = out.model == "llama" ? "SentencePiece" : "not byte-level BPE";
    return Status::InvalidArgument("unsupported tokenizer: " + f.path() +
                                   ": tokenizer.ggml.model " + Quote(out.model) + " (" + kind +
                                   "); herd imports byte-level BPE ('gpt2') vocabularies only");
  }
  HERD_ASSIGN_OR_RETURN(out.pre, f.GetString("tokenizer.ggml.pre"));
  HERD_ASSIGN_OR_RETURN(auto pre, PreTokenizer(f.path(), out.pre));
  HERD_ASSIGN_OR_RETURN(std::vector<std::string> tokens, f.GetStringArray("tokenizer.ggml.tokens"));
  HERD_ASSIGN_OR_RETURN(std::vector<std::string> merges, f.GetStringArray("tokenizer.ggml.merges"));
  std::vector<int64_t> types(tokens.size(), 1);  // 1 = normal when the file gives no types
  if (f.Find("tokenizer.ggml.token_type")) {
    HERD_ASSIGN_OR_RETURN(types, f.GetIntArray("tokenizer.ggml.token_type"));
    if (types.size() != tokens.size()) {
      return Status::InvalidArgument(f.path() + ": metadata key 'tokenizer.ggml.token_type' has " +
                                     std::to_string(types.size()) + " entries for " +
                                     std::to_string(tokens.size()) + " tokens");
    }
  }
  const auto vocab_size = static_cast<int64_t>(tokens.size());
  out.vocab_size = vocab_size;
  out.merges = static_cast<int64_t>(merges.size());

  // vocab, in id order. nlohmann's ordered_json looks keys up linearly,
  // which is quadratic for 100k tokens, so this object is written by hand
  // and spliced in below.
  const auto& alphabet = ByteLevelAlphabet();
  std::unordered_map<std::string, int64_t> seen;
  seen.reserve(tokens.size());
  std::string vocab_text = "{";
  for (int64_t id = 0; id < vocab_size; ++id) {
    const std::string spelled = VocabSpelling(tokens[id], alphabet);
    auto [it, fresh] = seen.emplace(spelled, id);
    if (!fresh) {
      return Status::InvalidArgument(f.path() + ": metadata key 'tokenizer.ggml.tokens': token " +
                                     Quoted(tokens[id]) + " appears at ids " +
                                     std::to_string(it->second) + " and " + std::to_string(id));
    }
    vocab_text += (id ? ",\n      " : "\n      ") + nlohmann::json(spelled).dump() + ": " +
                  std::to_string(id);
  }
  vocab_text += "\n    }";

  ordered_json merge_pairs = ordered_json::array();
  for (size_t k = 0; k < merges.size(); ++k) {
    const size_t sp = merges[k].find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == merges[k].size() ||
        merges[k].find(' ', sp + 1) != std::string::npos) {
      return Status::InvalidArgument(f.path() + ": metadata key 'tokenizer.ggml.merges' entry " +
                                     std::to_string(k) + " " + Quoted(merges[k]) +
                                     " is not two tokens separated by one space");
    }
    merge_pairs.push_back({merges[k].substr(0, sp), merges[k].substr(sp + 1)});
  }

  // Control tokens (type 3) become special added tokens, user-defined ones
  // (type 4) plain added tokens, as in transformers' GGUF conversion. A
  // "control" token spelled outside the byte alphabet is a llama.cpp
  // mislabel and stays an ordinary token (transformers skips it too).
  ordered_json added = ordered_json::array();
  ordered_json added_decoder = ordered_json::object();
  for (int64_t id = 0; id < vocab_size; ++id) {
    const int64_t type = types[id];
    if ((type != 3 && type != 4) || !IsByteLevelSpelling(tokens[id])) continue;
    ordered_json t = AddedTokenJson(id, tokens[id], type == 3);
    added.push_back(t);
    t.erase("id");
    added_decoder[std::to_string(id)] = t;
  }
  out.added_tokens = static_cast<int64_t>(added.size());

  HERD_ASSIGN_OR_RETURN(auto bos, TokenIdKey(f, "tokenizer.ggml.bos_token_id", vocab_size));
  HERD_ASSIGN_OR_RETURN(auto eos, TokenIdKey(f, "tokenizer.ggml.eos_token_id", vocab_size));
  HERD_ASSIGN_OR_RETURN(auto pad, TokenIdKey(f, "tokenizer.ggml.padding_token_id", vocab_size));
  HERD_ASSIGN_OR_RETURN(auto unk, TokenIdKey(f, "tokenizer.ggml.unknown_token_id", vocab_size));
  HERD_ASSIGN_OR_RETURN(auto eot, TokenIdKey(f, "tokenizer.ggml.eot_token_id", vocab_size));
  HERD_ASSIGN_OR_RETURN(auto eom, TokenIdKey(f, "tokenizer.ggml.eom_token_id", vocab_size));
  bool add_bos = false, add_eos = false;
  if (f.Find("tokenizer.ggml.add_bos_token")) {
    HERD_ASSIGN_OR_RETURN(add_bos, f.GetBool("tokenizer.ggml.add_bos_token"));
  }
  if (f.Find("tokenizer.ggml.add_eos_token")) {
    HERD_ASSIGN_OR_RETURN(add_eos, f.GetBool("tokenizer.ggml.add_eos_token"));
  }
  if (add_bos && !bos) {
    return Status::InvalidArgument(f.path() +
                                   ": tokenizer.ggml.add_bos_token is true but "
                                   "tokenizer.ggml.bos_token_id is missing");
  }
  if (add_eos && !eos) {
    return Status::InvalidArgument(f.path() +
                                   ": tokenizer.ggml.add_eos_token is true but "
                                   "tokenizer.ggml.eos_token_id is missing");
  }
  if (f.Find("tokenizer.chat_template")) {
    HERD_ASSIGN_OR_RETURN(out.chat_template, f.GetString("tokenizer.chat_template"));
  }

  // Post-processor: what encode(text) adds around the ids. Same shape as
  // transformers writes; the BOS/EOS only when the GGUF asks for them.
  auto seq = [](const char* id, int type_id) {
    return ordered_json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
  };
  auto special = [&](int64_t id, int type_id) {
    return ordered_json{{"SpecialToken", {{"id", tokens[id]}, {"type_id", type_id}}}};
  };
  ordered_json single = ordered_json::array(), pair = ordered_json::array();
  ordered_json specials = ordered_json::object();
  if (add_bos) single.push_back(special(*bos, 0));
  single.push_back(seq("A", 0));
  if (add_eos) single.push_back(special(*eos, 0));
  if (add_bos) pair.push_back(special(*bos, 0));
  pair.push_back(seq("A", 0));
  if (add_eos) pair.push_back(special(*eos, 0));
  if (add_bos) pair.push_back(special(*bos, 1));
  pair.push_back(seq("B", 1));
  if (add_eos) pair.push_back(special(*eos, 1));
  for (const auto& id :
       {add_bos ? bos : std::optional<int64_t>(), add_eos ? eos : std::optional<int64_t>()}) {
    if (id)
      specials[tokens[*id]] = {{"id", tokens[*id]}, {"ids", {*id}}, {"tokens", {tokens[*id]}}};
  }
  ordered_json post = {{"type", "TemplateProcessing"},
                       {"single", single},
                       {"pair", pair},
                       {"special_tokens", specials}};

  const char* kVocabPlaceholder = "@@herd-vocab@@";
  ordered_json model = {{"type", "BPE"},
                        {"dropout", nullptr},
                        {"unk_token", nullptr},
                        {"continuing_subword_prefix", ""},
                        {"end_of_word_suffix", ""},
                        {"fuse_unk", false},
                        {"byte_fallback", false},
                        {"ignore_merges", pre.second},
                        {"vocab", kVocabPlaceholder},
                        {"merges", merge_pairs}};
  ordered_json tok = {{"version", "1.0"},       {"truncation", nullptr},
                      {"padding", nullptr},     {"added_tokens", added},
                      {"normalizer", nullptr},  {"pre_tokenizer", pre.first},
                      {"post_processor", post}, {"decoder", ByteLevel(true, true)},
                      {"model", model}};
  HERD_ASSIGN_OR_RETURN(out.tokenizer_json, DumpMetadataJson(tok, f.path(), "tokenizer.json"));
  const std::string quoted_placeholder = std::string("\"") + kVocabPlaceholder + "\"";
  out.tokenizer_json.replace(out.tokenizer_json.find(quoted_placeholder), quoted_placeholder.size(),
                             vocab_text);

  auto token_or_null = [&](const std::optional<int64_t>& id) {
    return id ? ordered_json(tokens[*id]) : ordered_json(nullptr);
  };
  ordered_json config = {{"add_bos_token", add_bos},
                         {"add_eos_token", add_eos},
                         {"added_tokens_decoder", added_decoder},
                         {"bos_token", token_or_null(bos)},
                         {"eos_token", token_or_null(eos)},
                         {"pad_token", token_or_null(pad)},
                         {"unk_token", token_or_null(unk)}};
  if (!out.chat_template.empty()) config["chat_template"] = out.chat_template;
  config["clean_up_tokenization_spaces"] = false;
  config["model_input_names"] = {"input_ids", "attention_mask"};
  config["model_max_length"] = model_max_length;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  HERD_ASSIGN_OR_RETURN(out.tokenizer_config_json,
                        DumpMetadataJson(config, f.path(), "tokenizer_config.json"));

  if (eos) {
    std::vector<int64_t> ids = {*eos};
    for (const auto& extra : {eot, eom}) {
      if (extra && std::find(ids.begin(), ids.end(), *extra) == ids.end()) ids.push_back(*extra);
    }
    if (ids.size() > 1) out.generation_eos_token_ids = ids;
  }
  return out;
}

Result<GgufImportSummary> ImportGguf(const std::string& gguf_path, const std::string& out_dir,
                                     const ImportOptions& options) {
  HERD_ASSIGN_OR_RETURN(GgufFile f, GgufFile::Open(gguf_path));
  GgufImportSummary summary;
  summary.gguf_tensors = static_cast<int64_t>(f.tensors().size());
  for (const GgufTensorInfo& t : f.tensors()) ++summary.types[GgmlTypeName(t.type)];
  HERD_ASSIGN_OR_RETURN(summary.config, LlamaConfigFromGguf(f));
  const LlamaConfig& c = summary.config;
  HERD_ASSIGN_OR_RETURN(summary.tokenizer, HfTokenizerFromGguf(f, c.max_position_embeddings));
  if (summary.tokenizer.vocab_size != c.vocab_size) {
    return Status::InvalidArgument(
        gguf_path + ": tokenizer.ggml.tokens has " + std::to_string(summary.tokenizer.vocab_size) +
        " tokens but token_embd.weight has " + std::to_string(c.vocab_size) + " rows");
  }

  // Every GGUF tensor must be one the HF model has, with the same shape.
  std::map<std::string, const GgufTensorInfo*> by_hf;
  for (const GgufTensorInfo& t : f.tensors()) {
    if (t.name == "rope_freqs.weight") continue;  // folded into config.rope_scaling
    std::optional<std::string> hf = HfTensorName(t.name);
    if (!hf) {
      return Status::InvalidArgument(gguf_path + ": tensor " + Quote(t.name) +
                                     " has no HF Llama equivalent");
    }
    by_hf[*hf] = &t;
  }
  const std::vector<TensorShape> shapes = LlamaTensorShapes(c);
  int64_t total = 0;
  for (const TensorShape& s : shapes) {
    auto it = by_hf.find(s.name);
    if (it == by_hf.end()) {
      return Status::InvalidArgument(gguf_path + ": no tensor for " + Quote(s.name));
    }
    const GgufTensorInfo& t = *it->second;
    if (t.shape() != s.shape) {
      auto str = [](const std::vector<int64_t>& v) {
        std::string o = "[";
        for (size_t k = 0; k < v.size(); ++k) o += (k ? ", " : "") + std::to_string(v[k]);
        return o + "]";
      };
      return Status::InvalidArgument(
          gguf_path + ": tensor " + Quote(t.name) + " has shape " + str(t.shape()) + " (ne " +
          str(t.ne) + "), the config expects " + str(s.shape) + " for " + Quote(s.name));
    }
    if (!CanDequantize(t.type)) {
      return f.ReadF32(t, nullptr, t.numel());  // the error naming the tensor and type
    }
    total += t.numel();
  }
  if (by_hf.size() != shapes.size()) {
    for (const auto& [hf, t] : by_hf) {
      bool expected = false;
      for (const TensorShape& s : shapes) expected |= s.name == hf;
      if (!expected) {
        return Status::InvalidArgument(gguf_path + ": tensor " + Quote(t->name) + " (" + hf +
                                       ") is beyond the config's " +
                                       std::to_string(c.num_hidden_layers) + " layers");
      }
    }
  }

  // One fp32 buffer for all parameters, in LlamaTensorShapes order.
  std::vector<float> buffer(static_cast<size_t>(total));
  std::vector<ParamView> views;
  int64_t offset = 0;
  for (const TensorShape& s : shapes) {
    const GgufTensorInfo& t = *by_hf.at(s.name);
    float* dst = buffer.data() + offset;
    HERD_RETURN_IF_ERROR(f.ReadF32(t, dst, t.numel()));
    const bool is_q = s.name.ends_with("self_attn.q_proj.weight");
    const bool is_k = s.name.ends_with("self_attn.k_proj.weight");
    if (is_q || is_k) {
      UnpermuteQkRows(dst, s.shape[0], s.shape[1],
                      is_q ? c.num_attention_heads : c.num_key_value_heads);
    }
    views.push_back(ParamView{s.name, s.shape, dst});
    offset += t.numel();
  }

  SaveOptions save;
  save.overwrite = options.overwrite;
  save.max_shard_bytes = options.max_shard_bytes;
  save.tokenizer_json = summary.tokenizer.tokenizer_json;
  save.tokenizer_config_json = summary.tokenizer.tokenizer_config_json;
  save.generation_eos_token_ids = summary.tokenizer.generation_eos_token_ids;
  HERD_RETURN_IF_ERROR(SaveCheckpoint(out_dir, c, views, DType::kF32, save));
  return summary;
}

}  // namespace herd::model
