#include "api/client.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <limits>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "api/json_parse.hpp"
#include "base/fd.hpp"

namespace cnetd::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using local = asio::local::stream_protocol;

namespace {

constexpr std::string_view kCannotConnect = "cannot connect to cnetd at ";

long long ms_since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// A connected, non-blocking unix socket, or the connect error (kCannotConnect...). A unix
// connect() never waits when non-blocking: it succeeds, fails, or says EAGAIN when the listener's
// queue is full (the daemon is not accepting). EAGAIN is retried until the deadline.
Result<UniqueFd> connect_until(const std::string& path, Clock::time_point deadline,
                               Clock::time_point start) {
    auto failed = [&](int err, const std::string& why) {
        return Error(ErrorKind::Unavailable, fmt::format("{}{}: {}", kCannotConnect, path, why),
                     err);
    };
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) {
        return failed(ENAMETOOLONG,
                      fmt::format("the path is longer than {} bytes", sizeof addr.sun_path - 1));
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    for (;;) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!fd.valid()) return failed(errno, fmt::format("socket: {}", std::strerror(errno)));
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
        const int err = errno;
        if (err == EAGAIN && Clock::now() < deadline) {
            std::this_thread::sleep_for(
                std::min<Clock::duration>(std::chrono::milliseconds(10), deadline - Clock::now()));
            continue;
        }
        if (err == EAGAIN) {
            return failed(err, fmt::format("it accepted no connection in {} ms (its listen queue "
                                           "is full: is cnetd stopped or overloaded?)",
                                           ms_since(start)));
        }
        return failed(err, fmt::format("{} (is cnetd running?)", std::strerror(err)));
    }
}

// connect_until, then `sock` (on its caller's io_context) owns the connection.
Result<void> connect_socket(const std::string& path, Clock::time_point deadline,
                            Clock::time_point start, local::socket& sock) {
    CNETD_TRY_ASSIGN(UniqueFd fd, connect_until(path, deadline, start));
    boost::system::error_code ec;
    sock.assign(local(), fd.get(), ec);
    if (ec) return Error(ErrorKind::Unavailable, fmt::format("socket: {}", ec.message()), EIO);
    (void)fd.release();  // the socket owns it now
    return ok();
}

http::request<http::string_body> make_request(std::string_view method, std::string_view target,
                                              std::string body) {
    http::request<http::string_body> req;
    req.method_string(boost::beast::string_view(method.data(), method.size()));
    req.target(boost::beast::string_view(target.data(), target.size()));
    req.version(11);
    req.set(http::field::host, "localhost");
    req.set(http::field::user_agent, "cnetd-api-client");
    req.set(http::field::connection, "close");
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
}

}  // namespace

Client::Client(std::string socket_path, std::chrono::milliseconds timeout)
    : path_(std::move(socket_path)), timeout_(timeout) {}

bool never_sent(const Error& e) {
    return e.message().rfind(kCannotConnect, 0) == 0;
}

std::string encode_segment(std::string_view segment) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : segment) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

Result<RawResponse> Client::raw(std::string_view method, std::string_view target,
                                std::string body) const {
    return raw_until(Clock::now() + timeout_, method, target, std::move(body));
}

// Write and read run as one chain of asynchronous operations on a private io_context, which runs
// until the chain completes or the deadline passes; then the socket is closed, which cancels
// whatever is pending. One deadline for the whole exchange, whatever the daemon does.
Result<RawResponse> Client::raw_until(Clock::time_point deadline, std::string_view method,
                                      std::string_view target, std::string body) const {
    const Clock::time_point start = Clock::now();
    asio::io_context io(1);
    local::socket sock(io);
    CNETD_TRY(connect_socket(path_, deadline, start, sock));
    boost::system::error_code ec;

    auto req = make_request(method, target, std::move(body));
    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);  // responses list every network; be generous
    enum class Phase { Sending, Reading, Done } phase = Phase::Sending;
    boost::system::error_code write_ec, read_ec;
    http::async_write(sock, req, [&](boost::system::error_code e, std::size_t) {
        // A server that refuses a request early (413) may close before reading all of it: a
        // failed write is not fatal if a response can still be read.
        write_ec = e;
        phase = Phase::Reading;
        http::async_read(sock, buf, parser, [&](boost::system::error_code e2, std::size_t) {
            read_ec = e2;
            phase = Phase::Done;
        });
    });
    io.run_until(deadline);
    if (phase != Phase::Done) {
        const Phase stuck = phase;
        sock.close(ec);  // cancels the pending operation; its handler runs below, aborted
        phase = Phase::Done;
        io.restart();
        io.run();
        return Error(
            ErrorKind::Unavailable,
            fmt::format("cnetd at {} did not answer {} {} in time (waited {} ms {}; is "
                        "cnetd stopped or overloaded?)",
                        path_, method, target, ms_since(start),
                        stuck == Phase::Sending ? "to send the request" : "for the response"),
            ETIMEDOUT);
    }
    if (read_ec) {
        const auto& e = write_ec ? write_ec : read_ec;
        return Error(ErrorKind::Unavailable,
                     fmt::format("{} {} {} on {}: {}", write_ec ? "send" : "read response to",
                                 method, target, path_, e.message()),
                     e.value() ? e.value() : EIO);
    }
    RawResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    out.body = std::move(parser.get().body());
    sock.shutdown(local::socket::shutdown_both, ec);  // best effort; the server closes too
    return out;
}

