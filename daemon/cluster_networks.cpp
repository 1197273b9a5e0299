// Per overlay network record (daemon/cluster_agent.hpp): lease a block, make the network here
// through the worker, keep its peers equal to the other nodes' blocks; a record gone from etcd:
// remove the network here (refused while it has local endpoints: kept, retried on later events).
// Nothing is done before the first list: the engine keeps what it has meanwhile.
#include <random>

#include "daemon/cluster_agent_impl.hpp"

namespace cnetd::daemon {
namespace {

std::size_t random_index(std::size_t n) {
    static thread_local std::mt19937 rng{std::random_device{}()};
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
}

}  // namespace

// A block of this node in the view that is not under its current lease (a restart after the
// lease was lost, or a list racing a put): put again under the lease, if it is still the same.
std::optional<Ipv4Cidr> ClusterAgent::Impl::adopt_block(const ViewBlock& b) {
    int64_t lease = 0;
    {
        std::lock_guard lk(mu);
        lease = lease_id;
    }
    if (b.kv.lease == lease) return b.block;
    if (lease == 0) return std::nullopt;
    etcd::Compare same{
        b.kv.key, etcd::Compare::Target::Mod, etcd::Compare::Result::Equal, b.kv.mod_revision, {}};
    etcd::TxnOp put{etcd::TxnOp::Kind::Put, b.kv.key, b.kv.value, lease, {}};
    auto t = kv.txn({same}, {put});
    if (!note(t) || !t->succeeded) return std::nullopt;
    etcd::KeyValue next = b.kv;
    next.lease = lease;
    next.mod_revision = t->revision;
    view_put(next);
    return b.block;
}

// flannel's acquire: the node's own block, else `previous` when free, else a random one of the
// first 100 free; created with txn "version == 0" under the node lease, up to 10 tries.
std::optional<Ipv4Cidr> ClusterAgent::Impl::acquire_block(const core::OverlayNetworkDef& def,
                                                          const Decoded& d,
                                                          std::optional<Ipv4Cidr> previous) {
    std::vector<ViewBlock> blocks;
    if (auto it = d.blocks.find(def.id); it != d.blocks.end()) blocks = it->second;
    int64_t lease = 0;
    {
        std::lock_guard lk(mu);
        lease = lease_id;
    }
    const cluster::BlockRecord rec{cfg.node_name, cfg.advertise_address,
                                   cluster::vtep_mac(cfg.node_name, def.id)};
    for (int attempt = 0; attempt < 10; ++attempt) {
        std::vector<Ipv4Cidr> taken;
        for (const auto& b : blocks) {
            if (b.rec.node == cfg.node_name && b.block.prefix() == int(def.block_prefix))
                return adopt_block(b);
            taken.push_back(b.block);
        }
        if (lease == 0) return std::nullopt;
        auto want = cluster::choose_block(def.subnet, def.block_prefix, taken, std::nullopt,
                                          previous, random_index);
        if (!want) {
            log_once(def.id, fmt::format("network {}: no free block of /{} left in {}", def.name,
                                         def.block_prefix, def.subnet.str()));
            return std::nullopt;
        }
        const std::string key = cluster::block_key(def.id, *want);
        etcd::Compare unused{
            key, etcd::Compare::Target::Version, etcd::Compare::Result::Equal, 0, {}};
        etcd::TxnOp put{etcd::TxnOp::Kind::Put, key, cluster::encode(rec), lease, {}};
        etcd::TxnOp read{etcd::TxnOp::Kind::Range, key, {}, 0, {}};
        auto t = kv.txn({unused}, {put}, {read});
        if (!note(t)) return std::nullopt;
        if (t->succeeded) {
            view_put(etcd::KeyValue{key, put.value, t->revision, t->revision, 1, lease});
            log::info("cluster: network {}: leased block {}", def.name, want->str());
            return want;
        }
        // Taken meanwhile: learn by whom and choose again.
        previous.reset();
        for (const auto& r : t->ranges)
            for (const auto& kvv : r.kvs)
                if (auto b = cluster::decode_block(key, kvv.value); b.ok())
                    blocks.push_back(ViewBlock{*want, *b, kvv});
    }
    log_once(def.id, fmt::format("network {}: no block after 10 tries", def.name));
    return std::nullopt;
}

void ClusterAgent::Impl::set_peers(const std::string& net_id, std::vector<core::OverlayPeer> want) {
    {
        std::lock_guard lk(mu);
        if (auto it = peers.find(net_id); it != peers.end() && it->second == want) return;
    }
    auto r =
        on_worker<void>([net_id, want](Backend& b) { return b.set_overlay_peers(net_id, want); });
    if (!r.ok()) {
        log_once(net_id,
                 fmt::format("network {}: peers: {}", net_id.substr(0, 12), r.error().message()));
        retry = true;
        return;
    }
    log::info("cluster: network {}: {} peer(s)", net_id.substr(0, 12), want.size());
    std::lock_guard lk(mu);
    peers[net_id] = std::move(want);
}

void ClusterAgent::Impl::reconcile_network(const core::OverlayNetworkDef& def, const Decoded& d,
                                           const Snapshot& snap) {
    std::optional<Ipv4Cidr> previous;
    for (const auto& n : snap.networks)
        if (n.id == def.id && n.overlay) previous = n.subnet.masked();
    auto block = acquire_block(def, d, previous);
    if (!block) {
        retry = true;
        if (!previous) return;  // not here yet: nothing to keep up
        block = previous;       // etcd away: keep the block we have (peers still follow)
    }
    if (auto it = made.find(def.id); it == made.end() || it->second != *block) {
        const core::OverlayLocal local{cfg.node_name, cfg.advertise_address, cfg.vxlan_port,
                                       *block};
        auto r = on_worker<core::Network>(
            [def, local](Backend& b) { return b.add_overlay_network(def, local); });
        std::lock_guard lk(mu);
        if (!r.ok()) {
            net_errors[def.id] = r.error().message();
            retry = true;
            log_once(def.id, fmt::format("network {}: {}", def.name, r.error().message()));
            return;
        }
        net_errors.erase(def.id);
        made[def.id] = *block;
    }
    std::vector<core::OverlayPeer> want;
    if (auto it = d.blocks.find(def.id); it != d.blocks.end())
        for (const auto& b : it->second)
            if (b.rec.node != cfg.node_name)
                want.push_back({b.rec.node, b.rec.underlay, b.block, b.rec.mac});
    std::sort(want.begin(), want.end());
    set_peers(def.id, std::move(want));
}

void ClusterAgent::Impl::remove_local(const core::Network& n) {
    const std::string id = n.id;
    auto r = on_worker<void>([id](Backend& b) { return b.remove_network(id); });
    if (!r.ok() && r.error().kind() != ErrorKind::NotFound) {
        // Retried on later events (a detach publishes a snapshot, which wakes the agent).
        log_once(id, fmt::format("network {} was removed from the cluster but stays here: {}",
                                 n.name, r.error().message()));
        return;
    }
    log::info("cluster: network {} removed (gone from the cluster)", n.name);
    forget_log(id);
    made.erase(id);
    std::lock_guard lk(mu);
    peers.erase(id);
    net_errors.erase(id);
}

void ClusterAgent::Impl::reconcile_networks(const Decoded& d) {
    {
        std::lock_guard lk(mu);
        if (!listed) return;
    }
    auto snap = snapshot();
    if (!snap) return;
    for (const auto& [id, def] : d.nets) reconcile_network(def, d, *snap);
    for (const auto& n : snap->networks)
        if (n.overlay && !d.nets.count(n.id)) remove_local(n);
}

}  // namespace cnetd::daemon
