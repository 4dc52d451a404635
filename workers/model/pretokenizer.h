#pragma once
// The pre-tokenizer of an HF tokenizer.json (its "pre_tokenizer" field):
// cuts text into pre-tokens, the units BPE merges within. Supported are the
// byte-level family's steps: Split (a regex or a literal string, with HF's
// five delimiter behaviours and invert), Digits, ByteLevel (GPT-2's regex
// and add_prefix_space) and Sequence of these. The byte → character map of
// ByteLevel is not applied here: BPE works on bytes (bpe.h), so a pre-token
// is a byte range of the text.
//
// Regexes run with PCRE2 (UTF + UCP, JIT compiled). Invalid UTF-8 in the
// text never matches a regex (PCRE2_MATCH_INVALID_UTF), so it ends up in the
// gaps between matches instead of failing.
//
// Thread-safety: immutable after FromJson; Run may be called from any number
// of threads at once (match data is per thread).
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace herd::model {

// A compiled PCRE2 pattern.
class Regex {
 public:
  // `literal` matches the pattern text as is (Split's {"String": ...}).
  // Errors say what PCRE2 rejected and where, without a field name (the
  // caller adds it).
  static Result<std::unique_ptr<Regex>> Compile(std::string_view pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // The first match in text[start..]: sets [*begin, *end) (byte offsets into
  // text) and returns true; false when there is none. The subject is text
  // alone: lookarounds never see past its ends.
  bool Find(std::string_view text, size_t start, size_t* begin, size_t* end) const;

 private:
  Regex() = default;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

// Receives pre-tokens in text order. A pre-token is never empty; its bytes
// live until Piece returns (they may be a copy with a prefix space).
class PieceSink {
 public:
  virtual void Piece(std::string_view piece) = 0;

 protected:
  ~PieceSink() = default;
};

class PreTokenizer {
 public:
  // `j` is the "pre_tokenizer" value. The pipeline must end with exactly one
  // ByteLevel step (herd only reads byte-level vocabularies). Errors are
  // InvalidArgument "unsupported tokenizer: pre_tokenizer...: <what>" or
  // "pre_tokenizer...: <what>" for a malformed field.
  static Result<std::unique_ptr<PreTokenizer>> FromJson(const nlohmann::json& j);
  ~PreTokenizer();

  // Cuts text (one piece between added tokens) into pre-tokens.
  void Run(std::string_view text, PieceSink* sink) const;

  // One step of the pipeline; the ByteLevel step is the last.
  struct Step;

 private:
  PreTokenizer() = default;
  void RunFrom(size_t step, std::string_view text, PieceSink* sink) const;
  std::vector<std::unique_ptr<Step>> steps_;
};

}  // namespace herd::model
