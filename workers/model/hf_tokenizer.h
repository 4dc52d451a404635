#pragma once
// A tokenizer read from an HF tokenizer.json: byte-level BPE (the GPT-2 /
// Llama 3 / SmolLM2 family), with its pre-tokenizer regexes run by PCRE2,
// merges by rank, and added/special tokens. herd's own byte tokenizer
// (tokenizer.h: ByteTokenizer::TokenizerJson) is the case with no merges.
// See docs/chat-format.md.
//
// Thread-safety: a Tokenizer is immutable after FromJson; Encode and Decode
// may be called from any number of threads at once.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace herd::model {

struct EncodeOptions {
  // When true, the exact text of an added token (special or not) becomes its
  // id, as HF `tokenizers` does. When false, added-token text is ordinary
  // text, so a user who types "<|im_end|>" gets the tokens of those
  // characters: herd's chat formatter places special tokens itself and
  // always encodes message content with false. Default: false.
  bool parse_special = false;
};

class Tokenizer {
 public:
  // Parses tokenizer.json text. Supported: model.type "BPE" with the
  // ByteLevel decoder/pre-tokenizer family (ByteLevel, Split with a Regex
  // pattern, Digits, Sequence of these), normalizer null (or absent),
  // added_tokens. Anything else (e.g. a Metaspace pre-tokenizer, a
  // normalizer, byte_fallback) is InvalidArgument
  // "unsupported tokenizer: <json path>: <what>", naming the field.
  // `source` names the file in errors.
  static Result<std::shared_ptr<const Tokenizer>> FromJson(std::string_view tokenizer_json,
                                                           std::string_view source = "tokenizer.json");
  static Result<std::shared_ptr<const Tokenizer>> FromFile(const std::string& path);

  virtual ~Tokenizer() = default;

  // One more than the largest id (model vocab and added tokens).
  virtual int32_t vocab_size() const = 0;

  // The id of a token by its text in the vocabulary (e.g. "<|im_end|>",
  // "<|eot_id|>"), added tokens included; nullopt when absent.
  virtual std::optional<int32_t> TokenId(std::string_view token) const = 0;
  // True for added tokens marked "special": true.
  virtual bool IsSpecial(int32_t id) const = 0;

  // Appends the ids of text (no BOS or other added-around tokens).
  virtual void EncodeAppend(std::string_view text, std::vector<int32_t>* out,
                            const EncodeOptions& options = {}) const = 0;
  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options = {}) const {
    std::vector<int32_t> ids;
    EncodeAppend(text, &ids, options);
    return ids;
  }

  // The bytes the ids stand for (special tokens as their text unless
  // skip_special). An id outside [0, vocab_size) is InvalidArgument naming
  // its position.
  virtual Result<std::string> DecodeBytes(const std::vector<int32_t>& ids,
                                          bool skip_special = false) const = 0;
  // DecodeBytes, then made valid UTF-8 (SanitizeUtf8 in tokenizer.h), as
  // HF's decode does.
  Result<std::string> Decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  // The tokenizer.json text it was read from (checkpoints copy it).
  virtual const std::string& json() const = 0;
};

}  // namespace herd::model
