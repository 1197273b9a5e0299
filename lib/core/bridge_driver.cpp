// The bridge driver (see bridge_driver.hpp and the contract in driver.hpp).
#include "core/bridge_driver.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <set>

#include "base/log.hpp"
#include "core/engine_detail.hpp"

namespace cnetd::core {

namespace {

constexpr int kVethNameTries = 4;

// Veth names the driver gives host sides: "veth" + 7 hex characters.
bool is_our_veth_name(const std::string& n) {
    if (n.size() != 11 || n.rfind("veth", 0) != 0) return false;
    return n.find_first_not_of("0123456789abcdef", 4) == std::string::npos;
}

BridgeSpec bridge_spec(const Network& n, std::optional<Mac> mac = std::nullopt) {
    return {n.bridge, n.gateway_cidr(), n.mtu, n.gateway6_cidr(), n.inhibit_ipv4, mac};
}

std::optional<Ipv6> addr6_of(const Endpoint& ep) {
    return ep.address6 ? std::optional(ep.address6->addr()) : std::nullopt;
}

Result<firewall::GatewayMode> parse_gateway_mode(const std::string& key, const std::string& v) {
    if (v == "nat") return firewall::GatewayMode::Nat;
    if (v == "nat-unprotected") return firewall::GatewayMode::NatUnprotected;
    if (v == "routed") return firewall::GatewayMode::Routed;
    if (v == "isolated") return firewall::GatewayMode::Isolated;
    return Error::invalid(fmt::format(
        "option {}: \"{}\" is not a gateway mode (nat, nat-unprotected, routed, isolated)", key,
        v));
}

Result<bool> bool_option(const std::string& key, const std::string& value) {
    auto b = parse_bool(value);
    if (!b) {
        return Error::invalid(
            fmt::format("option {}: \"{}\" is not a boolean (true or false)", key, value));
    }
    return *b;
}

Result<unsigned> mtu_option(const std::string& key, const std::string& value) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (value.empty() || ec != std::errc() || p != value.data() + value.size() || v < 68 ||
        v > 65535) {
        return Error::invalid(
            fmt::format("option {}: \"{}\" is not an MTU (68-65535)", key, value));
    }
    return v;
}

Result<std::string> iface_prefix_option(const std::string& key, const std::string& value) {
    // The kernel name is prefix + a number: keep room for up to 4 digits.
    auto v = validate_ifname(value + "0");
    if (!v || value.size() > 11 || value.empty()) {
        return Error::invalid(fmt::format(
            "option {}: \"{}\" is not a usable interface name prefix (1-11 characters, no '/', "
            "':' or whitespace)",
            key, value));
    }
    return value;
}

// One option into `n`; InvalidArgument naming it for a bad value or an unknown key.
Result<void> apply_option(const std::string& key, const std::string& value, Network& n) {
    if (key == kOptBridgeName) {
        if (auto v = validate_ifname(value); !v)
            return std::move(v).error().wrap(fmt::format("option {}", key));
        n.bridge = value;
    } else if (key == kOptEnableIcc) {
        CNETD_TRY_ASSIGN(n.icc, bool_option(key, value));
    } else if (key == kOptEnableMasquerade) {
        CNETD_TRY_ASSIGN(n.masquerade, bool_option(key, value));
    } else if (key == kOptInhibitIpv4) {
        CNETD_TRY_ASSIGN(n.inhibit_ipv4, bool_option(key, value));
    } else if (key == kOptHostIpv4 || key == kOptHostBinding) {
        auto a = Ipv4::parse(value);
        if (!a) return std::move(a).error().wrap(fmt::format("option {}", key));
        if (key == kOptHostIpv4) {
            n.host_ipv4 = *a;
        } else {
            // 0.0.0.0: every address, the default.
            n.host_binding = a->value() != 0 ? std::optional(*a) : std::nullopt;
        }
    } else if (key == kOptMtu) {
        CNETD_TRY_ASSIGN(n.mtu, mtu_option(key, value));
    } else if (key == kOptIfacePrefix) {
        CNETD_TRY_ASSIGN(n.iface_prefix, iface_prefix_option(key, value));
    } else if (key == kOptGatewayMode4 || key == kOptGatewayMode6) {
        CNETD_TRY_ASSIGN(auto mode, parse_gateway_mode(key, value));
        (key == kOptGatewayMode4 ? n.mode4 : n.mode6) = mode;
    } else {
        return Error::invalid(fmt::format(
            "option {}: unknown option (supported: {}, {}, {}, {}, {}, {}, {}, {}, {}, {})", key,
            kOptBridgeName, kOptEnableIcc, kOptEnableMasquerade, kOptHostIpv4, kOptHostBinding,
            kOptMtu, kOptIfacePrefix, kOptGatewayMode4, kOptGatewayMode6, kOptInhibitIpv4));
    }
    return ok();
}

bool has(const auto& v, const auto& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// planning (pure)

Result<void> BridgeDriver::parse_options(const std::map<std::string, std::string>& options,
                                         const PlanInputs& in, Network& n) const {
    n.bridge = "br-" + n.id.substr(0, 12);
    n.mtu = 0;  // the daemon's default unless the option says
    // Published ports without an address bind where the network says, else where the daemon says.
    n.host_binding = in.host_binding;
    for (const auto& [key, value] : options) CNETD_TRY(apply_option(key, value, n));
    n.options = options;
    n.options[kOptBridgeName] = n.bridge;
    return ok();
}

Result<void> BridgeDriver::check_against(const Network& n,
                                         const std::vector<const Network*>& existing) const {
    for (const Network* o : existing) {
        if (o->bridge == n.bridge) {
            return Error::conflict(fmt::format("option {}: bridge {} is already used by network {}",
                                               kOptBridgeName, n.bridge, o->name));
        }
    }
    return ok();
}

firewall::NetworkRules BridgeDriver::rules(const Network& n) const {
    firewall::NetworkRules r;
    r.id = n.id;
    r.bridge = n.bridge;
    r.subnet = n.subnet;
    r.masquerade = n.masquerade && !n.internal;
    r.snat_source = n.host_ipv4;
    r.icc = n.icc;
    r.internal = n.internal;
    r.subnet6 = n.subnet6;
    r.mode4 = n.mode4;
    r.mode6 = n.mode6;
    return r;
}

Result<void> BridgeDriver::check_capacity(const Network& n) {
    // Below this many endpoints the kernel's port count is not asked (a link dump, O(links) per
    // attach); an adopted bridge with foreign ports still gets the clear error from EXFULL at
    // veth creation (link()).
    constexpr unsigned kAskPortsFrom = kMaxPorts - 64;
    if (n.endpoints.size() < kAskPortsFrom) return ok();
    CNETD_TRY_ASSIGN(unsigned ports, kernel_.bridge_port_count(n.bridge));
    if (ports >= kMaxPorts) return full_error(n, ports);
    return ok();
}

Error BridgeDriver::full_error(const Network& n, unsigned ports) {
    return Error::conflict(fmt::format(
        "bridge {} already has {} ports, the Linux limit per bridge; use another network", n.bridge,
        ports));
}

// ---------------------------------------------------------------------------------------------
// the bridge

Result<void> BridgeDriver::probe(Network& n) {
    CNETD_TRY_ASSIGN(LinkKind kind, kernel_.link_kind(n.bridge));
    if (kind == LinkKind::Other) {
        // Named after where the name came from: the config's `bridge` for the default network.
        return Error::invalid(fmt::format(
            "{}: {} exists and is not a bridge",
            n.is_default ? "bridge" : fmt::format("option {}", kOptBridgeName), n.bridge));
    }
    // A bridge that predates the network (Docker's docker0, an admin's) is adopted, not owned.
    n.bridge_adopted = kind == LinkKind::Bridge;
    return ok();
}

Result<std::optional<std::string>> BridgeDriver::missing(const Network& n) {
    CNETD_TRY_ASSIGN(LinkKind kind, kernel_.link_kind(n.bridge));
    if (kind == LinkKind::Bridge) return std::optional<std::string>();
    return std::optional<std::string>("bridge " + n.bridge);
}

Result<void> BridgeDriver::create(const Network& n, detail::Rollback& undo) {
    auto created = kernel_.ensure_bridge(bridge_spec(n));
    if (!created.ok()) {
        // ensure_bridge may have failed after creating the link: remove what we made.
        if (!n.bridge_adopted)
            log_undo_failure(kernel_.delete_link(n.bridge), "delete bridge " + n.bridge);
        return std::move(created).error();
    }
    if (*created) {
        undo.add([this, bridge = n.bridge] {
            log_undo_failure(kernel_.delete_link(bridge), "delete bridge " + bridge);
        });
    }
    return ok();
}

Result<bool> BridgeDriver::ensure(const Network& n) {
    CNETD_TRY_ASSIGN(LinkKind kind, kernel_.link_kind(n.bridge));
    if (kind == LinkKind::Other) {
        return Error::invalid(fmt::format(
            "network {}: bridge name \"{}\" is taken by an interface that is not a bridge", n.name,
            n.bridge));
    }
    auto r = kernel_.ensure_bridge(bridge_spec(n));
    if (!r.ok()) return std::move(r).error().wrap(fmt::format("network {}", n.name));
    return *r;
}

Result<void> BridgeDriver::remove(const Network& n, detail::Rollback& undo) {
    if (n.bridge_adopted) return ok();
    // Its MAC, so that an undo can make the bridge again exactly as it was.
    CNETD_TRY_ASSIGN(auto st, kernel_.link_status(n.bridge));
    if (!st) return ok();
    CNETD_TRY(kernel_.delete_link(n.bridge));
    undo.add([this, n, mac = st->mac] {
        auto r = kernel_.ensure_bridge(bridge_spec(n, mac));
        if (!r.ok())
            log::error("rollback: make bridge {} again: {}", n.bridge, r.error().message());
    });
    return ok();
}

// ---------------------------------------------------------------------------------------------
// endpoints

Result<void> BridgeDriver::configure_pair(const Endpoint& ep, Netns& ns) {
    // IPv6 stays off on IPv4-only endpoints (no link-local chatter, no SLAAC from rogue RAs).
    CNETD_TRY(ep.address6 ? ns.enable_ipv6(ep.ifname) : ns.disable_ipv6(ep.ifname));
    CNETD_TRY(ns.add_address(ep.ifname, ep.address));
    if (ep.address6) CNETD_TRY(ns.add_address6(ep.ifname, *ep.address6));
    CNETD_TRY(ns.set_up(ep.ifname));
    return kernel_.set_up(ep.host_ifname);
}

Result<void> BridgeDriver::link(const Network& n, Endpoint& ep, Netns& ns, detail::Rollback& undo) {
    Result<void> made = Error::internal("no attempt");
    for (int i = 0; i < kVethNameTries; ++i) {
        ep.host_ifname = "veth" + random_hex(7);
        made = kernel_.create_veth({ep.host_ifname, n.bridge, ep.ifname, ep.mac, n.mtu}, ns);
        if (made.ok() || made.error().error_number() != EEXIST) break;
    }
    // The kernel refuses the 1024th port with EXFULL ("exchange full"): say why.
    if (!made.ok() && made.error().error_number() == EXFULL) {
        auto ports = kernel_.bridge_port_count(n.bridge);
        return full_error(n, ports.ok() ? *ports : kMaxPorts);
    }
    CNETD_TRY(std::move(made));
    undo.add([this, host = ep.host_ifname] {
        log_undo_failure(kernel_.delete_link(host), "delete veth " + host);
    });
    return configure_pair(ep, ns);
}

void BridgeDriver::announce(const Network& n, const Endpoint& ep, Netns& ns) {
    // A reused address may still sit in a neighbour's cache with the previous owner's MAC.
    if (auto a = ns.announce(ep.ifname, ep.mac, ep.address.addr(), addr6_of(ep)); !a.ok())
        log::warn("endpoint {}: gratuitous ARP/NA: {}", ep.name, a.error().message());
    // Our own entry is fixed for sure: the announce goes out before the bridge forwards on the
    // new port and is often dropped (netlink/neigh.hpp).
    if (auto f = kernel_.forget_neighbours(n.bridge, ep.address.addr(), addr6_of(ep)); !f.ok())
        log::warn("endpoint {}: {}", ep.name, f.error().message());
}

Result<void> BridgeDriver::unlink(const Network&, const Endpoint& ep, Netns* ns) {
    // The pair leaves service now (the container loses the interface, with its address and
    // route) and is deleted soon after in a batch with others (Kernel::retire_veth).
    return kernel_.retire_veth(ep.host_ifname, ns, ep.ifname);
}

Result<std::optional<std::string>> BridgeDriver::endpoint_defect(const Network& n,
                                                                 const Endpoint& ep, Netns& ns) {
    using Defect = std::optional<std::string>;
    CNETD_TRY_ASSIGN(auto host, kernel_.link_status(ep.host_ifname));
    if (!host || host->kind != "veth" || host->master != n.bridge)
        return Defect(fmt::format("its host veth {} is not on {}", ep.host_ifname, n.bridge));
    CNETD_TRY_ASSIGN(auto peer, kernel_.peer_status(ns, ep.ifname));
    if (!peer || peer->mac != ep.mac || !has(peer->addresses4, ep.address) ||
        (ep.address6 && !has(peer->addresses6, *ep.address6))) {
        return Defect(fmt::format("{} in {} lacks its MAC or addresses", ep.ifname, ep.netns_path));
    }
    return Defect();
}

void BridgeDriver::sweep(const Network& n) {
    // Leftovers of an interrupted connect (veth made, state never saved): ours by name, on our
    // bridge, owned by no endpoint.
    auto veths = kernel_.bridge_veths(n.bridge);
    if (!veths.ok()) {
        log::warn("network {}: list ports of {}: {}", n.name, n.bridge, veths.error().message());
        return;
    }
    std::set<std::string> owned;
    for (const auto& [eid, ep] : n.endpoints) owned.insert(ep.host_ifname);
    for (const auto& v : *veths) {
        if (owned.count(v) || !is_our_veth_name(v)) continue;
        log::warn(
            "network {}: veth {} on {} belongs to no endpoint (an interrupted connect); deleting "
            "it",
            n.name, v, n.bridge);
        if (auto r = kernel_.delete_link(v); !r.ok())
            log::error("delete veth {}: {}", v, r.error().message());
    }
}

// ---------------------------------------------------------------------------------------------
// repair at start

Result<void> BridgeDriver::repair(const Network& n, const Endpoint& ep, Netns& ns,
                                  RouteRoles roles) {
    CNETD_TRY_ASSIGN(auto host, kernel_.link_status(ep.host_ifname));
    std::optional<PeerStatus> peer;
    if (host) {
        if (host->kind != "veth") {
            return Error::conflict(fmt::format("{} is a {} link, not our veth", ep.host_ifname,
                                               host->kind.empty() ? "device" : host->kind));
        }
        CNETD_TRY_ASSIGN(peer, kernel_.peer_status(ns, ep.ifname));
        if (!peer) {
            // The host side exists but the container has no such interface (renamed or moved):
            // start the pair over.
            log::warn("endpoint {}: {} missing in {}; recreating the veth pair", ep.name, ep.ifname,
                      ep.netns_path);
            CNETD_TRY(kernel_.delete_link(ep.host_ifname));
            host.reset();
        }
    }
    CNETD_TRY(host ? fix_drift(n, ep, ns, roles, *host, *peer) : recreate(n, ep, ns, roles));
    // A crash may have come between a reuse of this address and the forgetting of the previous
    // owner's MAC (or the pair was recreated, whose announce the bridge may drop): resolve every
    // endpoint afresh.
    if (auto f = kernel_.forget_neighbours(n.bridge, ep.address.addr(), addr6_of(ep)); !f.ok())
        log::error("endpoint {}: {}", ep.name, f.error().message());
    return ok();
}

Result<void> BridgeDriver::recreate(const Network& n, const Endpoint& ep, Netns& ns,
                                    RouteRoles roles) {
    // A fresh attach with the same names, MAC and addresses (a crash between deleting the veth
    // and saving a disconnect, or someone deleted it by hand).
    log::warn("endpoint {}: veth {} is gone; recreating it ({} in {})", ep.name, ep.host_ifname,
              ep.ifname, ep.netns_path);
    CNETD_TRY(kernel_.create_veth({ep.host_ifname, n.bridge, ep.ifname, ep.mac, n.mtu}, ns));
    detail::Rollback undo;
    undo.add([this, host = ep.host_ifname] {
        log_undo_failure(kernel_.delete_link(host), "delete veth " + host);
    });
    CNETD_TRY(configure_pair(ep, ns));
    if (roles.v4) CNETD_TRY(ns.add_default_route(ep.ifname, n.gateway));
    if (roles.v6) CNETD_TRY(ns.add_default_route6(ep.ifname, n.gateway6));
    undo.commit();
    if (auto a = ns.announce(ep.ifname, ep.mac, ep.address.addr(), addr6_of(ep)); !a.ok())
        log::debug("endpoint {}: announce: {}", ep.name, a.error().message());
    return ok();
}

Result<void> BridgeDriver::fix_drift(const Network& n, const Endpoint& ep, Netns& ns,
                                     RouteRoles roles, const LinkStatus& host,
                                     const PeerStatus& peer) {
    // Both sides exist: fix drift in place, one step per difference.
    if (host.master != n.bridge) {
        log::warn("endpoint {}: veth {} is enslaved to \"{}\", not {}; re-enslaving", ep.name,
                  ep.host_ifname, host.master, n.bridge);
        CNETD_TRY(kernel_.set_master(ep.host_ifname, n.bridge));
    }
    if (!host.up) {
        log::warn("endpoint {}: veth {} was down; setting it up", ep.name, ep.host_ifname);
        CNETD_TRY(kernel_.set_up(ep.host_ifname));
    }
    CNETD_TRY(fix_addresses(ep, ns, peer));
    if (!peer.up) {
        log::warn("endpoint {}: {} was down in {}; setting it up", ep.name, ep.ifname,
                  ep.netns_path);
        CNETD_TRY(ns.set_up(ep.ifname));
    }
    // Routes go when the link goes down or the address is removed: check after the fixes above.
    if (roles.v4 && peer.default_gateway4 != n.gateway) {
        log::warn("endpoint {}: default route via {} missing in {}; re-adding it", ep.name,
                  n.gateway.str(), ep.netns_path);
        CNETD_TRY(ns.add_default_route(ep.ifname, n.gateway));
    }
    if (roles.v6 && peer.default_gateway6 != n.gateway6) {
        log::warn("endpoint {}: IPv6 default route via {} missing in {}; re-adding it", ep.name,
                  n.gateway6.str(), ep.netns_path);
        CNETD_TRY(ns.add_default_route6(ep.ifname, n.gateway6));
    }
    return ok();
}

Result<void> BridgeDriver::fix_addresses(const Endpoint& ep, Netns& ns, const PeerStatus& peer) {
    if (!has(peer.addresses4, ep.address)) {
        log::warn("endpoint {}: address {} missing on {}; re-adding it", ep.name, ep.address.str(),
                  ep.ifname);
        CNETD_TRY(ns.add_address(ep.ifname, ep.address));
    }
    if (ep.address6 && !has(peer.addresses6, *ep.address6)) {
        log::warn("endpoint {}: address {} missing on {}; re-adding it", ep.name,
                  ep.address6->str(), ep.ifname);
        CNETD_TRY(ns.enable_ipv6(ep.ifname));
        CNETD_TRY(ns.add_address6(ep.ifname, *ep.address6));
    }
    return ok();
}

}  // namespace cnetd::core
