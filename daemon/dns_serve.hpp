// The sockets of one resolver sandbox (a container namespace's 127.0.0.11 UDP socket and
// listening TCP socket, dup()s of core::DnsSandbox's) served on the DNS thread's io_context, for
// daemon/dns_server.cpp. The answers themselves come from a QueryHandler.
//
// UDP: the socket is waited on for readability (SandboxPoller: one epoll set for all sandboxes)
// and drained with non-blocking reads into one buffer shared by every sandbox (they all run on the
// one DNS thread), so a sandbox costs no buffer of its own while idle. Answers are sent with a
// non-blocking send (a full socket buffer drops the answer: the client retries, as over any UDP).
// TCP (RFC 7766): a 2-byte length before each message; several queries per connection, answered
// as they are ready (a forwarded one never holds up a local one behind it); a declared length
// above `max_tcp_message` closes the connection without reading the body (counter tcp_rejected);
// a connection idle for `tcp_idle` with nothing pending is closed; at most `max_tcp_clients`
// connections per sandbox, others are closed at once (tcp_rejected).
//
// Threading: everything on the DNS thread. Ownership: a sandbox borrows its SandboxShared (the
// handler, counters, poller and buffers, all outliving it); its owner (dns_server.cpp's map) and
// open TCP connections keep it alive; close() before it goes.
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
#include <boost/asio/posix/stream_descriptor.hpp>

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

class ServedSandbox;

// One epoll set for the listening sockets of every sandbox, waited on as ONE descriptor of the DNS
// thread's io_context (level-triggered; up to 64 events per wake-up).
// Why not an asio socket per listener: each costs ~500 bytes of reactor state plus a pending
// operation, and a container has two; with 1,000 containers that alone was over 1 MB of the
// resolver's 2 MB budget (docs/dns.md, HOW IT WORKS). Here a listener costs its epoll registration
// (kernel memory) and nothing on the heap.
// Lifetime: a registered sandbox must call remove() (ServedSandbox::close does) before it is
// destroyed; the poller must be destroyed before its io_context, or after the context stopped.
class SandboxPoller {
public:
    explicit SandboxPoller(boost::asio::io_context& io);  // throws std::system_error
    SandboxPoller(const SandboxPoller&) = delete;
    SandboxPoller& operator=(const SandboxPoller&) = delete;

    // A registration: which sandbox, which of its sockets.
    struct Watch {
        ServedSandbox* sandbox;
        bool tcp;
    };
    bool add(int fd, Watch* w);  // false with errno set
    void remove(int fd);

private:
    void wait();
    void dispatch();
    boost::asio::posix::stream_descriptor ep_;
};

// What every sandbox shares (all of it outlives every sandbox; DNS thread only).
struct SandboxShared {
    boost::asio::io_context& io;  // accepted TCP connections are asio sockets of it
    QueryHandler& handler;
    DnsAtomicCounters& counters;
    SandboxPoller& poller;
    std::vector<uint8_t> udp_buf = std::vector<uint8_t>(65536);  // one datagram being read
    std::vector<uint8_t> out = {};  // the answer being built (sent before the next is built)
    SandboxLimits limits = {};
};

class ServedSandbox : public std::enable_shared_from_this<ServedSandbox> {
public:
    ServedSandbox(NetnsId ns, std::string path, SandboxShared& shared);
    ~ServedSandbox();
    // Adopts the sockets (either may be invalid: not served) and starts serving; false (logged)
    // when a socket cannot be registered.
    bool start(UniqueFd udp, UniqueFd tcp);
    // Stops serving and closes the sockets and every TCP connection.
    void close();
    size_t tcp_clients() const { return clients_.size(); }

    class TcpClient;  // dns_serve.cpp

private:
    friend class SandboxPoller;
    friend class TcpClient;
    void ready(bool tcp);  // from the poller: a socket is readable
    void read_udp();
    bool shut_down() const;
    void accept_tcp();

    const NetnsId ns_;
    const std::string path_;  // for logs
    SandboxShared& shared_;
    UniqueFd udp_, tcp_;
    SandboxPoller::Watch udp_watch_{this, false}, tcp_watch_{this, true};
    std::set<std::shared_ptr<TcpClient>> clients_;
    bool closed_ = false;
};

}  // namespace cnetd::daemon
