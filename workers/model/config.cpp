#include "workers/model/config.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace herd::model {
namespace {

using nlohmann::json;

// Every error names the file and the field, e.g.
// "config.json: field 'rope_scaling.factor' must be a number".
Status FieldError(const std::string& field, const std::string& what) {
  return Status::InvalidArgument("config.json: field '" + field + "' " + what);
}

// Reads an integer field. Missing: the default if one is given, else an error.
// JSON floats with an integral value (e.g. 4096.0) are accepted.
Status GetInt(const json& j, const char* key, const std::string& path, bool required,
              int64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return FieldError(path, "missing");
    return Status::Ok();
  }
  if (it->is_number_integer()) {
    *out = it->get<int64_t>();
    return Status::Ok();
  }
  if (it->is_number_float()) {
    const double v = it->get<double>();
    if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 9.0e15) {
      *out = static_cast<int64_t>(v);
      return Status::Ok();
    }
  }
  return FieldError(path, "must be an integer");
}

Status GetFloat(const json& j, const char* key, const std::string& path, bool required,
                float* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return FieldError(path, "missing");
    return Status::Ok();
  }
  if (!it->is_number()) return FieldError(path, "must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v)) return FieldError(path, "must be finite");
  *out = static_cast<float>(v);
  return Status::Ok();
}

Status GetBool(const json& j, const char* key, const std::string& path, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean()) return FieldError(path, "must be true or false");
  *out = it->get<bool>();
  return Status::Ok();
}

// A float written with the fewest digits that read back to the same float
// (1e-5f is written 1e-05, not 9.999999747378752e-06).
json ShortFloat(float f) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), f);
  return json(std::strtod(std::string(buf, r.ptr).c_str(), nullptr));
}

// rope settings come in two spellings: transformers < 5 writes rope_theta
// plus rope_scaling {rope_type|type, factor, ...} (null for none);
// transformers >= 5 writes rope_parameters {rope_type: "default"|"llama3",
// rope_theta, factor, ...}. `field` is the key, for error messages.
Status ParseRope(const json& rs, const std::string& field, bool allow_default,
                 std::optional<RopeScaling>* out, float* rope_theta) {
  if (!rs.is_object()) return FieldError(field, "must be an object or null");
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    auto it = rs.find(key);
    if (it != rs.end() && !it->is_null()) {
      if (!it->is_string()) return FieldError(field + "." + key, "must be a string");
      type = it->get<std::string>();
      break;
    }
  }
  if (rope_theta != nullptr) {
    HERD_RETURN_IF_ERROR(GetFloat(rs, "rope_theta", field + ".rope_theta", false, rope_theta));
  }
  if (type.empty()) return FieldError(field + ".rope_type", "missing");
  if (allow_default && type == "default") {
    out->reset();
    return Status::Ok();
  }
  if (type != "llama3") {
    return FieldError(field + ".rope_type", "'" + type + "' is not supported (only \"llama3\"" +
                                                (allow_default ? " or \"default\")" : ")"));
  }
  RopeScaling r;
  HERD_RETURN_IF_ERROR(GetFloat(rs, "factor", field + ".factor", true, &r.factor));
  HERD_RETURN_IF_ERROR(
      GetFloat(rs, "low_freq_factor", field + ".low_freq_factor", true, &r.low_freq_factor));
  HERD_RETURN_IF_ERROR(
      GetFloat(rs, "high_freq_factor", field + ".high_freq_factor", true, &r.high_freq_factor));
  HERD_RETURN_IF_ERROR(GetInt(rs, "original_max_position_embeddings",
                              field + ".original_max_position_embeddings", true,
                              &r.original_max_position_embeddings));
  *out = r;
  return Status::Ok();
}

}  // namespace

