// The network-driver seam: what one kind of network (bridge today; overlay, ...) does in the
// kernel, under the engine's orchestration.
//
// The engine owns the order and everything shared by all drivers: request text common to every
// network (name, subnets, IPAM, aux addresses, labels), address and port allocation, default-route
// election across networks (core/gateway.hpp), publishing, the state file, the firewall
// transaction and the one undo log. A driver owns its options and its kernel objects. Netavark's
// rule is the model: every driver validates before any driver sets anything up.
//
// The engine calls, per operation (lib/core/engine*.cpp):
//   create network:  parse_options, check_against (pure) -> probe (reads only) -> [state saved]
//                    -> create -> firewall add_network(rules)
//   start:           ensure (each network, existing endpoints left alone) -> per endpoint whose
//                    namespace lives: repair -> sweep (each network) -> firewall sync(rules)
//   connect:         [plan] -> check_capacity (reads only) -> [allocation, ports held] -> link
//                    -> [default routes] -> announce
//   every detach:    [state saved] -> unlink
//   remove network:  [firewall remove] -> remove -> [state saved]
//   reload (MTU):    ensure
//
// Contract for every method:
// - Pure methods (parse_options, check_against, rules) make no kernel call and change nothing.
// - probe, missing and check_capacity only read the kernel. Every other method may change it.
// - Undo: a method taking `undo` registers, right after each kernel change succeeds, the action
//   that reverts it; on error it returns with what it did so far undoable through `undo` (or
//   already reverted), never half-done and unrecorded. The engine runs the log in reverse on any
//   later failure and commits it on success. Undo actions must not throw; their failures are
//   logged (detail::log_undo_failure).
// - Errors carry the kernel's message; the engine adds the operation's frame ("create network
//   web: ..."). Option errors are InvalidArgument naming "option <key>" and the value.
// - Best-effort methods (announce, sweep) log and never fail: the request has succeeded by then.
// - Drivers keep no per-network state: everything they need is in the Network and Endpoint values
//   (persisted by the engine), so a restarted daemon drives the same objects.
// Threading: called on the engine's thread only (the daemon's kernel worker), like the Kernel.
// Ownership: the engine owns its drivers (by name); a driver borrows the Kernel.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"
#include "core/kernel.hpp"
#include "core/model.hpp"
#include "core/network_spec.hpp"
#include "firewall/firewall.hpp"

namespace cnetd::core {

namespace detail {
class Rollback;  // core/engine_detail.hpp: the undo log
}

// Which default routes an endpoint carries in its namespace (the engine's election decides).
struct RouteRoles {
    bool v4 = false;
    bool v6 = false;
};

class NetworkDriver {
public:
    virtual ~NetworkDriver() = default;
    // The name requests use (CreateNetworkRequest::driver) and the state records (Network::driver).
    virtual std::string_view name() const = 0;

    // --- planning: pure ---
    // Reads the request's driver options into `n`'s driver fields and n.options (n.id and n.name
    // are set; in.host_binding is the daemon's default). Unknown keys and bad values:
    // InvalidArgument naming "option <key>" and the value.
    virtual Result<void> parse_options(const std::map<std::string, std::string>& options,
                                       const PlanInputs& in, Network& n) const = 0;
    // Refuses `n` next to the networks that exist (e.g. a kernel name taken by another network):
    // Conflict naming the field, the value and the other network.
    virtual Result<void> check_against(const Network& n,
                                       const std::vector<const Network*>& existing) const = 0;
    // The network's firewall intent (kernel words only).
    virtual firewall::NetworkRules rules(const Network& n) const = 0;

    // --- validation with kernel reads, no change ---
    // Refuses what the kernel has that `n` cannot use (InvalidArgument); records what it will
    // adopt rather than own in `n` (e.g. Network::bridge_adopted).
    virtual Result<void> probe(Network& n) = 0;

    // What of the network's own kernel objects is missing, in words for an error ("bridge
    // br-1a2b"); nullopt when intact (CNI CHECK and STATUS). Reads only.
    virtual Result<std::optional<std::string>> missing(const Network& n) = 0;

    // Refuses one more endpoint when the network's kernel objects are full (Conflict saying
    // why, e.g. the bridge's port limit). Reads only; `n.endpoints` is the current count.
    virtual Result<void> check_capacity(const Network& n) = 0;

    // --- network lifecycle ---
    // Makes (or adopts) the network's kernel objects for a new network; undo removes what it made.
    virtual Result<void> create(const Network& n, detail::Rollback& undo) = 0;
    // Brings the network's objects to their recorded state (start, reload): idempotent, and
    // disturbs no endpoint. Returns true when it had to create them. InvalidArgument when a
    // foreign object holds the name.
    virtual Result<bool> ensure(const Network& n) = 0;
    // Removes the network's objects (none of an adopted object); undo makes them again as they
    // were. The network has no endpoints.
    virtual Result<void> remove(const Network& n, detail::Rollback& undo) = 0;

    // --- endpoints ---
    // Connects `ep` (addresses, MAC, ifname set; host-side names chosen here, written to `ep`)
    // into namespace `ns`: links, addresses, links up. No default route (the engine's).
    virtual Result<void> link(const Network& n, Endpoint& ep, Netns& ns,
                              detail::Rollback& undo) = 0;
    // After link and the routes: makes the endpoint's addresses known to neighbours. Best effort.
    virtual void announce(const Network& n, const Endpoint& ep, Netns& ns) = 0;
    // Takes the endpoint out of service (it has left the state already). `ns`: its namespace when
    // still the one it was made in, else nullptr (the container side is then left alone).
    // Error: the kernel objects may still exist (the engine keeps the addresses reserved).
    virtual Result<void> unlink(const Network& n, const Endpoint& ep, Netns* ns) = 0;
    // Start-up, namespace alive: makes the endpoint as recorded again (drift fixed in place,
    // vanished objects recreated with the same names, MAC and addresses), including the default
    // routes `roles` says it carries. Logs each fix. Error: could not (the engine keeps it as is).
    virtual Result<void> repair(const Network& n, const Endpoint& ep, Netns& ns,
                                RouteRoles roles) = 0;
    // Read only: why the endpoint's kernel objects are not as recorded (in words, e.g. "its host
    // veth vethab12cd3 is not on br-1a2b"); nullopt when intact. `ns`: its namespace. CNI ADD
    // answers a retry with the recorded endpoint only when intact.
    virtual Result<std::optional<std::string>> endpoint_defect(const Network& n, const Endpoint& ep,
                                                               Netns& ns) = 0;
    // Start-up, after the repairs: deletes the driver's leftovers that no endpoint of `n` owns
    // (an interrupted connect). Best effort.
    virtual void sweep(const Network& n) = 0;
};

}  // namespace cnetd::core
