// The overlay driver (see overlay_driver.hpp and the contract in driver.hpp).
#include "core/overlay_driver.hpp"

#include <algorithm>

#include "base/log.hpp"
#include "core/engine_detail.hpp"

namespace cnetd::core {

namespace {

const Overlay& overlay_of(const Network& n) {
    if (!n.overlay) throw std::logic_error("overlay driver: network " + n.name + " has no overlay");
    return *n.overlay;
}

bool has_peer(const std::vector<VxlanPeer>& v, const VxlanPeer& p) {
    return std::find(v.begin(), v.end(), p) != v.end();
}

std::string peer_text(const VxlanPeer& p) {
    return fmt::format("{} via {} ({})", p.block.str(), p.underlay.str(), p.mac.str());
}

}  // namespace

Mac overlay_vtep_mac(const std::string& node, const std::string& net_id) {
    // FNV-1a 64: stable across builds and platforms (std::hash is not).
    uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&h](unsigned char c) {
        h ^= c;
        h *= 0x100000001b3ull;
    };
    for (unsigned char c : node) mix(c);
    mix(0);  // "ab"+"c" and "a"+"bc" differ
    for (unsigned char c : net_id) mix(c);
    std::array<uint8_t, 6> b{};
    for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(h >> (8 * (5 - i)));
    b[0] = static_cast<uint8_t>((b[0] & 0xfe) | 0x02);  // unicast, locally administered
    return Mac(b);
}

std::string overlay_device_name(const std::string& net_id) {
    return "vx-" + net_id.substr(0, 12);
}

// ---------------------------------------------------------------------------------------------
// planning (pure)

Result<void> OverlayDriver::parse_options(const std::map<std::string, std::string>&,
                                          const PlanInputs&, Network&) const {
    return Error::invalid(kOverlayThroughCluster);
}

Result<void> OverlayDriver::check_against(const Network& n,
                                          const std::vector<const Network*>& existing) const {
    CNETD_TRY(bridge_.check_against(n, existing));
    const Overlay& ov = overlay_of(n);
    for (const Network* o : existing) {
        if (!o->overlay || o->id == n.id) continue;
        if (o->overlay->vxlan == ov.vxlan) {
            return Error::conflict(
                fmt::format("vxlan device {} is already used by network {}", ov.vxlan, o->name));
        }
        if (o->overlay->vni == ov.vni) {
            return Error::conflict(
                fmt::format("vni: {} is already used by network {}", ov.vni, o->name));
        }
    }
    return ok();
}

firewall::NetworkRules OverlayDriver::rules(const Network& n) const {
    firewall::NetworkRules r = bridge_.rules(n);
    r.tunnel = overlay_of(n).vxlan;
    return r;
}

Result<VxlanSpec> OverlayDriver::vxlan_spec(const Network& n) {
    const Overlay& ov = overlay_of(n);
    auto lower = kernel_.link_of_address(ov.local);
    if (!lower) {
        return std::move(lower).error().wrap(
            fmt::format("network {}: advertise-address {}", n.name, ov.local.str()));
    }
    VxlanSpec s;
    s.name = ov.vxlan;
    s.vni = ov.vni;
    s.local = ov.local;
    s.port = ov.port;
    s.underlay = lower->first;
    s.mtu = lower->second > kVxlanOverhead + 68 ? lower->second - kVxlanOverhead : 68;
    s.mac = ov.mac;
    s.address = Ipv4Cidr(n.subnet.network(), 32);
    return s;
}

// ---------------------------------------------------------------------------------------------
// the network's objects

Result<void> OverlayDriver::probe(Network& n) {
    return bridge_.probe(n);
}

Result<std::optional<std::string>> OverlayDriver::missing(const Network& n) {
    CNETD_TRY_ASSIGN(auto bridge, bridge_.missing(n));
    if (bridge) return bridge;
    const std::string& dev = overlay_of(n).vxlan;
    CNETD_TRY_ASSIGN(auto st, kernel_.link_status(dev));
    if (st && st->kind == "vxlan") return std::optional<std::string>();
    return std::optional<std::string>("vxlan device " + dev);
}

Result<void> OverlayDriver::check_capacity(const Network& n) {
    return bridge_.check_capacity(n);
}

Result<void> OverlayDriver::create(const Network& n, detail::Rollback& undo) {
    CNETD_TRY(bridge_.create(n, undo));
    CNETD_TRY_ASSIGN(VxlanSpec spec, vxlan_spec(n));
    CNETD_TRY_ASSIGN(LinkKind before, kernel_.link_kind(spec.name));
    auto created = kernel_.ensure_vxlan(spec);
    if (!created.ok()) {
        // It may have failed after making the link: remove what we made.
        if (before == LinkKind::Absent)
            log_undo_failure(kernel_.delete_link(spec.name), "delete vxlan " + spec.name);
        return std::move(created).error();
    }
    if (*created) {
        undo.add([this, dev = spec.name] {
            log_undo_failure(kernel_.delete_link(dev), "delete vxlan " + dev);
        });
    }
    for (const OverlayPeer& p : overlay_of(n).peers) {
        const VxlanPeer vp = vxlan_peer(p);
        CNETD_TRY(kernel_.add_vxlan_peer(spec.name, vp).context("peer " + p.node));
        undo.add([this, dev = spec.name, vp] {
            log_undo_failure(kernel_.remove_vxlan_peer(dev, vp), "remove peer " + vp.block.str());
        });
    }
    return ok();
}

