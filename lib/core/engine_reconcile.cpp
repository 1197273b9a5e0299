// Reconciliation at start and netns garbage collection (owner: persist). See engine.hpp.
//
// Why here and not in engine.cpp: these walk persisted endpoints against the kernel and share the
// "forget an endpoint whose namespace died" step; attach/detach stay in engine.cpp.
#include <cerrno>
#include <regex>
#include <set>

#include "base/log.hpp"
#include "core/engine.hpp"

namespace cnetd::core {

namespace {

// Veth names the engine gives host sides: "veth" + 7 hex characters.
bool is_our_veth_name(const std::string& n) {
    if (n.size() != 11 || n.rfind("veth", 0) != 0) return false;
    return n.find_first_not_of("0123456789abcdef", 4) == std::string::npos;
}

void log_failure(const Result<void>& r, std::string_view what) {
    if (!r.ok()) log::error("{}: {}", what, r.error().message());
}

}  // namespace

Engine::NetnsFate Engine::netns_fate(const Endpoint& ep, std::unique_ptr<Netns>* out) {
    auto ns = kernel_.open_netns(ep.netns_path);
    if (!ns.ok()) {
        const Error& e = ns.error();
        // Missing file, or a file that is no longer a namespace (unmounted): gone for good.
        if (e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::InvalidArgument ||
            e.error_number() == ENOENT || e.error_number() == ESRCH) {
            return NetnsFate::Gone;
        }
        log::warn("endpoint {}: cannot check namespace {}: {}", ep.name, ep.netns_path,
                  e.message());
        return NetnsFate::Unknown;
    }
    // The same path may now hold a new namespace (a container restarted under the same name).
    if ((*ns)->id() != ep.netns_id) return NetnsFate::Gone;
    if (out) *out = std::move(ns).value();
    return NetnsFate::Alive;
}

Result<void> Engine::repair_endpoint(const std::string& net_id, const std::string& ep_id,
                                     Netns& ns) {
    Net& n = nets_.at(net_id);
    const Endpoint& ep = n.net.endpoints.at(ep_id);
    const Network& net = n.net;
    // Only the namespace's elected endpoint carries each default route (core/gateway.hpp).
    const auto cands = namespace_endpoints(ep.netns_id);
    auto carries = [&](IpFamily f) {
        auto w = elect_gateway(cands, f);
        return w && w->ep->id == ep.id;
    };
    const bool route4 = carries(IpFamily::V4);
    const bool route6 = carries(IpFamily::V6);

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
    if (!host) {
        // A fresh attach with the same names, MAC and addresses (a crash between deleting the
        // veth and saving a disconnect, or someone deleted it by hand).
        log::warn("endpoint {}: veth {} is gone; recreating it ({} in {})", ep.name, ep.host_ifname,
                  ep.ifname, ep.netns_path);
        CNETD_TRY(
            kernel_.create_veth({ep.host_ifname, net.bridge, ep.ifname, ep.mac, net.mtu}, ns));
        auto steps = [&]() -> Result<void> {
            if (ep.address6) {
                CNETD_TRY(ns.enable_ipv6(ep.ifname));
            } else {
                CNETD_TRY(ns.disable_ipv6(ep.ifname));
            }
            CNETD_TRY(ns.add_address(ep.ifname, ep.address));
            if (ep.address6) CNETD_TRY(ns.add_address6(ep.ifname, *ep.address6));
            CNETD_TRY(ns.set_up(ep.ifname));
            CNETD_TRY(kernel_.set_up(ep.host_ifname));
            if (route4) CNETD_TRY(ns.add_default_route(ep.ifname, net.gateway));
            if (route6) CNETD_TRY(ns.add_default_route6(ep.ifname, net.gateway6));
            return ok();
        };
        if (auto r = steps(); !r.ok()) {
            log_failure(kernel_.delete_link(ep.host_ifname), "delete veth " + ep.host_ifname);
            return r;
        }
        if (auto a = ns.announce(ep.ifname, ep.mac, ep.address.addr(),
                                 ep.address6 ? std::optional(ep.address6->addr()) : std::nullopt);
            !a.ok()) {
            log::debug("endpoint {}: announce: {}", ep.name, a.error().message());
        }
        return ok();
    }
    // Both sides exist: fix drift in place, one step per difference.
    if (host->master != net.bridge) {
        log::warn("endpoint {}: veth {} is enslaved to \"{}\", not {}; re-enslaving", ep.name,
                  ep.host_ifname, host->master, net.bridge);
        CNETD_TRY(kernel_.set_master(ep.host_ifname, net.bridge));
    }
    if (!host->up) {
        log::warn("endpoint {}: veth {} was down; setting it up", ep.name, ep.host_ifname);
        CNETD_TRY(kernel_.set_up(ep.host_ifname));
    }
    auto has4 = [&](const Ipv4Cidr& a) {
        return std::find(peer->addresses4.begin(), peer->addresses4.end(), a) !=
               peer->addresses4.end();
    };
    auto has6 = [&](const Ipv6Cidr& a) {
        return std::find(peer->addresses6.begin(), peer->addresses6.end(), a) !=
               peer->addresses6.end();
    };
    if (!has4(ep.address)) {
        log::warn("endpoint {}: address {} missing on {}; re-adding it", ep.name, ep.address.str(),
                  ep.ifname);
        CNETD_TRY(ns.add_address(ep.ifname, ep.address));
    }
    if (ep.address6 && !has6(*ep.address6)) {
        log::warn("endpoint {}: address {} missing on {}; re-adding it", ep.name,
                  ep.address6->str(), ep.ifname);
        CNETD_TRY(ns.enable_ipv6(ep.ifname));
        CNETD_TRY(ns.add_address6(ep.ifname, *ep.address6));
    }
    if (!peer->up) {
        log::warn("endpoint {}: {} was down in {}; setting it up", ep.name, ep.ifname,
                  ep.netns_path);
        CNETD_TRY(ns.set_up(ep.ifname));
    }
    // Routes go when the link goes down or the address is removed: check after the fixes above.
    if (route4 && peer->default_gateway4 != net.gateway) {
        log::warn("endpoint {}: default route via {} missing in {}; re-adding it", ep.name,
                  net.gateway.str(), ep.netns_path);
        CNETD_TRY(ns.add_default_route(ep.ifname, net.gateway));
    }
    if (route6 && peer->default_gateway6 != net.gateway6) {
        log::warn("endpoint {}: IPv6 default route via {} missing in {}; re-adding it", ep.name,
                  net.gateway6.str(), ep.netns_path);
        CNETD_TRY(ns.add_default_route6(ep.ifname, net.gateway6));
    }
    return ok();
}

bool Engine::reconcile_endpoints() {
    bool changed = false;
    std::vector<std::pair<std::string, std::string>> all;
    for (const auto& [nid, n] : nets_)
        for (const auto& [eid, ep] : n.net.endpoints) all.emplace_back(nid, eid);
    for (const auto& [nid, eid] : all) {
        const Endpoint& ep = nets_.at(nid).net.endpoints.at(eid);
        std::unique_ptr<Netns> ns;
        switch (netns_fate(ep, &ns)) {
            case NetnsFate::Gone: {
                // Saved once by start() after this walk; the full firewall sync follows.
                const std::string why = fmt::format("namespace {} is gone", ep.netns_path);
                const std::string what = "endpoint " + ep.name;  // `ep` goes with the detach
                log_failure(detach_endpoints({{nid, eid}}, why, {.save = false, .firewall = false}),
                            what);
                changed = true;
                break;
            }
            case NetnsFate::Unknown:
                break;  // logged; checked again by the next GC sweep
            case NetnsFate::Alive:
                if (auto r = repair_endpoint(nid, eid, *ns); !r.ok()) {
                    log::error("endpoint {}: repair failed, left as is: {}", ep.name,
                               r.error().message());
                    break;
                }
                // A crash may have come between a reuse of this address and the forgetting of
                // the previous owner's MAC (or a repair recreated the pair, whose announce the
                // bridge may drop): resolve every endpoint afresh.
                log_failure(kernel_.forget_neighbours(
                                nets_.at(nid).net.bridge, ep.address.addr(),
                                ep.address6 ? std::optional(ep.address6->addr()) : std::nullopt),
                            "endpoint " + ep.name);
                break;
        }
    }
    // Leftovers of an interrupted connect (veth made, state never saved): ours by name, on our
    // bridge, owned by no endpoint.
    for (const auto& [nid, n] : nets_) {
        auto veths = kernel_.bridge_veths(n.net.bridge);
        if (!veths.ok()) {
            log::warn("network {}: list ports of {}: {}", n.net.name, n.net.bridge,
                      veths.error().message());
            continue;
        }
        std::set<std::string> owned;
        for (const auto& [eid, ep] : n.net.endpoints) owned.insert(ep.host_ifname);
        for (const auto& v : *veths) {
            if (owned.count(v) || !is_our_veth_name(v)) continue;
            log::warn(
                "network {}: veth {} on {} belongs to no endpoint (an interrupted connect); "
                "deleting it",
                n.net.name, v, n.net.bridge);
            log_failure(kernel_.delete_link(v), "delete veth " + v);
        }
    }
    return changed;
}

Result<std::vector<std::string>> Engine::collect_garbage() {
    std::vector<std::pair<std::string, std::string>> dead;
    for (const auto& [nid, n] : nets_) {
        for (const auto& [eid, ep] : n.net.endpoints) {
            if (netns_fate(ep, nullptr) == NetnsFate::Gone) dead.emplace_back(nid, eid);
        }
    }
    std::vector<std::string> removed;
    if (dead.empty()) return removed;
    for (const auto& [nid, eid] : dead) {
        const Network& net = nets_.at(nid).net;
        const Endpoint& ep = net.endpoints.at(eid);
        removed.push_back(net.name + "/" + ep.name);
        log::warn("endpoint {} on network {}: namespace {} disappeared", ep.name, net.name,
                  ep.netns_path);
    }
    // One save for all; a failed one keeps them all (the next sweep tries again).
    CNETD_TRY(detach_endpoints(dead, "its namespace disappeared", {})
                  .context("garbage collection: save state"));
    return removed;
}

}  // namespace cnetd::core
