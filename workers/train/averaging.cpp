#include "workers/train/averaging.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "workers/model/config.h"
#include "common/sha256.h"

namespace herd::train {
namespace fs = std::filesystem;
namespace {

std::string InputName(size_t i, const AverageInput& in) {
  return "inputs[" + std::to_string(i) + "] (" + in.dir + ")";
}

// The first key where two config.json documents differ, "" when equal.
std::string FirstDifference(const nlohmann::json& a, const nlohmann::json& b) {
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (!b.contains(it.key())) return it.key();
    if (b.at(it.key()) != it.value()) return it.key();
  }
  for (auto it = b.begin(); it != b.end(); ++it) {
    if (!a.contains(it.key())) return it.key();
  }
  return "";
}

std::string ShapeString(const std::vector<int64_t>& s) {
  std::string o = "(";
  for (size_t k = 0; k < s.size(); ++k) o += (k ? ", " : "") + std::to_string(s[k]);
  return o + ")";
}

Status CopyIfPresent(const fs::path& from_dir, const fs::path& to_dir, const char* name) {
  std::error_code ec;
  if (!fs::exists(from_dir / name, ec)) return Status::Ok();
  fs::copy_file(from_dir / name, to_dir / name, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::IoError((from_dir / name).string() + ": copy failed: " + ec.message());
  return Status::Ok();
}

// Removes the partial output unless released.
struct PartialDir {
  fs::path path;
  bool keep = false;
  ~PartialDir() {
    if (!keep) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

}  // namespace

Result<AverageReport> AverageCheckpoints(const std::vector<AverageInput>& inputs,
                                         const std::string& out_dir, const AverageOptions& opts) {
  if (inputs.empty())
    return Status::InvalidArgument("average: inputs: need at least one checkpoint");
  AverageReport rep;
  double wsum = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const double w = inputs[i].weight;
    if (!std::isfinite(w) || w < 0) {
      return Status::InvalidArgument("average: " + InputName(i, inputs[i]) +
                                     ": weight must be finite and >= 0, got " + std::to_string(w));
    }
    wsum += w;
  }
  if (!(wsum > 0)) return Status::InvalidArgument("average: weights sum to 0");
  for (const auto& in : inputs) rep.weights.push_back(in.weight / wsum);

  // Configs: identical as config.json documents (after parsing and
  // re-serialising, so formatting and key order do not matter).
  std::vector<nlohmann::json> configs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto c = model::LoadConfig((fs::path(inputs[i].dir) / "config.json").string());
    if (!c.ok()) return c.status().WithContext("average: " + InputName(i, inputs[i]));
    configs.push_back(nlohmann::json::parse(model::ConfigToJson(*c)));
    if (i > 0) {
      const std::string key = FirstDifference(configs[0], configs[i]);
      if (!key.empty()) {
        return Status::InvalidArgument(
            "average: " + InputName(i, inputs[i]) + ": config.json field '" + key +
            "' differs from inputs[0]: " +
            (configs[i].contains(key) ? configs[i][key].dump() : "missing") + " vs " +
            (configs[0].contains(key) ? configs[0][key].dump() : "missing"));
      }
    }
  }

  // Weights: the same tensor names and shapes everywhere.
  std::vector<std::unique_ptr<model::SafetensorsSet>> sets;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto s = model::SafetensorsSet::Open(inputs[i].dir);
    if (!s.ok()) return s.status().WithContext("average: " + InputName(i, inputs[i]));
    sets.push_back(std::make_unique<model::SafetensorsSet>(std::move(s).value()));
  }
  const auto& ref = sets[0]->tensors();
  for (size_t i = 1; i < sets.size(); ++i) {
    const auto& ti = sets[i]->tensors();
    for (const auto& [name, e] : ref) {
      const auto* other = sets[i]->Find(name);
      if (!other) {
        return Status::InvalidArgument("average: " + InputName(i, inputs[i]) + ": tensor '" + name +
                                       "' missing (present in inputs[0])");
      }
      if (other->info->shape != e.info->shape) {
        return Status::InvalidArgument("average: " + InputName(i, inputs[i]) + ": tensor '" + name +
                                       "' has shape " + ShapeString(other->info->shape) +
                                       ", inputs[0] has " + ShapeString(e.info->shape));
      }
    }
    for (const auto& [name, e] : ti) {
      if (!sets[0]->Find(name)) {
        return Status::InvalidArgument("average: " + InputName(i, inputs[i]) + ": tensor '" + name +
                                       "' not in inputs[0]");
      }
    }
  }

