#include "workers/model/tokenizer.h"

#include <array>

#include <nlohmann/json.hpp>

#include "workers/model/hf_tokenizer.h"

namespace herd::model {
namespace {

using nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// Index = id - 256.
constexpr std::array<const char*, 8> kSpecials = {
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eot_id|>",        "<|eom_id|>",      "<|python_tag|>",      "<|finetune_right_pad_id|>",
};

ordered_json AddedToken(int32_t id) {
  return ordered_json{{"id", id},          {"content", kSpecials[id - 256]},
                      {"single_word", false}, {"lstrip", false},
                      {"rstrip", false},    {"normalized", false},
                      {"special", true}};
}

// The chat template; it must render byte-for-byte what FormatChat emits
// (tests/reference/check_tokenizer.py verifies this with transformers).
constexpr const char* kChatTemplate =
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['role'] not in ['system', 'user', 'assistant', 'ipython'] %}"
    "{{- raise_exception('unsupported role: ' + message['role']) }}"
    "{%- endif %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] "
    "+ '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}";

}  // namespace

const char* ByteTokenizer::SpecialText(int32_t id) {
  if (id < 256 || id >= kByteVocabSize) return nullptr;
  return kSpecials[static_cast<size_t>(id - 256)];
}

std::optional<int32_t> ByteTokenizer::SpecialId(std::string_view text) {
  for (size_t i = 0; i < kSpecials.size(); ++i) {
    if (text == kSpecials[i]) return static_cast<int32_t>(256 + i);
  }
  return std::nullopt;
}

void ByteTokenizer::EncodeAppend(std::string_view text, std::vector<int32_t>* out,
                                 bool parse_special) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (parse_special && text[i] == '<' && i + 1 < text.size() && text[i + 1] == '|') {
      bool matched = false;
      for (size_t s = 0; s < kSpecials.size(); ++s) {
        const std::string_view sp = kSpecials[s];
        if (text.substr(i, sp.size()) == sp) {
          out->push_back(static_cast<int32_t>(256 + s));
          i += sp.size() - 1;
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    out->push_back(static_cast<int32_t>(static_cast<unsigned char>(text[i])));
  }
}

std::vector<int32_t> ByteTokenizer::Encode(std::string_view text, bool parse_special) {
  std::vector<int32_t> out;
  out.reserve(text.size());
  EncodeAppend(text, &out, parse_special);
  return out;
}

Result<std::string> ByteTokenizer::DecodeBytes(const std::vector<int32_t>& ids,
                                               bool skip_special) {
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id >= 0 && id < 256) {
      out.push_back(static_cast<char>(id));
    } else if (const char* s = SpecialText(id)) {
      if (!skip_special) out += s;
    } else {
      return Status::InvalidArgument("decode: id " + std::to_string(id) + " at position " +
                                     std::to_string(i) + " is outside the vocabulary [0, " +
                                     std::to_string(kByteVocabSize) + ")");
    }
  }
  return out;
}

Result<std::string> ByteTokenizer::Decode(const std::vector<int32_t>& ids, bool skip_special) {
  HERD_ASSIGN_OR_RETURN(std::string bytes, DecodeBytes(ids, skip_special));
  return SanitizeUtf8(bytes);
}

namespace {

struct ByteLevelTables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> to_byte{};  // code point → byte, -1 when not in the alphabet
  ByteLevelTables() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      to_cp[b] = printable ? b : next++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables t;
  return t;
}

}  // namespace

const std::array<uint32_t, 256>& ByteLevelAlphabet() { return Tables().to_cp; }

int ByteLevelByte(uint32_t cp) {
  const auto& to_byte = Tables().to_byte;
  return cp < to_byte.size() ? to_byte[cp] : -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t NextCodePoint(std::string_view s, size_t* i) {
  const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[k])); };
  const uint32_t c = b(*i);
  size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  if (c >= 0x80 && c < 0xC0) len = 1;
  if (*i + len > s.size()) len = 1;
  uint32_t cp = c;
  if (len == 2) cp = ((c & 0x1F) << 6) | (b(*i + 1) & 0x3F);
  if (len == 3) cp = ((c & 0x0F) << 12) | ((b(*i + 1) & 0x3F) << 6) | (b(*i + 2) & 0x3F);
  if (len == 4) {
    cp = ((c & 0x07) << 18) | ((b(*i + 1) & 0x3F) << 12) | ((b(*i + 2) & 0x3F) << 6) |
         (b(*i + 3) & 0x3F);
  }
  *i += len;
  return cp;
}

bool IsByteLevelSpelling(std::string_view s) {
  if (SanitizeUtf8(s) != s) return false;  // overlong forms, surrogates, cut sequences
  size_t i = 0;
  while (i < s.size()) {
    if (ByteLevelByte(NextCodePoint(s, &i)) < 0) return false;
  }
  return true;
}

