#include "api/client.hpp"

#include <cctype>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace cnetd::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using local = asio::local::stream_protocol;

Client::Client(std::string socket_path) : path_(std::move(socket_path)) {}

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
    asio::io_context io;
    local::socket sock(io);
    boost::system::error_code ec;
    sock.connect(local::endpoint(path_), ec);
    if (ec) {
        return Error(ErrorKind::Unavailable,
                     fmt::format("cannot connect to cnetd at {}: {} (is cnetd running?)", path_,
                                 ec.message()),
                     ec.value() ? ec.value() : ECONNREFUSED);
    }

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

    auto io_error = [&](const char* what) {
        return Error(ErrorKind::Unavailable,
                     fmt::format("{} {} {} on {}: {}", what, method, target, path_, ec.message()),
                     ec.value() ? ec.value() : EIO);
    };
    http::write(sock, req, ec);
    // A server that refuses a request early (413) may close before reading all of it: a failed
    // write is not fatal if a response can still be read.
    const bool write_failed = static_cast<bool>(ec);
    boost::system::error_code write_ec = ec;

    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);  // responses list every network; be generous
    http::read(sock, buf, parser, ec);
    if (ec) {
        if (write_failed) ec = write_ec;
        return io_error(write_failed ? "send" : "read response to");
    }
    RawResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    out.body = std::move(parser.get().body());
    sock.shutdown(local::socket::shutdown_both, ec);  // best effort; the server closes too
    return out;
}

Result<json> Client::request(std::string_view method, std::string_view target,
                             const std::optional<json>& body) const {
    CNETD_TRY_ASSIGN(RawResponse r, raw(method, target, body ? body->dump() : std::string()));
    if (r.status < 200 || r.status >= 300) return error_from_response(r.status, r.body);
    if (r.body.empty()) return json(nullptr);
    json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
        return Error(ErrorKind::Internal,
                     fmt::format("{} {}: the daemon sent a body that is not JSON", method, target));
    }
    return j;
}

}  // namespace cnetd::api