Result<bool> OverlayDriver::ensure(const Network& n) {
    CNETD_TRY_ASSIGN(bool bridge_created, bridge_.ensure(n));
    CNETD_TRY_ASSIGN(VxlanSpec spec, vxlan_spec(n));
    auto created = kernel_.ensure_vxlan(spec);
    if (!created.ok()) return std::move(created).error().wrap(fmt::format("network {}", n.name));
    resync_peers(n);
    return bridge_created || *created;
}

void OverlayDriver::resync_peers(const Network& n) {
    const Overlay& ov = overlay_of(n);
    std::vector<VxlanPeer> want;
    for (const OverlayPeer& p : ov.peers) want.push_back(vxlan_peer(p));
    auto have = kernel_.vxlan_peers(ov.vxlan);
    if (!have.ok()) {
        log::warn("network {}: list peers on {}: {}", n.name, ov.vxlan, have.error().message());
        have = std::vector<VxlanPeer>{};
    }
    // Entries nobody recorded (or half-made, or with another MAC/VTEP) go first: a changed
    // peer's old FDB entry would otherwise stay.
    for (const VxlanPeer& p : *have) {
        if (has_peer(want, p)) continue;
        log::warn("network {}: peer entry {} on {} is not recorded; removing it", n.name,
                  peer_text(p), ov.vxlan);
        if (auto r = kernel_.remove_vxlan_peer(ov.vxlan, p); !r.ok())
            log::error("network {}: remove peer {}: {}", n.name, p.block.str(),
                       r.error().message());
    }
    for (const VxlanPeer& p : want) {
        if (has_peer(*have, p)) continue;
        if (auto r = kernel_.add_vxlan_peer(ov.vxlan, p); !r.ok())
            log::error("network {}: program peer {}: {}", n.name, peer_text(p),
                       r.error().message());
    }
}

Result<void> OverlayDriver::remove(const Network& n, detail::Rollback& undo) {
    const Overlay& ov = overlay_of(n);
    CNETD_TRY_ASSIGN(auto st, kernel_.link_status(ov.vxlan));
    if (st && st->kind == "vxlan") {
        // What an undo needs to make it again; without the underlay link it cannot, but the
        // network can still go.
        auto spec = vxlan_spec(n);
        CNETD_TRY(kernel_.delete_link(ov.vxlan));
        if (spec.ok()) {
            undo.add([this, spec = *spec, peers = ov.peers] {
                if (auto r = kernel_.ensure_vxlan(spec); !r.ok()) {
                    log::error("rollback: make vxlan {} again: {}", spec.name, r.error().message());
                    return;
                }
                for (const OverlayPeer& p : peers)
                    log_undo_failure(kernel_.add_vxlan_peer(spec.name, vxlan_peer(p)),
                                     "program peer " + p.node);
            });
        } else {
            log::warn("{}: the undo could not make it again", spec.error().message());
        }
    }
    return bridge_.remove(n, undo);
}

// ---------------------------------------------------------------------------------------------
// endpoints

std::string OverlayDriver::route_text(const Network& n, const Endpoint& ep) {
    return fmt::format("route {} via {} dev {}", overlay_of(n).subnet.str(), n.gateway.str(),
                       ep.ifname);
}

Result<void> OverlayDriver::link(const Network& n, Endpoint& ep, Netns& ns,
                                 detail::Rollback& undo) {
    CNETD_TRY(bridge_.link(n, ep, ns, undo));
    // No undo of its own: the bridge's undo deletes the veth, and the route goes with its link.
    return ns.add_route(ep.ifname, overlay_of(n).subnet, n.gateway)
        .context("add " + route_text(n, ep));
}

void OverlayDriver::announce(const Network& n, const Endpoint& ep, Netns& ns) {
    bridge_.announce(n, ep, ns);
}

Result<void> OverlayDriver::unlink(const Network& n, const Endpoint& ep, Netns* ns) {
    return bridge_.unlink(n, ep, ns);
}

Result<void> OverlayDriver::repair(const Network& n, const Endpoint& ep, Netns& ns,
                                   RouteRoles roles) {
    CNETD_TRY(bridge_.repair(n, ep, ns, roles));
    const Overlay& ov = overlay_of(n);
    CNETD_TRY_ASSIGN(bool there, ns.has_route(ep.ifname, ov.subnet, n.gateway));
    if (there) return ok();
    log::warn("endpoint {}: {} missing in {}; re-adding it", ep.name, route_text(n, ep),
              ep.netns_path);
    return ns.add_route(ep.ifname, ov.subnet, n.gateway).context("add " + route_text(n, ep));
}

Result<std::optional<std::string>> OverlayDriver::endpoint_defect(const Network& n,
                                                                  const Endpoint& ep, Netns& ns) {
    CNETD_TRY_ASSIGN(auto defect, bridge_.endpoint_defect(n, ep, ns));
    if (defect) return defect;
    CNETD_TRY_ASSIGN(bool there, ns.has_route(ep.ifname, overlay_of(n).subnet, n.gateway));
    if (there) return std::optional<std::string>();
    return std::optional<std::string>(
        fmt::format("its {} is missing in {}", route_text(n, ep), ep.netns_path));
}

void OverlayDriver::sweep(const Network& n) {
    bridge_.sweep(n);
}

}  // namespace cnetd::core