Result<LlamaConfig> ParseConfigJson(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("config.json: not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("config.json: top level must be an object");

  LlamaConfig c;
  // architectures decides the head: causal LM or a one-label sequence
  // classifier (reward model). Absent: a causal LM.
  if (auto it = j.find("architectures"); it != j.end() && !it->is_null()) {
    if (!it->is_array() || it->size() != 1 || !(*it)[0].is_string()) {
      return FieldError("architectures", "must be a list of one string");
    }
    const std::string arch = (*it)[0].get<std::string>();
    if (arch == "LlamaForSequenceClassification") {
      c.is_reward_model = true;
    } else if (arch != "LlamaForCausalLM") {
      return FieldError("architectures", "'" + arch +
                                             "' is not supported (LlamaForCausalLM or "
                                             "LlamaForSequenceClassification)");
    }
  }
  if (auto it = j.find("model_type"); it != j.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "llama") {
      return FieldError("model_type", "must be \"llama\"");
    }
  }
  if (auto it = j.find("hidden_act"); it != j.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "silu") {
      return FieldError("hidden_act", "must be \"silu\" (SwiGLU)");
    }
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    bool b = false;
    HERD_RETURN_IF_ERROR(GetBool(j, key, key, &b));
    if (b) return FieldError(key, "must be false (no biases in the engine)");
  }
  {
    int64_t tp = 1;
    HERD_RETURN_IF_ERROR(GetInt(j, "pretraining_tp", "pretraining_tp", false, &tp));
    if (tp != 1) return FieldError("pretraining_tp", "must be 1");
  }
  if (c.is_reward_model) {
    // transformers derives num_labels from id2label; either may be present.
    int64_t labels = 1;
    HERD_RETURN_IF_ERROR(GetInt(j, "num_labels", "num_labels", false, &labels));
    if (auto it = j.find("id2label"); it != j.end() && it->is_object()) {
      labels = static_cast<int64_t>(it->size());
    }
    if (labels != 1) return FieldError("id2label", "a reward model must have exactly one label");
  }

  HERD_RETURN_IF_ERROR(GetInt(j, "hidden_size", "hidden_size", true, &c.hidden_size));
  HERD_RETURN_IF_ERROR(
      GetInt(j, "intermediate_size", "intermediate_size", true, &c.intermediate_size));
  HERD_RETURN_IF_ERROR(
      GetInt(j, "num_hidden_layers", "num_hidden_layers", true, &c.num_hidden_layers));
  HERD_RETURN_IF_ERROR(
      GetInt(j, "num_attention_heads", "num_attention_heads", true, &c.num_attention_heads));
  c.num_key_value_heads = c.num_attention_heads;
  HERD_RETURN_IF_ERROR(
      GetInt(j, "num_key_value_heads", "num_key_value_heads", false, &c.num_key_value_heads));
  if (c.num_attention_heads > 0) c.head_dim = c.hidden_size / c.num_attention_heads;
  HERD_RETURN_IF_ERROR(GetInt(j, "head_dim", "head_dim", false, &c.head_dim));
  HERD_RETURN_IF_ERROR(GetFloat(j, "rms_norm_eps", "rms_norm_eps", false, &c.rms_norm_eps));
  HERD_RETURN_IF_ERROR(GetFloat(j, "rope_theta", "rope_theta", false, &c.rope_theta));
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    HERD_RETURN_IF_ERROR(ParseRope(*it, "rope_scaling", false, &c.rope_scaling, nullptr));
  }
  if (auto it = j.find("rope_parameters"); it != j.end() && !it->is_null()) {
    HERD_RETURN_IF_ERROR(
        ParseRope(*it, "rope_parameters", true, &c.rope_scaling, &c.rope_theta));
  }
  HERD_RETURN_IF_ERROR(GetInt(j, "vocab_size", "vocab_size", true, &c.vocab_size));
  HERD_RETURN_IF_ERROR(GetInt(j, "max_position_embeddings", "max_position_embeddings", false,
                              &c.max_position_embeddings));
  HERD_RETURN_IF_ERROR(
      GetBool(j, "tie_word_embeddings", "tie_word_embeddings", &c.tie_word_embeddings));
  HERD_RETURN_IF_ERROR(GetInt(j, "bos_token_id", "bos_token_id", false, &c.bos_token_id));
  if (auto it = j.find("eos_token_id"); it != j.end() && it->is_array()) {
    if (it->empty() || !(*it)[0].is_number_integer()) {
      return FieldError("eos_token_id", "must be an integer or a non-empty list of integers");
    }
    c.eos_token_id = (*it)[0].get<int64_t>();
  } else {
    HERD_RETURN_IF_ERROR(GetInt(j, "eos_token_id", "eos_token_id", false, &c.eos_token_id));
  }
  HERD_RETURN_IF_ERROR(Validate(c));
  return c;
}

