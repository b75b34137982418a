// Status and StatusOr<T>: how every fallible gapless function reports failure.
//
// No exceptions are thrown by gapless code; third-party exceptions are caught in the
// adapter that wraps the library. Each code implies what a caller should do:
//   kInvalidArgument     bad input or config: fix the input, do not retry.
//   kNotFound            the named thing does not exist.
//   kFailedPrecondition  the system is not in a state to do this; an operator must act
//                        (for example: a previous fsync failed, reopen the spool).
//   kResourceExhausted   backpressure: retry after waiting (spool full under `block`).
//   kUnavailable         transient: retry with backoff.
//   kDataLoss            corruption detected: report and quarantine, never retry.
//   kInternal            a bug or an unexpected OS error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace gapless {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kResourceExhausted,
  kUnavailable,
  kDataLoss,
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "CODE: message", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "context: message"; OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgumentError(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status NotFoundError(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status AlreadyExistsError(std::string m) {
  return Status(StatusCode::kAlreadyExists, std::move(m));
}
inline Status FailedPreconditionError(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status ResourceExhaustedError(std::string m) {
  return Status(StatusCode::kResourceExhausted, std::move(m));
}
inline Status UnavailableError(std::string m) {
  return Status(StatusCode::kUnavailable, std::move(m));
}
inline Status DataLossError(std::string m) { return Status(StatusCode::kDataLoss, std::move(m)); }
inline Status InternalError(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }

// Maps an errno value from a failed system call to a Status naming the call and path.
Status ErrnoToStatus(int err, std::string_view what, std::string_view path);

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  // Implicit on purpose, so `return value;` and `return SomeError(...);` both work.
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (status_.ok()) status_ = InternalError("StatusOr constructed from OK status");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // Precondition: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace gapless

#define GAPLESS_CONCAT_INNER(a, b) a##b
#define GAPLESS_CONCAT(a, b) GAPLESS_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` yields a non-OK Status.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::gapless::Status gapless_status_ = (expr);        \
    if (!gapless_status_.ok()) return gapless_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, F());` declares x from F()'s value or returns its Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  GAPLESS_ASSIGN_OR_RETURN_IMPL(GAPLESS_CONCAT(gapless_statusor_, __LINE__), lhs, expr)
#define GAPLESS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
