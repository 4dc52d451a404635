#include "tasks/field_reader.h"

#include <sstream>

namespace herd::tasks {

using nlohmann::json;

namespace {
std::string Fmt(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}
}  // namespace

FieldReader::FieldReader(const json& j, std::string path, Status* err)
    : j_(j), path_(std::move(path)), err_(err) {
  if (err_->ok() && !j_.is_object()) Fail(path_.empty() ? "config" : path_, "must be an object");
}

std::string FieldReader::Path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

const json* FieldReader::Find(const std::string& key) {
  seen_.insert(key);
  if (!err_->ok() || !j_.is_object()) return nullptr;
  auto it = j_.find(key);
  return it == j_.end() ? nullptr : &*it;
}

void FieldReader::Str(const std::string& key, std::string* out, bool required) {
  const json* v = Find(key);
  if (!v) return Missing(key, required);
  if (!v->is_string()) return Fail(Path(key), "must be a string");
  *out = v->get<std::string>();
}

void FieldReader::Int(const std::string& key, int64_t* out, int64_t lo, int64_t hi, bool required) {
  const json* v = Find(key);
  if (!v) return Missing(key, required);
  if (!v->is_number_integer()) return Fail(Path(key), "must be an integer");
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return Fail(Path(key), "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) {
    return Fail(Path(key), "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                               "], got " + std::to_string(x));
  }
  *out = x;
}

void FieldReader::U64(const std::string& key, uint64_t* out, bool required) {
  const json* v = Find(key);
  if (!v) return Missing(key, required);
  if (!v->is_number_unsigned()) return Fail(Path(key), "must be an integer >= 0");
  *out = v->get<uint64_t>();
}

void FieldReader::Num(const std::string& key, double* out, double lo, double hi, bool required) {
  const json* v = Find(key);
  if (!v) return Missing(key, required);
  if (!v->is_number()) return Fail(Path(key), "must be a number");
  double x = v->get<double>();
  if (!(x >= lo && x <= hi)) {
    return Fail(Path(key), "must be in [" + Fmt(lo) + ", " + Fmt(hi) + "], got " + Fmt(x));
  }
  *out = x;
}

void FieldReader::OptNum(const std::string& key, std::optional<double>* out) {
  const json* v = Find(key);
  if (!v || v->is_null()) return;
  if (!v->is_number()) return Fail(Path(key), "must be a number or null");
  *out = v->get<double>();
}

void FieldReader::Bool(const std::string& key, bool* out) {
  const json* v = Find(key);
  if (!v) return;
  if (!v->is_boolean()) return Fail(Path(key), "must be true or false");
  *out = v->get<bool>();
}

void FieldReader::StrList(const std::string& key, std::vector<std::string>* out,
                          const std::set<std::string>& allowed, bool required) {
  const json* v = Find(key);
  if (!v) return Missing(key, required);
  if (!v->is_array()) return Fail(Path(key), "must be an array of strings");
  std::vector<std::string> r;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& e = (*v)[i];
    std::string p = Path(key) + "[" + std::to_string(i) + "]";
    if (!e.is_string()) return Fail(p, "must be a string");
    if (!allowed.empty() && !allowed.count(e.get<std::string>())) {
      return Fail(p, "unknown value '" + e.get<std::string>() + "'");
    }
    r.push_back(e.get<std::string>());
  }
  *out = std::move(r);
}

void FieldReader::NumList(const std::string& key, std::vector<double>* out, bool required) {
  const json* v = Find(key);
  if (!v) return Missing(key, required);
  if (!v->is_array()) return Fail(Path(key), "must be an array of numbers");
  std::vector<double> r;
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_number()) return Fail(Path(key) + "[" + std::to_string(i) + "]", "must be a number");
    r.push_back((*v)[i].get<double>());
  }
  *out = std::move(r);
}

void FieldReader::I32List(const std::string& key, std::vector<int32_t>* out, bool required) {
  const json* v = Find(key);
  if (!v) return Missing(key, required);
  if (!v->is_array()) return Fail(Path(key), "must be an array of integers");
  std::vector<int32_t> r;
  r.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    const json& e = (*v)[i];
    if (!e.is_number_integer() || e.get<int64_t>() < INT32_MIN || e.get<int64_t>() > INT32_MAX) {
      return Fail(Path(key) + "[" + std::to_string(i) + "]", "must be a 32-bit integer");
    }
    r.push_back(e.get<int32_t>());
  }
  *out = std::move(r);
}

void FieldReader::Object(const std::string& key, json* out) {
  const json* v = Find(key);
  if (!v) return;
  if (!v->is_object()) return Fail(Path(key), "must be an object");
  *out = *v;
}

void FieldReader::Nested(const std::string& key, const std::function<void(FieldReader&)>& fn,
                         bool required) {
  const json* v = Find(key);
  if (!v) return Missing(key, required);
  FieldReader r(*v, Path(key), err_);
  if (!ok()) return;
  fn(r);
  r.Finish();
}

void FieldReader::Objects(const std::string& key,
                          const std::function<void(FieldReader&, size_t)>& fn, bool required) {
  const json* v = Find(key);
  if (!v) return Missing(key, required);
  if (!v->is_array()) return Fail(Path(key), "must be an array of objects");
  for (size_t i = 0; i < v->size() && ok(); ++i) {
    FieldReader r((*v)[i], Path(key) + "[" + std::to_string(i) + "]", err_);
    if (!ok()) return;
    fn(r, i);
    r.Finish();
  }
}

void FieldReader::Finish() {
  if (!err_->ok() || !j_.is_object()) return;
  for (auto it = j_.begin(); it != j_.end(); ++it) {
    if (!seen_.count(it.key())) return Fail(Path(it.key()), "unknown field");
  }
}

void FieldReader::Fail(const std::string& path, const std::string& what) {
  if (err_->ok()) *err_ = Status::InvalidArgument(path + ": " + what);
}

void FieldReader::Missing(const std::string& key, bool required) {
  if (required) Fail(Path(key), "required field missing");
}

}  // namespace herd::tasks
