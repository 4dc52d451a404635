#include "workers/model/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

namespace herd::model {
namespace {

using nlohmann::json;

// GPT-2's pre-tokenizer regex, what ByteLevel(use_regex: true) splits with.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// HF's SplitDelimiterBehavior: what becomes of a match (a "delimiter").
enum class Behavior {
  kRemoved,             // dropped; only the gaps remain
  kIsolated,            // its own pre-token
  kMergedWithPrevious,  // appended to the gap before it
  kMergedWithNext,      // prepended to the gap after it
  kContiguous,          // adjacent matches become one pre-token
};

// Per-thread PCRE2 state shared by every pattern: the match data (only the
// whole-match offsets are read) and a JIT stack larger than the 32 KiB
// default, for long whitespace runs.
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(16, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

MatchState& ThreadMatchState() {
  thread_local MatchState state;
  return state;
}

size_t Utf8Length(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

Status Malformed(const std::string& path, const std::string& what) {
  return Status::InvalidArgument(path + ": " + what);
}
Status Unsupported(const std::string& path, const std::string& what) {
  return Status::InvalidArgument("unsupported tokenizer: " + path + ": " + what);
}

Result<bool> GetBool(const json& j, const char* key, const std::string& path, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return Malformed(path + "." + key, "must be true or false");
  return it->get<bool>();
}

}  // namespace

// ---- Regex -------------------------------------------------------------------

Result<std::unique_ptr<Regex>> Regex::Compile(std::string_view pattern, bool literal) {
  // PCRE2_LITERAL refuses UCP, which a literal does not need anyway.
  const uint32_t options =
      PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return Status::InvalidArgument("regex '" + std::string(pattern) +
                                   "' does not compile at offset " + std::to_string(offset) + ": " +
                                   reinterpret_cast<const char*>(message));
  }
  std::unique_ptr<Regex> r(new Regex());
  r->code_ = code;
  // Without JIT (e.g. a platform PCRE2 lacks it for), pcre2_match still
  // works, only slower.
  r->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return r;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

bool Regex::Find(std::string_view text, size_t start, size_t* begin, size_t* end) const {
  MatchState& st = ThreadMatchState();
  auto* code = static_cast<pcre2_code*>(code_);
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), start, 0, st.data, st.context)
                      : pcre2_match(code, subject, text.size(), start, 0, st.data, st.context);
  // rc == 0: matched, but the ovector holds fewer pairs than the pattern has
  // groups; the whole-match pair is still set.
  if (rc < 0) return false;
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
  *begin = ov[0];
  *end = ov[1];
  return true;
}

// ---- steps -------------------------------------------------------------------

struct PreTokenizer::Step {
  bool byte_level = false;
  // ByteLevel: prepend a space to a pre-token that does not start with one.
  bool add_prefix_space = false;
  // Split, Digits, or ByteLevel with use_regex (GPT-2's pattern, isolated);
  // null for ByteLevel without use_regex.
  std::unique_ptr<Regex> regex;
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
};

namespace {

Result<std::unique_ptr<PreTokenizer::Step>> SplitStep(std::string_view pattern, bool literal,
                                                      Behavior behavior, bool invert,
                                                      const std::string& path) {
  auto regex = Regex::Compile(pattern, literal);
  if (!regex.ok()) return Unsupported(path, regex.status().message());
  auto step = std::make_unique<PreTokenizer::Step>();
  step->regex = std::move(regex).value();
  step->behavior = behavior;
  step->invert = invert;
  return step;
}

Status ParseStep(const json& j, const std::string& path,
                 std::vector<std::unique_ptr<PreTokenizer::Step>>* steps) {
  if (!j.is_object()) return Malformed(path, "must be an object");
  auto type_it = j.find("type");
  if (type_it == j.end() || !type_it->is_string()) return Malformed(path + ".type", "missing");
  const std::string type = type_it->get<std::string>();

  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) {
      return Malformed(path + ".pretokenizers", "must be an array");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      HERD_RETURN_IF_ERROR(
          ParseStep((*it)[i], path + ".pretokenizers[" + std::to_string(i) + "]", steps));
    }
    return Status::Ok();
  }
  if (type == "ByteLevel") {
    auto step = std::make_unique<PreTokenizer::Step>();
    step->byte_level = true;
    HERD_ASSIGN_OR_RETURN(step->add_prefix_space, GetBool(j, "add_prefix_space", path, true));
    HERD_ASSIGN_OR_RETURN(const bool use_regex, GetBool(j, "use_regex", path, true));
    if (use_regex) {
      HERD_ASSIGN_OR_RETURN(step->regex, Regex::Compile(kGpt2Pattern, false));
    }
    // trim_offsets only changes offsets, which herd does not report.
    steps->push_back(std::move(step));
    return Status::Ok();
  }
  if (type == "Digits") {
    HERD_ASSIGN_OR_RETURN(const bool individual, GetBool(j, "individual_digits", path, false));
    // HF splits on char::is_numeric (Nd, Nl, No = \p{N}); runs stay whole
    // unless individual_digits.
    HERD_ASSIGN_OR_RETURN(auto step, SplitStep(individual ? "\\p{N}" : "\\p{N}+", false,
                                               Behavior::kIsolated, false, path));
    steps->push_back(std::move(step));
    return Status::Ok();
  }
  if (type == "Split") {
    auto pat = j.find("pattern");
    if (pat == j.end() || !pat->is_object()) return Malformed(path + ".pattern", "missing");
    bool literal = false;
    std::string pattern;
    if (auto r = pat->find("Regex"); r != pat->end() && r->is_string()) {
      pattern = r->get<std::string>();
    } else if (auto s = pat->find("String"); s != pat->end() && s->is_string()) {
      pattern = s->get<std::string>();
      literal = true;
    } else {
      return Malformed(path + ".pattern", "must be {\"Regex\": ...} or {\"String\": ...}");
    }
    auto b = j.find("behavior");
    if (b == j.end() || !b->is_string()) return Malformed(path + ".behavior", "missing");
    const std::string name = b->get<std::string>();
    Behavior behavior;
    if (name == "Removed") {
      behavior = Behavior::kRemoved;
    } else if (name == "Isolated") {
      behavior = Behavior::kIsolated;
    } else if (name == "MergedWithPrevious") {
      behavior = Behavior::kMergedWithPrevious;
    } else if (name == "MergedWithNext") {
      behavior = Behavior::kMergedWithNext;
    } else if (name == "Contiguous") {
      behavior = Behavior::kContiguous;
    } else {
      return Unsupported(path + ".behavior", "'" + name + "'");
    }
    HERD_ASSIGN_OR_RETURN(const bool invert, GetBool(j, "invert", path, false));
    HERD_ASSIGN_OR_RETURN(auto step,
                          SplitStep(pattern, literal, behavior, invert, path + ".pattern"));
    steps->push_back(std::move(step));
    return Status::Ok();
  }
  return Unsupported(path + ".type", "'" + type +
                                         "' (herd supports byte-level BPE: ByteLevel, Split, "
                                         "Digits, Sequence)");
}

}  // namespace

