// The agent's view of /cnetd/ (daemon/cluster_agent.hpp): listed once, then watched from the
// list's revision + 1 on the watch thread with its own connection. A compaction, a broken stream
// or an unreachable etcd: list again (the list replaces the view, so missed deletions are seen)
// after a backoff from 100 ms doubling to 5 s (flannel's), reset by a list that works.
#include "base/failpoint.hpp"
#include "daemon/cluster_agent_impl.hpp"

namespace cnetd::daemon {

void ClusterAgent::Impl::view_put(const etcd::KeyValue& kvv) {
    std::lock_guard lk(mu);
    view[kvv.key] = kvv;
}

void ClusterAgent::Impl::view_erase(const std::string& key) {
    std::lock_guard lk(mu);
    view.erase(key);
}

void ClusterAgent::Impl::drop_lease_keys(int64_t lease) {
    std::lock_guard lk(mu);
    std::erase_if(view, [lease](const auto& e) { return e.second.lease == lease; });
}

bool ClusterAgent::Impl::list_once(int64_t& revision) {
    auto r = watch.range_prefix(cluster::kPrefix);
    if (!note(r)) return false;
    {
        std::lock_guard lk(mu);
        view.clear();
        for (const auto& kvv : r->kvs) view[kvv.key] = kvv;
        listed = true;
        wake = true;
    }
    cv.notify_all();
    revision = r->revision;
    return true;
}

void ClusterAgent::Impl::apply_batch(const etcd::WatchBatch& b) {
    {
        std::lock_guard lk(mu);
        for (const auto& ev : b.events) {
            if (ev.type == etcd::WatchEvent::Type::Put)
                view[ev.kv.key] = ev.kv;
            else
                view.erase(ev.kv.key);
        }
        if (!b.events.empty()) wake = true;
    }
    if (!b.events.empty()) cv.notify_all();
}

void ClusterAgent::Impl::sleep_backoff(std::chrono::milliseconds& backoff) {
    std::unique_lock lk(mu);
    cv.wait_for(lk, backoff, [this] { return stopping; });
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
}

void ClusterAgent::Impl::run_watch() {
    std::chrono::milliseconds backoff(100);
    for (;;) {
        {
            std::lock_guard lk(mu);
            if (stopping) return;
        }
        int64_t revision = 0;
        if (!list_once(revision)) {
            sleep_backoff(backoff);
            continue;
        }
        backoff = std::chrono::milliseconds(100);
        // Tests stall here to compact etcd between the list and the watch (the compacted path).
        failpoint::hit("cluster.watch.listed.after");
        bool compacted = false;
        auto w = watch.watch(cluster::kPrefix, revision + 1, [&](const etcd::WatchBatch& b) {
            if (b.compacted) {
                log::info("cluster: watch compacted at revision {}; listing again",
                          b.compact_revision);
                compacted = true;
                return false;
            }
            apply_batch(b);
            std::lock_guard lk(mu);
            return !stopping;
        });
        if (!w.ok()) {
            note(w);
            log::debug("cluster: watch ended: {}", w.error().message());
            sleep_backoff(backoff);
        } else if (!compacted) {
            sleep_backoff(backoff);  // ended without a reason (cancel, or etcd closed it)
        }
    }
}

Decoded ClusterAgent::Impl::decoded() const {
    std::map<std::string, etcd::KeyValue> copy;
    {
        std::lock_guard lk(mu);
        copy = view;
    }
    return decode_view(copy);
}

// Records that do not decode are skipped (debug log: another version's, or a person's typo).
Decoded decode_view(const std::map<std::string, etcd::KeyValue>& view) {
    Decoded d;
    auto skip = [](const std::string& key, const Error& e) {
        log::debug("cluster: ignoring {}: {}", key, e.message());
    };
    for (const auto& [key, kvv] : view) {
        const cluster::ParsedKey k = cluster::parse_key(key);
        using Kind = cluster::ParsedKey::Kind;
        if (k.kind == Kind::Network) {
            auto n = cluster::decode_network(key, kvv.value);
            if (n.ok() && n->name == k.name)
                d.nets[n->id] = *n;
            else if (!n.ok())
                skip(key, n.error());
        } else if (k.kind == Kind::Block) {
            auto b = cluster::decode_block(key, kvv.value);
            if (b.ok())
                d.blocks[k.net_id].push_back(ViewBlock{k.block, *b, kvv});
            else
                skip(key, b.error());
        } else if (k.kind == Kind::Node) {
            auto n = cluster::decode_node(key, kvv.value);
            if (n.ok())
                d.nodes[k.name] = {*n, kvv};
            else
                skip(key, n.error());
        } else if (k.kind == Kind::Endpoint) {
            auto e = cluster::decode_endpoint(key, kvv.value);
            if (e.ok())
                d.endpoints.push_back(ViewEndpoint{k.net_id, k.name, k.ep_id, *e, kvv});
            else
                skip(key, e.error());
        }
    }
    return d;
}

}  // namespace cnetd::daemon
