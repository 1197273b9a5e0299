// cnetd's one error currency.
//
// An Error is a kind (which maps to an HTTP status, a CNI code and a netctl exit code), an optional
// errno, and a message built from context frames, outermost first:
//   "attach a to bridge: create veth vethc0ffee1 in /var/run/docker/netns/a: File exists"
// Each layer adds its frame with Error::wrap() (or Result::context()) as the error travels up.
//
// Result<T> is a small stand-in for std::expected (not in g++ 12's C++20): it holds either a T or an
// Error. Accessing the wrong alternative is a programming error and aborts (assert-like).
#pragma once

#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

namespace cnetd {

enum class ErrorKind {
    InvalidArgument,  // bad input: config, request, CLI; nothing was changed (HTTP 400)
    NotFound,         // the named object does not exist (HTTP 404)
    Conflict,         // the request collides with existing state (HTTP 409)
    Unavailable,      // the daemon cannot serve this now (HTTP 503)
    Kernel,           // the kernel refused an operation; errno() says why (HTTP 500)
    Internal,         // anything else that went wrong on our side (HTTP 500)
};

const char* to_string(ErrorKind k) noexcept;

class Error {
public:
    Error(ErrorKind kind, std::string message, int err = 0)
        : kind_(kind), errno_(err), message_(std::move(message)) {}

    // A kernel/syscall failure: "<what>: <strerror(err)>".
    static Error sys(int err, std::string_view what);
    static Error invalid(std::string msg) { return {ErrorKind::InvalidArgument, std::move(msg)}; }
    static Error not_found(std::string msg) { return {ErrorKind::NotFound, std::move(msg)}; }
    static Error conflict(std::string msg) { return {ErrorKind::Conflict, std::move(msg)}; }
    static Error internal(std::string msg) { return {ErrorKind::Internal, std::move(msg)}; }

    ErrorKind kind() const noexcept { return kind_; }
    int error_number() const noexcept { return errno_; }
    const std::string& message() const noexcept { return message_; }

    // Prepends a context frame: wrap("attach a") turns "x: y" into "attach a: x: y".
    Error& wrap(std::string_view frame) {
        message_ = fmt::format("{}: {}", frame, message_);
        return *this;
    }

private:
    ErrorKind kind_;
    int errno_;
    std::string message_;
};

// Several independent failures (teardown keeps going and reports all of them).
class ErrorList {
public:
    void add(Error e) { errors_.push_back(std::move(e)); }
    bool empty() const noexcept { return errors_.empty(); }
    const std::vector<Error>& errors() const noexcept { return errors_; }
    // One Error whose message joins every message with "; " (kind of the first).
    Error combined(std::string_view frame) const;

private:
    std::vector<Error> errors_;
};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { check(true); return std::get<0>(v_); }
    const T& value() const& { check(true); return std::get<0>(v_); }
    T&& value() && { check(true); return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& { check(false); return std::get<1>(v_); }
    Error&& error() && { check(false); return std::get<1>(std::move(v_)); }

    // Returns by value: a reference into a temporary would dangle inside CNETD_TRY.
    Result context(std::string_view frame) && {
        if (!ok()) std::get<1>(v_).wrap(frame);
        return std::move(*this);
    }

private:
    void check(bool want_value) const {
        if (ok() != want_value) std::abort();
    }
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error e) : e_(std::move(e)), has_error_(true) {}

    bool ok() const noexcept { return !has_error_; }
    explicit operator bool() const noexcept { return ok(); }
    const Error& error() const& {
        if (!has_error_) std::abort();
        return e_;
    }
    Error&& error() && {
        if (!has_error_) std::abort();
        return std::move(e_);
    }
    Result context(std::string_view frame) && {
        if (has_error_) e_.wrap(frame);
        return std::move(*this);
    }

private:
    Error e_{ErrorKind::Internal, {}};
    bool has_error_ = false;
};

inline Result<void> ok() { return {}; }

}  // namespace cnetd

// Propagate an error: CNETD_TRY(expr) returns the Error of a failed Result from the enclosing
// function. CNETD_TRY_ASSIGN(var, expr) declares `var` from a successful Result<T>.
#define CNETD_CONCAT_(a, b) a##b
#define CNETD_CONCAT(a, b) CNETD_CONCAT_(a, b)
#define CNETD_TRY(expr)                                       \
    do {                                                      \
        auto cnetd_try_r_ = (expr);                           \
        if (!cnetd_try_r_.ok()) return std::move(cnetd_try_r_).error(); \
    } while (0)
#define CNETD_TRY_ASSIGN_IMPL_(tmp, var, expr)            \
    auto tmp = (expr);                                    \
    if (!tmp.ok()) return std::move(tmp).error();         \
    var = std::move(tmp).value()
#define CNETD_TRY_ASSIGN(var, expr) \
    CNETD_TRY_ASSIGN_IMPL_(CNETD_CONCAT(cnetd_try_tmp_, __LINE__), var, expr)
