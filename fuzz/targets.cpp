#include "fuzz/targets.h"

#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "api/ingest/annotation.h"
#include "api/wire/http.h"
#include "daemon/run_config.h"
#include "stores/store.h"
#include "workers/model/chat_format.h"
#include "workers/model/gguf.h"
#include "workers/model/gguf_import.h"
#include "workers/model/hf_tokenizer.h"
#include "workers/model/safetensors.h"

namespace herd::fuzz {
namespace {

std::string_view Text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A tokenizer.json a user names in a run config (herdd loads it at run
// creation). When it loads, encoding and decoding must not crash either.
void TokenizerJson(const uint8_t* data, size_t size) {
  auto t = model::Tokenizer::FromJson(Text(data, size), "fuzz.json");
  if (!t.ok()) return;
  const model::Tokenizer& tok = **t;
  for (bool special : {false, true}) {
    model::EncodeOptions o;
    o.parse_special = special;
    auto ids = tok.Encode("Hello, wörld! 123 <|im_end|>  \n\t🦙", o);
    (void)tok.Decode(ids);
  }
  std::vector<int32_t> all;
  for (int32_t id = 0; id < tok.vocab_size() && id < 4096; ++id) all.push_back(id);
  all.push_back(-1);
  (void)tok.Decode(all, /*skip_special=*/true);
}

// A checkpoint's Jinja chat template.
void ChatTemplate(const uint8_t* data, size_t size) {
  auto t = model::DetectChatTemplate(Text(data, size));
  if (t.ok()) (void)model::DetectChatTemplate(model::ChatTemplateJinja(*t));
}

// A GGUF file: metadata, tensor table, the tokenizer built from it, and the
// dequantization of every tensor small enough to try.
void Gguf(const uint8_t* data, size_t size) {
  auto f = model::GgufFile::FromBytes("fuzz.gguf", std::string(Text(data, size)));
  if (!f.ok()) return;
  (void)model::HfTokenizerFromGguf(*f, 4096);
  std::vector<float> out;
  for (const auto& t : f->tensors()) {
    int64_t n = 1;  // the parser bounds every count; stop early anyway
    for (int64_t d : t.ne) {
      if (d <= 0 || d > (1 << 16)) {
        n = 0;
        break;
      }
      n *= d;
      if (n > (1 << 16)) break;
    }
    if (n <= 0 || n > (1 << 16)) continue;
    out.resize(static_cast<size_t>(n));
    (void)f->ReadF32(t, out.data(), n);
  }
}

// A safetensors header against a data section of the bytes' length.
void SafetensorsHeader(const uint8_t* data, size_t size) {
  std::vector<model::TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  (void)model::ParseSafetensorsHeader("fuzz.safetensors", std::string(Text(data, size)), size, &tensors,
                                      &metadata);
}

// POST /v1/runs bodies.
void RunConfig(const uint8_t* data, size_t size) {
  auto c = daemon::ParseRunConfig(std::string(Text(data, size)));
  if (c.ok()) (void)daemon::ParseRunConfig(daemon::RunConfigToJson(*c));
}

// Lines of annotation and prompt uploads.
void AnnotationLine(const uint8_t* data, size_t size) {
  (void)ingest::ParseAnnotationLine(Text(data, size), 1, {});
}

void PromptLine(const uint8_t* data, size_t size) { (void)ingest::ParsePromptLine(Text(data, size), 1); }

// Request targets (path and query) as the server splits them.
void HttpTarget(const uint8_t* data, size_t size) {
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  (void)api::ParseTarget(Text(data, size), &path, &query);
}

// Page tokens of listings, through the public listings of a real store (a
// RocksDB in a temporary directory, opened once per process, with a few
// runs and requests so that a token can point somewhere).
class FuzzStore {
 public:
  FuzzStore() {
    dir_ = (std::filesystem::temp_directory_path() / ("herd-fuzz-store-" + std::to_string(::getpid()))).string();
    stores::StoreOptions o;
    o.data_dir = dir_;
    auto s = stores::Store::Open(o);
    if (!s.ok()) return;
    store_ = std::move(s).value();
    stores::WriteTxn txn = store_->NewTxn();
    for (int i = 0; i < 5; ++i) {
      stores::Run r;
      r.id = "run-" + std::to_string(i);
      r.name = r.id;
      r.state = "created";
      txn.PutRun(r);
      stores::AnnotationRequest q;
      q.run_id = "run-1";
      q.id = "req-" + std::to_string(i);
      q.state = "pending";
      txn.PutAnnotationRequest(q);
    }
    if (!store_->Commit(txn).ok()) store_.reset();
  }
  ~FuzzStore() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  stores::Store* get() const { return store_.get(); }

 private:
  std::string dir_;
  std::unique_ptr<stores::Store> store_;
};

void PageToken(const uint8_t* data, size_t size) {
  static FuzzStore store;
  if (store.get() == nullptr) return;
  stores::PageRequest r;
  r.page_size = 2;
  r.page_token = std::string(Text(data, size));
  (void)store.get()->ListRuns(r);
  (void)store.get()->ListAnnotationRequests("run-1", "pending", r);
}

}  // namespace

const std::vector<NamedTarget>& Targets() {
  static const std::vector<NamedTarget> k = {
      {"tokenizer_json", TokenizerJson},
      {"chat_template", ChatTemplate},
      {"gguf", Gguf},
      {"safetensors_header", SafetensorsHeader},
      {"run_config", RunConfig},
      {"annotation_line", AnnotationLine},
      {"prompt_line", PromptLine},
      {"http_target", HttpTarget},
      {"page_token", PageToken},
  };
  return k;
}

Target FindTarget(std::string_view name) {
  for (const auto& t : Targets()) {
    if (name == t.name) return t.run;
  }
  return nullptr;
}

}  // namespace herd::fuzz
