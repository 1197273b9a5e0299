// A synchronous client for cnetd's control socket (used by netctl, cnetd-cni, the daemon's start-up
// ping and tests).
//
// Each request opens a fresh connection (the CLI makes one or two calls; no pooling to get wrong),
// sends one HTTP/1.1 request with an optional JSON body and reads the whole response.
//
// Deadline: every call has one deadline covering connect, write and read together (the client's
// timeout from now, default kDefaultTimeout, or an explicit time point with raw_until). A daemon
// that accepts but never answers (stopped with SIGSTOP, wedged) costs the caller the timeout, never
// more. The call blocks the calling thread only until then.
//
// Errors:
//  - the request never reached the daemon: the message starts "cannot connect to cnetd at" (see
//    never_sent()), ErrorKind::Unavailable, the connect errno set:
//    "cannot connect to cnetd at /run/cnetd/cnetd.sock: No such file or directory (is cnetd
//    running?)". A full listen queue (EAGAIN) is retried until the deadline, then reported so,
//    with EAGAIN.
//  - the deadline passed after connecting: ErrorKind::Unavailable, errno ETIMEDOUT,
//    "cnetd at /run/cnetd/cnetd.sock did not answer GET /v1/networks in time (waited 1001 ms for
//    the response; is cnetd stopped or overloaded?)" — the milliseconds are measured, not assumed.
//  - a non-2xx answer: the server's Error rebuilt (same kind and message), error_number() == 0.
//  - I/O failure mid-exchange or an unparsable response: ErrorKind::Unavailable, errno set.
// error_number() != 0 is how callers tell "daemon unreachable" from a 503 answer.
// Threading: a Client is immutable after construction; its calls may be made from any thread,
// concurrently (every call has its own connection and io_context). No exception escapes.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "api/protocol.hpp"
#include "base/error.hpp"

namespace cnetd::api {

using Clock = std::chrono::steady_clock;

// netctl's --timeout default, and every Client's unless given.
inline constexpr std::chrono::milliseconds kDefaultTimeout{30'000};

struct RawResponse {
    int status = 0;
    std::string body;
};

class Client {
public:
    explicit Client(std::string socket_path, std::chrono::milliseconds timeout = kDefaultTimeout);

    // method: "GET", "POST", "DELETE". target: "/v1/networks". A 2xx response gives its JSON body,
    // or null for an empty body (204). Deadline: now + timeout().
    Result<json> request(std::string_view method, std::string_view target,
                         const std::optional<json>& body = std::nullopt) const;

    // Sends `body` verbatim (any content type) and returns the status and body whatever the status.
    // For tests and diagnostics: lets a caller send malformed JSON or oversized bodies.
    // Deadline: now + timeout().
    Result<RawResponse> raw(std::string_view method, std::string_view target,
                            std::string body) const;
    // The same with an explicit deadline (cnetd-cni keeps one deadline over its retries). A
    // deadline already past still tries to connect once (a connect does not wait), then times out.
    Result<RawResponse> raw_until(Clock::time_point deadline, std::string_view method,
                                  std::string_view target, std::string body) const;

    // GET `target` as a stream (GET /v1/events: chunked, one line per item): connects and waits
    // for the status line and headers within timeout(), then calls `on_line` with each line of
    // the body (without its "\n") as it arrives, with no deadline, until the body ends, `on_line`
    // returns false (then the connection is closed) or the connection fails. A non-2xx answer is
    // the server's error, as request() gives it; errors after the headers are Unavailable with
    // errno set.
    Result<void> stream(std::string_view target,
                        const std::function<bool(std::string_view line)>& on_line) const;

    const std::string& socket_path() const noexcept { return path_; }
    std::chrono::milliseconds timeout() const noexcept { return timeout_; }

private:
    std::string path_;
    std::chrono::milliseconds timeout_;
};

// True for the client's "cannot connect" errors: the request was never sent, so retrying cannot
// repeat a change the daemon already made.
bool never_sent(const Error& e);

// Percent-encodes one path segment (names are user text: "a b" → "a%20b").
std::string encode_segment(std::string_view segment);

}  // namespace cnetd::api
