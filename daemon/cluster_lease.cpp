// The node lease (daemon/cluster_agent.hpp): one etcd lease per node, under which the node record,
// its blocks and its endpoint records live. Renewed by keepalive once less than
// `lease-renew-margin` is left (retried every second on error: the agent loop's retry). Its id is
// saved in <state-dir>/cluster.json, so a restarted node keeps its lease, and so its keys, as long
// as etcd still has it.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/clock.hpp"
#include "daemon/cluster_agent_impl.hpp"

namespace cnetd::daemon {
namespace {

std::string lease_file(const std::string& dir) {
    return dir + "/cluster.json";
}

}  // namespace

int64_t ClusterAgent::Impl::load_saved_lease() const {
    std::ifstream in(lease_file(state_dir));
    if (!in) return 0;
    std::stringstream ss;
    ss << in.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, false);
    // Another node's file (a copied state dir) must not make this node take over its lease.
    if (!j.is_object() || j.value("node", "") != cfg.node_name) return 0;
    auto it = j.find("lease_id");
    return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// write-temp + rename: a crash leaves the old file or the new one.
void ClusterAgent::Impl::save_lease(int64_t id) const {
    const std::string path = lease_file(state_dir), tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << nlohmann::json{{"node", cfg.node_name}, {"lease_id", id}}.dump() << "\n";
        if (!out.flush()) {
            log::warn("cluster: cannot write {} (a restart will take a new lease)", tmp);
            return;
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        log::warn("cluster: cannot rename {} to {}", tmp, path);
}

int64_t ClusterAgent::Impl::lease_left() const {
    if (lease_id == 0) return -1;
    const auto gone = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - lease_seen);
    return std::max<int64_t>(0, lease_ttl - gone.count());
}

Clock::time_point ClusterAgent::Impl::renew_at() const {
    if (lease_id == 0) return Clock::now();
    const int64_t wait = std::max<int64_t>(1, lease_ttl - int64_t{cfg.lease_renew_margin});
    return lease_seen + std::chrono::seconds(wait);
}

// The saved lease when etcd still has it, else a new one. Keys of a lost lease are gone from
// etcd (it deleted them): they leave the view too, so the passes that follow put them again.
bool ClusterAgent::Impl::new_lease(int64_t saved) {
    if (saved != 0) {
        auto ka = kv.keepalive(saved);
        if (ka.ok()) {
            note(ka);
            std::lock_guard lk(mu);
            lease_id = saved;
            lease_ttl = *ka;
            lease_seen = Clock::now();
            node_record_due = true;
            log::info("cluster: kept lease {:x} ({} s left)", saved, *ka);
            return true;
        }
        if (ka.error().kind() != ErrorKind::NotFound) return note(ka);
        note(ka);
        log::info("cluster: lease {:x} expired; taking a new one", saved);
        drop_lease_keys(saved);
    }
    auto g = kv.grant(cfg.lease_ttl);
    if (!note(g)) return false;
    save_lease(g->id);
    std::lock_guard lk(mu);
    lease_id = g->id;
    lease_ttl = g->ttl;
    lease_seen = Clock::now();
    node_record_due = true;
    log::info("cluster: lease {:x} granted (TTL {} s)", g->id, g->ttl);
    return true;
}

bool ClusterAgent::Impl::renew_lease() {
    int64_t id = 0;
    {
        std::lock_guard lk(mu);
        id = lease_id;
    }
    auto ka = kv.keepalive(id);
    if (ka.ok()) {
        note(ka);
        std::lock_guard lk(mu);
        lease_ttl = *ka;
        lease_seen = Clock::now();
        node_record_due = true;
        return true;
    }
    if (ka.error().kind() != ErrorKind::NotFound) return note(ka);
    note(ka);
    log::warn("cluster: lease {:x} is gone (etcd away for longer than its TTL?); re-joining", id);
    {
        std::lock_guard lk(mu);
        lease_id = 0;
    }
    return new_lease(id);
}

// Returns whether the node holds a lease now.
bool ClusterAgent::Impl::keep_lease() {
    bool have = false, due = false;
    {
        std::lock_guard lk(mu);
        have = lease_id != 0;
        due = have && Clock::now() >= renew_at();
    }
    bool ok = true;
    if (!have)
        ok = new_lease(load_saved_lease());
    else if (due)
        ok = renew_lease();
    if (!ok) {
        retry = true;  // again in 1 s
        std::lock_guard lk(mu);
        return lease_id != 0 && lease_left() > 0;
    }
    put_node_record();
    return true;
}

// The node record: at start, after a new lease and at every renewal (its last_seen).
void ClusterAgent::Impl::put_node_record() {
    int64_t id = 0;
    {
        std::lock_guard lk(mu);
        if (!node_record_due) return;
        id = lease_id;
    }
    cluster::NodeRecord r{cfg.node_name, cfg.advertise_address, cfg.vxlan_port, started,
                          now_rfc3339()};
    auto put = kv.put(cluster::node_key(cfg.node_name), cluster::encode(r), id);
    if (!note(put)) {
        retry = true;
        return;
    }
    std::lock_guard lk(mu);
    node_record_due = false;
}

// Other nodes' TTLs for nodes(): one time_to_live per node each time its record changes (its
// renewal), so nodes() itself never asks etcd.
void ClusterAgent::Impl::refresh_node_ttls(const Decoded& d) {
    for (const auto& [name, rec] : d.nodes) {
        const etcd::KeyValue& kvv = rec.second;
        {
            std::lock_guard lk(mu);
            auto it = node_ttls.find(name);
            if (name == cfg.node_name ||
                (it != node_ttls.end() && it->second.mod_revision == kvv.mod_revision))
                continue;
        }
        auto ttl = kvv.lease ? kv.time_to_live(kvv.lease) : Result<int64_t>(int64_t{-1});
        if (!note(ttl) && ttl.error().kind() != ErrorKind::NotFound) return;
        std::lock_guard lk(mu);
        node_ttls[name] = NodeTtl{ttl.ok() ? *ttl : 0, Clock::now(), kvv.mod_revision};
    }
}

}  // namespace cnetd::daemon
