// Overlay networks, the node-local halves (engine.hpp "overlay networks", docs/overlay.md): the
// pure plan of a cluster-wide create, the local realization of a network the cluster knows (a
// bridge network on this node's block plus the VXLAN device, core/overlay_driver.hpp) and the
// remote nodes programmed on it. The daemon's cluster agent calls these on the kernel worker.
#include <algorithm>
#include <charconv>

#include "base/log.hpp"
#include "core/engine.hpp"
#include "core/engine_detail.hpp"
#include "core/overlay_driver.hpp"

namespace cnetd::core {

namespace {

constexpr int kMinOverlayPrefix = 8;    // as bridge subnets: the IPAM bitmap stays small
constexpr int kMaxBlockPrefix = 30;     // gateway + at least one container per node
constexpr uint32_t kMaxVni = 0xffffff;  // 24 bits

bool is_hex_id(const std::string& id) {
    return id.size() == 64 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// kOptHostSubnetSize: longer than the subnet's prefix, at most kMaxBlockPrefix.
Result<unsigned> parse_block_prefix(const std::string& v, const Ipv4Cidr& subnet) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), p);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size() ||
        p <= unsigned(subnet.prefix()) || p > unsigned(kMaxBlockPrefix)) {
        return Error::invalid(
            fmt::format("option {}: \"{}\" is not a block size for subnet {} ({}-{})",
                        kOptHostSubnetSize, v, subnet.str(), subnet.prefix() + 1, kMaxBlockPrefix));
    }
    return p;
}

// Everything bridge networks have that overlay networks refuse, by the request's field.
Result<void> refuse_bridge_fields(const CreateNetworkRequest& req) {
    if (req.ipv6 || !req.subnet6.empty() || !req.gateway6.empty() || !req.ip_range6.empty())
        return Error::invalid("ipv6: overlay networks are IPv4 only");
    if (!req.gateway.empty()) {
        return Error::invalid(fmt::format(
            "gateway: \"{}\": overlay networks take none (each node's gateway is the first "
            "address of its block)",
            req.gateway));
    }
    if (!req.ip_range.empty())
        return Error::invalid(fmt::format(
            "ip-range: \"{}\": overlay networks take none (each node allocates in its block)",
            req.ip_range));
    if (!req.aux_addresses.empty()) {
        return Error::invalid(fmt::format("aux-address: {}: overlay networks take none",
                                          req.aux_addresses.begin()->first));
    }
    for (const auto& [k, v] : req.labels)
        if (k.empty()) return Error::invalid(fmt::format("label: empty key (value \"{}\")", v));
    return ok();
}

// The cluster's record and this node's part of it, checked (a record another node wrote).
Result<void> check_overlay_def(const OverlayNetworkDef& d, const OverlayLocal& l) {
    if (!is_hex_id(d.id)) return Error::invalid(fmt::format("id: \"{}\" is not 64 hex", d.id));
    CNETD_TRY(validate_name("name", d.name));
    if (d.subnet != d.subnet.masked() || d.subnet.prefix() < kMinOverlayPrefix)
        return Error::invalid(fmt::format("subnet: {} is not a /{}../{} network", d.subnet.str(),
                                          kMinOverlayPrefix, kMaxBlockPrefix - 1));
    if (d.block_prefix <= unsigned(d.subnet.prefix()) || d.block_prefix > kMaxBlockPrefix)
        return Error::invalid(
            fmt::format("block size: /{} for subnet {}", d.block_prefix, d.subnet.str()));
    if (d.vni == 0 || d.vni > kMaxVni)
        return Error::invalid(fmt::format("vni: {} is not 1..{}", d.vni, kMaxVni));
    if (l.block.prefix() != int(d.block_prefix) || l.block != l.block.masked() ||
        !d.subnet.contains(l.block.network()))
        return Error::invalid(fmt::format("block: {} is not a /{} block of {}", l.block.str(),
                                          d.block_prefix, d.subnet.str()));
    if (l.node.empty()) return Error::invalid("node: empty");
    if (l.local.value() == 0) return Error::invalid("advertise-address: 0.0.0.0");
    if (l.port == 0) return Error::invalid("vxlan-port: 0");
    return ok();
}