std::string SanitizeUtf8(std::string_view s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  const size_t n = s.size();
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  while (i < n) {
    const unsigned char b = byte(i);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    // Length and the allowed range of the second byte (Unicode Table 3-7):
    // this excludes overlong forms, surrogates and code points > U+10FFFF.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b == 0xE0) {
      len = 3, lo = 0xA0;
    } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
      len = 3;
    } else if (b == 0xED) {
      len = 3, hi = 0x9F;
    } else if (b == 0xF0) {
      len = 4, lo = 0x90;
    } else if (b >= 0xF1 && b <= 0xF3) {
      len = 4;
    } else if (b == 0xF4) {
      len = 4, hi = 0x8F;
    }
    if (len == 0) {  // a byte that never starts a sequence
      out += kReplacement;
      ++i;
      continue;
    }
    // The maximal subpart: as many bytes as continue a valid prefix.
    size_t k = i + 1;
    bool complete = true;
    for (size_t j = 1; j < len; ++j, ++k) {
      const unsigned char lo_j = j == 1 ? lo : 0x80, hi_j = j == 1 ? hi : 0xBF;
      if (k >= n || byte(k) < lo_j || byte(k) > hi_j) {
        complete = false;
        break;
      }
    }
    if (complete) {
      out.append(s.substr(i, len));
    } else {
      out += kReplacement;
    }
    i = k;
  }
  return out;
}

std::string ByteTokenizer::TokenizerJson() {
  const auto& alphabet = ByteLevelAlphabet();
  ordered_json vocab = ordered_json::object();
  for (uint32_t b = 0; b < 256; ++b) {
    std::string ch;
    AppendUtf8(alphabet[b], &ch);
    vocab[ch] = b;
  }
  for (int32_t id = 256; id < kByteVocabSize; ++id) vocab[kSpecials[id - 256]] = id;

  ordered_json added = ordered_json::array();
  for (int32_t id = 256; id < kByteVocabSize; ++id) added.push_back(AddedToken(id));

  // use_regex false: no pre-splitting is needed without merges, and it keeps
  // the byte → id map the identity on every string.
  const ordered_json byte_level = {{"type", "ByteLevel"},
                                   {"add_prefix_space", false},
                                   {"trim_offsets", false},
                                   {"use_regex", false}};
  const ordered_json bos = {{"SpecialToken", {{"id", kSpecials[0]}, {"type_id", 0}}}};
  // Like Llama 3: encode(text) with special tokens adds <|begin_of_text|>.
  ordered_json post = {
      {"type", "TemplateProcessing"},
      {"single", ordered_json::array({bos, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"pair", ordered_json::array({bos,
                                    {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                    bos,
                                    {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
      {"special_tokens",
       {{kSpecials[0],
         {{"id", kSpecials[0]}, {"ids", {kBeginOfText}}, {"tokens", {kSpecials[0]}}}}}}};
  ordered_json model = {{"type", "BPE"},
                        {"dropout", nullptr},
                        {"unk_token", nullptr},
                        {"continuing_subword_prefix", nullptr},
                        {"end_of_word_suffix", nullptr},
                        {"fuse_unk", false},
                        {"byte_fallback", false},
                        {"ignore_merges", false},
                        {"vocab", vocab},
                        {"merges", ordered_json::array()}};
  ordered_json j = {{"version", "1.0"},         {"truncation", nullptr},
                    {"padding", nullptr},       {"added_tokens", added},
                    {"normalizer", nullptr},    {"pre_tokenizer", byte_level},
                    {"post_processor", post},   {"decoder", byte_level},
                    {"model", model}};
  return j.dump(2) + "\n";
}

std::string ByteTokenizer::TokenizerConfigJson() {
  ordered_json decoder = ordered_json::object();
  for (int32_t id = 256; id < kByteVocabSize; ++id) {
    ordered_json t = AddedToken(id);
    t.erase("id");
    decoder[std::to_string(id)] = t;
  }
  ordered_json j = {{"added_tokens_decoder", decoder},
                    {"bos_token", kSpecials[kBeginOfText - 256]},
                    {"eos_token", kSpecials[kEotId - 256]},
                    {"pad_token", kSpecials[kFinetuneRightPadId - 256]},
                    {"chat_template", kChatTemplate},
                    {"clean_up_tokenization_spaces", false},
                    {"model_input_names", {"input_ids", "attention_mask"}},
                    {"model_max_length", 131072},
                    {"tokenizer_class", "PreTrainedTokenizerFast"}};
  return j.dump(2) + "\n";
}

namespace {

// ByteTokenizer as a Tokenizer: ids are the bytes and the 8 specials.
class SharedByteTokenizer final : public Tokenizer {
 public:
  SharedByteTokenizer() : json_(ByteTokenizer::TokenizerJson()) {}
  int32_t vocab_size() const override { return kByteVocabSize; }
  std::optional<int32_t> TokenId(std::string_view token) const override {
    if (auto id = ByteTokenizer::SpecialId(token)) return id;
    if (token.size() == 1) return static_cast<int32_t>(static_cast<unsigned char>(token[0]));
    return std::nullopt;
  }
  bool IsSpecial(int32_t id) const override { return id >= 256 && id < kByteVocabSize; }
  void EncodeAppend(std::string_view text, std::vector<int32_t>* out,
                    const EncodeOptions& options) const override {
    ByteTokenizer::EncodeAppend(text, out, options.parse_special);
  }
  Result<std::string> DecodeBytes(const std::vector<int32_t>& ids,
                                  bool skip_special) const override {
    return ByteTokenizer::DecodeBytes(ids, skip_special);
  }
  const std::string& json() const override { return json_; }

 private:
  std::string json_;
};

}  // namespace

std::shared_ptr<const Tokenizer> ByteTokenizer::Shared() {
  static const std::shared_ptr<const Tokenizer> t = std::make_shared<SharedByteTokenizer>();
  return t;
}

}  // namespace herd::model
