// The control protocol shared by cnetd, netctl and any other client: HTTP/1.1 with JSON bodies over
// a unix stream socket. Every call is documented in docs/api.md.
//
// This header holds the constants both ends must agree on and the error codec: an Error travels as
// a status code (from its ErrorKind) plus {"message": "...", "kind": "<to_string(kind)>"}, and is
// rebuilt on the client side with the same kind and message.
// Threading: everything here is pure and thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/error.hpp"

namespace cnetd::api {

using json = nlohmann::json;

inline constexpr const char* kDefaultSocket = "/run/cnetd/cnetd.sock";
inline constexpr const char* kSocketEnv = "CNETD_SOCKET";  // netctl's override of the default
inline constexpr const char* kApiPrefix = "/v1";
// Limits the server enforces (413 and 431 when exceeded).
inline constexpr std::size_t kMaxBodyBytes = 1024 * 1024;
inline constexpr std::size_t kMaxHeaderBytes = 16 * 1024;

// InvalidArgument 400, NotFound 404, Conflict 409, Unavailable 503, Kernel/Internal 500.
int http_status(ErrorKind kind) noexcept;
// The inverse for clients, used when a body carries no (known) "kind": 400/413/431 and other
// 4xx not listed → InvalidArgument, 404 → NotFound, 405 → InvalidArgument, 409 → Conflict,
// 503 → Unavailable, anything else → Internal.
ErrorKind kind_from_status(int status) noexcept;
// "invalid-argument" etc. (whatever to_string(ErrorKind) says) back to the kind; false if unknown.
bool kind_from_string(std::string_view text, ErrorKind& out) noexcept;

// {"message": e.message(), "kind": to_string(e.kind())}
json error_body(const Error& e);
// Rebuilds the server's Error from a non-2xx response. A body that is not our error JSON still
// gives an Error: its text (trimmed, or "HTTP <status>" when empty) with kind_from_status.
Error error_from_response(int status, std::string_view body);

}  // namespace cnetd::api
