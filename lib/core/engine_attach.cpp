// Engine::connect: one endpoint onto a network, all or nothing.
//
// Order (issue: a request that can be refused is refused before the kernel is touched):
//   1. plan_attach: parse and validate the whole request (no kernel, no state);
//   2. open the namespace and check it (not the host's, not connected yet, name free, bridge
//      not full), allocate addresses and host ports and let the firewall check the mappings
//      (memory only, undone on failure);
//   3. hold the host ports (sockets: another process holding one fails here, before any link);
//   4. kernel: veth, sysctls, addresses, links up, default routes (core/gateway.hpp decides which
//      endpoint of the namespace carries them; a replaced route is put back by the undo log);
//   5. firewall map elements, then record and persist; a failed save undoes everything.
// One undo log (detail::Rollback) covers steps 2 to 5.
#include <algorithm>

#include "base/log.hpp"
#include "base/validate.hpp"
#include "core/engine.hpp"
#include "core/engine_detail.hpp"
#include "core/gateway.hpp"

namespace cnetd::core {

namespace {

// Linux numbers bridge ports 1..1023 (BR_MAX_PORTS 1024, port 0 reserved) and refuses the 1024th
// with EXFULL ("exchange full"): say why before it does.
constexpr unsigned kMaxBridgePorts = 1023;
// Below this many endpoints on a network the kernel's port count is not asked (it is a link dump,
// O(links) per attach); an adopted bridge with foreign ports still gets the clear error from
// EXFULL at veth creation.
constexpr unsigned kAskPortsFrom = kMaxBridgePorts - 64;
// "1-65535" expands to 65,535 mappings: bound what one request may ask for (docs/security.md).
constexpr size_t kMaxMappings = 65535;

Error bridge_full(const Network& net, unsigned ports) {
    return Error::conflict(fmt::format(
        "bridge {} already has {} ports, the Linux limit per bridge; use another network",
        net.bridge, ports));
}

// req.publish (Docker -p text) and req.ports, as one checked list.
Result<std::vector<PortRequest>> port_requests(const ConnectRequest& req) {
    std::vector<PortRequest> out = req.ports;
    for (size_t i = 0; i < req.publish.size(); ++i) {
        auto parsed = parse_port_spec(req.publish[i]);
        if (!parsed) return std::move(parsed).error().wrap(fmt::format("publish[{}]", i));
        if (out.size() + parsed->size() > kMaxMappings) {
            return Error::invalid(
                fmt::format("publish[{}]: \"{}\": more than {} port mappings in one request", i,
                            req.publish[i], kMaxMappings));
        }
        out.insert(out.end(), parsed->begin(), parsed->end());
    }
    for (const auto& pr : out) {
        if (pr.container.first == 0 || pr.container.last < pr.container.first ||
            (pr.host.first != 0 && pr.host.last < pr.host.first) ||
            (pr.container.size() > 1 && pr.host.first != 0 &&
             pr.host.size() != pr.container.size())) {
            return Error::invalid(fmt::format("ports: invalid mapping {}-{} -> {}-{}",
                                              pr.host.first, pr.host.last, pr.container.first,
                                              pr.container.last));
        }
    }
    return out;
}

}  // namespace

// Everything about a connect that is decided before the kernel is asked anything.
struct Engine::AttachPlan {
    std::string path;  // the namespace file
    std::string name;  // the endpoint's name
    std::optional<Ipv4> ipv4;
    std::optional<Ipv6> ipv6;
    std::optional<Mac> mac;
    std::vector<PortRequest> ports;
};

Result<Engine::AttachPlan> Engine::plan_attach(const Net& n, const ConnectRequest& req) const {
    AttachPlan p;
    CNETD_TRY_ASSIGN(p.path, resolve_target(req.target));
    if (!req.ipv4.empty()) {
        auto a = Ipv4::parse(req.ipv4);
        if (!a) return std::move(a).error().wrap("ip");
        p.ipv4 = *a;
    }
    if (!req.ipv6.empty()) {
        auto a = Ipv6::parse(req.ipv6);
        if (!a) return std::move(a).error().wrap("ip6");
        if (!n.ipam6) {
            return Error::invalid(
                fmt::format("ip6: {} given, but network {} is IPv4 only", req.ipv6, n.net.name));
        }
        p.ipv6 = *a;
    }
    if (!req.mac.empty()) {
        auto m = Mac::parse(req.mac);
        if (!m) return std::move(m).error().wrap("mac");
        if (m->is_multicast() || m->is_zero())
            return Error::invalid(fmt::format("mac: {} is not a unicast address", req.mac));
        p.mac = *m;
    }
    if (!req.ifname.empty()) {
        if (auto v = validate_ifname(req.ifname); !v) return std::move(v).error().wrap("ifname");
    }
    if (!req.container_id.empty()) CNETD_TRY(validate_container_id(req.container_id));
    CNETD_TRY_ASSIGN(p.ports, port_requests(req));
    if (!p.ports.empty() && n.net.internal) {
        return Error::invalid(fmt::format(
            "publish: network {} is internal: nothing outside it can reach published ports",
            n.net.name));
    }
    p.name = req.name;
    if (p.name.empty()) {
        const std::string dir = opts_.netns_dir + "/";
        p.name = p.path.rfind(dir, 0) == 0 ? p.path.substr(dir.size()) : p.path;
    } else {
        CNETD_TRY(validate_name("name", p.name));
    }
    return p;
}

Result<void> Engine::check_target(const Net& n, const Netns& ns, const AttachPlan& p) {
    for (const NetnsId& host : kernel_.host_netns_ids()) {
        if (ns.id() == host) {
            return Error::invalid(fmt::format(
                "target: {} is the host's own network namespace (the daemon's or PID 1's); cnetd "
                "connects containers only: connecting the host would replace its default route",
                p.path));
        }
    }
    for (const auto& [id, ep] : n.net.endpoints) {
        if (ep.netns_id == ns.id()) {
            return Error::conflict(
                fmt::format("namespace {} is already connected as endpoint {}", p.path, ep.name));
        }
        if (ep.name == p.name)
            return Error::conflict(
                fmt::format("name: an endpoint named {} already exists", p.name));
    }
    if (n.net.endpoints.size() >= kAskPortsFrom) {
        CNETD_TRY_ASSIGN(unsigned ports, kernel_.bridge_port_count(n.net.bridge));
        if (ports >= kMaxBridgePorts) return bridge_full(n.net, ports);
    }
    return ok();
}

Result<void> Engine::allocate_addresses(Net& n, const AttachPlan& p, Endpoint& ep, Rollback& undo) {
    Ipv4 addr;
    if (p.ipv4) {
        auto a = n.ipam.allocate(*p.ipv4);
        if (!a) return std::move(a).error().wrap("ip");
        addr = *a;
    } else {
        CNETD_TRY_ASSIGN(addr, n.ipam.allocate());
    }
    undo.add([&n, addr] { n.ipam.release(addr); });
    ep.address = Ipv4Cidr(addr, n.net.subnet.prefix());
    if (!n.ipam6) return ok();
    Ipv6 addr6;
    if (p.ipv6) {
        auto a = n.ipam6->allocate(*p.ipv6);
        if (!a) return std::move(a).error().wrap("ip6");
        addr6 = *a;
    } else {
        CNETD_TRY_ASSIGN(addr6, n.ipam6->allocate());
    }
    undo.add([&n, addr6] { n.ipam6->release(addr6); });
    ep.address6 = Ipv6Cidr(addr6, n.net.subnet6->prefix());
    return ok();
}

Result<void> Engine::plan_ports(const Network& net, Endpoint& ep,
                                const std::vector<PortRequest>& reqs, Rollback& undo) {
    for (PortRequest req : reqs) {
        if (req.ipv6 && !net.subnet6) {
            return Error::invalid(fmt::format(
                "publish: IPv6 host address [{}] needs a dual-stack network; {} is IPv4 only",
                req.host_ip6 ? req.host_ip6->str() : "::", net.name));
        }
        if (req.ipv6 && req.host_ip6 && req.host_ip6->is_loopback() && req.proto == Proto::Sctp) {
            // docs/firewall.md: IPv6 has no route_localnet, so [::1] is served by the daemon's
            // userland relay (daemon/relay.hpp), which speaks tcp and udp only.
            return Error::invalid(fmt::format(
                "publish: [::1]:{}->{}/sctp: proto sctp cannot be published on [::1] (IPv6 "
                "loopback is relayed in userland, for tcp and udp only); publish sctp on [::], a "
                "host IPv6 address or 127.0.0.1",
                req.host.first == 0 ? std::string() : std::to_string(req.host.first),
                req.container.first));
        }
        // No address given: the network's host_binding_ipv4 / config `ip`; without one every
        // IPv4 address and, on dual-stack networks, every IPv6 address with the same port.
        bool dual = false;
        if (!req.ipv6 && !req.host_ip) {
            req.host_ip = net.host_binding;
            dual = !net.host_binding && net.subnet6.has_value();
        }
        CNETD_TRY_ASSIGN(auto bs, ports_.allocate(req, dual));
        undo.add([this, bs] {
            for (const auto& b : bs) ports_.release(b);
        });
        ep.ports.insert(ep.ports.end(), bs.begin(), bs.end());
    }
    return fw_.check_ports(forwards_of(net, ep)).context("publish ports");
}

// The one rule (docs/cni.md, "Host ports"): no hold for CNI attachments (endpoints with a
// container_id), because with CNI the runtime owns the host-port reservation: Podman binds every
// published port itself right after ADD, and a socket of ours makes that bind fail (no shared hold
// works for UDP, and a shared one reserves nothing). Conflicts with other mappings are still
// refused by the allocator. [::1] stays held: cnetd serves it itself, on that very socket
// (daemon/relay.hpp).
Result<std::unique_ptr<PortHold>> Engine::hold(const Endpoint& ep, const PortBinding& b) {
    const bool loopback6 = b.ipv6 && b.host_ip6 && b.host_ip6->is_loopback();
    if (!ep.container_id.empty() && !loopback6) return std::unique_ptr<PortHold>();
    return b.ipv6
               ? kernel_.hold_ports6(proto_number(b.proto), b.host_ip6, b.host.first, b.host.last)
               : kernel_.hold_ports(proto_number(b.proto), b.host_ip, b.host.first, b.host.last);
}

Result<void> Engine::hold_all(const Endpoint& ep, Rollback& undo) {
    std::vector<std::unique_ptr<PortHold>> holds;
    for (const auto& b : ep.ports) {
        CNETD_TRY_ASSIGN(auto h, hold(ep, b));
        holds.push_back(std::move(h));  // nullptr (kept, for alignment with ep.ports): not held
    }
    if (holds.empty()) return ok();
    holds_[ep.id] = std::move(holds);
    undo.add([this, id = ep.id] { holds_.erase(id); });
    return ok();
}

std::vector<GatewayCandidate> Engine::namespace_endpoints(NetnsId id) const {
    std::vector<const Network*> nets;
    nets.reserve(nets_.size());
    for (const auto& [nid, n] : nets_) nets.push_back(&n.net);
    return endpoints_in(nets, id);
}

Result<void> Engine::add_route(const Network& net, const Endpoint& ep, Netns& ns, IpFamily f) {
    return f == IpFamily::V4 ? ns.add_default_route(ep.ifname, net.gateway)
                             : ns.add_default_route6(ep.ifname, net.gateway6);
}

Result<void> Engine::take_default_routes(const Net& n, const Endpoint& ep, Netns& ns,
                                         Rollback& undo) {
    auto cands = namespace_endpoints(ns.id());
    cands.push_back({&n.net, &ep});
    for (IpFamily f : {IpFamily::V4, IpFamily::V6}) {
        auto winner = elect_gateway(cands, f);
        if (!winner || winner->ep != &ep) continue;  // another endpoint keeps the route
        // Replacing the namespace's route: remember it so the undo log can put it back.
        CNETD_TRY_ASSIGN(std::optional<DefaultRoute> prev, ns.default_route(f));
        CNETD_TRY(add_route(n.net, ep, ns, f));
        undo.add([&ns, f, ifname = ep.ifname, prev] {
            log_undo_failure(ns.delete_default_route(f, ifname, 0),
                             "delete default route dev " + ifname);
            if (prev)
                log_undo_failure(ns.put_default_route(f, *prev),
                                 "restore default route dev " + prev->ifname);
        });
    }
    return ok();
}

void Engine::hand_over_gateway(Netns& ns) {
    auto cands = namespace_endpoints(ns.id());
    for (IpFamily f : {IpFamily::V4, IpFamily::V6}) {
        auto winner = elect_gateway(cands, f);
        if (!winner) continue;
        // Replace: a no-op when the winner already carries it, the hand-over when the endpoint
        // that left did.
        if (auto r = add_route(*winner->net, *winner->ep, ns, f); !r.ok()) {
            log::warn("endpoint {}: default route: {}", winner->ep->name, r.error().message());
        }
    }
}

Result<Endpoint> Engine::connect(const ConnectRequest& req) {
    CNETD_TRY_ASSIGN(Net * n, lookup(req.network));
    auto r = attach(*n, req);
    if (!r.ok()) {
        return std::move(r).error().wrap(fmt::format("connect {} to {}", req.target, n->net.name));
    }
    return r;
}

Result<Endpoint> Engine::attach(Net& n, const ConnectRequest& req) {
    CNETD_TRY_ASSIGN(AttachPlan p, plan_attach(n, req));
    CNETD_TRY_ASSIGN(std::unique_ptr<Netns> ns, kernel_.open_netns(p.path));
    CNETD_TRY(check_target(n, *ns, p));

    Endpoint ep;  // declared before the undo log: its undo actions refer to it
    Rollback undo;
    ep.id = random_hex(64);
    ep.name = p.name;
    ep.netns_path = p.path;
    ep.netns_id = ns->id();
    ep.mac = p.mac ? *p.mac : Mac::random_local();
    ep.container_id = req.container_id;
    ep.gw_priority = req.gw_priority;
    CNETD_TRY(allocate_addresses(n, p, ep, undo));
    CNETD_TRY(plan_ports(n.net, ep, p.ports, undo));
    if (!req.ifname.empty()) {
        ep.ifname = req.ifname;
    } else {
        CNETD_TRY_ASSIGN(ep.ifname, ns->free_ifname(n.net.iface_prefix));
    }
    CNETD_TRY(hold_all(ep, undo));

    NetworkDriver& driver = driver_of(n.net);
    CNETD_TRY(driver.link(n.net, ep, *ns, undo));
    if (!n.net.internal) CNETD_TRY(take_default_routes(n, ep, *ns, undo));
    driver.announce(n.net, ep, *ns);
    CNETD_TRY(fw_.add_ports(forwards_of(n.net, ep)).context("publish ports"));
    undo.add([this, &n, &ep] {
        if (auto r = fw_.remove_ports(forwards_of(n.net, ep)); !r.ok())
            log::error("rollback: unpublish: {}", r.error().message());
    });

    n.net.endpoints.put(ep);
    if (auto saved = persist(); !saved.ok()) {
        n.net.endpoints.erase(ep.id);
        return std::move(saved).error().wrap("save state");
    }
    undo.commit();
    log::info("endpoint {} connected to {}: {}{} {} ({} in {})", ep.name, n.net.name,
              ep.address.str(), ep.address6 ? " " + ep.address6->str() : "", ep.mac.str(),
              ep.ifname, ep.netns_path);
    return ep;
}

}  // namespace cnetd::core
