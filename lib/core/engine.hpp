// The engine: networks and endpoints, all or nothing.
//
// Every mutating call validates its whole request first (errors name the field and the value and
// change nothing), then applies kernel steps in order; if a step fails, the steps already done are
// undone in reverse order, the allocation is released, and the error comes back with its context
// ("connect a to bridge: add address 172.17.0.2/16 to eth0 in /run/netns/a: File exists"). The
// state is persisted after the kernel work succeeds; if persisting fails the kernel work is rolled
// back too.
//
// The engine orchestrates; the kernel objects of a network and its endpoints are its driver's
// (core/driver.hpp: NetworkDriver, held by name; BridgeDriver is "bridge"). Request text is
// planned purely first (core/network_spec.hpp for networks), so a refusable request makes no
// kernel call.
//
// Threading: not thread-safe. The daemon calls it only from its kernel worker thread (the Kernel
// implementation switches that thread's netns). Readers use snapshots (networks()) copied by the
// caller after each mutation.
// Ownership: borrows the Kernel and the StateStore; both must outlive the engine.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "core/driver.hpp"
#include "core/gateway.hpp"
#include "core/ipam.hpp"
#include "core/ipam6.hpp"
#include "core/kernel.hpp"
#include "core/model.hpp"
#include "core/network_spec.hpp"
#include "core/pools.hpp"
#include "core/publish.hpp"
#include "firewall/firewall.hpp"

namespace cnetd::core {

namespace detail {
class Rollback;
}
struct AttachPlan;  // core/attach_plan.hpp

// Persists the engine's networks. Implementations: store::FileStateStore (lib/store), fakes.
class StateStore {
public:
    virtual ~StateStore() = default;
    virtual Result<std::vector<Network>> load() = 0;  // empty when nothing was saved yet
    virtual Result<void> save(const std::vector<Network>& networks) = 0;
};

struct EngineOptions {
    std::string netns_dir = "/var/run/docker/netns";
    // For networks without their own com.docker.network.driver.mtu. 0 (config `mtu` not set): the
    // MTU of the interface carrying the host's default route, 1500 without one.
    unsigned mtu = 0;
    // Config `default-address-pools`: where networks created without a subnet get one.
    std::vector<AddressPool> pools = default_address_pools();
    // Nameservers listed here are never covered by a pool subnet (Docker's rule).
    std::string resolv_conf = "/etc/resolv.conf";
    // The daemon's IPv6 ULA /48 (derived from its persistent ID): --ipv6 networks without a v6
    // subnet get the next free /64 of it. nullopt: such requests are refused.
    std::optional<Ipv6Cidr> ula48 = std::nullopt;
    // IPv6 entries of `default-address-pools`: used instead of the ULA when given.
    std::vector<AddressPool6> pools6 = {};
    // Config `ip`: default host address of published ports for user-defined networks without
    // com.docker.network.bridge.host_binding_ipv4 (nullopt: every address).
    std::optional<Ipv4> host_binding = std::nullopt;
};

// An overlay network as the cluster knows it (its record in etcd, lib/cluster/records.hpp).
struct OverlayNetworkDef {
    std::string id;    // 64 hex, chosen by the node that created it
    std::string name;
    Ipv4Cidr subnet;   // the whole overlay subnet
    unsigned block_prefix = 24;
    uint32_t vni = 0;
    bool internal = false;
    bool dns = true;
    std::map<std::string, std::string> labels;
    std::map<std::string, std::string> options;  // as given (inspect shows them)
    std::string created;                         // RFC 3339 with nanoseconds, UTC
    auto operator<=>(const OverlayNetworkDef&) const = default;
};

// This node's side of an overlay network.
struct OverlayLocal {
    std::string node;      // cluster node-name
    Ipv4 local;            // advertise-address
    uint16_t port = 4789;  // vxlan-port
    Ipv4Cidr block;        // the block this node leased
};

struct ConnectRequest {
    std::string network;  // name or id (full or unique prefix)
    std::string target;   // netns name in the netns dir, or an absolute path to a netns file
    std::string name;     // optional endpoint/container name
    std::string ipv4;     // optional static address (no prefix)
    std::vector<std::string> publish = {};  // Docker -p specs: "8080:80", "127.0.0.1::80/udp", ...
    std::vector<PortRequest> ports = {};    // the same, structured (CNI portMappings)
    std::string ipv6 = {};                  // optional static IPv6 address (dual-stack networks)
    std::string mac = {};           // optional static MAC (else random locally administered)
    std::string ifname = {};        // optional interface name in the netns (CNI_IFNAME)
    std::string container_id = {};  // optional CNI_CONTAINERID, recorded on the endpoint
    // Docker 28's --gw-priority: the namespace's default route comes from its endpoint with the
    // highest priority (core/gateway.hpp). Any int; default 0.
    int gw_priority = 0;
    // --alias, repeatable: names the embedded resolver answers for this endpoint (validated as DNS
    // names: labels of [A-Za-z0-9_-], 1..63 bytes, 255 in all; duplicates removed).
    std::vector<std::string> aliases = {};
};

// What start-up's reconciliation found, per persisted endpoint (reconcile_endpoints()): kept
// (its namespace alive, the endpoint verified or repaired), repair_failed (alive, the repair
// failed: kept as is), removed (its namespace was gone: detached), unchecked (the namespace could
// not be checked: kept for the GC to look at again).
struct ReconcileReport {
    uint64_t kept = 0, repair_failed = 0, removed = 0, unchecked = 0;
};

// The embedded resolver's sockets in one container namespace (one per namespace that has an
// endpoint on a network with dns: true), for the daemon's DNS server (daemon/dns_server.hpp).
struct DnsSandbox {
    NetnsId netns;
    std::string netns_path;  // for logs
    // Listening sockets on 127.0.0.11 inside the namespace (Netns::open_dns_listener), borrowed:
    // valid until the next mutation (the server dup()s them). -1 for fakes.
    int udp_fd = -1;
    int tcp_fd = -1;
    std::vector<std::string> networks;  // ids of the dns networks the namespace is attached to
};

class Engine {
public:
    // `fw` receives every network's intent (make_none_backend() for `firewall: none`).
    Engine(Kernel& kernel, firewall::Backend& fw, StateStore& store, EngineOptions opts);