// A remote node of `net` as the cluster says it, checked against the network and `before` (the
// peers accepted so far).
Result<void> check_peer(const Network& net, const OverlayPeer& p,
                        const std::vector<OverlayPeer>& before) {
    const Overlay& ov = *net.overlay;
    const std::string what = fmt::format("peer {} ({})", p.node, p.block.str());
    if (p.node.empty() || p.node == ov.node)
        return Error::invalid(fmt::format("{}: node name \"{}\" is empty or ours", what, p.node));
    if (p.block.prefix() != int(ov.block_prefix) || p.block != p.block.masked() ||
        !ov.subnet.contains(p.block.network()))
        return Error::invalid(
            fmt::format("{}: not a /{} block of {}", what, ov.block_prefix, ov.subnet.str()));
    if (p.block == net.subnet)
        return Error::conflict(fmt::format("{}: this node's own block", what));
    if (p.underlay.value() == 0 || p.mac.is_zero() || p.mac.is_multicast())
        return Error::invalid(
            fmt::format("{}: underlay {} or MAC {} unusable", what, p.underlay.str(), p.mac.str()));
    for (const OverlayPeer& o : before) {
        if (o.node == p.node || o.block == p.block)
            return Error::conflict(fmt::format("{}: node or block listed twice", what));
    }
    return ok();
}

const OverlayPeer* by_node(const std::vector<OverlayPeer>& v, const std::string& node) {
    for (const OverlayPeer& p : v)
        if (p.node == node) return &p;
    return nullptr;
}

}  // namespace

Result<OverlayNetworkDef> Engine::plan_overlay_network(const CreateNetworkRequest& req) const {
    if (req.driver != "overlay") {
        return Error::invalid(fmt::format("driver: \"{}\": not an overlay network", req.driver));
    }
    CNETD_TRY(validate_name("name", req.name));
    for (const auto& [id, n] : nets_)
        if (n.net.name == req.name)
            return Error::conflict(fmt::format("network with name {} already exists", req.name));
    CNETD_TRY(refuse_bridge_fields(req));
    if (req.subnet.empty()) return Error::invalid("subnet: required for overlay networks");
    auto subnet = Ipv4Cidr::parse_network(req.subnet);
    if (!subnet) return std::move(subnet).error().wrap("subnet");
    if (subnet->prefix() < kMinOverlayPrefix || subnet->prefix() >= kMaxBlockPrefix) {
        return Error::invalid(fmt::format("subnet: \"{}\": prefix length must be between {} and {}",
                                          req.subnet, kMinOverlayPrefix, kMaxBlockPrefix - 1));
    }
    OverlayNetworkDef d;
    d.block_prefix = std::max<unsigned>(24, subnet->prefix() + 1);
    for (const auto& [key, value] : req.options) {
        if (key == kOptHostSubnetSize) {
            CNETD_TRY_ASSIGN(d.block_prefix, parse_block_prefix(value, *subnet));
        } else if (key == kOptEnableDns) {
            auto b = parse_bool(value);
            if (!b)
                return Error::invalid(
                    fmt::format("option {}: \"{}\" is not a boolean (true or false)", key, value));
            d.dns = *b;
        } else {
            return Error::invalid(
                fmt::format("option {}: not supported on overlay networks (supported: {}, {})", key,
                            kOptHostSubnetSize, kOptEnableDns));
        }
    }
    // Every node routes the whole subnet into the tunnel: it must not cover a local network.
    for (const auto& [id, n] : nets_) {
        const Ipv4Cidr other = n.net.overlay ? n.net.overlay->subnet : n.net.subnet;
        if (other.overlaps(*subnet)) {
            return Error::conflict(fmt::format("subnet: {} overlaps network {} ({})", subnet->str(),
                                               n.net.name, other.str()));
        }
    }
    d.id = random_hex(64);
    d.name = req.name;
    d.subnet = *subnet;
    d.internal = req.internal;
    d.labels = req.labels;
    d.options = req.options;
    d.created = detail::now_rfc3339();
    return d;
}

Result<Network> Engine::plan_local_overlay(const OverlayNetworkDef& def,
                                           const OverlayLocal& local) {
    std::vector<const Network*> existing;
    for (const auto& [id, x] : nets_) {
        const Network& o = x.net;
        existing.push_back(&o);
        if (o.name == def.name)
            return Error::conflict(
                fmt::format("name: network {} (id {}) exists on this node", o.name, o.id));
        if (o.subnet.overlaps(local.block))
            return Error::conflict(fmt::format("block: {} overlaps network {} ({})",
                                               local.block.str(), o.name, o.subnet.str()));
    }
    Network n;
    n.id = def.id;
    n.name = def.name;
    n.driver = "overlay";
    n.bridge = "br-" + def.id.substr(0, 12);
    n.subnet = local.block;
    n.gateway = Ipv4(local.block.network().value() + 1);
    n.internal = def.internal;
    n.dns = def.dns;
    n.labels = def.labels;
    n.options = def.options;
    n.options[kOptBridgeName] = n.bridge;
    n.created = def.created;
    n.host_binding = opts_.host_binding;
    n.overlay = Overlay{def.subnet,
                        def.block_prefix,
                        def.vni,
                        overlay_device_name(def.id),
                        overlay_vtep_mac(local.node, def.id),
                        local.node,
                        local.local,
                        local.port,
                        {}};
    // Endpoints get the tunnel's MTU: a full-size packet must fit in one VXLAN frame.
    auto lower = kernel_.link_of_address(local.local);
    if (!lower) return std::move(lower).error().wrap("advertise-address " + local.local.str());
    n.mtu = lower->second > kVxlanOverhead + 68 ? lower->second - kVxlanOverhead : 68;
    NetworkDriver& driver = driver_of(n);
    CNETD_TRY(driver.check_against(n, existing));
    CNETD_TRY(driver.probe(n));  // kernel reads only
    return n;
}

