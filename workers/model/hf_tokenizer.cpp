#include "workers/model/hf_tokenizer.h"

#include <algorithm>
#include <array>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/mapped_file.h"
#include "workers/model/bpe.h"
#include "workers/model/pretokenizer.h"
#include "workers/model/tokenizer.h"

namespace herd::model {
namespace {

using Json = nlohmann::json;

Status Malformed(const std::string& path, const std::string& what) {
  return Status::InvalidArgument(path + ": " + what);
}
Status Unsupported(const std::string& path, const std::string& what) {
  return Status::InvalidArgument("unsupported tokenizer: " + path + ": " + what);
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// ---- UTF-8 (NextCodePoint: tokenizer.h) ---------------------------------------

// Unicode White_Space: what Rust's regex \s matches (HF's lstrip/rstrip).
bool IsWhiteSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

// Where the run of white space that ends s begins (s.size() when none).
size_t WhiteSpaceRunStart(std::string_view s) {
  size_t start = s.size();
  size_t i = s.size();
  while (i > 0) {
    size_t k = i - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80 && i - k < 4) --k;
    size_t j = k;
    const uint32_t cp = NextCodePoint(s, &j);
    if (j != i || !IsWhiteSpace(cp)) break;
    start = k;
    i = k;
  }
  return start;
}

// The length of the run of white space that starts s.
size_t WhiteSpaceRunLength(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (!IsWhiteSpace(NextCodePoint(s, &j))) break;
    i = j;
  }
  return i;
}

// ---- the ByteLevel alphabet (ByteLevelAlphabet, ByteLevelByte: tokenizer.h) -----

// HF's ByteLevel decoder on one token: its characters as bytes when every
// one is in the alphabet; otherwise the token's own UTF-8 (e.g. an added
// token "<|im_end|>" is both).
std::string ByteLevelDecode(std::string_view token, bool* all_mapped = nullptr) {
  std::string bytes;
  bytes.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    const uint32_t cp = NextCodePoint(token, &i);
    const int byte = ByteLevelByte(cp);
    if (byte < 0) {
      if (all_mapped) *all_mapped = false;
      return std::string(token);
    }
    bytes.push_back(static_cast<char>(byte));
  }
  if (all_mapped) *all_mapped = true;
  return bytes;
}

// ---- added tokens --------------------------------------------------------------

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, normalized = true, single_word = false;
};

// Finds added tokens as HF's Aho-Corasick (MatchKind::LeftmostLongest)
// does: the earliest start, then the longest token there. Tokens are few
// (tens to hundreds), so a first-byte index and memcmp suffice.
class AddedMatcher {
 public:
  void Add(const AddedToken* t) {
    if (t->content.empty()) return;
    by_first_[static_cast<unsigned char>(t->content[0])].push_back(t);
    any_ = true;
  }
  void Finish() {
    for (auto& v : by_first_) {
      std::stable_sort(v.begin(), v.end(), [](const AddedToken* a, const AddedToken* b) {
        return a->content.size() > b->content.size();
      });
    }
  }
  bool empty() const { return !any_; }

  // The first token in text[pos..]; sets *start.
  const AddedToken* Find(std::string_view text, size_t pos, size_t* start) const {
    for (size_t i = pos; i < text.size(); ++i) {
      const auto& candidates = by_first_[static_cast<unsigned char>(text[i])];
      for (const AddedToken* t : candidates) {
        if (text.compare(i, t->content.size(), t->content) == 0) {
          *start = i;
          return t;
        }
      }
    }
    return nullptr;
  }

 private:
  std::array<std::vector<const AddedToken*>, 256> by_first_;
  bool any_ = false;
};

// Feeds pre-tokens to BPE.
class BpeSink final : public PieceSink {
 public:
  BpeSink(const BpeModel* bpe, std::vector<int32_t>* out) : bpe_(bpe), out_(out) {}
  void Piece(std::string_view piece) override { bpe_->EncodeWord(piece, out_); }

 private:
  const BpeModel* bpe_;
  std::vector<int32_t>* out_;
};

class HfTokenizer final : public Tokenizer {
 public:
  int32_t vocab_size() const override { return vocab_size_; }

