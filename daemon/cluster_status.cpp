// nodes() and status() (daemon/cluster_agent.hpp): read from the agent's view and fields only,
// never a round trip to etcd, so `netctl node ls` and `netctl info` answer while etcd is away.
#include "daemon/cluster_agent_impl.hpp"

namespace cnetd::daemon {

std::vector<NodeStatus> ClusterAgent::nodes() const {
    const Decoded d = impl_->decoded();
    std::map<std::string, NodeStatus> out;
    for (const auto& [name, rec] : d.nodes) {
        NodeStatus& s = out[name];
        s.name = name;
        s.address = rec.first.address.str();
        s.last_seen = rec.first.last_seen;
    }
    for (const auto& [net_id, blocks] : d.blocks) {
        auto net = d.nets.find(net_id);
        if (net == d.nets.end()) continue;
        for (const auto& b : blocks) {
            NodeStatus& s = out[b.rec.node];
            s.name = b.rec.node;
            if (s.address.empty()) s.address = b.rec.underlay.str();
            s.blocks.push_back(net->second.name + " " + b.block.str());
        }
    }
    const std::string& self = impl_->cfg.node_name;
    std::lock_guard lk(impl_->mu);
    for (auto& [name, s] : out) {
        s.self = name == self;
        if (s.self) {
            s.ttl_left = impl_->lease_left();
        } else if (auto it = impl_->node_ttls.find(name); it != impl_->node_ttls.end()) {
            const auto gone =
                std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - it->second.seen);
            s.ttl_left =
                it->second.ttl < 0 ? -1 : std::max<int64_t>(0, it->second.ttl - gone.count());
        }
        std::sort(s.blocks.begin(), s.blocks.end());
    }
    std::vector<NodeStatus> v;
    for (auto& [name, s] : out) v.push_back(std::move(s));
    return v;
}

ClusterStatus ClusterAgent::status() const {
    ClusterStatus s;
    s.node = impl_->cfg.node_name;
    s.advertise_address = impl_->cfg.advertise_address.str();
    s.etcd = impl_->cfg.etcd;
    const Decoded d = impl_->decoded();
    s.networks = d.nets.size();
    std::lock_guard lk(impl_->mu);
    s.etcd_reachable = impl_->reachable;
    s.etcd_error = impl_->reachable ? "" : impl_->etcd_error;
    s.unreachable_since = impl_->reachable ? "" : impl_->unreachable_since;
    s.lease_id = impl_->lease_id;
    s.lease_ttl_left = impl_->lease_left();
    s.pending = impl_->pending;
    for (const auto& [id, p] : impl_->peers) s.peers += p.size();
    return s;
}

}  // namespace cnetd::daemon
