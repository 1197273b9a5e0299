// The API's calls (daemon/cluster_agent.hpp): create_network and remove_network. They talk to
// etcd on the caller's thread through their own client (api_mu: one at a time), then wait for
// the agent thread to make or remove the network here, as on every other node.
#include <algorithm>
#include <set>

#include "daemon/cluster_agent_impl.hpp"

namespace cnetd::daemon {
namespace {

constexpr uint32_t kFirstVni = 4096;

Error unavailable(const Error& e) {
    if (e.kind() == ErrorKind::Unavailable)
        return Error(ErrorKind::Unavailable,
                     fmt::format("the cluster's etcd cannot be reached: {}", e.message()));
    return e;
}

// Conflict when `def` cannot join the networks recorded in etcd (name in use, subnets overlap).
Result<void> check_free(const core::OverlayNetworkDef& def, const etcd::RangeResult& nets) {
    for (const auto& kvv : nets.kvs) {
        auto other = cluster::decode_network(kvv.key, kvv.value);
        if (!other.ok()) continue;
        if (other->name == def.name)
            return Error::conflict(
                fmt::format("network name \"{}\" is in use in the cluster", def.name));
        if (other->subnet.overlaps(def.subnet))
            return Error::conflict(
                fmt::format("subnet {} overlaps overlay network \"{}\" ({}) in the cluster",
                            def.subnet.str(), other->name, other->subnet.str()));
    }
    return ok();
}

uint32_t lowest_free_vni(const etcd::RangeResult& vnis) {
    std::set<uint32_t> used;
    for (const auto& kvv : vnis.kvs) {
        auto k = cluster::parse_key(kvv.key);
        if (k.kind == cluster::ParsedKey::Kind::Vni) used.insert(k.vni);
    }
    uint32_t v = kFirstVni;
    while (used.count(v)) ++v;
    return v;
}

}  // namespace

Result<core::Network> ClusterAgent::create_network(const core::CreateNetworkRequest& req,
                                                   std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    auto planned = impl_->on_worker<core::OverlayNetworkDef>(
        [req](Backend& b) { return b.plan_overlay_network(req); });
    if (!planned) return planned.error();
    core::OverlayNetworkDef def = std::move(planned).value();
    const std::string key = cluster::network_key(def.name);
    {
        std::lock_guard api_lk(impl_->api_mu);
        bool written = false;
        for (int attempt = 0; attempt < 10 && !written; ++attempt) {
            auto nets = impl_->api.range_prefix(std::string(cluster::kPrefix) + "networks/");
            if (!impl_->note(nets)) return unavailable(nets.error());
            if (auto r = check_free(def, *nets); !r) return r.error();
            auto vnis = impl_->api.range_prefix(std::string(cluster::kPrefix) + "vni/");
            if (!impl_->note(vnis)) return unavailable(vnis.error());
            def.vni = lowest_free_vni(*vnis);
            using C = etcd::Compare;
            const std::vector<C> unused = {
                {key, C::Target::Version, C::Result::Equal, 0, {}},
                {cluster::vni_key(def.vni), C::Target::Version, C::Result::Equal, 0, {}}};
            const std::vector<etcd::TxnOp> puts = {
                {etcd::TxnOp::Kind::Put, key, cluster::encode(def), 0, {}},
                {etcd::TxnOp::Kind::Put, cluster::vni_key(def.vni), def.id, 0, {}}};
            auto t = impl_->api.txn(unused, puts);
            if (!impl_->note(t)) return unavailable(t.error());
            if ((written = t->succeeded))
                impl_->view_put(etcd::KeyValue{key, puts[0].value, t->revision, t->revision, 1, 0});
        }
        if (!written)
            return Error::conflict(
                fmt::format("network {}: the cluster changed under 10 tries "
                            "in a row; try again",
                            def.name));
    }
    log::info("cluster: network {} created (subnet {}, blocks /{}, VNI {})", def.name,
              def.subnet.str(), def.block_prefix, def.vni);
    impl_->wake_up();
    // Made here by the agent thread, like on every other node.
    return impl_->wait_local(def.id, deadline, true, def.name);
}

// Waits until this node has (`present`) or no longer has the network `id`. Snapshots are read
// without `mu` held (the worker's snapshot hook takes `mu` through notify()).
Result<core::Network> ClusterAgent::Impl::wait_local(const std::string& id,
                                                     Clock::time_point deadline, bool present,
                                                     const std::string& name) {
    for (;;) {
        std::optional<core::Network> found;
        if (auto snap = snapshot())
            for (const auto& n : snap->networks)
                if (n.id == id) found = n;
        if (present && found) return *found;
        if (!present && !found) return core::Network{};
        std::unique_lock lk(mu);
        if (auto it = net_errors.find(id); it != net_errors.end())
            return Error(ErrorKind::Unavailable,
                         fmt::format("network {}: done in the cluster, not on this node: {}", name,
                                     it->second));
        if (Clock::now() >= deadline)
            return Error(ErrorKind::Unavailable,
                         fmt::format("network {}: done in the cluster; this node has not caught "
                                     "up yet",
                                     name));
        cv.wait_until(lk, std::min(deadline, Clock::now() + std::chrono::milliseconds(50)));
    }
}

// Conflict naming every node with endpoints on `def` (etcd's records and this node's own).
Result<void> ClusterAgent::Impl::check_unused(const core::OverlayNetworkDef& def) {
    std::set<std::string> nodes;
    if (auto snap = snapshot())
        for (const auto& n : snap->networks)
            if (n.id == def.id && !n.endpoints.empty()) nodes.insert(cfg.node_name);
    auto eps = api.range_prefix(cluster::endpoints_prefix(def.id));
    if (!note(eps)) return unavailable(eps.error());
    for (const auto& kvv : eps->kvs) {
        auto k = cluster::parse_key(kvv.key);
        if (k.kind == cluster::ParsedKey::Kind::Endpoint) nodes.insert(k.name);
    }
    if (nodes.empty()) return ok();
    return Error::conflict(fmt::format("network {} has active endpoints on node(s) {}", def.name,
                                       fmt::join(nodes, ", ")));
}

// The record of `name_or_id` (name, id or unique id prefix) in the view, with its revision.
std::optional<std::pair<core::OverlayNetworkDef, int64_t>> ClusterAgent::Impl::find_def(
    const std::string& name_or_id) {
    const Decoded d = decoded();
    std::vector<const core::OverlayNetworkDef*> found;
    for (const auto& [id, def] : d.nets)
        if (def.name == name_or_id || id == name_or_id) {
            found = {&def};
            break;
        } else if (id.rfind(name_or_id, 0) == 0) {
            found.push_back(&def);
        }
    if (found.size() != 1) return std::nullopt;
    std::lock_guard lk(mu);
    auto kvv = view.find(cluster::network_key(found[0]->name));
    if (kvv == view.end()) return std::nullopt;
    return std::make_pair(*found[0], kvv->second.mod_revision);
}

Result<void> ClusterAgent::remove_network(const std::string& name_or_id,
                                          std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    auto found = impl_->find_def(name_or_id);
    if (!found)
        return Error::not_found(
            fmt::format("overlay network {} not found in the cluster", name_or_id));
    const auto* def = &found->first;
    {
        std::lock_guard api_lk(impl_->api_mu);
        if (auto r = impl_->check_unused(*def); !r) return r.error();
        using C = etcd::Compare;
        const std::string key = cluster::network_key(def->name);
        const std::string blocks = cluster::blocks_prefix(def->id);
        auto t =
            impl_->api.txn({{key, C::Target::Mod, C::Result::Equal, found->second, {}}},
                           {{etcd::TxnOp::Kind::Delete, key, {}, 0, {}},
                            {etcd::TxnOp::Kind::Delete, cluster::vni_key(def->vni), {}, 0, {}},
                            {etcd::TxnOp::Kind::Delete, blocks, {}, 0, etcd::prefix_end(blocks)}});
        if (!impl_->note(t)) return unavailable(t.error());
        if (!t->succeeded)
            return Error::conflict(
                fmt::format("network {} changed in the cluster meanwhile; try again", def->name));
        impl_->view_erase(key);
    }
    log::info("cluster: network {} removed from the cluster", def->name);
    impl_->wake_up();
    auto gone = impl_->wait_local(def->id, deadline, false, def->name);
    if (!gone) return gone.error();
    return ok();
}

}  // namespace cnetd::daemon