    // Loads persisted networks, re-ensures their bridges, and creates or updates the default
    // network from `spec` (nullopt: config `bridge: none`, no default network). Refuses
    // (InvalidArgument) when the default network has endpoints and the config moved it to another
    // subnet or bridge. Writes net.ipv4.ip_forward=1 when `ip_forward`. Then replaces the firewall
    // table with the one derived from all networks, in one transaction (no window without NAT or
    // filtering for running containers). Nothing is torn down.
    Result<void> start(const std::optional<DefaultNetworkSpec>& spec, bool ip_forward);
    // Config reload (SIGHUP): applies what can change live. `live` replaces the options for
    // networks created from now on (mtu, host_binding, pools; netns_dir and ula48 are kept);
    // `ip_forward` true writes the forwarding sysctls now. On the default network (when `spec`):
    // icc, masquerade, host binding of new mappings, MTU of new endpoints, with the firewall
    // table replaced in one transaction. Fields that cannot change live (bridge, bip, fixed-cidr,
    // ipv6) are left alone: the caller reports them as pending a restart. All or nothing.
    Result<void> reconfigure(const std::optional<DefaultNetworkSpec>& spec,
                             const EngineOptions& live, bool ip_forward);

    Result<Network> create_network(const CreateNetworkRequest& req);
    // Refuses the default network and networks with endpoints. Deletes the bridge unless adopted.
    Result<void> remove_network(const std::string& name_or_id);
    // Publishes req.publish/req.ports too: host ports chosen and held, DNAT map elements added, all
    // in the same all-or-nothing operation.
    Result<Endpoint> connect(const ConnectRequest& req);
    // target as in ConnectRequest, matched by namespace identity first, then exact path, then
    // endpoint name; Conflict (listing the candidates) when it names several endpoints, NotFound
    // when none. Write-ahead: the removal is saved before the kernel is touched, so a failed save
    // changes nothing (error returned) and a crash after it cannot bring the endpoint back. Kernel
    // errors while tearing down are logged, not returned: the endpoint is gone from the state and
    // the next start deletes a veth left behind (its address stays reserved until then).
    Result<void> disconnect(const std::string& network, const std::string& target);

