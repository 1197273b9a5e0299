#include "daemon/events_diff.hpp"

#include <map>
#include <set>
#include <string>

namespace cnetd::daemon {
namespace {

Event network_event(const core::Network& n, const char* action) {
    Event e;
    e.type = "network";
    e.action = action;
    e.actor_id = n.id;
    e.attributes = {{"name", n.name}, {"type", n.driver}};
    e.scope = n.scope();
    return e;
}

Event endpoint_event(const core::Network& n, const core::Endpoint& ep, const char* action) {
    Event e = network_event(n, action);
    e.attributes["container"] = container_of(ep);
    return e;
}

Event port_event(const core::Network& n, const core::Endpoint& ep, const std::string& port,
                 const char* action) {
    Event e = endpoint_event(n, ep, action);
    e.type = "port";
    e.attributes["port"] = port;
    return e;
}

std::set<std::string> ports_of(const core::Endpoint& ep) {
    std::set<std::string> out;
    for (const auto& p : ep.ports) out.insert(p.str());
    return out;
}

// Events of the endpoints of `after` against the same network's `before` (null: a new network).
void endpoint_changes(const core::Network* before, const core::Network& after,
                      std::vector<Event>& adds, std::vector<Event>& removes) {
    if (before && before->endpoints.shares_with(after.endpoints)) return;
    for (auto it = after.endpoints.begin(); it != after.endpoints.end(); ++it) {
        const core::EndpointMap::Ptr old = before ? before->endpoints.ptr(it->first) : nullptr;
        if (old == it.ptr()) continue;
        const core::Endpoint& ep = it->second;
        const std::set<std::string> now = ports_of(ep);
        const std::set<std::string> was = old ? ports_of(*old) : std::set<std::string>{};
        if (!old) adds.push_back(endpoint_event(after, ep, "connect"));
        for (const auto& p : now)
            if (!was.count(p)) adds.push_back(port_event(after, ep, p, "publish"));
        for (const auto& p : was)
            if (!now.count(p)) removes.push_back(port_event(after, ep, p, "unpublish"));
    }
    if (!before) return;
    for (const auto& [id, ep] : before->endpoints) {
        if (after.endpoints.count(id)) continue;
        for (const auto& p : ports_of(ep))
            removes.push_back(port_event(*before, ep, p, "unpublish"));
        removes.push_back(endpoint_event(*before, ep, "disconnect"));
    }
}

}  // namespace

std::string container_of(const core::Endpoint& ep) {
    return ep.container_id.empty() ? ep.name : ep.container_id;
}

std::vector<Event> diff_snapshots(const Snapshot& before, const Snapshot& after) {
    std::map<std::string, const core::Network*> old, now;
    for (const auto& n : before.networks) old[n.id] = &n;
    for (const auto& n : after.networks) now[n.id] = &n;
    std::vector<Event> adds, removes;
    for (const auto& n : after.networks) {
        auto it = old.find(n.id);
        const core::Network* b = it == old.end() ? nullptr : it->second;
        if (!b) adds.push_back(network_event(n, "create"));
        endpoint_changes(b, n, adds, removes);
    }
    for (const auto& n : before.networks) {
        if (now.count(n.id)) continue;
        core::Network gone = n;
        gone.endpoints.clear();
        endpoint_changes(&n, gone, adds, removes);
        removes.push_back(network_event(n, "destroy"));
    }
    adds.insert(adds.end(), removes.begin(), removes.end());
    for (uint64_t r = before.firewall.repairs + 1; r <= after.firewall.repairs; ++r) {
        Event e;
        e.type = "firewall";
        e.action = "repair";
        e.actor_id = after.firewall.table;
        e.attributes = {{"table", after.firewall.table}, {"repairs", std::to_string(r)}};
        adds.push_back(std::move(e));
    }
    return adds;
}

void SnapshotEvents::on_publish(std::shared_ptr<const Snapshot> snap) {
    if (!snap) return;
    if (prev_ && prev_ != snap) {
        for (auto& e : diff_snapshots(*prev_, *snap)) log_.publish(std::move(e));
    }
    prev_ = std::move(snap);
}

}  // namespace cnetd::daemon