  std::optional<int32_t> TokenId(std::string_view token) const override {
    if (auto it = added_ids_.find(token); it != added_ids_.end()) return it->second;
    if (auto it = vocab_.find(token); it != vocab_.end()) return it->second;
    return std::nullopt;
  }

  bool IsSpecial(int32_t id) const override {
    return id >= 0 && id < vocab_size_ && (flags_[id] & kSpecial);
  }

  void EncodeAppend(std::string_view text, std::vector<int32_t>* out,
                    const EncodeOptions& options) const override {
    if (!options.parse_special || (raw_matcher_.empty() && normalized_matcher_.empty())) {
      EncodeText(text, out);
      return;
    }
    // HF's AddedVocabulary::extract_and_normalize: tokens with
    // normalized=false first, then (without a normalizer, on the same text)
    // those with normalized=true in the pieces between.
    SplitOnAdded(raw_matcher_, text, out, [&](std::string_view piece) {
      SplitOnAdded(normalized_matcher_, piece, out,
                   [&](std::string_view rest) { EncodeText(rest, out); });
    });
  }

  Result<std::string> DecodeBytes(const std::vector<int32_t>& ids,
                                  bool skip_special) const override {
    std::string out;
    out.reserve(ids.size() * 4);
    for (size_t i = 0; i < ids.size(); ++i) {
      const int32_t id = ids[i];
      if (id < 0 || id >= vocab_size_) {
        return Status::InvalidArgument("decode: id " + std::to_string(id) + " at position " +
                                       std::to_string(i) + " is outside the vocabulary [0, " +
                                       std::to_string(vocab_size_) + ")");
      }
      if (!(flags_[id] & kPresent)) {
        return Status::InvalidArgument("decode: id " + std::to_string(id) + " at position " +
                                       std::to_string(i) + " has no token in the vocabulary");
      }
      if (skip_special && (flags_[id] & kSpecial)) continue;
      out.append(bytes_, bytes_off_[id], bytes_off_[id + 1] - bytes_off_[id]);
    }
    return out;
  }

  const std::string& json() const override { return json_; }

  Status Load(const Json& j);

  std::string json_;

 private:
  static constexpr uint8_t kPresent = 1, kSpecial = 2;

  void EncodeText(std::string_view text, std::vector<int32_t>* out) const {
    BpeSink sink(bpe_.get(), out);
    pre_->Run(text, &sink);
  }

  // HF's AddedVocabulary::find_matches: text between tokens goes to
  // on_text, tokens' ids to out. lstrip takes the white space before a token
  // into it, rstrip the white space after; single_word skips a match inside
  // a word.
  template <class OnText>
  void SplitOnAdded(const AddedMatcher& m, std::string_view text, std::vector<int32_t>* out,
                    OnText&& on_text) const {
    if (m.empty()) {
      on_text(text);
      return;
    }
    size_t done = 0;  // text[0, done) is emitted
    size_t pos = 0;   // where the match iterator resumes
    size_t start = 0;
    while (const AddedToken* t = m.Find(text, pos, &start)) {
      size_t stop = start + t->content.size();
      pos = stop;
      if (start < done) continue;  // inside a previous token's rstrip
      if (t->single_word &&
          !(IsWordBoundaryBefore(text, start) && IsWordBoundaryAfter(text, stop))) {
        continue;
      }
      if (t->lstrip) start = std::max(WhiteSpaceRunStart(text.substr(0, start)), done);
      if (t->rstrip) stop += WhiteSpaceRunLength(text.substr(stop));
      if (start > done) on_text(text.substr(done, start - done));
      out->push_back(t->id);
      done = stop;
    }
    if (done < text.size()) on_text(text.substr(done));
  }

  // single_word: the token neither follows nor precedes a word character
  // (Rust regex \w; PCRE2's \w with UCP is letters, digits and '_').
  bool IsWordBoundaryBefore(std::string_view text, size_t start) const {
    if (start == 0) return true;
    size_t k = start - 1;
    while (k > 0 && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80 && start - k < 4) --k;
    size_t b = 0, e = 0;
    return !(word_char_->Find(text.substr(k, start - k), 0, &b, &e) && b == 0);
  }
  bool IsWordBoundaryAfter(std::string_view text, size_t stop) const {
    if (stop == text.size()) return true;
    size_t j = stop;
    NextCodePoint(text, &j);
    size_t b = 0, e = 0;
    return !(word_char_->Find(text.substr(stop, j - stop), 0, &b, &e) && b == 0);
  }