    // Network namespace files in the netns dir, by name.
    Result<std::string> create_netns(const std::string& name);  // returns the path
    // Disconnects every endpoint in that namespace (by identity or recorded path; one save for all,
    // write-ahead like disconnect) first, then unmounts and unlinks the file.
    Result<void> remove_netns(const std::string& name);
    // Names of the netns files in the netns dir (sorted).
    std::vector<std::string> list_netns() const;

    // Every [::1] binding with the socket that holds its host port (see LoopbackRelay), for the
    // daemon's relay; call on the kernel worker between mutations.
    std::vector<LoopbackRelay> loopback_relays() const;
    // Every namespace's resolver sockets (see DnsSandbox), for the daemon's DNS server; call on
    // the kernel worker between mutations. Attach opens them (and the namespace's DNAT of
    // 127.0.0.11:53, Netns::set_dns_nat) before connect returns, as one step of the attach's undo
    // log; the last dns endpoint's detach (or GC) closes them; start() reopens them for every
    // namespace with dns endpoints (sockets die with the daemon).
    std::vector<DnsSandbox> dns_sandboxes() const;

    // Current networks, sorted by name (a copy: a snapshot for readers).
    std::vector<Network> networks() const;
    // Looks a network up by exact name, exact id, or unique id prefix.
    Result<const Network*> find_network(const std::string& name_or_id) const;
    const EngineOptions& options() const noexcept { return opts_; }
    // The firewall backend, for the daemon's drift monitor and `netctl firewall show`.
    firewall::Backend& firewall() noexcept { return fw_; }

    // --- CNI attachments (defined in lib/core/engine_cni.cpp) ---
    // An attachment is the endpoint of network `net.name` whose container_id and ifname are
    // CNI_CONTAINERID and CNI_IFNAME (att.container_id, att.ifname: both required).
    // cni_add creates the network from `net` when none has that name (and removes it again if the
    // attach fails: nothing half-done); an existing one must have net's subnet, and its gateway,
    // bridge and ip range when `net` gives them, else Conflict naming both values. An attachment
    // that exists already is returned as it is when this is a retry of it (same namespace, kernel
    // side intact: runtimes retry ADD), else a Conflict saying why. att.network is ignored
    // (net.name is used).
    Result<Endpoint> cni_add(const CreateNetworkRequest& net, const ConnectRequest& att);
    // Idempotent: an unknown network or attachment, a vanished netns are all success. Returns
    // whether something was removed (veth, address, published ports, state).
    Result<bool> cni_del(const std::string& network, const std::string& container_id,
                         const std::string& ifname);
    // NotFound when the attachment is unknown; Kernel-kind errors when its bridge or host veth is
    // gone, its netns cannot be opened or is another one than `netns`, or its address is not
    // reserved. Changes nothing.
    Result<Endpoint> cni_check(const std::string& network, const std::string& container_id,
                               const std::string& ifname, const std::string& netns);
    // Removes every attachment (endpoint with a container id) of `network` whose
    // (container id, ifname) is not in `keep`; returns "<container id>/<ifname>" of each removed.
    // Endpoints made through connect (no container id) are never touched.
    Result<std::vector<std::string>> cni_gc(
        const std::string& network, const std::vector<std::pair<std::string, std::string>>& keep);
    // What is broken for `network`'s existing attachments (its bridge is missing); empty
    // when healthy or when the network does not exist yet.
    std::vector<std::string> cni_status(const std::string& network);

