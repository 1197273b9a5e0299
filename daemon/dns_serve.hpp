// The sockets of one resolver sandbox (a container namespace's 127.0.0.11 UDP socket and
// listening TCP socket, dup()s of core::DnsSandbox's) served on the DNS thread's io_context, for
// daemon/dns_server.cpp. The answers themselves come from a QueryHandler.
//
// UDP: the socket is waited on for readability and drained with non-blocking reads into one
// buffer shared by every sandbox (they all run on the one DNS thread), so a sandbox costs no
// buffer of its own while idle. Answers are sent with a non-blocking send (a full socket buffer
// drops the answer: the client retries, as over any UDP).
// TCP (RFC 7766): a 2-byte length before each message; several queries per connection, answered
// as they are ready (a forwarded one never holds up a local one behind it); a declared length
// above `max_tcp_message` closes the connection without reading the body (counter tcp_rejected);
// a connection idle for `tcp_idle` with nothing pending is closed; at most `max_tcp_clients`
// connections per sandbox, others are closed at once (tcp_rejected).
//
// Threading: everything on the DNS thread. Ownership: borrows the io_context, the handler and the
// counters (all outlive it); pending operations keep the sandbox alive until close().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include "base/fd.hpp"
#include "base/net.hpp"
#include "daemon/dns_forward.hpp"

namespace cnetd::daemon {

class QueryHandler {
public:
    // Sends an answer to the client a query came from (no-op once its sandbox or connection is
    // closed).
    using Respond = std::function<void(std::span<const uint8_t>)>;
    virtual ~QueryHandler() = default;
    // A query that arrived at sandbox `ns`. True when `out` holds the answer to send now; false
    // when nothing is to be sent now: the query was dropped, or `later()` was called and the
    // Respond it returned will be called (once, on the DNS thread) with the answer.
    virtual bool handle(const NetnsId& ns, std::span<const uint8_t> pkt, bool tcp,
                        std::vector<uint8_t>& out, const std::function<Respond()>& later) = 0;
};

struct SandboxLimits {
    size_t max_tcp_clients = 64;
    size_t max_tcp_message = 4096;  // no real query is larger
    std::chrono::milliseconds tcp_idle = std::chrono::seconds(3);
};

class ServedSandbox : public std::enable_shared_from_this<ServedSandbox> {
public:
    ServedSandbox(boost::asio::io_context& io, NetnsId ns, std::string path, QueryHandler& handler,
                  DnsAtomicCounters& counters, std::vector<uint8_t>& udp_buf, SandboxLimits limits);
    ~ServedSandbox();
    // Adopts the sockets (either may be invalid: not served) and starts serving; false (logged)
    // when a socket cannot be adopted.
    bool start(UniqueFd udp, UniqueFd tcp);
    // Stops serving and closes the sockets and every TCP connection.
    void close();
    size_t tcp_clients() const { return clients_.size(); }

    class TcpClient;  // dns_serve.cpp

private:
    void wait_udp();
    void read_udp();
    bool shut_down();
    void accept_tcp();
    friend class TcpClient;

    boost::asio::io_context& io_;
    const NetnsId ns_;
    const std::string path_;  // for logs
    QueryHandler& handler_;
    DnsAtomicCounters& counters_;
    std::vector<uint8_t>& udp_buf_;  // shared by all sandboxes
    const SandboxLimits limits_;
    boost::asio::ip::udp::socket udp_;
    boost::asio::ip::tcp::acceptor tcp_;
    std::set<std::shared_ptr<TcpClient>> clients_;
    std::vector<uint8_t> out_;  // the answer being built (sent before the next is)
    bool closed_ = false;
};

}  // namespace cnetd::daemon
