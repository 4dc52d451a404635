#pragma once
// Byte-level tokenizer for herd's tiny models: ids 0..255 are the raw bytes,
// 256..263 the Llama 3 special tokens (fixed ids, see docs/chat-format.md).
// No merges, so any byte string round-trips exactly. It is saved as an HF
// tokenizer.json (BPE over the ByteLevel alphabet with no merges) that
// transformers' PreTrainedTokenizerFast loads with identical ids.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace herd::model {

class Tokenizer;  // hf_tokenizer.h

inline constexpr int32_t kBeginOfText = 256;        // <|begin_of_text|>
inline constexpr int32_t kEndOfText = 257;          // <|end_of_text|>
inline constexpr int32_t kStartHeaderId = 258;      // <|start_header_id|>
inline constexpr int32_t kEndHeaderId = 259;        // <|end_header_id|>
inline constexpr int32_t kEotId = 260;              // <|eot_id|>: end of turn
inline constexpr int32_t kEomId = 261;              // <|eom_id|>: end of message (tool call)
inline constexpr int32_t kPythonTag = 262;          // <|python_tag|>
inline constexpr int32_t kFinetuneRightPadId = 263; // <|finetune_right_pad_id|>
inline constexpr int32_t kByteVocabSize = 264;      // 256 bytes + 8 specials

class ByteTokenizer {
 public:
  static constexpr int32_t vocab_size() { return kByteVocabSize; }

  // "<|eot_id|>" for a special id, nullptr for a byte or an invalid id.
  static const char* SpecialText(int32_t id);
  static std::optional<int32_t> SpecialId(std::string_view text);

  // Appends one id per byte. With parse_special, the exact text of a
  // special token (e.g. "<|eot_id|>") becomes its id; otherwise it is
  // plain bytes, so user text can never inject a control token.
  static void EncodeAppend(std::string_view text, std::vector<int32_t>* out,
                           bool parse_special = false);
  static std::vector<int32_t> Encode(std::string_view text, bool parse_special = false);

  // The bytes the ids stand for (specials as their text unless
  // skip_special). An id outside [0, vocab_size) is InvalidArgument naming
  // its position.
  static Result<std::string> DecodeBytes(const std::vector<int32_t>& ids,
                                         bool skip_special = false);
  // As DecodeBytes, then made valid UTF-8: each maximal invalid subsequence
  // becomes U+FFFD, as Python's errors="replace" and HF's decoder do.
  static Result<std::string> Decode(const std::vector<int32_t>& ids, bool skip_special = false);

  // HF tokenizer files (see docs/chat-format.md). The chat template in
  // tokenizer_config.json renders exactly what FormatChat (chat_format.h)
  // produces. eos_token is <|eot_id|> (chat models end their turn with it).
  static std::string TokenizerJson();
  static std::string TokenizerConfigJson();

  // The byte tokenizer behind the general Tokenizer interface (what the
  // chat formatter and the workers use), without parsing TokenizerJson().
  static std::shared_ptr<const Tokenizer> Shared();
};

// Replaces each maximal invalid UTF-8 subsequence of bytes with U+FFFD.
std::string SanitizeUtf8(std::string_view bytes);

// GPT-2's byte-level alphabet (bytes_to_unicode): printable Latin-1 bytes
// stand for themselves, the other 68 bytes map to U+0100.. in byte order,
// so every byte is one visible character in a tokenizer.json vocabulary.
const std::array<uint32_t, 256>& ByteLevelAlphabet();
// The byte an alphabet character stands for; -1 when cp is not one.
int ByteLevelByte(uint32_t cp);
// Appends the UTF-8 encoding of the code point cp (< 0x110000).
void AppendUtf8(uint32_t cp, std::string* out);
// Decodes the character at s[*i] and advances *i past it. Meant for valid
// UTF-8 (JSON strings); a byte that starts no sequence, or a sequence cut
// short by the end, decodes as that one byte.
uint32_t NextCodePoint(std::string_view s, size_t* i);
// Whether s is valid UTF-8 made only of byte-level alphabet characters:
// a token as a byte-level BPE vocabulary spells it.
bool IsByteLevelSpelling(std::string_view s);

}  // namespace herd::model