Result<LlamaConfig> LoadConfig(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::NotFound(path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::IoError(path + ": read failed");
  auto r = ParseConfigJson(ss.str());
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

std::string ConfigToJson(const LlamaConfig& c, const std::string& torch_dtype) {
  json j;
  j["architectures"] = json::array(
      {c.is_reward_model ? "LlamaForSequenceClassification" : "LlamaForCausalLM"});
  j["model_type"] = "llama";
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["mlp_bias"] = false;
  j["pretraining_tp"] = 1;
  j["initializer_range"] = 0.02;
  j["use_cache"] = true;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["rms_norm_eps"] = ShortFloat(c.rms_norm_eps);
  j["rope_theta"] = ShortFloat(c.rope_theta);
  if (c.rope_scaling) {
    const RopeScaling& r = *c.rope_scaling;
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", ShortFloat(r.factor)},
                         {"low_freq_factor", ShortFloat(r.low_freq_factor)},
                         {"high_freq_factor", ShortFloat(r.high_freq_factor)},
                         {"original_max_position_embeddings", r.original_max_position_embeddings}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] = c.eos_token_id;
  if (c.is_reward_model) {
    // One label; the sequence classifier needs a pad id to find each row's
    // last token when batching, so the eos id stands in.
    j["id2label"] = {{"0", "LABEL_0"}};
    j["label2id"] = {{"LABEL_0", 0}};
    j["pad_token_id"] = c.eos_token_id;
  }
  j["torch_dtype"] = torch_dtype;
  return j.dump(2) + "\n";
}

Status Validate(const LlamaConfig& c) {
  auto positive = [](int64_t v, const char* field) -> Status {
    if (v <= 0) return FieldError(field, "must be positive (got " + std::to_string(v) + ")");
    return Status::Ok();
  };
  HERD_RETURN_IF_ERROR(positive(c.hidden_size, "hidden_size"));
  HERD_RETURN_IF_ERROR(positive(c.intermediate_size, "intermediate_size"));
  HERD_RETURN_IF_ERROR(positive(c.num_hidden_layers, "num_hidden_layers"));
  HERD_RETURN_IF_ERROR(positive(c.num_attention_heads, "num_attention_heads"));
  HERD_RETURN_IF_ERROR(positive(c.num_key_value_heads, "num_key_value_heads"));
  HERD_RETURN_IF_ERROR(positive(c.head_dim, "head_dim"));
  HERD_RETURN_IF_ERROR(positive(c.vocab_size, "vocab_size"));
  HERD_RETURN_IF_ERROR(positive(c.max_position_embeddings, "max_position_embeddings"));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return FieldError("num_key_value_heads", "must divide num_attention_heads (" +
                                                 std::to_string(c.num_attention_heads) + ")");
  }
  if (c.head_dim % 2 != 0) return FieldError("head_dim", "must be even (RoPE rotates pairs)");
  if (!(c.rms_norm_eps > 0.0f)) return FieldError("rms_norm_eps", "must be positive");
  if (!(c.rope_theta > 0.0f)) return FieldError("rope_theta", "must be positive");
  if (c.rope_scaling) {
    const RopeScaling& r = *c.rope_scaling;
    if (!(r.factor > 0.0f)) return FieldError("rope_scaling.factor", "must be positive");
    if (!(r.low_freq_factor > 0.0f)) {
      return FieldError("rope_scaling.low_freq_factor", "must be positive");
    }
    // The ramp between the bands divides by (high - low).
    if (!(r.high_freq_factor > r.low_freq_factor)) {
      return FieldError("rope_scaling.high_freq_factor", "must be greater than low_freq_factor");
    }
    if (r.original_max_position_embeddings <= 0) {
      return FieldError("rope_scaling.original_max_position_embeddings", "must be positive");
    }
  }
  if (c.bos_token_id < 0 || c.bos_token_id >= c.vocab_size) {
    return FieldError("bos_token_id", "must be in [0, vocab_size)");
  }
  if (c.eos_token_id < 0 || c.eos_token_id >= c.vocab_size) {
    return FieldError("eos_token_id", "must be in [0, vocab_size)");
  }
  return Status::Ok();
}

}  // namespace herd::model