Result<Network> Engine::add_overlay_network(const OverlayNetworkDef& def,
                                            const OverlayLocal& local) {
    const std::string frame = fmt::format("add overlay network {}", def.name);
    CNETD_TRY(check_overlay_def(def, local).context(frame));
    if (auto it = nets_.find(def.id); it != nets_.end()) {
        const Network& have = it->second.net;
        if (!have.overlay) {
            return Error::conflict(
                fmt::format("{}: network {} has id {} and is not an overlay network", frame,
                            have.name, def.id));
        }
        if (have.subnet == local.block) return have;  // made already (a replayed watch event)
        return Error::conflict(fmt::format("{}: this node has block {} of it, not {}", frame,
                                           have.subnet.str(), local.block.str()));
    }
    CNETD_TRY_ASSIGN(Network n, plan_local_overlay(def, local).context(frame));
    CNETD_TRY(realize_network(n, frame));
    log::info("overlay network {} added: vni {}, block {} of {}, bridge {}, vxlan {} (mtu {})",
              n.name, n.overlay->vni, n.subnet.str(), n.overlay->subnet.str(), n.bridge,
              n.overlay->vxlan, n.mtu);
    return n;
}

std::vector<OverlayPeer> Engine::program_peers(const Network& net,
                                               const std::vector<OverlayPeer>& want,
                                               ErrorList& errors) {
    const std::string& dev = net.overlay->vxlan;
    const std::vector<OverlayPeer>& old = net.overlay->peers;
    std::vector<OverlayPeer> now;  // what the device has when done
    // Gone or moved peers leave first (a new MAC or block would leave the old entries behind;
    // a new VTEP only is replaced in place). A failed removal keeps the peer recorded, so the
    // next call tries again.
    for (const OverlayPeer& o : old) {
        const OverlayPeer* w = by_node(want, o.node);
        if (w && w->block == o.block && w->mac == o.mac) continue;
        if (auto r = kernel_.remove_vxlan_peer(dev, OverlayDriver::vxlan_peer(o)); !r.ok()) {
            errors.add(std::move(r).error().wrap("remove peer " + o.node));
            now.push_back(o);
        }
    }
    for (const OverlayPeer& w : want) {
        if (by_node(now, w.node)) continue;  // its old entries are still there
        const OverlayPeer* o = by_node(old, w.node);
        if (!(o && *o == w)) {
            auto r = kernel_.add_vxlan_peer(dev, OverlayDriver::vxlan_peer(w));
            if (!r.ok()) {
                errors.add(std::move(r).error().wrap("program peer " + w.node));
                continue;
            }
        }
        now.push_back(w);
    }
    std::sort(now.begin(), now.end(),
              [](const OverlayPeer& a, const OverlayPeer& b) { return a.node < b.node; });
    return now;
}

Result<void> Engine::set_overlay_peers(const std::string& net_id, std::vector<OverlayPeer> peers) {
    auto it = nets_.find(net_id);
    if (it == nets_.end() || !it->second.net.overlay)
        return Error::not_found(fmt::format("overlay network {} not found", net_id));
    Network& net = it->second.net;
    std::sort(peers.begin(), peers.end(),
              [](const OverlayPeer& a, const OverlayPeer& b) { return a.node < b.node; });
    ErrorList errors;
    std::vector<OverlayPeer> want;
    for (const OverlayPeer& p : peers) {
        if (auto c = check_peer(net, p, want); !c.ok()) {
            errors.add(std::move(c).error());
        } else {
            want.push_back(p);
        }
    }
    const std::string frame = fmt::format("network {}: peers", net.name);
    if (want != net.overlay->peers) {
        std::vector<OverlayPeer> now = program_peers(net, want, errors);
        const size_t before = net.overlay->peers.size();
        net.overlay->peers = std::move(now);
        // The kernel has them now: memory says so even when the save fails (the next save
        // writes them; a restart before it re-programs the older set, and the agent corrects).
        if (auto saved = persist(); !saved.ok())
            errors.add(std::move(saved).error().wrap("save state"));
        log::info("{}: {} -> {} remote node(s)", frame, before, net.overlay->peers.size());
    }
    if (!errors.empty()) return errors.combined(frame);
    return ok();
}

}  // namespace cnetd::core
