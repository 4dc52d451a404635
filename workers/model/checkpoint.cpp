#include "workers/model/checkpoint.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2 (glibc >= 2.28)
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"

namespace herd::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Quote(const std::string& s) { return "'" + s + "'"; }

std::string ShapeText(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string GenerationConfigJson(const LlamaConfig& c, const SaveOptions& o) {
  json j;
  j["_from_model_config"] = true;
  j["bos_token_id"] = c.bos_token_id;
  if (o.generation_eos_token_ids.empty()) {
    j["eos_token_id"] = c.eos_token_id;
  } else {
    j["eos_token_id"] = o.generation_eos_token_ids;
  }
  return j.dump(2) + "\n";
}

// Writes every file of the checkpoint into an existing empty directory.
Status WriteCheckpointFiles(const std::string& dir, const LlamaConfig& config,
                            const std::vector<TensorSpec>& specs, DType dtype,
                            const SaveOptions& o) {
  const std::string torch_dtype = dtype == DType::kBF16  ? "bfloat16"
                                  : dtype == DType::kF16 ? "float16"
                                                         : "float32";
  HERD_RETURN_IF_ERROR(WriteFileAtomic(dir + "/config.json", ConfigToJson(config, torch_dtype)));
  HERD_RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/generation_config.json", GenerationConfigJson(config, o)));
  if (!o.tokenizer_json.empty()) {
    HERD_RETURN_IF_ERROR(WriteFileAtomic(dir + "/tokenizer.json", o.tokenizer_json));
  }
  if (!o.chat_template_jinja.empty()) {
    HERD_RETURN_IF_ERROR(WriteFileAtomic(dir + "/chat_template.jinja", o.chat_template_jinja));
  }
  if (!o.tokenizer_config_json.empty()) {
    HERD_RETURN_IF_ERROR(WriteFileAtomic(dir + "/tokenizer_config.json", o.tokenizer_config_json));
  }
  HERD_RETURN_IF_ERROR(WriteSafetensorsDir(dir, specs, dtype, o.max_shard_bytes));
  return SyncDirectory(dir);
}

}  // namespace

std::vector<TensorShape> LlamaTensorShapes(const LlamaConfig& c) {
  const int64_t d = c.hidden_size, f = c.intermediate_size, V = c.vocab_size;
  std::vector<TensorShape> out;
  out.push_back({"model.embed_tokens.weight", {V, d}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    out.push_back({p + "self_attn.q_proj.weight", {c.q_dim(), d}});
    out.push_back({p + "self_attn.k_proj.weight", {c.kv_dim(), d}});
    out.push_back({p + "self_attn.v_proj.weight", {c.kv_dim(), d}});
    out.push_back({p + "self_attn.o_proj.weight", {d, c.q_dim()}});
    out.push_back({p + "mlp.gate_proj.weight", {f, d}});
    out.push_back({p + "mlp.up_proj.weight", {f, d}});
    out.push_back({p + "mlp.down_proj.weight", {d, f}});
    out.push_back({p + "input_layernorm.weight", {d}});
    out.push_back({p + "post_attention_layernorm.weight", {d}});
  }
  out.push_back({"model.norm.weight", {d}});
  if (c.is_reward_model) {
    out.push_back({"score.weight", {1, d}});
  } else if (!c.tie_word_embeddings) {
    out.push_back({"lm_head.weight", {V, d}});
  }
  return out;
}

Status SaveCheckpoint(const std::string& dir_in, const LlamaConfig& config,
                      const std::vector<ParamView>& params, DType dtype,
                      const SaveOptions& options) {
  fs::path dir = fs::path(dir_in).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();  // "a/b/" → "a/b"
  const std::string where = dir.string();
  if (where.empty()) return Status::InvalidArgument("SaveCheckpoint: empty directory name");
  HERD_RETURN_IF_ERROR(Validate(config).WithContext(where));
  if (dtype != DType::kF32 && dtype != DType::kBF16 && dtype != DType::kF16) {
    return Status::InvalidArgument(where + ": cannot save weights as " +
                                   std::string(DTypeName(dtype)));
  }

  // The views must be exactly the config's tensors, so the result is a
  // checkpoint that transformers can load.
  std::map<std::string, std::vector<int64_t>> want;
  for (const TensorShape& t : LlamaTensorShapes(config)) want[t.name] = t.shape;
  std::set<std::string> seen;
  std::vector<TensorSpec> specs;
  specs.reserve(params.size());
  for (const ParamView& p : params) {
    auto it = want.find(p.name);
    if (it == want.end()) {
      return Status::InvalidArgument(where + ": tensor " + Quote(p.name) +
                                     " is not part of this config's checkpoint");
    }
    if (!seen.insert(p.name).second) {
      return Status::InvalidArgument(where + ": tensor " + Quote(p.name) + " given twice");
    }
    if (p.shape != it->second) {
      return Status::InvalidArgument(where + ": tensor " + Quote(p.name) + " has shape " +
                                     ShapeText(p.shape) + ", config needs " +
                                     ShapeText(it->second));
    }
    if (p.data == nullptr) {
      return Status::InvalidArgument(where + ": tensor " + Quote(p.name) + " has no data");
    }
    specs.push_back(TensorSpec{p.name, p.shape, p.data, nullptr, DType::kI64});
  }
  for (const auto& [name, shape] : want) {
    if (seen.count(name) == 0) {
      return Status::InvalidArgument(where + ": tensor " + Quote(name) + " missing from params");
    }
  }

  std::error_code ec;
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  if (ec) return Status::IoError(parent.string() + ": cannot create: " + ec.message());
  const bool exists = fs::exists(dir, ec);
  if (exists && !options.overwrite) {
    return Status::AlreadyExists(where + ": exists (SaveOptions.overwrite is false)");
  }
  static std::atomic<uint64_t> counter{0};
  // A hidden sibling on the same filesystem, so the final rename is atomic.
  std::string tmp_name(1, '.');
  tmp_name.append(dir.filename().string());
  tmp_name.append(".tmp-").append(std::to_string(::getpid()));
  tmp_name.append("-").append(std::to_string(counter++));
  const fs::path tmp = parent / tmp_name;
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec)) {
    return Status::IoError(tmp.string() + ": cannot create: " + ec.message());
  }
  Status st = WriteCheckpointFiles(tmp.string(), config, specs, dtype, options);
  if (st.ok()) {
    if (exists) {
      // Swap the new directory with the old in one step, then drop the old.
      if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
        st = Status::IoError(where + ": rename exchange: " + std::strerror(errno));
      }
    } else if (::rename(tmp.c_str(), dir.c_str()) != 0) {
      st = Status::IoError(where + ": rename: " + std::strerror(errno));
    }
  }
  fs::remove_all(tmp, ec);  // the partial new dir on failure, the old one after a swap
  if (!st.ok()) return st;
  return SyncDirectory(parent.string());
}

