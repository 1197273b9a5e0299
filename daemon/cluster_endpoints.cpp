// Names across nodes (daemon/cluster_agent.hpp): this node's endpoints on overlay networks are
// published under /cnetd/endpoints/<net id>/<node>/<endpoint id> (node lease) from the worker's
// snapshots, never on the attach path: the snapshot hook only wakes the agent, which puts and
// deletes the difference between the snapshot and the view. Left undone while etcd is away
// (status(): pending) and done when it answers again. The other nodes' records go to the DNS
// server, so their names resolve here.
//
// Networks without the resolver (enable_dns=false) need no names, only "this node has endpoints"
// (network rm is refused while any node has some): ONE record per node stands for all of them,
// kept as long as its endpoint lives, so an attach there writes nothing to etcd unless it is the
// node's first (and a detach only when it takes the representative away).
#include "daemon/cluster_agent_impl.hpp"

namespace cnetd::daemon {

namespace {

std::string record_of(const core::Endpoint& ep) {
    return cluster::encode(
        cluster::EndpointRecord{ep.name, ep.aliases, ep.address.addr(), ep.container_id});
}

}  // namespace

// key -> value of the records this node should have in etcd for network `n`.
void ClusterAgent::Impl::wanted_records(const core::Network& n, const Decoded& d,
                                        std::map<std::string, std::string>& want) const {
    if (n.endpoints.empty()) return;
    if (n.dns) {
        for (const auto& [id, ep] : n.endpoints)
            want[cluster::endpoint_key(n.id, cfg.node_name, id)] = record_of(ep);
        return;
    }
    // IP-only: the representative already published while its endpoint lives, else the first.
    for (const auto& e : d.endpoints)
        if (e.node == cfg.node_name && e.net_id == n.id && n.endpoints.count(e.ep_id)) {
            want[e.kv.key] = record_of(n.endpoints.at(e.ep_id));
            return;
        }
    const auto& [id, ep] = *n.endpoints.begin();
    want[cluster::endpoint_key(n.id, cfg.node_name, id)] = record_of(ep);
}

void ClusterAgent::Impl::publish_endpoints(const Decoded& d) {
    std::map<std::string, std::string> want;  // key -> value
    if (auto snap = snapshot())
        for (const auto& n : snap->networks)
            if (n.overlay && d.nets.count(n.id)) wanted_records(n, d, want);
    int64_t lease = 0;
    bool ready = false;
    {
        std::lock_guard lk(mu);
        lease = lease_id;
        ready = listed && lease != 0;
    }
    std::map<std::string, std::string> extra;  // published, no longer wanted
    for (const auto& e : d.endpoints) {
        if (e.node != cfg.node_name) continue;
        auto it = want.find(e.kv.key);
        if (it == want.end())
            extra[e.kv.key] = e.kv.value;
        else if (it->second == e.kv.value && e.kv.lease == lease)
            want.erase(it);  // already there
    }
    std::size_t left = want.size() + extra.size();
    bool go = ready;  // false from the first failure on: the rest waits for the next pass
    for (auto it = want.begin(); go && it != want.end(); ++it) {
        auto put = kv.put(it->first, it->second, lease);
        if (!(go = note(put))) break;
        view_put(etcd::KeyValue{it->first, it->second, *put, *put, 1, lease});
        --left;
    }
    for (auto it = extra.begin(); go && it != extra.end(); ++it) {
        auto del = kv.delete_range(it->first);
        if (!(go = note(del))) break;
        view_erase(it->first);
        --left;
    }
    if (left != 0) retry = true;
    std::lock_guard lk(mu);
    pending = left;
}

// The DNS server gets the other nodes' endpoints per network id when they change.
void ClusterAgent::Impl::sync_remote_names(const Decoded& d) {
    if (!dns) return;
    std::map<std::string, std::vector<core::Endpoint>> by_net;
    std::string sig;
    for (const auto& e : d.endpoints) {
        if (e.node == cfg.node_name || !d.nets.count(e.net_id)) continue;
        if (!d.nets.at(e.net_id).dns) continue;  // IP-only: a presence record, not a name
        core::Endpoint ep;
        ep.id = e.ep_id;
        ep.name = e.rec.name;
        ep.aliases = e.rec.aliases;
        ep.address = Ipv4Cidr(e.rec.address, 32);
        ep.container_id = e.rec.container_id;
        by_net[e.net_id].push_back(std::move(ep));
        sig += e.kv.key + "=" + e.kv.value + "\n";
    }
    if (sig == remote_sig) return;
    remote_sig = std::move(sig);
    dns->set_remote_endpoints(std::move(by_net));
}

}  // namespace cnetd::daemon
