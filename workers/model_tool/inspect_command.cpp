// herd-model inspect PATH [--tensors] [--json]: what a model is. PATH is an
// HF checkpoint directory or a .gguf file. Shows the config, the tensors
// (summarised unless --tensors), the tokenizer (type, vocabulary size,
// special tokens) and the chat template (kind and first line). --json prints
// the same as one JSON object.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "workers/model/checkpoint.h"
#include "workers/model/gguf.h"
#include "workers/model/chat_format.h"
#include "workers/model/gguf_import.h"
#include "workers/model/safetensors.h"
#include "workers/model_tool/commands.h"
#include "workers/model_tool/format.h"

namespace herd::model_tool {
namespace {

using ordered_json = nlohmann::ordered_json;
namespace fs = std::filesystem;

struct InspectArgs {
  std::string path;
  bool tensors = false;  // Default: false (tensors summarised when there are many)
  bool json = false;     // Default: false (text for people)
};

// Tensor lists longer than this are summarised unless --tensors.
constexpr size_t kFullListLimit = 24;

ordered_json TensorJson(const std::string& name, const std::vector<int64_t>& shape,
                        const std::string& dtype) {
  return {{"name", name}, {"shape", shape}, {"dtype", dtype}};
}

ordered_json ConfigJson(const Result<model::LlamaConfig>& c) {
  if (!c.ok()) return {{"error", c.status().message()}};
  ordered_json j = ordered_json::parse(model::ConfigToJson(*c));
  return j;
}

ordered_json ChatJson(const std::string& tmpl) {
  return {{"kind", model::DescribeChatTemplate(tmpl)}, {"first_line", FirstLine(tmpl)}};
}

// A special token in tokenizer_config.json: a string or {"content": ...}.
ordered_json TokenText(const ordered_json& v) {
  if (v.is_string()) return v;
  if (v.is_object() && v.contains("content")) return v["content"];
  return nullptr;
}

std::string DescribePreTokenizer(const ordered_json& p) {
  if (!p.is_object()) return "none";
  std::string type = p.value("type", "?");
  if (type == "Sequence" && p.contains("pretokenizers")) {
    std::string s = "Sequence[";
    for (size_t i = 0; i < p["pretokenizers"].size(); ++i) {
      s += (i ? ", " : "") + DescribePreTokenizer(p["pretokenizers"][i]);
    }
    return s + "]";
  }
  return type;
}

std::string ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ordered_json InspectHfDir(const std::string& dir) {
  ordered_json doc = {{"path", dir}, {"format", "hf"}};
  auto config = model::LoadCheckpointConfig(dir);
  auto weights = model::SafetensorsSet::Open(dir);
  if (!config.ok() && !weights.ok()) {
    Fail(dir + " is not an HF checkpoint: " + config.status().message() + "; " +
         weights.status().message());
  }
  doc["config"] = ConfigJson(config);

  ordered_json tensors = {{"count", 0}, {"parameters", 0}, {"dtypes", ordered_json::object()}};
  ordered_json list = ordered_json::array();
  if (weights.ok()) {
    int64_t params = 0;
    std::map<std::string, int64_t> dtypes;
    for (const auto& [name, e] : weights->tensors()) {
      params += e.info->numel();
      ++dtypes[model::DTypeName(e.info->dtype)];
      list.push_back(TensorJson(name, e.info->shape, model::DTypeName(e.info->dtype)));
    }
    tensors["count"] = list.size();
    tensors["parameters"] = params;
    tensors["dtypes"] = dtypes;
  } else {
    tensors["error"] = weights.status().message();
  }
  tensors["list"] = list;
  doc["tensors"] = tensors;

  ordered_json tok = nullptr;
  const std::string tj = dir + "/tokenizer.json", tc = dir + "/tokenizer_config.json";
  if (fs::exists(tj)) {
    ordered_json t = ordered_json::parse(ReadText(tj), nullptr, false);
    if (t.is_discarded() || !t.is_object()) {
      tok = {{"error", tj + ": not valid JSON"}};
    } else {
      const ordered_json& m = t.value("model", ordered_json::object());
      int64_t vocab = 0;
      if (m.contains("vocab") && m["vocab"].is_object()) {
        for (const auto& [k, id] : m["vocab"].items()) {
          if (id.is_number_integer()) vocab = std::max<int64_t>(vocab, id.get<int64_t>() + 1);
        }
      }
      ordered_json specials = ordered_json::array();
      for (const auto& a : t.value("added_tokens", ordered_json::array())) {
        if (a.value("id", int64_t{-1}) >= vocab) vocab = a["id"].get<int64_t>() + 1;
        if (a.value("special", false)) specials.push_back(a.value("content", ""));
      }
      tok = {{"type", m.value("type", "?")},
             {"pre_tokenizer", DescribePreTokenizer(t.value("pre_tokenizer", ordered_json()))},
             {"vocab_size", vocab},
             {"merges", m.contains("merges") ? m["merges"].size() : 0},
             {"special_tokens", specials}};
    }
  }
  if (fs::exists(tc)) {
    ordered_json c = ordered_json::parse(ReadText(tc), nullptr, false);
    if (c.is_object()) {
      if (tok.is_null()) tok = ordered_json::object();
      for (const char* k : {"bos_token", "eos_token", "pad_token", "unk_token"}) {
        tok[k] = c.contains(k) ? TokenText(c[k]) : ordered_json(nullptr);
      }
    }
  }
  doc["tokenizer"] = tok;
  // The template herd's workers use (the same lookup as LoadChatFormatter).
  auto chat_template = model::ReadChatTemplate(dir);
  doc["chat_template"] = chat_template.ok() ? ChatJson(*chat_template)
                                            : ordered_json{{"error", chat_template.status().message()}};
  return doc;
}

// A metadata value as JSON; arrays of more than 8 items as their
// description ("[49152 x string]"), so the vocabulary is not printed.
ordered_json MetadataJson(const model::GgufValue& v) {
  using T = model::GgufValueType;
  switch (v.type) {
    case T::kI8:
    case T::kI16:
    case T::kI32:
    case T::kI64:
      return v.i;
    case T::kU8:
    case T::kU16:
    case T::kU32:
    case T::kU64:
      return v.u;
    case T::kBool:
      return v.i != 0;
    case T::kF32:
    case T::kF64:
      return v.f;
    case T::kString:
      return v.s;
    case T::kArray: {
      if (v.items.size() > 8) return v.Describe();
      ordered_json a = ordered_json::array();
      for (const auto& item : v.items) a.push_back(MetadataJson(item));
      return a;
    }
  }
  return nullptr;
}

ordered_json InspectGguf(const std::string& path) {
  auto f = model::GgufFile::Open(path);
  if (!f.ok()) Fail(f.status().message());
  ordered_json doc = {{"path", path}, {"format", "gguf"}};
  ordered_json meta = ordered_json::object();
  for (const auto& [key, v] : f->metadata()) {
    if (key == "tokenizer.chat_template") continue;  // under chat_template
    meta[key] = MetadataJson(v);
  }
  doc["gguf"] = {{"version", f->version()}, {"alignment", f->alignment()}, {"metadata", meta}};
  doc["config"] = ConfigJson(model::LlamaConfigFromGguf(*f));

  int64_t params = 0;
  std::map<std::string, int64_t> dtypes;
  ordered_json list = ordered_json::array();
  for (const auto& t : f->tensors()) {
    params += t.numel();
    ++dtypes[model::GgmlTypeName(t.type)];
    list.push_back(TensorJson(t.name, t.shape(), model::GgmlTypeName(t.type)));
  }
  doc["tensors"] = {
      {"count", list.size()}, {"parameters", params}, {"dtypes", dtypes}, {"list", list}};

  auto str = [&](const std::string& k) {
    auto r = f->GetString(k);
    return r.ok() ? ordered_json(*r) : ordered_json(nullptr);
  };
  ordered_json tok = nullptr;
  if (auto tokens = f->GetStringArray("tokenizer.ggml.tokens"); tokens.ok()) {
    std::vector<int64_t> types;
    if (auto ty = f->GetIntArray("tokenizer.ggml.token_type"); ty.ok()) types = *ty;
    ordered_json specials = ordered_json::array();
    for (size_t i = 0; i < types.size() && i < tokens->size(); ++i) {
      if (types[i] == 3) specials.push_back((*tokens)[i]);
    }
    auto merges = f->GetStringArray("tokenizer.ggml.merges");
    tok = {{"type", str("tokenizer.ggml.model")},
           {"pre_tokenizer", str("tokenizer.ggml.pre")},
           {"vocab_size", tokens->size()},
           {"merges", merges.ok() ? merges->size() : 0},
           {"special_tokens", specials}};
    for (const auto& [k, key] : {std::pair{"bos_token", "tokenizer.ggml.bos_token_id"},
                                 {"eos_token", "tokenizer.ggml.eos_token_id"},
                                 {"pad_token", "tokenizer.ggml.padding_token_id"},
                                 {"unk_token", "tokenizer.ggml.unknown_token_id"}}) {
      auto id = f->GetInt(key);
      tok[k] = id.ok() && *id >= 0 && *id < static_cast<int64_t>(tokens->size())
                   ? ordered_json((*tokens)[*id])
                   : ordered_json(nullptr);
    }
  }
  doc["tokenizer"] = tok;
  auto tmpl = f->GetString("tokenizer.chat_template");
  doc["chat_template"] = ChatJson(tmpl.ok() ? *tmpl : "");
  return doc;
}

// Whether a tensor belongs to a layer other than the first ("blk.N." or
// "model.layers.N." with N >= 1), for the summarised list.
bool InLaterLayer(const std::string& name) {
  static const std::regex kLayer(R"(^(blk|model\.layers)\.([0-9]+)\.)");
  std::smatch m;
  return std::regex_search(name, m, kLayer) && m[2].str() != "0";
}

std::string JsonText(const ordered_json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

void PrintText(const ordered_json& doc, bool all_tensors) {
  std::printf("%s (%s)\n", doc["path"].get<std::string>().c_str(),
              doc["format"] == "gguf" ? "GGUF" : "HF checkpoint");
  if (doc.contains("gguf")) {
    const auto& g = doc["gguf"];
    const auto& m = g["metadata"];
    std::printf("  gguf       v%s, alignment %s, %zu metadata keys", JsonText(g["version"]).c_str(),
                JsonText(g["alignment"]).c_str(),
                m.size() + (doc["chat_template"]["kind"] != "none"));
    if (m.contains("general.name")) std::printf(", name %s", JsonText(m["general.name"]).c_str());
    std::printf("\n");
  }
  const auto& c = doc["config"];
  if (c.contains("error")) {
    std::printf("  config     (none: %s)\n", c["error"].get<std::string>().c_str());
  } else {
    auto parsed = model::ParseConfigJson(c.dump());
    std::printf("  config     llama %s\n",
                parsed.ok() ? ConfigLine(*parsed).c_str() : parsed.status().message().c_str());
  }
  const auto& t = doc["tensors"];
  std::map<std::string, int64_t> dtypes = t["dtypes"].get<std::map<std::string, int64_t>>();
  std::printf("  tensors    %s, %s parameters (%s)\n", JsonText(t["count"]).c_str(),
              HumanCount(t["parameters"].get<int64_t>()).c_str(), CountsText(dtypes).c_str());
  const auto& list = t["list"];
  const bool full = all_tensors || list.size() <= kFullListLimit;
  size_t hidden = 0;
  for (const auto& e : list) {
    const std::string name = e["name"].get<std::string>();
    if (!full && InLaterLayer(name)) {
      ++hidden;
      continue;
    }
    std::printf("    %-52s %-8s %s\n", name.c_str(), e["dtype"].get<std::string>().c_str(),
                ShapeText(e["shape"].get<std::vector<int64_t>>()).c_str());
  }
  if (hidden) std::printf("    ... %zu more in later layers (--tensors lists all)\n", hidden);
  const auto& tok = doc["tokenizer"];
  if (tok.is_null()) {
    std::printf("  tokenizer  (none)\n");
  } else if (tok.contains("error")) {
    std::printf("  tokenizer  (%s)\n", tok["error"].get<std::string>().c_str());
  } else {
    std::printf("  tokenizer  %s", JsonText(tok.value("type", ordered_json("?"))).c_str());
    if (tok.contains("pre_tokenizer")) std::printf(" / %s", JsonText(tok["pre_tokenizer"]).c_str());
    if (tok.contains("vocab_size")) {
      std::printf(", %s tokens, %s merges", JsonText(tok["vocab_size"]).c_str(),
                  JsonText(tok["merges"]).c_str());
    }
    std::printf("\n");
    for (const char* k : {"bos_token", "eos_token", "pad_token", "unk_token"}) {
      if (tok.contains(k) && !tok[k].is_null())
        std::printf("    %-10s %s\n", k, JsonText(tok[k]).c_str());
    }
    if (tok.contains("special_tokens")) {
      std::string s;
      size_t shown = 0;
      for (const auto& sp : tok["special_tokens"]) {
        if (shown++ == 12) {
          s += " ...";
          break;
        }
        s += (s.empty() ? "" : " ") + sp.get<std::string>();
      }
      std::printf("    special    %zu: %s\n", tok["special_tokens"].size(), s.c_str());
    }
  }
  const auto& chat = doc["chat_template"];
  std::printf("  chat       %s", chat["kind"].get<std::string>().c_str());
  if (chat["kind"] != "none") std::printf(": %s", chat["first_line"].get<std::string>().c_str());
  std::printf("\n");
}

void RunInspect(const InspectArgs& a) {
  ordered_json doc;
  if (fs::is_directory(a.path)) {
    doc = InspectHfDir(a.path);
  } else if (fs::is_regular_file(a.path)) {
    doc = InspectGguf(a.path);
  } else {
    Fail(a.path + ": no such file or directory");
  }
  if (a.json) {
    if (!a.tensors) doc["tensors"].erase("list");
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    PrintText(doc, a.tensors);
  }
}

}  // namespace

void AddInspectCommand(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd =
      app.add_subcommand("inspect", "show a model's config, tensors, tokenizer and chat template");
  cmd->add_option("path", args->path, "an HF checkpoint directory or a .gguf file")->required();
  cmd->add_flag("--tensors", args->tensors, "list every tensor");
  cmd->add_flag("--json", args->json, "print one JSON object");
  cmd->callback([args] { RunInspect(*args); });
}

}  // namespace herd::model_tool
