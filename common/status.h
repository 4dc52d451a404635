#pragma once
// Errors as values for library code (see ../shared/STYLE.md): a Status with a
// code and a message that names the field, file or line at fault, and a
// Result<T> that holds either a value or a non-OK Status.
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace herd {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,   // bad input from a caller; message names the field
    kNotFound,
    kAlreadyExists,
    kFailedPrecondition,
    kOutOfRange,
    kResourceExhausted,
    kDataLoss,          // corrupt or truncated data on disk
    kIoError,
    kUnavailable,
    kAborted,
    kInternal,
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {Code::kFailedPrecondition, std::move(m)}; }
  static Status OutOfRange(std::string m) { return {Code::kOutOfRange, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
  static Status DataLoss(std::string m) { return {Code::kDataLoss, std::move(m)}; }
  static Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsDataLoss() const { return code_ == Code::kDataLoss; }

  // "InvalidArgument: config.json: field 'hidden_size' missing"
  std::string ToString() const;
  static const char* CodeName(Code c);

  // Prefixes context: Status::NotFound("x").WithContext("loading y") →
  // "loading y: x".
  Status WithContext(const std::string& ctx) const {
    if (ok()) return *this;
    return Status(code_, ctx + ": " + message_);
  }

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}              // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {        // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result needs a value or an error");
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace herd

// Early return on error: HERD_RETURN_IF_ERROR(Foo());
#define HERD_RETURN_IF_ERROR(expr)              \
  do {                                          \
    ::herd::Status _herd_st = (expr);           \
    if (!_herd_st.ok()) return _herd_st;        \
  } while (0)

#define HERD_CONCAT_INNER(a, b) a##b
#define HERD_CONCAT(a, b) HERD_CONCAT_INNER(a, b)
// HERD_ASSIGN_OR_RETURN(auto x, MakeX());
#define HERD_ASSIGN_OR_RETURN(lhs, expr) \
  HERD_ASSIGN_OR_RETURN_IMPL(HERD_CONCAT(_herd_r, __LINE__), lhs, expr)
#define HERD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
