#include "etcd/tls.hpp"

#include <unistd.h>

#include <cstring>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace cnetd::etcd::tls {

namespace ssl = boost::asio::ssl;

Result<void> check_files(const TlsFiles& files) {
    const std::pair<const char*, const std::string*> fields[] = {
        {"cluster.tls.ca", &files.ca},
        {"cluster.tls.cert", &files.cert},
        {"cluster.tls.key", &files.key},
    };
    for (const auto& [field, path] : fields) {
        if (path->empty()) return Error::invalid(fmt::format("{}: a file is required", field));
        if (::access(path->c_str(), R_OK) != 0) {
            return Error::invalid(
                fmt::format("{}: \"{}\" is not readable: {}", field, *path, std::strerror(errno)));
        }
    }
    return ok();
}

Result<std::unique_ptr<ssl::context>> make_context(const TlsFiles& files) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ctx->set_verify_mode(ssl::verify_peer);
    boost::system::error_code ec;
    auto load = [&](const char* field, const std::string& path, auto&& fn) -> Result<void> {
        fn(ec);
        if (!ec) return ok();
        return Error::invalid(fmt::format("{}: cannot load \"{}\": {}", field, path, ec.message()));
    };
    CNETD_TRY(
        load("cluster.tls.ca", files.ca, [&](auto& e) { ctx->load_verify_file(files.ca, e); }));
    CNETD_TRY(load("cluster.tls.cert", files.cert,
                   [&](auto& e) { ctx->use_certificate_chain_file(files.cert, e); }));
    CNETD_TRY(load("cluster.tls.key", files.key,
                   [&](auto& e) { ctx->use_private_key_file(files.key, ssl::context::pem, e); }));
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
        ERR_clear_error();
        return Error::invalid(
            fmt::format("cluster.tls.key: \"{}\" is not the key of the "
                        "certificate in \"{}\"",
                        files.key, files.cert));
    }
    return ctx;
}

Result<void> prepare(boost::beast::ssl_stream<boost::beast::tcp_stream>& s,
                     const std::string& host) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    // SNI carries host names only (RFC 6066), never addresses.
    if (ec && SSL_set_tlsext_host_name(s.native_handle(), host.c_str()) != 1) {
        ERR_clear_error();
        return Error(ErrorKind::Unavailable, fmt::format("TLS: cannot set SNI name {}", host));
    }
    s.set_verify_callback(ssl::host_name_verification(host));
    return ok();
}

}  // namespace cnetd::etcd::tls
