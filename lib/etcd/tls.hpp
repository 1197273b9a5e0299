// TLS for the etcd client (Asio's OpenSSL stream): the context built from ClientOptions::tls and
// the per-connection set-up. Internal to lib/etcd.
//
// The server's certificate must chain to `ca` and name the endpoint's host (DNS name or IP
// address SAN, RFC 2818 rules through asio::ssl::host_name_verification); the client presents
// `cert`/`key` (etcd --client-cert-auth). TLS 1.2 or newer.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "base/error.hpp"
#include "etcd/client.hpp"

namespace cnetd::etcd::tls {

// Each file exists and is readable: InvalidArgument naming the field ("cluster.tls.ca") and path.
Result<void> check_files(const TlsFiles& files);

// A client context with the CA, certificate and key loaded: InvalidArgument naming the field and
// OpenSSL's reason when a file does not load (not PEM, key not matching the certificate).
Result<std::unique_ptr<boost::asio::ssl::context>> make_context(const TlsFiles& files);

// SNI (for host names) and the peer verification of `host` on a new stream.
Result<void> prepare(boost::beast::ssl_stream<boost::beast::tcp_stream>& s,
                     const std::string& host);

}  // namespace cnetd::etcd::tls