  Status LoadModel(const Json& model, std::unordered_map<std::string, int32_t>* vocab_out);

  std::unique_ptr<PreTokenizer> pre_;
  std::unique_ptr<BpeModel> bpe_;
  std::unique_ptr<Regex> word_char_;  // only when some added token is single_word
  std::vector<AddedToken> added_;
  AddedMatcher raw_matcher_, normalized_matcher_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab_, added_ids_;
  int32_t vocab_size_ = 0;
  // Per id: the bytes it decodes to are bytes_[bytes_off_[id], bytes_off_[id + 1]).
  std::string bytes_;
  std::vector<size_t> bytes_off_;  // (vocab_size + 1)
  std::vector<uint8_t> flags_;     // (vocab_size): kPresent | kSpecial
};

Result<bool> GetBool(const Json& j, const char* key, const std::string& path, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return Malformed(path + "." + key, "must be true or false");
  return it->get<bool>();
}

// Ids beyond this are refused: the largest real vocabularies hold a few
// hundred thousand tokens, and the tables are sized by the largest id.
constexpr int64_t kMaxTokenId = int64_t{1} << 24;

Result<int32_t> GetId(const Json& v, const std::string& path) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= kMaxTokenId) {
    return Malformed(path, "must be an id (an integer in [0, 2^24))");
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

Status CheckDecoder(const Json& d, const std::string& path) {
  if (d.is_null()) {
    return Unsupported(path, "null (herd decodes byte-level tokens: ByteLevel)");
  }
  if (!d.is_object() || !d.contains("type") || !d["type"].is_string()) {
    return Malformed(path + ".type", "missing");
  }
  const std::string type = d["type"].get<std::string>();
  if (type == "ByteLevel") return Status::Ok();
  if (type == "Sequence") {
    auto it = d.find("decoders");
    if (it == d.end() || !it->is_array()) return Malformed(path + ".decoders", "must be an array");
    bool byte_level = false;
    for (size_t i = 0; i < it->size(); ++i) {
      HERD_RETURN_IF_ERROR(CheckDecoder((*it)[i], path + ".decoders[" + std::to_string(i) + "]"));
      byte_level = true;
    }
    if (!byte_level) return Unsupported(path + ".decoders", "empty (herd needs ByteLevel)");
    return Status::Ok();
  }
  return Unsupported(path + ".type", Quote(type) + " (herd decodes byte-level tokens: ByteLevel)");
}

Status HfTokenizer::LoadModel(const Json& model,
                              std::unordered_map<std::string, int32_t>* vocab_out) {
  if (!model.is_object()) return Malformed("model", "missing");
  std::string type = "BPE";  // HF reads a model without "type" by its fields
  if (auto t = model.find("type"); t != model.end()) {
    if (!t->is_string()) return Malformed("model.type", "must be a string");
    type = t->get<std::string>();
  } else if (!model.contains("merges")) {
    return Malformed("model.type", "missing");
  }
  if (type != "BPE") return Unsupported("model.type", Quote(type) + " (herd supports BPE)");
  if (auto d = model.find("dropout"); d != model.end() && !d->is_null()) {
    if (!d->is_number() || d->get<double>() != 0.0) {
      return Unsupported("model.dropout", d->dump() + " (herd encodes deterministically)");
    }
  }
  HERD_ASSIGN_OR_RETURN(const bool byte_fallback, GetBool(model, "byte_fallback", "model", false));
  if (byte_fallback) {
    return Unsupported("model.byte_fallback",
                       "true (SentencePiece-style <0xNN> tokens; herd supports byte-level BPE)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (auto it = model.find(key); it != model.end() && !it->is_null()) {
      if (!it->is_string() || !it->get<std::string>().empty()) {
        return Unsupported(std::string("model.") + key, it->dump());
      }
    }
  }

  auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) {
    return Malformed("model.vocab", "missing (an object token → id)");
  }
  vocab_out->reserve(vocab_it->size());
  for (const auto& [token, id_json] : vocab_it->items()) {
    HERD_ASSIGN_OR_RETURN(const int32_t id, GetId(id_json, "model.vocab[" + Quote(token) + "]"));
    (*vocab_out)[token] = id;
  }
  auto vocab_id = [&](const std::string& token) -> int32_t {
    auto it = vocab_out->find(token);
    return it == vocab_out->end() ? -1 : it->second;
  };

  BpeModel::Options o;
  const auto& alphabet = ByteLevelAlphabet();
  bool missing_byte = false;
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    AppendUtf8(alphabet[b], &ch);
    o.byte_ids[b] = vocab_id(ch);
    missing_byte |= o.byte_ids[b] < 0;
  }
  HERD_ASSIGN_OR_RETURN(o.ignore_merges, GetBool(model, "ignore_merges", "model", false));
  HERD_ASSIGN_OR_RETURN(o.fuse_unk, GetBool(model, "fuse_unk", "model", false));
  if (auto u = model.find("unk_token"); u != model.end() && !u->is_null() && missing_byte) {
    // Only matters when a byte has no token of its own.
    if (!u->is_string()) return Malformed("model.unk_token", "must be a string or null");
    o.unk_id = vocab_id(u->get<std::string>());
    if (o.unk_id < 0) {
      return Malformed("model.unk_token", Quote(u->get<std::string>()) + " is not in the vocab");
    }
  }
  if (o.ignore_merges) {
    for (const auto& [token, id] : *vocab_out) {
      bool all_mapped = false;
      std::string bytes = ByteLevelDecode(token, &all_mapped);
      if (all_mapped) o.whole_words.emplace(std::move(bytes), id);
    }
  }

  auto merges_it = model.find("merges");
  if (merges_it == model.end() || !merges_it->is_array()) {
    return Malformed("model.merges", "missing (an array of \"a b\" or [a, b])");
  }
  o.merges.reserve(merges_it->size());
  for (size_t i = 0; i < merges_it->size(); ++i) {
    const Json& m = (*merges_it)[i];
    const std::string path = "model.merges[" + std::to_string(i) + "]";
    std::string a, b;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        return Malformed(path, Quote(s) + " must be two tokens separated by one space");
      }
      a = s.substr(0, sp), b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>(), b = m[1].get<std::string>();
    } else {
      return Malformed(path, "must be \"a b\" or [a, b]");
    }
    const int32_t left = vocab_id(a), right = vocab_id(b), merged = vocab_id(a + b);
    if (left < 0 || right < 0 || merged < 0) {
      const std::string missing = left < 0 ? a : right < 0 ? b : a + b;
      return Malformed(path, "token " + Quote(missing) + " is not in model.vocab");
    }
    o.merges.push_back({left, right, merged});
  }
  bpe_ = std::make_unique<BpeModel>(std::move(o));
  return Status::Ok();
}