    // --- overlay networks (lib/core/engine_overlay.cpp, core/overlay_driver.hpp; docs/overlay.md) ---
    // The daemon's cluster agent (daemon/cluster_agent.hpp) owns the cluster side (etcd); these
    // are the node-local halves, called on the kernel worker like everything here.
    //
    // Validates a `network create --driver overlay` request without a kernel call or a change:
    // name free on this node, an IPv4 subnet given (required), kOptHostSubnetSize (default 24;
    // longer than the subnet's prefix, at most 30), no IPv6, no --gateway/--ip-range/--aux-address
    // (each node's gateway is its block's first address), bridge-only options refused naming the
    // option; internal, labels and enable_dns as on bridges. Assigns the id and `created`. The
    // VNI is left 0 (the agent allocates it cluster-wide).
    Result<OverlayNetworkDef> plan_overlay_network(const CreateNetworkRequest& req) const;
    // Makes the overlay network `def` on this node with block `local.block` (leased by the
    // agent): bridge + VXLAN device (OverlayDriver), firewall, state — all or nothing.
    // Idempotent: the network with def.id already here with the same block returns it unchanged;
    // another block: Conflict naming both (the agent never asks that while endpoints exist).
    // Conflict naming the other network when def.name belongs to another network here or the
    // block overlaps a local network's subnet.
    Result<Network> add_overlay_network(const OverlayNetworkDef& def, const OverlayLocal& local);
    // Replaces the remote nodes of overlay network `net_id` with `peers` (any order): programs
    // the added ones, removes the gone ones, re-programs changed ones; persisted. A peer that
    // could not be programmed is left out of the recorded set (retried on the next call) and its
    // error returned after the others were done. NotFound for an unknown network.
    Result<void> set_overlay_peers(const std::string& net_id, std::vector<OverlayPeer> peers);
    // remove_network() removes overlay networks too (the agent calls it when the record leaves
    // etcd); it refuses while the network has endpoints here, as for bridges.

    // --- reconciliation and garbage collection (defined in lib/core/engine_reconcile.cpp) ---
    // Start-up, called by start() after the bridges are ensured and before the firewall sync:
    // every persisted endpoint against the kernel. Netns gone (or the path now names another
    // namespace): its IPs and ports are released, its host veth deleted, the endpoint dropped.
    // Netns alive: the host veth is re-enslaved / set up, the container side gets its addresses,
    // link state and default routes back; a vanished veth pair is recreated with the same names,
    // MAC and addresses. Veths on our bridges that no endpoint owns ("veth" + 7 hex: leftovers of
    // an interrupted connect) are deleted. Each action is logged; a failed repair is logged and
    // the endpoint kept. Returns true when the state changed (the caller persists it).
    bool reconcile_endpoints();
    // The last reconcile_endpoints()'s outcomes (all zero before it ran).
    const ReconcileReport& reconcile_report() const { return reconcile_report_; }
    // While running (the daemon's GC watcher, on the kernel worker): every endpoint whose netns is
    // gone is detached like above, its published ports leave the firewall, the state is saved.
    // Returns "network/endpoint" of each endpoint removed. Idempotent and cheap when nothing died
    // (one open() per endpoint).
    Result<std::vector<std::string>> collect_garbage();

private:
    enum class NetnsFate { Alive, Gone, Unknown };
    // Opens the endpoint's netns and checks its identity; `ns` receives it when alive.
    NetnsFate netns_fate(const Endpoint& ep, std::unique_ptr<Netns>* ns);
    // Repairs one live endpoint through its driver (the default routes it carries elected here);
    // error when it could not.
    Result<void> repair_endpoint(const std::string& net_id, const std::string& ep_id, Netns& ns);

