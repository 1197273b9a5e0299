// The firewall layer: per-network intent in kernel words in, one atomic nftables transaction out.
//
// The nftables backend owns ONE table (`inet cnetd` by default). Its chains and rules are fixed;
// everything that depends on the networks lives in sets and maps, so adding or removing a network
// only adds or deletes set elements and the rule count is the same for 1 and 50 networks. The
// layout, with its nft text, is documented in docs/firewall.md and lib/firewall/ruleset.hpp.
//
// Threading: a Backend is not thread-safe; the daemon drives it from one thread (its kernel
// worker). Its netlink sockets belong to the network namespace of the thread that created it.
// Errors: kernel refusals name the exact object, e.g.
//   "add element inet cnetd nets { 172.17.0.0/16 . "docker0" }: File exists".
// Idempotency: ensure_base(), add_network() and sync() may be repeated with the same input.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"

namespace cnetd::firewall {

// Docker's com.docker.network.bridge.gateway_mode_ipv4 / _ipv6 (docker-bridge.md):
//   Nat            masquerade out, DNAT in; direct routed access to container ports is dropped
//   NatUnprotected masquerade out, DNAT in; direct routed access to any container port allowed
//   Routed         no masquerade; direct routed access allowed only to published ports
//   Isolated       no traffic between the bridge and anything but the bridge itself and the host
enum class GatewayMode : uint8_t { Nat, NatUnprotected, Routed, Isolated };

// One bridge network, in kernel words.
struct NetworkRules {
    std::string id;                   // network id (stable key of the intent)
    std::string bridge;               // e.g. "docker0"
    Ipv4Cidr subnet;                  // 172.17.0.0/16 (host bits are ignored)
    bool masquerade = true;           // ip-masq / enable_ip_masquerade
    std::optional<Ipv4> snat_source;  // host_ipv4: SNAT to this address instead of MASQUERADE
    bool icc = true;                  // inter-container communication on this bridge
    bool internal = false;            // no traffic to/from outside the subnet, no NAT
    // Dual stack: the IPv6 subnet (fd12:3456:789a:1::/64). masquerade/icc/internal apply to it
    // the same way (masquerade with an IPv6 subnet masquerades IPv6 too, as Docker does).
    std::optional<Ipv6Cidr> subnet6 = std::nullopt;
    GatewayMode mode4 = GatewayMode::Nat;
    GatewayMode mode6 = GatewayMode::Nat;
    // Overlay networks: the node's VXLAN device ("vx-..."), part of the network: traffic between
    // the bridge and the tunnel is accepted both ways (remote nodes' containers are peers, not
    // "outside"), packets for the subnet may arrive on it, and nothing leaving through it is
    // NATed (no NAT between overlay peers). "" for bridge networks.
    std::string tunnel = {};
    bool operator==(const NetworkRules&) const = default;
};

// One published port mapping (Docker's -p), in kernel words. A host port range maps 1:1 onto the
// container's ports starting at container_first, and is ONE map element whatever its size.
enum class L4 : uint8_t { Tcp = 6, Udp = 17, Sctp = 132 };
enum class Family : uint8_t { V4, V6 };
struct PortForward {
    L4 proto = L4::Tcp;
    std::optional<Ipv4> host_ip;  // nullopt: every local address of the host (0.0.0.0)
    uint16_t host_first = 0;
    uint16_t host_last = 0;       // == host_first for a single port
    Ipv4 container_ip;
    uint16_t container_first = 0;
    std::string bridge;           // the container's bridge
    // family == V6: an IPv6 mapping; host_ip6 (nullopt: every local IPv6 address, [::]) and
    // container_ip6 are used instead of host_ip and container_ip. A host_ip6 of ::1 is refused
    // (InvalidArgument): the kernel cannot serve it without a userland proxy (IPv6 has no
    // route_localnet; see docs/firewall.md). Every-address IPv6 mappings are not DNAT'd for the
    // host's own connections to ::1 either.
    Family family = Family::V4;
    std::optional<Ipv6> host_ip6 = std::nullopt;
    Ipv6 container_ip6 = {};
    bool operator==(const PortForward&) const = default;
};

// Checks one network's fields (bridge name, prefix lengths); errors name the network.
Result<void> validate(const NetworkRules& n);
// Checks a whole intent: each network valid, ids and bridges unique, subnets (and subnet6s)
// disjoint.
Result<void> validate(const std::vector<NetworkRules>& nets);

class Backend {
public:
    virtual ~Backend() = default;
    // Table, base chains, sets and maps. If the table already has exactly our layout it is left
    // alone (a restarted daemon keeps the running containers' elements); otherwise it is rebuilt
    // atomically from the remembered intent.
    virtual Result<void> ensure_base() = 0;
    // Adds the network's set elements in one transaction (never rules). If our table vanished
    // (ENOENT), rebuilds it from intent + this network and retries once. Remembers the network.
    virtual Result<void> add_network(const NetworkRules& n) = 0;
    // Deletes the network's elements; best effort: if the one-transaction delete fails, every
    // element is retried alone and every failure is reported (joined by "; "). Forgets the network
    // in any case.
    virtual Result<void> remove_network(const NetworkRules& n) = 0;
    // Replaces our whole table with the one derived from `nets` and `ports`, in one transaction (no
    // window in which traffic is unfiltered or un-NATed), and makes them the remembered intent.
    virtual Result<void> sync(const std::vector<NetworkRules>& nets,
                              const std::vector<PortForward>& ports = {}) = 0;
    // Published ports: map elements only, one transaction per call (never rules). add_ports is
    // all or nothing; remove_ports is best effort and reports every failure. Both are remembered
    // as intent, so sync()/drift repair restore them.
    virtual Result<void> add_ports(const std::vector<PortForward>& ports) = 0;
    virtual Result<void> remove_ports(const std::vector<PortForward>& ports) = 0;
    // What add_ports() would refuse (validation, a conflict with a present mapping), without
    // changing anything: the engine asks before it touches the kernel (pure virtual so that no
    // decorator forgets to pass it on).
    virtual Result<void> check_ports(const std::vector<PortForward>& ports) = 0;
    // The intended table as nft-like text, followed by a line saying whether the kernel matches.
    virtual Result<std::string> show() = 0;
    // Drift: a non-blocking netlink socket subscribed to NFNLGRP_NFTABLES (-1 for "none"). When it
    // is readable the owner calls handle_events(): if someone else changed or deleted our table,
    // the table is rebuilt atomically from the remembered intent and true is returned (repairs()
    // counts these). Our own transactions are recognised by netlink portid and ignored.
    virtual int monitor_fd() = 0;
    virtual Result<bool> handle_events() = 0;
    virtual uint64_t repairs() const = 0;
    virtual std::string name() const = 0;  // "nftables" / "none"
};

struct NftablesOptions {
    std::string table = "cnetd";  // `table inet <table>`; tests use their own
    // ICC off needs bridged IPv4 traffic to traverse the inet forward hook (br_netfilter's
    // net.bridge.bridge-nf-call-iptables, per network namespace). When true the backend writes 1
    // to /proc/sys/net/bridge/bridge-nf-call-iptables if a network has icc=false (as Docker does);
    // when false it only reports an error if the setting is off.
    bool manage_br_netfilter = true;
};

// Never fails to construct: if the netlink sockets cannot be opened, every call returns that error.
std::unique_ptr<Backend> make_nftables_backend(NftablesOptions opts = {});
// `firewall: none`: does nothing, successfully.
std::unique_ptr<Backend> make_none_backend();

}  // namespace cnetd::firewall