PreTokenizer::~PreTokenizer() = default;

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::FromJson(const json& j) {
  const std::string path = "pre_tokenizer";
  if (j.is_null()) {
    return Unsupported(path, "null (herd needs a ByteLevel pre-tokenizer: byte-level BPE only)");
  }
  std::unique_ptr<PreTokenizer> p(new PreTokenizer());
  HERD_RETURN_IF_ERROR(ParseStep(j, path, &p->steps_));
  size_t byte_levels = 0;
  for (const auto& s : p->steps_) byte_levels += s->byte_level ? 1 : 0;
  // After ByteLevel, HF's later steps would see the mapped characters
  // (e.g. 'Ġ' for a space); herd maps bytes inside BPE, so it must be last.
  if (byte_levels != 1 || !p->steps_.back()->byte_level) {
    return Unsupported(path, "herd needs exactly one ByteLevel step, as the last step");
  }
  return p;
}

void PreTokenizer::Run(std::string_view text, PieceSink* sink) const { RunFrom(0, text, sink); }

void PreTokenizer::RunFrom(size_t index, std::string_view text, PieceSink* sink) const {
  if (text.empty()) return;
  if (index == steps_.size()) {
    sink->Piece(text);
    return;
  }
  const Step& step = *steps_[index];
  std::string prefixed;  // only with add_prefix_space, which few tokenizers set
  if (step.add_prefix_space && text.front() != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed.push_back(' ');
    prefixed.append(text);
    text = prefixed;
  }
  if (!step.regex) {
    RunFrom(index + 1, text, sink);
    return;
  }

  // HF's NormalizedString::split: the text is a sequence of items, gaps and
  // matches (`is_match`; flipped by invert), and the behaviour decides which
  // items join. Streamed: `pending` is an item not yet emitted.
  size_t pending_begin = 0, pending_end = 0;
  bool have_pending = false, pending_is_match = false;
  auto emit = [&](size_t b, size_t e) {
    if (e > b) RunFrom(index + 1, text.substr(b, e - b), sink);
  };
  auto item = [&](size_t b, size_t e, bool is_match) {
    if (step.invert) is_match = !is_match;
    switch (step.behavior) {
      case Behavior::kIsolated:
        emit(b, e);
        break;
      case Behavior::kRemoved:
        if (!is_match) emit(b, e);
        break;
      case Behavior::kMergedWithPrevious:
        // A match directly after a gap joins it; any other item starts anew.
        if (is_match && have_pending && !pending_is_match) {
          emit(pending_begin, e);
          have_pending = false;
        } else {
          if (have_pending) emit(pending_begin, pending_end);
          pending_begin = b, pending_end = e, pending_is_match = is_match, have_pending = true;
        }
        break;
      case Behavior::kMergedWithNext:
        // A match followed by a gap joins it.
        if (!is_match && have_pending && pending_is_match) {
          emit(pending_begin, e);
          have_pending = false;
        } else {
          if (have_pending) emit(pending_begin, pending_end);
          pending_begin = b, pending_end = e, pending_is_match = is_match, have_pending = true;
        }
        break;
      case Behavior::kContiguous:
        // Consecutive items of the same kind join.
        if (have_pending && pending_is_match == is_match) {
          pending_end = e;
        } else {
          if (have_pending) emit(pending_begin, pending_end);
          pending_begin = b, pending_end = e, pending_is_match = is_match, have_pending = true;
        }
        break;
    }
  };

  size_t pos = 0, search = 0;
  size_t b = 0, e = 0;
  while (search <= text.size() && step.regex->Find(text, search, &b, &e)) {
    if (b > pos) item(pos, b, false);
    item(b, e, true);
    pos = e;
    // After an empty match, resume one character on (as Oniguruma's
    // find_iter does).
    search =
        e > b ? e : e + (e < text.size() ? Utf8Length(static_cast<unsigned char>(text[e])) : 1);
  }
  if (pos < text.size()) item(pos, text.size(), false);
  if (have_pending) emit(pending_begin, pending_end);
}

}  // namespace herd::model
