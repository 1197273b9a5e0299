// The embedded DNS resolver (docs/dns.md; behaviour reference ../shared/spec/dns.md): answers
// container names on user-defined networks at 127.0.0.11:53 inside each container's namespace and
// forwards every other name to the host's resolvers, asked from the daemon's (host) namespace.
//
// Where queries come from: the engine opens one UDP and one listening TCP socket on 127.0.0.11 in
// every namespace with a dns endpoint, and DNATs 127.0.0.11:53 to them there (core::DnsSandbox,
// Netns::open_dns_listener/set_dns_nat). sync() dup()s those sockets; the server reads them on its
// own thread and io_context, so a burst of DNS never delays the control socket and the reverse.
// The asker's scope is its namespace's dns networks (one socket pair per namespace): it sees the
// names of those networks only.
// Local answers: dns::Zone (lib/dns/zone.hpp), rebuilt by sync() from the published networks and
// swapped in at once; A/AAAA/PTR with TTL 600; a local name never waits on an upstream. Names
// that exist without an address of the asked family (and MX for a local name): empty NOERROR.
// Forwarding (everything else): up to 3 servers from the host's resolv.conf (dns::upstreams;
// /run/systemd/resolve/resolv.conf when /etc/resolv.conf has only 127.0.0.53), re-read when either
// file changes (inotify); UDP from a fresh socket per query (random source port), TCP when the
// reply is truncated or the query came over TCP; SERVFAIL/REFUSED/timeout → next server; a 4 s
// budget in all (each try gets remaining / servers left: daemon/dns_forward.hpp); every server
// failed → SERVFAIL; other rcodes returned as they are. Askers whose dns networks are all internal
// are never forwarded: SERVFAIL (moby's forwardExtDNS skips the host's servers for them and, with
// none left, answers SERVFAIL). At most `max_in_flight` forwarded queries at once (Docker: 1024),
// beyond that REFUSED.
// resolv.conf files: sync() also keeps "<resolv_dir>/<endpoint id>/resolv.conf" for every endpoint
// (dns::render_resolver_file on dns networks, dns::render_plain_file elsewhere), rewritten in
// place when the host's file changes, removed when the endpoint goes.
//
// Threading: the constructor starts the DNS thread; the destructor stops and joins it. sync() on
// the kernel worker (installed as the Worker's snapshot hook, which runs after a mutation's
// snapshot is published and BEFORE its replies are sent, so a name answers the moment connect
// returns). status() and endpoint_dns() from any thread. Errors are logged and counted, never
// thrown; a failure to set up one sandbox never affects another.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/engine.hpp"
#include "core/model.hpp"

namespace cnetd::daemon {

struct DnsOptions {
    std::string resolv_dir = "/run/cnetd/resolv";  // the per-endpoint resolv.conf files
    std::string host_resolv_conf = "/etc/resolv.conf";
    std::string systemd_resolv_conf = "/run/systemd/resolve/resolv.conf";
    size_t max_in_flight = 1024;
    std::chrono::milliseconds budget = std::chrono::seconds(4);  // per forwarded query, all servers
    std::chrono::milliseconds tcp_idle = std::chrono::seconds(3);  // a client connection's idle end
};

// Counters since start (monotonic), for GET /v1/dns and `netctl dns`.
struct DnsCounters {
    uint64_t queries_udp = 0;
    uint64_t queries_tcp = 0;
    uint64_t answered_local = 0;     // A/AAAA/PTR/MX answered from the zone (NOERROR)
    uint64_t forwarded = 0;          // queries sent upstream
    uint64_t upstream_failures = 0;  // a server that timed out, errored or said SERVFAIL/REFUSED
    uint64_t servfail =
        0;                 // SERVFAIL sent: every server failed, none is known, internal-only asker
    uint64_t refused = 0;  // REFUSED: in-flight limit reached
    uint64_t malformed = 0;     // packets dropped: not a parseable query
    uint64_t tcp_rejected = 0;  // TCP connections closed: over-long message, idle, limit
};

struct DnsStatus {
    std::vector<std::string> upstreams;  // as written in the host file ("192.0.2.53")
    std::string upstreams_file;          // the file they were read from
    size_t sandboxes = 0;                // namespaces served
    size_t names = 0;                    // (network, name) keys in the zone
    size_t in_flight = 0;
    DnsCounters counters;
};

// What a runtime needs to give a container its resolver (connect reply, inspect, CNI "dns").
struct EndpointDns {
    std::string resolv_conf;               // path of the ready file to bind-mount
    std::vector<std::string> nameservers;  // ["127.0.0.11"] on dns networks
    std::vector<std::string> search;
    std::vector<std::string> options;
};

// What daemon/codec needs of the DNS server: an endpoint's resolver facts. An interface, so the
// codec (a library of its own, fuzzed alone: tests/fuzz/fuzz_api) does not link the server.
class EndpointDnsSource {
public:
    virtual EndpointDns endpoint_dns(const core::Network& net, const core::Endpoint& ep) const = 0;

protected:
    ~EndpointDnsSource() = default;  // never deleted through this interface
};

class DnsServer final : public EndpointDnsSource {
public:
    explicit DnsServer(DnsOptions opts);
    ~DnsServer();
    DnsServer(const DnsServer&) = delete;
    DnsServer& operator=(const DnsServer&) = delete;

    // Kernel worker: the networks as just published and the engine's sandboxes (fds borrowed).
    void sync(const std::vector<core::Network>& networks,
              const std::vector<core::DnsSandbox>& sandboxes);

    // Any thread (the cluster agent, daemon/cluster_agent.hpp): the endpoints other cluster nodes
    // have on overlay networks, by network id, replacing the previous set. Their names answer in
    // the zone of that network (for askers on it here) as local ones do; networks this node does
    // not have are ignored until it has them (the view is rebuilt with every sync()).
    void set_remote_endpoints(std::map<std::string, std::vector<core::Endpoint>> by_network_id);

    DnsStatus status() const;
    // The resolv.conf facts for an endpoint of `net` (any thread; pure apart from reading the
    // current host file facts).
    EndpointDns endpoint_dns(const core::Network& net, const core::Endpoint& ep) const override;

private:
    struct Impl;  // dns_server.cpp
    std::unique_ptr<Impl> impl_;
};

}  // namespace cnetd::daemon
