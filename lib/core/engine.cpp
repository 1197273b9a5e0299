#include "core/engine.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "base/failpoint.hpp"
#include "base/log.hpp"
#include "base/validate.hpp"
#include "core/attach_plan.hpp"
#include "core/bridge_driver.hpp"
#include "core/engine_detail.hpp"
#include "core/overlay_driver.hpp"

namespace cnetd::core {

namespace detail {

Result<void> validate_name(std::string_view field, const std::string& name) {
    if (name.empty()) return Error::invalid(fmt::format("{}: must not be empty", field));
    if (name.size() > 128) {
        return Error::invalid(fmt::format("{}: \"{}\" is longer than 128 characters", field, name));
    }
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    bool good = alnum(name[0]);
    for (char c : name) good = good && (alnum(c) || c == '_' || c == '.' || c == '-');
    if (!good) {
        return Error::invalid(fmt::format(
            "{}: \"{}\" is invalid (allowed: [a-zA-Z0-9][a-zA-Z0-9_.-]*)", field, name));
    }
    return ok();
}

int proto_number(Proto p) {
    switch (p) {
        case Proto::Tcp:
            return 6;
        case Proto::Udp:
            return 17;
        case Proto::Sctp:
            return 132;
    }
    return 6;
}

}  // namespace detail

Engine::Engine(Kernel& kernel, firewall::Backend& fw, StateStore& store, EngineOptions opts)
    : kernel_(kernel), fw_(fw), store_(store), opts_(std::move(opts)), publisher_(kernel, fw) {
    // The one place drivers are registered: a new driver is one more line here.
    auto bridge = std::make_unique<BridgeDriver>(kernel_);
    drivers_.emplace(std::string(bridge->name()), std::move(bridge));
    auto overlay = std::make_unique<OverlayDriver>(kernel_);
    drivers_.emplace(std::string(overlay->name()), std::move(overlay));
}

Result<NetworkDriver*> Engine::driver_for(std::string_view field, const std::string& name) {
    if (auto it = drivers_.find(name); it != drivers_.end()) return it->second.get();
    std::string known;
    for (const auto& [k, d] : drivers_) known += (known.empty() ? "" : ", ") + k;
    return Error::invalid(
        fmt::format("{}: \"{}\" is not a network driver (known: {})", field, name, known));
}

NetworkDriver& Engine::driver_of(const Network& n) {
    return *drivers_.at(n.driver);
}

PlanInputs Engine::plan_inputs() const {
    PlanInputs in;
    for (const auto& [id, n] : nets_) in.existing.push_back(&n.net);
    in.pools = opts_.pools;
    in.pools6 = opts_.pools6;
    in.ula48 = opts_.ula48;
    in.host_binding = opts_.host_binding;
    return in;
}

Engine::Net* Engine::default_net() {
    for (auto& [id, n] : nets_)
        if (n.net.is_default) return &n;
    return nullptr;
}

std::vector<Network> Engine::networks() const {
    std::vector<Network> out;
    out.reserve(nets_.size());
    for (const auto& [id, n] : nets_) out.push_back(n.net);
    std::sort(out.begin(), out.end(),
              [](const Network& a, const Network& b) { return a.name < b.name; });
    return out;
}

Result<const Network*> Engine::find_network(const std::string& key) const {
    const Network* prefix_match = nullptr;
    int prefix_matches = 0;
    for (const auto& [id, n] : nets_) {
        if (n.net.name == key || id == key) return &n.net;
        if (!key.empty() && id.compare(0, key.size(), key) == 0) {
            prefix_match = &n.net;
            ++prefix_matches;
        }
    }
    if (prefix_matches == 1) return prefix_match;
    if (prefix_matches > 1) {
        return Error::invalid(fmt::format("network id prefix \"{}\" is ambiguous", key));
    }
    return Error::not_found(fmt::format("network {} not found", key));
}

Result<Engine::Net*> Engine::lookup(const std::string& key) {
    CNETD_TRY_ASSIGN(const Network* n, find_network(key));
    return &nets_.at(n->id);
}

Result<void> Engine::persist() {
    return store_.save(networks());
}

Result<void> Engine::sync_firewall() {
    std::vector<firewall::NetworkRules> rules;
    std::vector<firewall::PortForward> forwards;
    for (const auto& [id, n] : nets_) {
        rules.push_back(driver_of(n.net).rules(n.net));
        for (const auto& [eid, ep] : n.net.endpoints) {
            auto f = Publisher::forwards_of(n.net, ep);
            forwards.insert(forwards.end(), f.begin(), f.end());
        }
    }
    return fw_.sync(rules, forwards);
}

Result<Engine::Net> Engine::make_net(Network n) {
    Ipam ipam(n.subnet, n.gateway, n.ip_range);
    std::optional<Ipam6> ipam6;
    if (n.subnet6) ipam6.emplace(*n.subnet6, n.gateway6, n.ip_range6);
    const std::string frame = fmt::format("network {}", n.name);
    for (const auto& [name, text] : n.aux_addresses) {
        if (auto a4 = Ipv4::parse(text); a4.ok()) {
            (void)ipam.allocate(*a4);
        } else if (auto a6 = Ipv6::parse(text); a6.ok() && ipam6) {
            (void)ipam6->allocate(*a6);
        }
    }
    for (const auto& [eid, ep] : n.endpoints) {
        if (auto r = ipam.allocate(ep.address.addr()); !r.ok()) {
            return Error::internal(
                fmt::format("{} endpoint {}: {}", frame, ep.name, r.error().message()));
        }
        if (ep.address6) {
            if (!ipam6) {
                return Error::internal(
                    fmt::format("{} endpoint {}: IPv6 address {} on an IPv4-only "
                                "network",
                                frame, ep.name, ep.address6->str()));
            }
            if (auto r = ipam6->allocate(ep.address6->addr()); !r.ok()) {
                return Error::internal(
                    fmt::format("{} endpoint {}: {}", frame, ep.name, r.error().message()));
            }
        }
    }
    return Net{std::move(n), std::move(ipam), std::move(ipam6)};
}

unsigned Engine::default_mtu() {
    if (opts_.mtu != 0) return opts_.mtu;
    auto m = kernel_.default_route_mtu();
    if (m.ok() && m->has_value() && **m >= 68) return **m;
    if (!m.ok())
        log::warn("mtu: cannot read the default route's MTU, using 1500: {}", m.error().message());
    return 1500;
}

Result<void> Engine::enable_ip6_forwarding() {
    if (!ip_forward_) return ok();
    return kernel_.write_sysctl("net/ipv6/conf/all/forwarding", "1")
        .context("enable IPv6 forwarding");
}

// ---------------------------------------------------------------------------------------------
// endpoints

Result<std::string> Engine::resolve_target(const std::string& target) const {
    return resolve_netns_target(opts_.netns_dir, target);
}

Result<void> Engine::disconnect(const std::string& network, const std::string& target) {
    CNETD_TRY_ASSIGN(Net * n, lookup(network));
    const auto frame = fmt::format("disconnect {} from {}", target, n->net.name);
    auto id = find_target(*n, target);
    if (!id) return std::move(id).error().wrap(frame);
    return detach_endpoints({{n->net.id, *id}}, "disconnected", {}).context(frame);
}

Result<std::string> Engine::find_target(const Net& n, const std::string& target) {
    CNETD_TRY_ASSIGN(std::string path, resolve_target(target));
    std::optional<NetnsId> id;
    if (auto o = kernel_.open_netns(path); o.ok()) id = (*o)->id();
    // One endpoint per namespace (attach refuses a second), but several records may share a path
    // (the namespace there was replaced): identity, when the path opens, says which one is meant.
    const Endpoint* by_id = nullptr;
    const Endpoint* by_name = nullptr;
    std::vector<const Endpoint*> by_path;
    for (const auto& [eid, ep] : n.net.endpoints) {
        if (id && ep.netns_id == *id) by_id = &ep;
        if (ep.netns_path == path) by_path.push_back(&ep);
        // A path never names an endpoint: names cannot contain '/'.
        if (target[0] != '/' && ep.name == target) by_name = &ep;
    }
    std::vector<const Endpoint*> found = by_id ? std::vector{by_id} : by_path;
    if (by_name && std::find(found.begin(), found.end(), by_name) == found.end())
        found.push_back(by_name);
    if (found.empty()) {
        return Error::not_found(fmt::format("no such endpoint on network {}", n.net.name));
    }
    if (found.size() > 1) {
        std::string list;
        for (const Endpoint* ep : found)
            list += fmt::format("{}endpoint {} (netns {})", list.empty() ? "" : ", ", ep->name,
                                ep->netns_path);
        return Error::conflict(fmt::format(
            "target \"{}\" is ambiguous on network {}: it matches {}; give the namespace's path",
            target, n.net.name, list));
    }
    return found[0]->id;
}

Result<void> Engine::detach_endpoints(const std::vector<EndpointRef>& victims, std::string_view why,
                                      DetachHow how) {
    // (a) Write-ahead: out of the state first. A crash from here on finds them gone at the next
    // start, which deletes their orphan veths; the other order brought a removed endpoint back.
    std::vector<std::pair<Net*, EndpointMap::Ptr>> gone;
    for (const auto& [nid, eid] : victims) {
        auto it = nets_.find(nid);
        EndpointMap::Ptr ep = it == nets_.end() ? nullptr : it->second.net.endpoints.ptr(eid);
        if (!ep) continue;
        it->second.net.endpoints.erase(eid);
        gone.emplace_back(&it->second, std::move(ep));
    }
    if (how.save && !gone.empty()) {
        if (auto saved = persist(); !saved.ok()) {
            for (auto& [n, ep] : gone) n->net.endpoints.put(ep);  // as if never asked
            return std::move(saved).error().wrap("save state");
        }
    }
    failpoint::hit("engine.detach.saved");
    // (b) The kernel side.
    for (const auto& [n, ep] : gone) teardown_endpoint(*n, *ep, why, how.firewall);
    return ok();
}

void Engine::teardown_endpoint(Net& n, const Endpoint& ep, std::string_view why, bool firewall) {
    // The container side only in the very namespace the endpoint was made in (a path may now
    // name another one, whose interfaces are not ours).
    std::unique_ptr<Netns> ns;
    if (auto o = kernel_.open_netns(ep.netns_path); o.ok() && (*o)->id() == ep.netns_id)
        ns = std::move(o).value();
    // Out of service now (the container loses the interface, with its address and route).
    auto retired = driver_of(n.net).unlink(n.net, ep, ns.get());
    publisher_.unpublish(n.net, ep, firewall);  // map elements (with `firewall`), holds, ports
    // `ep` has left the state already: the namespace's default routes go to the endpoints the
    // rule picks now (core/gateway.hpp), e.g. from the one that left to the next in line.
    if (ns) hand_over_gateway(*ns);
    release_dns(ep.netns_id, ns.get());  // the namespace's last dns endpoint closes its resolver
    if (!retired.ok()) {
        // The pair may still carry the addresses: keep them reserved until the next start.
        log::error(
            "endpoint {} on network {} removed ({}), but its veth {} could not be: {}; "
            "the next start deletes it and frees {}",
            ep.name, n.net.name, why, ep.host_ifname, retired.error().message(), ep.address.str());
        return;
    }
    n.ipam.release(ep.address.addr());
    if (ep.address6 && n.ipam6) n.ipam6->release(ep.address6->addr());
    log::info("endpoint {} removed from {} ({}): released {}{}{}", ep.name, n.net.name, why,
              ep.address.str(), ep.address6 ? fmt::format(" {}", ep.address6->str()) : "",
              ep.ports.empty() ? "" : fmt::format(", {} port mapping(s)", ep.ports.size()));
}

}  // namespace cnetd::core
