// A synchronous client for cnetd's control socket (used by netctl and tests).
//
// Each request opens a fresh connection (the CLI makes one or two calls; no pooling to get wrong),
// sends one HTTP/1.1 request with an optional JSON body and reads the whole response.
// Errors:
//  - the socket cannot be reached: ErrorKind::Unavailable with the connect errno set, message
//    "cannot connect to cnetd at /run/cnetd/cnetd.sock: No such file or directory (is cnetd
//    running?)". error_number() != 0 is how callers tell "daemon unreachable" from a 503 answer.
//  - a non-2xx answer: the server's Error rebuilt (same kind and message), error_number() == 0.
//  - I/O failure mid-exchange or an unparsable response: ErrorKind::Unavailable, errno set.
// Threading: a Client is immutable after construction; request() may be called from any thread,
// concurrently (every call has its own connection). No exception escapes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "api/protocol.hpp"
#include "base/error.hpp"

namespace cnetd::api {

struct RawResponse {
    int status = 0;
    std::string body;
};

class Client {
public:
    explicit Client(std::string socket_path);

    // method: "GET", "POST", "DELETE". target: "/v1/networks". A 2xx response gives its JSON body,
    // or null for an empty body (204).
    Result<json> request(std::string_view method, std::string_view target,
                         const std::optional<json>& body = std::nullopt) const;

    // Sends `body` verbatim (any content type) and returns the status and body whatever the status.
    // For tests and diagnostics: lets a caller send malformed JSON or oversized bodies.
    Result<RawResponse> raw(std::string_view method, std::string_view target,
                            std::string body) const;

    const std::string& socket_path() const noexcept { return path_; }

private:
    std::string path_;
};

// Percent-encodes one path segment (names are user text: "a b" → "a%20b").
std::string encode_segment(std::string_view segment);

}  // namespace cnetd::api
