// libFuzzer target: the control API's input path. The input is a raw HTTP/1.1 request as a client
// would send it over the socket; it goes through the same Beast parser with the same limits as
// daemon/server.cpp, and its body through every request decoder (daemon/codec.hpp, and
// lib/api/codec.hpp for the CNI routes). The input is also tried as a bare body, so JSON seeds are
// fuzzed without the HTTP framing in the way.
// Nothing may crash, hang or leak; decoders must fail with InvalidArgument, never anything else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "api/codec.hpp"
#include "api/protocol.hpp"
#include "daemon/codec.hpp"

namespace http = boost::beast::http;
using namespace cnetd;

namespace {

// A decoder either succeeds or fails with InvalidArgument in words meant for a user (never an
// nlohmann exception's text, which means one was caught somewhere it should not be thrown).
// (Unless the input itself carries the marker: messages quote bad values.)
template <class R>
void expect_invalid_on_error(const R& r, std::string_view body) {
    if (r.ok()) return;
    if (r.error().kind() != ErrorKind::InvalidArgument) std::abort();
    if (r.error().message().find("[json.exception") != std::string::npos &&
        body.find("[json.exception") == std::string_view::npos)
        std::abort();
}

void decode(std::string_view body) {
    expect_invalid_on_error(daemon::parse_object(body), body);
    expect_invalid_on_error(daemon::parse_create_network(body), body);
    expect_invalid_on_error(daemon::parse_connect(body, "bridge"), body);
    expect_invalid_on_error(daemon::parse_disconnect(body), body);
    expect_invalid_on_error(daemon::parse_create_netns(body), body);
    expect_invalid_on_error(api::parse_cni_add(body), body);
    expect_invalid_on_error(api::parse_cni_key(body, true), body);
    expect_invalid_on_error(api::parse_cni_key(body, false), body);
    expect_invalid_on_error(api::parse_cni_gc(body), body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    decode(in);

    http::request_parser<http::string_body> parser;
    parser.body_limit(api::kMaxBodyBytes);
    parser.header_limit(static_cast<std::uint32_t>(api::kMaxHeaderBytes));
    parser.eager(true);
    boost::beast::error_code ec;
    size_t used = 0;
    while (used < in.size() && !parser.is_done()) {
        size_t n = parser.put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
        if (ec == http::error::need_more) break;
        if (ec) return 0;
        if (n == 0) break;
        used += n;
    }
    if (!parser.is_done()) return 0;
    auto& msg = parser.get();
    (void)msg.method_string();
    (void)msg.target();
    (void)msg.keep_alive();
    decode(msg.body());
    return 0;
}
