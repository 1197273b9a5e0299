// Forwarding for the embedded DNS server (daemon/dns_server.hpp): a query the zone does not answer
// goes to the host's resolvers, from the daemon's own (host) network namespace.
//
// Per forwarded query: the servers as they are when it arrives, tried in order. Each try gets an
// equal share of what is left of the budget: remaining / servers-not-yet-tried (so a dead first
// server costs budget/N and the others still get their turn, and a fast SERVFAIL hands its unused
// time to the next; Docker gives every server its own 4 s instead, so three dead servers cost 12
// s). UDP from a fresh socket connected to the server (a random source port), with a fresh random
// query id (the client's is put back into the reply); only a reply passing dns::reply_matches is
// taken, others are ignored and the wait goes on. A truncated UDP reply → the same server again
// over TCP, within the same share; a client that came over TCP is forwarded over TCP from the
// start. SERVFAIL, REFUSED, a timeout, an ICMP error or a broken TCP exchange → the next server;
// any other rcode (NXDOMAIN included) is the answer, verbatim. All failed → the caller answers
// SERVFAIL.
// At most `max_in_flight` queries at once: forward() refuses beyond that (the caller answers
// REFUSED, as Docker).
//
// Threading: everything on the server's io_context thread (the "DNS thread"), except
// in_flight(), which any thread may read. Ownership: borrows the io_context and the counters; a
// pending exchange keeps itself alive; the Forwarder must outlive the io_context's run.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "daemon/dns_server.hpp"
#include "dns/wire.hpp"

namespace cnetd::daemon {

// DnsCounters as the DNS thread counts them, readable from any thread (status()).
struct DnsAtomicCounters {
    std::atomic<uint64_t> queries_udp{0}, queries_tcp{0}, answered_local{0}, forwarded{0},
        upstream_failures{0}, servfail{0}, refused{0}, malformed{0}, tcp_rejected{0};
    DnsCounters load() const;
};

class Forwarder {
public:
    // The upstream's reply with the client's id restored; empty when every server failed.
    using Done = std::function<void(std::vector<uint8_t> reply)>;

    Forwarder(boost::asio::io_context& io, DnsAtomicCounters& counters, size_t max_in_flight,
              std::chrono::milliseconds budget);
    ~Forwarder();
    Forwarder(const Forwarder&) = delete;
    Forwarder& operator=(const Forwarder&) = delete;

    // The servers later queries go to (queries under way keep theirs).
    void set_servers(std::vector<boost::asio::ip::udp::endpoint> servers);
    // Starts forwarding `query` (parsed as `q`); `done` is called exactly once, later, on the DNS
    // thread. False (nothing started, `done` dropped) when max_in_flight queries are under way.
    bool forward(std::span<const uint8_t> query, const dns::Query& q, bool tcp, Done done);
    size_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

    class Exchange;  // dns_forward.cpp

private:
    friend class Exchange;
    boost::asio::io_context& io_;
    DnsAtomicCounters& counters_;
    const size_t max_in_flight_;
    const std::chrono::milliseconds budget_;
    std::shared_ptr<const std::vector<boost::asio::ip::udp::endpoint>> servers_;
    std::atomic<size_t> in_flight_{0};
    std::mt19937 rng_;
    // UDP replies are read here first (any size up to 64 KiB) and copied out at their length, so
    // a waiting query holds no big buffer of its own.
    std::vector<uint8_t> udp_buf_;
};

}  // namespace cnetd::daemon