Status HfTokenizer::Load(const Json& j) {
  if (!j.is_object()) return Malformed("(top level)", "must be a JSON object");
  if (auto n = j.find("normalizer"); n != j.end() && !n->is_null()) {
    if (n->is_object() && n->contains("type") && (*n)["type"].is_string()) {
      return Unsupported("normalizer.type",
                         Quote((*n)["type"].get<std::string>()) + " (herd supports no normalizer)");
    }
    return Unsupported("normalizer", "must be null");
  }
  std::unordered_map<std::string, int32_t> vocab;
  auto model = j.find("model");
  if (model == j.end()) return Malformed("model", "missing");
  HERD_RETURN_IF_ERROR(LoadModel(*model, &vocab));

  auto pre = j.find("pre_tokenizer");
  HERD_ASSIGN_OR_RETURN(pre_, PreTokenizer::FromJson(pre == j.end() ? Json() : *pre));
  auto dec = j.find("decoder");
  HERD_RETURN_IF_ERROR(CheckDecoder(dec == j.end() ? Json() : *dec, "decoder"));

  if (auto a = j.find("added_tokens"); a != j.end() && !a->is_null()) {
    if (!a->is_array()) return Malformed("added_tokens", "must be an array");
    for (size_t i = 0; i < a->size(); ++i) {
      const Json& t = (*a)[i];
      const std::string path = "added_tokens[" + std::to_string(i) + "]";
      if (!t.is_object()) return Malformed(path, "must be an object");
      AddedToken tok;
      if (!t.contains("id")) return Malformed(path + ".id", "missing");
      HERD_ASSIGN_OR_RETURN(tok.id, GetId(t["id"], path + ".id"));
      if (!t.contains("content") || !t["content"].is_string()) {
        return Malformed(path + ".content", "missing");
      }
      tok.content = t["content"].get<std::string>();
      HERD_ASSIGN_OR_RETURN(tok.special, GetBool(t, "special", path, false));
      HERD_ASSIGN_OR_RETURN(tok.lstrip, GetBool(t, "lstrip", path, false));
      HERD_ASSIGN_OR_RETURN(tok.rstrip, GetBool(t, "rstrip", path, false));
      HERD_ASSIGN_OR_RETURN(tok.normalized, GetBool(t, "normalized", path, true));
      HERD_ASSIGN_OR_RETURN(tok.single_word, GetBool(t, "single_word", path, false));
      added_.push_back(std::move(tok));
    }
  }
  bool single_word = false;
  for (const AddedToken& t : added_) {
    (t.normalized ? normalized_matcher_ : raw_matcher_).Add(&t);
    single_word |= t.single_word;
  }
  raw_matcher_.Finish();
  normalized_matcher_.Finish();
  if (single_word) {
    HERD_ASSIGN_OR_RETURN(word_char_, Regex::Compile("\\w", false));
  }

  // Ids: the model's vocab and the added tokens (an added token may reuse a
  // vocab id, as SmolLM2's and herd's specials do).
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab) max_id = std::max(max_id, id);
  for (const AddedToken& t : added_) max_id = std::max(max_id, t.id);
  // The tables below are indexed by id, so their size follows the largest
  // one: a file whose ids leave most of the range empty is not a
  // vocabulary (and would make a few bytes of JSON cost gigabytes).
  const int64_t listed = static_cast<int64_t>(vocab.size() + added_.size());
  if (max_id >= 2 * listed + 1024) {
    return Malformed("model.vocab", "ids are sparse: the largest is " + std::to_string(max_id) +
                                        " for " + std::to_string(listed) + " tokens listed");
  }
  vocab_size_ = max_id + 1;
  std::vector<const std::string*> text(vocab_size_, nullptr);
  flags_.assign(vocab_size_, 0);
  for (const auto& [token, id] : vocab) text[id] = &token;
  for (const AddedToken& t : added_) {
    text[t.id] = &t.content;  // HF looks added tokens up first
    if (t.special) flags_[t.id] |= kSpecial;
    added_ids_[t.content] = t.id;
  }
  bytes_off_.assign(vocab_size_ + 1, 0);
  for (int32_t id = 0; id < vocab_size_; ++id) {
    bytes_off_[id] = bytes_.size();
    if (text[id] == nullptr) continue;
    flags_[id] |= kPresent;
    bytes_ += ByteLevelDecode(*text[id]);
  }
  bytes_off_[vocab_size_] = bytes_.size();
  for (auto& [token, id] : vocab) vocab_.emplace(token, id);
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromJson(std::string_view tokenizer_json,
                                                             std::string_view source) {
  Json j;
  try {
    j = Json::parse(tokenizer_json.begin(), tokenizer_json.end());
  } catch (const Json::exception& e) {
    return Status::InvalidArgument(std::string(source) + ": not valid JSON: " + e.what());
  }
  auto t = std::make_shared<HfTokenizer>();
  if (Status s = t->Load(j); !s.ok()) return s.WithContext(std::string(source));
  t->json_ = std::string(tokenizer_json);
  return std::shared_ptr<const Tokenizer>(std::move(t));
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  // The largest real tokenizer.json files are a few tens of MB.
  HERD_ASSIGN_OR_RETURN(std::string text, ReadRegularFile(path, uint64_t{256} << 20));
  return FromJson(text, path);
}

Result<std::string> Tokenizer::Decode(const std::vector<int32_t>& ids, bool skip_special) const {
  HERD_ASSIGN_OR_RETURN(std::string bytes, DecodeBytes(ids, skip_special));
  return SanitizeUtf8(bytes);
}

}  // namespace herd::model
