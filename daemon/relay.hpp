// The userland relay for ports published on [::1] (IPv6 loopback), and only those.
//
// Why: every other published port is forwarded in the kernel (nftables DNAT map elements). [::1]
// cannot be: IPv6 has no route_localnet, so a connection DNATed from ::1 to a container gets its
// replies de-NATed to ::1 arriving on the bridge, and the kernel drops them (a loopback destination
// on a non-loopback interface fails the route lookup). Docker serves these with one docker-proxy
// process per port; cnetd relays them inside the daemon: one event loop (the daemon's io_context),
// no process, no thread per port. The engine (core::Engine::loopback_relays()) says which [::1]
// bindings exist; sync() is called after every change, and at start-up after reconciliation.
//
// Holding the port — the choice: the engine keeps holding every [::1] host port exactly as it holds
// the others (core::Kernel::hold_ports6: a socket bound to [::1]:port by the kernel worker while
// the connect is validated, so conflicts and "Bind for [::1]:8080 failed: ..." errors come from the
// same all-or-nothing path), and the relay serves on THAT socket: sync() dup()s it on the worker
// thread, and the io thread accepts on it (for [::1] tcp the hold is created listening, with
// SO_REUSEADDR so the relay's TIME_WAIT connections never block a re-hold after a restart; a
// listening socket keeps the port exclusive anyway) or drops its drop-all filter (udp). So there is
// never a second bind and never a window in which the port is free for another process; connections
// that arrive before the relay took the socket over wait in its backlog. When the mapping goes
// (disconnect, network rm, GC of a dead namespace), the engine's hold shuts the socket down before
// closing it: the relay's listener stops accepting at once (connections are refused before the
// request is answered), and the relay closes its dup, with the connections and flows of that
// binding, when the next sync reaches the io thread (microseconds later). The one consequence: a
// concurrent request re-publishing the same [::1] port in that gap can get "address already in
// use".
//
// Traffic: tcp — accept on [::1]:hostport, connect from the host to [container-v6]:port (so the
// container sees the bridge's IPv6 gateway as its peer), copy bytes both ways; an EOF in one
// direction is passed on as a half-close (shutdown(SHUT_WR)), both sockets close when both
// directions ended or on any error. udp — one flow per client address, each with its own socket
// connected to the container, datagrams relayed both ways, a flow ends after `udp_idle` without a
// datagram (docker-proxy's UDP timeout is 90 s; 60 s here). Limits per binding
// (max_tcp_connections, max_udp_flows): beyond them new connections are closed / new flows dropped,
// with one warning each time the limit is reached.
//
// Limits of this path: connections through the relay end when the daemon restarts (the listeners
// come back once the restarted daemon has reconciled); the client address is not preserved (the
// container sees the gateway); no SCTP (the engine refuses sctp on [::1]).
//
// Threading: the constructor, the destructor and stats() on the io thread or while the io_context
// is not running; sync() on the kernel worker thread (it is the Worker's publish hook, installed by
// the constructor). All sockets live on the io_context. Errors are logged, never thrown.
// Ownership: borrows the io_context and the Worker, which must outlive the relay; the destructor
// removes the hook (waiting for a sync in progress) and closes every listener, connection and flow.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "core/engine.hpp"
#include "daemon/worker.hpp"

namespace cnetd::daemon {

struct RelayLimits {
    size_t max_tcp_connections = 1024;  // per host port
    size_t max_udp_flows = 1024;        // per host port
    std::chrono::milliseconds udp_idle = std::chrono::seconds(60);
};

struct RelayStats {
    size_t listeners = 0;  // host ports relayed (tcp and udp)
    size_t tcp_connections = 0;
    size_t udp_flows = 0;
};

class Relay {
public:
    // Installs the worker's publish hook and asks the worker for a first sync (an empty job), so
    // the bindings restored at start-up are served as soon as the io_context runs.
    Relay(boost::asio::io_context& io, Worker& worker, RelayLimits limits = {});
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    // Kernel worker thread: the [::1] bindings as they are now. Sockets not seen before are dup()ed
    // here (the engine's fds are borrowed); the change is applied on the io thread.
    void sync(const std::vector<core::LoopbackRelay>& bindings);

    RelayStats stats() const;  // io thread

    class Listener;  // one per host port (relay.cpp)

private:
    struct Change;
    void apply(Change& change);  // io thread

    boost::asio::io_context& io_;
    Worker& worker_;
    RelayLimits limits_;
    std::set<uint64_t> sent_;  // worker thread: socket inodes already handed to the io thread
    std::map<uint64_t, std::shared_ptr<Listener>> listeners_;  // io thread, by socket inode
};

}  // namespace cnetd::daemon