    struct Net {
        Network net;
        Ipam ipam;
        std::optional<Ipam6> ipam6;  // dual-stack networks
    };
    // Builds the address allocators of a network from its fields and endpoints (state load).
    static Result<Net> make_net(Network n);
    unsigned default_mtu();  // opts_.mtu, else the uplink's MTU, else 1500
    // Replaces the firewall table with the intent of every network and mapping, in one transaction.
    Result<void> sync_firewall();
    Result<void> enable_ip6_forwarding();
    bool ip_forward_ = false;
    Result<Net*> lookup(const std::string& name_or_id);
    Net* default_net();  // nullptr under `bridge: none`
    Result<std::string> resolve_target(const std::string& target) const;
    Result<void> persist();

    // --- drivers (lib/core/engine.cpp) ---
    // The driver registered under `name`; InvalidArgument naming `field` and the value else.
    Result<NetworkDriver*> driver_for(std::string_view field, const std::string& name);
    // The driver of a network the engine holds (checked at load and create: always found).
    NetworkDriver& driver_of(const Network& n);
    // The values planning takes (core/network_spec.hpp), without the pool context.
    PlanInputs plan_inputs() const;

    // --- start-up (lib/core/engine_start.cpp) ---
    Result<void> load_state();
    // Claims and holds again the published ports of a loaded network's endpoints.
    Result<void> restore_ports(const Net& net);
    // The default network to what the config says; true when the state changed.
    Result<bool> apply_default_network(const std::optional<DefaultNetworkSpec>& spec);
    Result<bool> drop_default_network(Net* def);
    Result<void> ensure_networks();

    // --- networks (lib/core/engine_network.cpp) ---
    // Validate and plan (pure, then kernel reads only): the network create would make.
    Result<Network> plan_new_network(const CreateNetworkRequest& req);
    // Write-ahead: into memory and the state file; the undo takes it out of both again.
    Result<void> record_network(const Network& n, detail::Rollback& undo);
    // A planned network into state, kernel (its driver's create) and firewall, all or nothing;
    // errors framed with `frame`.
    Result<void> realize_network(const Network& n, const std::string& frame);
    // --- overlay networks (lib/core/engine_overlay.cpp) ---
    // The local Network of overlay network `def` with block `local.block`, checked against this
    // node's networks (name, block overlaps, the driver's check_against and probe); reads the
    // advertise-address's link for the MTU. No change.
    Result<Network> plan_local_overlay(const OverlayNetworkDef& def, const OverlayLocal& local);
    // Programs `want` on the network's VXLAN device in place of its recorded peers; returns the
    // peers the device has afterwards (sorted by node) and adds each failure to `errors`.
    std::vector<OverlayPeer> program_peers(const Network& net, const std::vector<OverlayPeer>& want,
                                           ErrorList& errors);
    // InvalidArgument for the default network, Conflict while it has endpoints.
    Result<void> check_removable(const Network& n) const;
    // --- connect (lib/core/engine_attach.cpp; the pure part in core/attach_plan.hpp) ---
    Result<Endpoint> attach(Net& n, const ConnectRequest& req);
    // Refuses the host's namespaces, a namespace or name already on `n`, a full network (the
    // driver's check_capacity).
    Result<void> check_target(const Net& n, const Netns& ns, const AttachPlan& p);
    Result<void> allocate_addresses(Net& n, const AttachPlan& p, Endpoint& ep,
                                    detail::Rollback& undo);
    // Every endpoint (of any network) in namespace `id`.
    std::vector<GatewayCandidate> namespace_endpoints(NetnsId id) const;
    static Result<void> add_route(const Network& net, const Endpoint& ep, Netns& ns, IpFamily f);
    // Default routes for `ep` where it wins the election (core/gateway.hpp); undo restores the
    // namespace's previous route.
    Result<void> take_default_routes(const Net& n, const Endpoint& ep, Netns& ns,
                                     detail::Rollback& undo);
    // After an endpoint of `ns` left (state already without it): the winners carry the default
    // routes. Best effort: failures are logged (the request has succeeded by then).
    void hand_over_gateway(Netns& ns);