namespace {

// Hands each complete line of `pending` to `on_line`, keeping a partial last line; false when
// `on_line` asked to stop.
bool split_lines(std::string& pending, const std::function<bool(std::string_view)>& on_line) {
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        if (!on_line(std::string_view(pending).substr(start, nl - start))) return false;
    }
    pending.erase(0, start);
    return true;
}

}  // namespace

Result<void> Client::stream(std::string_view target,
                            const std::function<bool(std::string_view)>& on_line) const {
    const Clock::time_point start = Clock::now();
    const Clock::time_point deadline = start + timeout_;
    asio::io_context io(1);
    local::socket sock(io);
    CNETD_TRY(connect_socket(path_, deadline, start, sock));
    boost::system::error_code ec;

    auto req = make_request("GET", target, "");
    boost::beast::flat_buffer buf;
    http::response_parser<http::buffer_body> parser;
    // A stream has no end we know of. (Not boost::none: Boost 1.81's parser compares a
    // Content-Length against an empty limit as if it were exceeded.)
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    bool headed = false;
    boost::system::error_code io_ec;
    http::async_write(sock, req, [&](boost::system::error_code e, std::size_t) {
        if (e) return void(io_ec = e);
        http::async_read_header(sock, buf, parser, [&](boost::system::error_code e2, std::size_t) {
            io_ec = e2;
            headed = !e2;
        });
    });
    io.run_until(deadline);
    if (!headed && !io_ec) {
        sock.close(ec);
        return Error(ErrorKind::Unavailable,
                     fmt::format("cnetd at {} did not answer GET {} in time (waited {} ms)", path_,
                                 target, ms_since(start)),
                     ETIMEDOUT);
    }
    auto io_error = [&](const boost::system::error_code& e) {
        return Error(ErrorKind::Unavailable,
                     fmt::format("read GET {} from {}: {}", target, path_, e.message()),
                     e.value() ? e.value() : EIO);
    };
    if (io_ec) return io_error(io_ec);
    const int status = static_cast<int>(parser.get().result_int());
    std::string pending, body;
    std::array<char, 8192> chunk;
    // The body as it comes (blocking reads: the socket waits in poll, no deadline).
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        http::read_some(sock, buf, parser, ec);  // returns with what came (read() would wait)
        if (ec == http::error::need_buffer) ec = {};
        if (ec) return io_error(ec);
        const size_t n = chunk.size() - parser.get().body().size;
        (status >= 200 && status < 300 ? pending : body).append(chunk.data(), n);
        if (!split_lines(pending, on_line)) return ok();
    }
    if (status < 200 || status >= 300) return error_from_response(status, body);
    if (!pending.empty()) on_line(pending);  // a last line without "\n"
    return ok();
}

Result<json> Client::request(std::string_view method, std::string_view target,
                             const std::optional<json>& body) const {
    std::string text;
    try {
        if (body) text = body->dump();
    } catch (const json::exception& e) {  // a string that is not UTF-8 (from a command line)
        return Error::invalid(
            fmt::format("{} {}: request body: {}", method, target, json_exception_text(e)));
    }
    CNETD_TRY_ASSIGN(RawResponse r, raw(method, target, std::move(text)));
    if (r.status < 200 || r.status >= 300) return error_from_response(r.status, r.body);
    if (r.body.empty()) return json(nullptr);
    auto j = parse_json(r.body);
    if (!j) {
        return Error(ErrorKind::Internal,
                     fmt::format("{} {}: the daemon sent a body that is not JSON: {}", method,
                                 target, j.error().message()));
    }
    return j;
}

}  // namespace cnetd::api
