// Publishing (Docker's -p): the host-port allocator, the sockets holding host ports, and the
// firewall's DNAT map elements, for every endpoint of the daemon.
//
// A connect publishes in three steps, each undone by the caller's undo log when a later step fails:
//   1. reserve(): host ports chosen by the allocator, then the firewall's dry run (check_ports).
//      This is THE port check of a connect: memory only, before the first kernel call, so a
//      mapping that can be refused (taken by another endpoint, conflicting in the firewall) is
//      refused with the kernel untouched;
//   2. hold(): sockets bound to the host ports, so no other process binds them (the first
//      kernel call, still before any link);
//   3. publish(): the firewall's map elements (after the veth exists: DNAT to a live address).
// unpublish() is the way back for an endpoint that leaves; restore() rebuilds the allocator and
// the holds from the saved state at start-up.
//
// Threading: not thread-safe; owned by the engine and used from its thread (the kernel worker).
// Ownership: borrows the Kernel and the firewall Backend (both outlive it); owns the holds.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "core/kernel.hpp"
#include "core/model.hpp"
#include "core/ports.hpp"
#include "firewall/firewall.hpp"

namespace cnetd::core {

namespace detail {
class Rollback;
}

// One requested mapping with its host address decided (core/attach_plan.hpp): what reserve()
// takes. `dual`: no host address on a dual-stack network without a host binding, so the same
// host ports are taken on 0.0.0.0 and [::] (two bindings).
struct PortPlan {
    PortRequest req;
    bool dual = false;
    bool operator==(const PortPlan&) const = default;
};

// A published port on [::1] (IPv6 loopback), which the kernel cannot forward (IPv6 has no
// route_localnet): the daemon relays it in userland (daemon/relay.hpp). One per host port.
struct LoopbackRelay {
    std::string endpoint;      // endpoint name, for logs
    Proto proto = Proto::Tcp;  // Tcp or Udp (sctp on [::1] is refused by the attach plan)
    uint16_t host_port = 0;
    Ipv6 container_ip;
    uint16_t container_port = 0;
    // The socket holding [::1]:host_port (bound, not listening; udp with a drop-all filter),
    // borrowed: valid until the next mutation. -1 when none is held (test fakes, a failed re-hold).
    int fd = -1;
};

class Publisher {
public:
    Publisher(Kernel& kernel, firewall::Backend& fw);

    // Start-up, before restore(): ephemeral host ports come from the kernel's own range
    // (net.ipv4.ip_local_port_range) minus net.ipv4.ip_local_reserved_ports; an unreadable or odd
    // value falls back to 32768-60999 with nothing reserved. Forgets every allocation.
    void load_port_range();
    // Start-up: marks `ep`'s saved bindings as used and holds their host ports again (not for CNI
    // attachments, see hold()). Conflict when a binding collides with one restored before (the
    // state is inconsistent). A port another process took meanwhile is a warning, not an error:
    // the DNAT still works (it happens before the socket lookup).
    Result<void> restore(const Endpoint& ep);

    // Host ports for `ports` appended to ep.ports (in order; a dual plan gives two bindings, IPv4
    // first), then the firewall asked whether it would take them (check_ports). ep.address (and
    // address6 for IPv6 bindings) must be set. Errors: Docker's allocator text ("Bind for
    // 0.0.0.0:8080 failed: port is already allocated", Conflict) or the firewall's, framed
    // "publish ports". Memory only; `undo` releases the allocations.
    Result<void> reserve(const Network& net, Endpoint& ep, const std::vector<PortPlan>& ports,
                         detail::Rollback& undo);
    // Binds a socket on each of ep.ports' host ports (Kernel::hold_ports), except for CNI
    // attachments (ep.container_id set) whose runtime holds them itself; [::1] is held in every
    // case (the daemon's relay serves it on that socket). Error: the kernel's (EADDRINUSE when
    // another process has the port); `undo` closes the sockets.
    Result<void> hold(const Endpoint& ep, detail::Rollback& undo);
    // The firewall's map elements for ep.ports (Backend::add_ports, all or nothing, framed
    // "publish ports"); `undo` removes them again (failures logged).
    Result<void> publish(const Network& net, const Endpoint& ep, detail::Rollback& undo);
    // An endpoint leaves: its map elements removed when `firewall` (best effort, logged; false at
    // start-up, where the full sync follows), its sockets closed, its host ports released.
    void unpublish(const Network& net, const Endpoint& ep, bool firewall);

    // Every [::1] binding of the endpoints of `nets` with the socket holding its host port.
    std::vector<LoopbackRelay> loopback_relays(const std::vector<const Network*>& nets) const;
    // The firewall's view of `ep`'s bindings on `n` ([::1] bindings have none: relayed).
    static std::vector<firewall::PortForward> forwards_of(const Network& n, const Endpoint& ep);

    // For tests and diagnostics: whether a host port is allocated (IPv4), how many host-port
    // bindings of endpoint `ep_id` have a socket.
    bool in_use(Proto p, std::optional<Ipv4> ip, uint16_t port) const;
    size_t held(const std::string& ep_id) const;

private:
    // The socket for one binding; nullptr where cnetd holds none (CNI, see hold()).
    Result<std::unique_ptr<PortHold>> hold_one(const Endpoint& ep, const PortBinding& b);

    Kernel& kernel_;
    firewall::Backend& fw_;
    PortAllocator ports_;
    // Host ports held open for each endpoint (by endpoint id), so nobody else binds them: one
    // entry per ep.ports element, in the same order (nullptr: not held, or a re-hold failed).
    std::map<std::string, std::vector<std::unique_ptr<PortHold>>> holds_;
};

}  // namespace cnetd::core
