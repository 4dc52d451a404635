#pragma once
// Reads the fields of one JSON object into typed values, remembering which
// it consumed so the rest can be reported as unknown. Every error names the
// field's full path ("spec.prompts[2].id: must be a string"); the first
// error wins and later reads are no-ops. Run configs and task contracts
// share it.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace herd::tasks {

class FieldReader {
 public:
  // `path` names the object ("spec", "rejection_sampling", "" for a root
  // whose fields need no prefix); errors land in *err.
  FieldReader(const nlohmann::json& j, std::string path, Status* err);

  std::string Path(const std::string& key) const;
  // The raw value of `key` (marked as read), or null when absent or after an error.
  const nlohmann::json* Find(const std::string& key);

  void Str(const std::string& key, std::string* out, bool required = false);
  void Int(const std::string& key, int64_t* out, int64_t lo, int64_t hi, bool required = false);
  void U64(const std::string& key, uint64_t* out, bool required = false);
  void Num(const std::string& key, double* out, double lo, double hi, bool required = false);
  void OptNum(const std::string& key, std::optional<double>* out);  // absent or null = nullopt
  void Bool(const std::string& key, bool* out);
  // `allowed` empty = any string.
  void StrList(const std::string& key, std::vector<std::string>* out,
               const std::set<std::string>& allowed = {}, bool required = false);
  void NumList(const std::string& key, std::vector<double>* out, bool required = false);
  void I32List(const std::string& key, std::vector<int32_t>* out, bool required = false);
  // Any JSON object, kept as it is (free-form metrics).
  void Object(const std::string& key, nlohmann::json* out);
  // A nested object read by `fn` with its own reader (unknown fields checked).
  void Nested(const std::string& key, const std::function<void(FieldReader&)>& fn,
              bool required = false);
  // An array of objects, each read by `fn(reader, index)`.
  void Objects(const std::string& key, const std::function<void(FieldReader&, size_t)>& fn,
               bool required = false);

  // Reports keys present but never read: a typo must not be silently ignored.
  void Finish();
  void Fail(const std::string& path, const std::string& what);
  bool ok() const { return err_->ok(); }

 private:
  void Missing(const std::string& key, bool required);
  const nlohmann::json& j_;
  std::string path_;
  Status* err_;
  std::set<std::string> seen_;
};

// Reads one T from `j` with `read(reader, &t)`, checking for unknown
// fields; errors are prefixed by `root` ("spec", "result").
template <typename T, typename ReadFn>
Result<T> DecodeWith(const nlohmann::json& j, const std::string& root, ReadFn read) {
  T out;
  Status err;
  FieldReader r(j, root, &err);
  read(r, &out);
  r.Finish();
  if (!err.ok()) return err;
  return out;
}

// Parses `text` and hands the JSON to `from_json`; "<root>: not valid JSON"
// when it does not parse.
template <typename T, typename FromJson>
Result<T> ParseThen(const std::string& text, const std::string& root, FromJson from_json) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument(root + ": not valid JSON");
  return from_json(j);
}

// DecodeWith from JSON text.
template <typename T, typename ReadFn>
Result<T> DecodeWith(const std::string& text, const std::string& root, ReadFn read) {
  return ParseThen<T>(text, root, [&](const nlohmann::json& j) { return DecodeWith<T>(j, root, read); });
}

}  // namespace herd::tasks