Status LoadCheckpointInto(const std::string& dir, const std::vector<ParamView>& expected,
                          const LoadOptions& options) {
  HERD_ASSIGN_OR_RETURN(SafetensorsSet set, SafetensorsSet::Open(dir));
  // Validate everything first so a bad checkpoint never leaves the buffers
  // half overwritten.
  std::set<std::string> names;
  for (const ParamView& p : expected) {
    if (!names.insert(p.name).second) {
      return Status::InvalidArgument(dir + ": tensor " + Quote(p.name) + " expected twice");
    }
    const SafetensorsSet::Entry* e = set.Find(p.name);
    if (e == nullptr) {
      return Status::NotFound(dir + ": tensor " + Quote(p.name) + " missing from the checkpoint");
    }
    const std::string& file = e->file->path();
    if (e->info->shape != p.shape) {
      return Status::InvalidArgument(file + ": tensor " + Quote(p.name) + " has shape " +
                                     ShapeText(e->info->shape) + ", the model expects " +
                                     ShapeText(p.shape));
    }
    const DType d = e->info->dtype;
    if (d != DType::kF32 && d != DType::kBF16 && d != DType::kF16) {
      return Status::InvalidArgument(file + ": tensor " + Quote(p.name) + " has dtype " +
                                     DTypeName(d) + "; weights must be F32, BF16 or F16");
    }
    if (p.data == nullptr) {
      return Status::InvalidArgument(dir + ": tensor " + Quote(p.name) + " has no buffer");
    }
  }
  if (!options.allow_unexpected) {
    for (const auto& [name, e] : set.tensors()) {
      if (names.count(name) == 0) {
        return Status::InvalidArgument(e.file->path() + ": unexpected tensor " + Quote(name) +
                                       " (not in the model)");
      }
    }
  }
  for (const ParamView& p : expected) {
    HERD_RETURN_IF_ERROR(set.ReadF32(p.name, p.data, p.numel()));
  }
  return Status::Ok();
}

Result<LlamaConfig> LoadCheckpointConfig(const std::string& dir) {
  return LoadConfig(dir + "/config.json");
}

}  // namespace herd::model