  const fs::path out(out_dir);
  std::error_code ec;
  if (fs::exists(out, ec) && !opts.overwrite) {
    return Status::AlreadyExists("average: output " + out_dir + " exists");
  }
  PartialDir partial{out.string() + ".partial"};
  fs::remove_all(partial.path, ec);
  fs::create_directories(partial.path, ec);
  if (ec) return Status::IoError(partial.path.string() + ": " + ec.message());

  std::vector<model::TensorSpec> specs;
  int64_t max_numel = 0;
  for (const auto& [name, e] : ref) {
    model::TensorSpec s;
    s.name = name;
    s.shape = e.info->shape;
    specs.push_back(std::move(s));
    max_numel = std::max(max_numel, e.info->numel());
    rep.parameters += e.info->numel();
  }
  rep.tensors = static_cast<int64_t>(specs.size());
  const fs::path weights_path = partial.path / "model.safetensors";
  auto writer = model::SafetensorsWriter::Create(weights_path.string(), specs, opts.dtype,
                                                 {{"format", "pt"}});
  if (!writer.ok()) return writer.status().WithContext("average");
  // One tensor at a time: buf holds an input's values (fp32), acc the
  // weighted sum in float64 so N inputs add no rounding beyond the final
  // conversion to fp32.
  std::vector<float> buf(static_cast<size_t>(max_numel));
  std::vector<double> acc(static_cast<size_t>(max_numel));
  for (const auto& spec : specs) {
    const int64_t n = ref.at(spec.name).info->numel();
    std::fill(acc.begin(), acc.begin() + n, 0.0);
    for (size_t i = 0; i < sets.size(); ++i) {
      HERD_RETURN_IF_ERROR(sets[i]
                               ->ReadF32(spec.name, buf.data(), n)
                               .WithContext("average: " + InputName(i, inputs[i])));
      const double w = rep.weights[i];
      for (int64_t k = 0; k < n; ++k) acc[k] += w * buf[k];
    }
    for (int64_t k = 0; k < n; ++k) buf[k] = static_cast<float>(acc[k]);
    HERD_RETURN_IF_ERROR(writer->AppendF32(buf.data(), n).WithContext("average: " + spec.name));
  }
  HERD_RETURN_IF_ERROR(writer->Finish().WithContext("average"));

  const fs::path first(inputs[0].dir);
  for (const char* name : {"config.json", "generation_config.json", "tokenizer.json",
                           "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"}) {
    HERD_RETURN_IF_ERROR(CopyIfPresent(first, partial.path, name));
  }

  // Provenance: every input weight file's sha256 (the shards of a sharded
  // input each), the normalised weights, and the output's sha256.
  nlohmann::json prov;
  prov["method"] = "weighted_mean";
  prov["dtype"] = model::DTypeName(opts.dtype);
  prov["tensors"] = rep.tensors;
  prov["parameters"] = rep.parameters;
  prov["inputs"] = nlohmann::json::array();
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::set<std::string> files;
    for (const auto& [name, e] : sets[i]->tensors()) files.insert(e.file->path());
    nlohmann::json in;
    in["path"] = inputs[i].dir;
    in["weight"] = inputs[i].weight;
    in["normalized_weight"] = rep.weights[i];
    in["files"] = nlohmann::json::array();
    for (const auto& f : files) {
      HERD_ASSIGN_OR_RETURN(std::string h, FileSha256(f));
      in["files"].push_back({{"name", fs::path(f).filename().string()}, {"sha256", h}});
    }
    prov["inputs"].push_back(std::move(in));
  }
  HERD_ASSIGN_OR_RETURN(rep.output_sha256, FileSha256(weights_path.string()));
  prov["output"] = {{"files", {{{"name", "model.safetensors"}, {"sha256", rep.output_sha256}}}}};
  HERD_RETURN_IF_ERROR(
      WriteFileAtomic((partial.path / "averaging.json").string(), prov.dump(2) + "\n"));
  if (fs::exists(out, ec)) fs::remove_all(out, ec);
  fs::rename(partial.path, out, ec);
  if (ec) return Status::IoError("average: rename to " + out_dir + ": " + ec.message());
  partial.keep = true;
  return rep;
}

}  // namespace herd::train
