// Engine::connect: one endpoint onto a network, all or nothing.
//
// Order (issue: a request that can be refused is refused before the kernel is touched):
//   1. plan_attach (core/attach_plan.hpp): parse and validate the whole request, ports and
//      families included (pure: no kernel, no state);
//   2. open the namespace and check it (not the host's, not connected yet, name free, bridge
//      not full), allocate addresses, then Publisher::reserve: host ports from the allocator and
//      the firewall's dry run, the one port check (memory only, undone on failure);
//   3. Publisher::hold: the host ports' sockets (another process holding one fails here, before
//      any link);
//   4. kernel: veth, sysctls, addresses, links up, default routes (core/gateway.hpp decides which
//      endpoint of the namespace carries them; a replaced route is put back by the undo log);
//   5. the embedded resolver's sandbox of the namespace, when this is its first endpoint on a
//      network with dns (Engine::ensure_dns, engine_dns.cpp);
//   6. Publisher::publish: firewall map elements, then record and persist; a failed save undoes
//      everything.
// One undo log (detail::Rollback) covers steps 2 to 6.
#include <algorithm>

#include "base/log.hpp"
#include "core/attach_plan.hpp"
#include "core/engine.hpp"
#include "core/engine_detail.hpp"
#include "core/gateway.hpp"

namespace cnetd::core {

namespace {

// An address from `pool`: the static one when `want` is set (errors framed `field`), else the
// next free one.
template <class Pool, class Addr>
Result<Addr> take_address(Pool& pool, const std::optional<Addr>& want, const char* field) {
    if (!want) return pool.allocate();
    auto a = pool.allocate(*want);
    if (!a) return std::move(a).error().wrap(field);
    return a;
}

}  // namespace

Result<void> Engine::check_target(const Net& n, const Netns& ns, const AttachPlan& p) {
    CNETD_TRY(check_namespace(n.net, ns.id(), kernel_.host_netns_ids(), p));
    return driver_of(n.net).check_capacity(n.net);
}

Result<void> Engine::allocate_addresses(Net& n, const AttachPlan& p, Endpoint& ep, Rollback& undo) {
    CNETD_TRY_ASSIGN(Ipv4 addr, take_address(n.ipam, p.ipv4, "ip"));
    undo.add([&n, addr] { n.ipam.release(addr); });
    ep.address = Ipv4Cidr(addr, n.net.subnet.prefix());
    if (!n.ipam6) return ok();
    CNETD_TRY_ASSIGN(Ipv6 addr6, take_address(*n.ipam6, p.ipv6, "ip6"));
    undo.add([&n, addr6] { n.ipam6->release(addr6); });
    ep.address6 = Ipv6Cidr(addr6, n.net.subnet6->prefix());
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
    CNETD_TRY_ASSIGN(AttachPlan p, plan_attach(n.net, req, opts_.netns_dir));
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
    ep.aliases = p.aliases;
    CNETD_TRY(allocate_addresses(n, p, ep, undo));
    CNETD_TRY(publisher_.reserve(n.net, ep, p.ports, undo));
    if (!req.ifname.empty()) {
        ep.ifname = req.ifname;
    } else {
        CNETD_TRY_ASSIGN(ep.ifname, ns->free_ifname(n.net.iface_prefix));
    }
    CNETD_TRY(publisher_.hold(ep, undo));

    NetworkDriver& driver = driver_of(n.net);
    CNETD_TRY(driver.link(n.net, ep, *ns, undo));
    if (!n.net.internal) CNETD_TRY(take_default_routes(n, ep, *ns, undo));
    driver.announce(n.net, ep, *ns);
    CNETD_TRY(ensure_dns(n, *ns, undo));  // 127.0.0.11 answers once connect returns
    CNETD_TRY(publisher_.publish(n.net, ep, undo));

    n.net.endpoints.put(ep);
    if (auto saved = persist(); !saved.ok()) {
        n.net.endpoints.erase(ep.id);
        return std::move(saved).error().wrap("save state");
    }
    undo.commit();
    log::info("endpoint {} connected to {}: {}{} {} ({} in {})", ep.name, n.net.name,
              ep.address.str(), ep.address6 ? fmt::format(" {}", ep.address6->str()) : "",
              ep.mac.str(), ep.ifname, ep.netns_path);
    return ep;
}

std::vector<LoopbackRelay> Engine::loopback_relays() const {
    std::vector<const Network*> nets;
    nets.reserve(nets_.size());
    for (const auto& [nid, n] : nets_) nets.push_back(&n.net);
    return publisher_.loopback_relays(nets);
}

}  // namespace cnetd::core
