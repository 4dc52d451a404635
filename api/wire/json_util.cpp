#include "api/wire/json_util.h"

#include <vector>

#include "api/wire/utf8.h"

namespace herd::api {
namespace {

using nlohmann::json;

// SAX handler that only tracks the path of the value being parsed, so a
// parse error can name its field. Used on the error path only (the happy
// path uses the DOM parser).
class PathTracker : public nlohmann::json_sax<json> {
 public:
  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override { return Value(); }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override {
    frames_.push_back({false, {}, 0});
    return true;
  }
  bool key(string_t& k) override {
    if (!frames_.empty()) frames_.back().key = k;
    return true;
  }
  bool end_object() override {
    if (!frames_.empty()) frames_.pop_back();
    return Value();
  }
  bool start_array(std::size_t) override {
    frames_.push_back({true, {}, 0});
    return true;
  }
  bool end_array() override {
    if (!frames_.empty()) frames_.pop_back();
    return Value();
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    error_position_ = position;
    error_path_ = Path();
    std::string what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: X"
    // → keep X; the raw "last read" excerpt may hold the bad bytes.
    auto colon = what.find(": ");
    if (colon != std::string::npos) what = what.substr(colon + 2);
    auto last = what.find("; last read");
    if (last != std::string::npos) what = what.substr(0, last);
    error_message_ = what;
    return false;
  }

  std::string Path() const {
    std::string p;
    for (const auto& f : frames_) {
      if (f.array) {
        p.push_back('[');
        p.append(std::to_string(f.index));
        p.push_back(']');
      } else if (!f.key.empty()) {
        if (!p.empty()) p.push_back('.');
        p.append(f.key);
      }
    }
    return p;
  }

  size_t error_position_ = 0;
  std::string error_path_;
  std::string error_message_;

 private:
  struct Frame {
    bool array;
    std::string key;
    size_t index;
  };
  bool Value() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }
  std::vector<Frame> frames_;
};

// Byte offset of the bracket that opens level max_depth + 1, or npos.
// nlohmann's recursive destructor and dump overflow the stack on very deep
// documents (a 1 MiB line of '[' crashes), so depth is checked first.
size_t FindExcessiveNesting(std::string_view s, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string_view::npos;
}

std::string FieldSuffix(const std::string& path) {
  return path.empty() ? std::string() : " in field '" + path + "'";
}

}  // namespace

Result<json> ParseJson(std::string_view text) {
  if (size_t deep = FindExcessiveNesting(text, kMaxJsonDepth); deep != std::string_view::npos) {
    return Status::InvalidArgument("invalid JSON at byte " + std::to_string(deep) +
                                   ": nested deeper than " + std::to_string(kMaxJsonDepth) +
                                   " levels");
  }
  size_t bad = FindInvalidUtf8(text);
  if (bad == std::string_view::npos) {
    json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) return j;
  }
  PathTracker tracker;
  if (bad != std::string_view::npos) {
    // Parse only the prefix before the bad byte: the tracker's path at the
    // (now premature) end is the field that holds the bad byte.
    std::string_view prefix = text.substr(0, bad);
    json::sax_parse(prefix.begin(), prefix.end(), &tracker, nlohmann::detail::input_format_t::json,
                    /*strict=*/true);
    return Status::InvalidArgument("invalid UTF-8 at byte " + std::to_string(bad) +
                                   FieldSuffix(tracker.error_path_));
  }
  json::sax_parse(text.begin(), text.end(), &tracker, nlohmann::detail::input_format_t::json,
                  /*strict=*/true);
  return Status::InvalidArgument("invalid JSON at byte " + std::to_string(tracker.error_position_) +
                                 FieldSuffix(tracker.error_path_) + ": " + tracker.error_message_);
}

std::string DumpJson(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string JsonTypeName(const json& j) {
  if (j.is_number()) return "number";
  return j.type_name();
}

}  // namespace herd::api