    // --- the embedded resolver's sandboxes (lib/core/engine_dns.cpp) ---
    // One per namespace with >= 1 endpoint on a network with dns: its listening sockets (the
    // DNAT of 127.0.0.11:53 to them lives in the namespace's table "ip cnetd-dns").
    struct DnsState {
        std::string netns_path;
        std::unique_ptr<DnsListener> listener;
    };
    // Attach: when `n` has dns and namespace `ns` no sandbox yet, opens the listener and installs
    // the DNAT, both undone by `undo` (nat removed, sockets closed). Errors name the step.
    Result<void> ensure_dns(const Net& n, Netns& ns, detail::Rollback& undo);
    // After an endpoint of namespace `id` left the state: when no endpoint of that namespace is on
    // a dns network any more, removes the DNAT (when `ns`, the namespace still alive; failures
    // logged) and closes the sockets.
    void release_dns(NetnsId id, Netns* ns);
    // start(): a sandbox for every live namespace with dns endpoints (the sockets died with the
    // previous daemon: new ports, DNAT replaced, stale conntrack entries flushed). Failures are
    // logged per namespace, never fatal.
    void open_dns_sandboxes();
    // Opens the listener in `ns` and points the DNAT at it (no undo: callers own that).
    Result<std::unique_ptr<DnsListener>> open_dns(Netns& ns);
    bool has_dns_endpoint(NetnsId id) const;
    std::map<NetnsId, DnsState> dns_;

    Kernel& kernel_;
    firewall::Backend& fw_;
    StateStore& store_;
    EngineOptions opts_;
    std::map<std::string, Net> nets_;  // by network id
    ReconcileReport reconcile_report_;
    // The network drivers by name (Network::driver): "bridge" -> BridgeDriver.
    std::map<std::string, std::unique_ptr<NetworkDriver>, std::less<>> drivers_;
    Publisher publisher_;  // host ports, their sockets and map elements (core/publish.hpp)

    // --- detach: one path for every endpoint that leaves (lib/core/engine.cpp, endpoints) ---
    // An endpoint by (network id, endpoint id): what the detach path acts on, never a name.
    using EndpointRef = std::pair<std::string, std::string>;
    struct DetachHow {
        bool save = true;      // false only at start-up: start() saves once after reconciling
        bool firewall = true;  // remove map elements; false at start-up: the full sync follows
    };
    // THE way endpoints leave (disconnect, CNI DEL and GC, netns rm, namespace GC, reconcile).
    // Write-ahead: the endpoints are erased from memory and the removal saved first (one save for
    // all of them); a failed save puts them back and returns the error, nothing changed in the
    // kernel. Then each one's kernel side goes (teardown_endpoint). Unknown refs are skipped.
    Result<void> detach_endpoints(const std::vector<EndpointRef>& victims, std::string_view why,
                                  DetachHow how);
    // The kernel side of an endpoint already gone from the state: veth pair retired, published
    // ports unpublished (map elements with `firewall`, holds, allocations), addresses released.
    // Never fails: the state says "gone" already. A veth that could not be removed is logged and
    // its addresses stay reserved until the next start (which deletes the orphan veth and rebuilds
    // the allocators from the state).
    void teardown_endpoint(Net& n, const Endpoint& ep, std::string_view why, bool firewall);
    // Which endpoint of `n` a disconnect target names (its id): by namespace identity first, then
    // by exact path (its namespace is gone), then, for a bare name, by endpoint name. A target that
    // matches several endpoints across these rules is a Conflict listing them (name and netns).
    Result<std::string> find_target(const Net& n, const std::string& target);
    // cni_add of an attachment that is recorded already: the recorded endpoint when `att` is a
    // retry of it (same namespace, no other static address or MAC) and its kernel side is intact
    // (host veth on the bridge, CNI_IFNAME in the netns with the MAC and addresses); else
    // Conflict saying why.
    Result<Endpoint> cni_retry(const Net& n, const Endpoint& ep, const ConnectRequest& att);
};

}  // namespace cnetd::core
