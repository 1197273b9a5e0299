// The optional TCP listener for Prometheus (config `metrics-address`, Docker's `metrics-addr`;
// docs/observability.md): GET /metrics answers the text exposition (HEAD too, without the body),
// any other path is a 404 and any other method a 405. Nothing else is served on it: the control
// API stays on the unix socket, behind SO_PEERCRED.
//
// Limits: at most kMaxConnections open at a time (beyond: the new connection is closed at once);
// one request per connection (answered with Connection: close); a request not complete within
// kReadTimeout, or an answer not taken within it, drops the connection. So a slow or hostile
// scraper costs the daemon one small buffer and never blocks the io thread.
//
// Threading: everything on the io_context's thread (the daemon's io thread), as is `scrape`.
// Ownership: borrows the io_context, which must outlive the listener; sessions keep themselves
// alive while I/O is pending.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "base/error.hpp"

namespace cnetd::daemon {

class MetricsListener {
public:
    static constexpr std::size_t kMaxConnections = 16;
    static constexpr std::chrono::seconds kReadTimeout{10};
    using Scrape = std::function<std::string()>;

    MetricsListener(boost::asio::io_context& io, Scrape scrape);
    ~MetricsListener();  // close()

    // Binds "host:port" ("127.0.0.1:9323", "[::1]:9323"; port 0 picks one) and listens. Errors
    // name the config key and the address.
    Result<void> listen(const std::string& address);
    // The bound port (after listen()), e.g. when 0 was asked.
    unsigned short port() const;
    void close();

    struct State;

private:
    std::shared_ptr<State> st_;
};

// "host:port" → (host, port): "[::1]:9323" → ("::1", 9323). InvalidArgument naming `key`.
Result<std::pair<std::string, unsigned short>> split_host_port(const std::string& address,
                                                               const std::string& key);

}  // namespace cnetd::daemon
