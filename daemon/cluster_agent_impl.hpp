// The cluster agent's insides (daemon/cluster_agent.hpp has the contract), shared by its files,
// one concern each:
//   cluster_agent.cpp      threads, main loop, worker jobs, reachability, start/stop
//   cluster_lease.cpp      the node lease (grant, keepalive, cluster.json) and the node record
//   cluster_view.cpp       list + watch of /cnetd/ into the in-memory view; the view's queries
//   cluster_networks.cpp   per network: block acquisition, local realization, peers, removal
//   cluster_endpoints.cpp  endpoint publication and the remote names for the DNS server
//   cluster_admin.cpp      create_network / remove_network (the API's calls)
//   cluster_status.cpp     nodes() and status()
// Locking: `mu` guards every field marked (mu); the rest belongs to the agent thread. No etcd
// call and no worker job is ever made while holding `mu`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/log.hpp"
#include "cluster/records.hpp"
#include "daemon/cluster_agent.hpp"
#include "daemon/dns_server.hpp"
#include "daemon/worker.hpp"
#include "etcd/client.hpp"

namespace cnetd::daemon {

using Clock = std::chrono::steady_clock;

// What the view holds, decoded (records that do not decode are logged once and skipped).
struct ViewBlock {
    Ipv4Cidr block;
    cluster::BlockRecord rec;
    etcd::KeyValue kv;
};
struct ViewEndpoint {
    std::string net_id, node, ep_id;
    cluster::EndpointRecord rec;
    etcd::KeyValue kv;
};
struct Decoded {
    std::map<std::string, core::OverlayNetworkDef> nets;                          // by id
    std::map<std::string, std::vector<ViewBlock>> blocks;                         // by network id
    std::map<std::string, std::pair<cluster::NodeRecord, etcd::KeyValue>> nodes;  // by name
    std::vector<ViewEndpoint> endpoints;
};
Decoded decode_view(const std::map<std::string, etcd::KeyValue>& view);

struct ClusterAgent::Impl {
    Impl(config::ClusterConfig c, std::string dir, Worker& w, DnsServer* d);

    const config::ClusterConfig cfg;
    const std::string state_dir;
    Worker& worker;
    DnsServer* const dns;
    etcd::Client kv;     // agent thread
    etcd::Client watch;  // watch thread
    etcd::Client api;    // create/remove_network, under api_mu
    std::mutex api_mu;

    mutable std::mutex mu;
    std::condition_variable cv;  // wakes the agent thread and waiters of create/remove
    bool running = false;        // (mu)
    bool stopping = false;       // (mu)
    bool wake = false;           // (mu) something changed: run a pass now
    std::thread agent_thread, watch_thread;

    // --- the view of /cnetd/ (mu) ---
    std::map<std::string, etcd::KeyValue> view;
    bool listed = false;  // a list succeeded once: deletions in the view are real

    // --- reachability (mu) ---
    bool reachable = false;
    std::string etcd_error = "not contacted yet";
    std::string unreachable_since;

    // --- lease (mu) ---
    int64_t lease_id = 0;
    int64_t lease_ttl = 0;           // TTL etcd gave at lease_seen
    Clock::time_point lease_seen{};  // when lease_ttl was read
    bool node_record_due = true;     // put the node record (start, renewal, new lease)
    std::string started;             // RFC 3339 of start()

    // --- local state (agent thread, copied into (mu) fields for status) ---
    std::map<std::string, Ipv4Cidr> made;                         // net id -> block made here
    std::map<std::string, std::vector<core::OverlayPeer>> peers;  // (mu) net id -> programmed
    std::map<std::string, std::string> net_errors;                // (mu) net id -> last failure
    std::set<std::string> logged;                                 // messages logged once
    std::size_t pending = 0;                                      // (mu)
    std::string remote_sig;  // what the DNS server was last given (signature)
    struct NodeTtl {
        int64_t ttl = -1;
        Clock::time_point seen{};
        int64_t mod_revision = 0;
    };
    std::map<std::string, NodeTtl> node_ttls;  // (mu) other nodes' lease TTLs
    bool retry = false;                        // a pass failed somewhere: run again in 1 s

    // cluster_agent.cpp
    void run();
    void pass();
    void wait_next();
    void wake_up();
    void stop_threads();
    // Notes the outcome of an etcd call: reachable on success or an answer from etcd, unreachable
    // (since now, with its message) on Unavailable. Returns r.ok().
    bool note(const Error* err);
    template <class T>
    bool note(const Result<T>& r) {
        return note(r.ok() ? nullptr : &r.error());
    }
    void log_once(const std::string& key, const std::string& msg);
    void forget_log(const std::string& key);
    // Runs fn on the kernel worker and waits for it (Unavailable when the worker is stopping).
    template <class T>
    Result<T> on_worker(std::function<Result<T>(Backend&)> fn);
    std::shared_ptr<const Snapshot> snapshot() const { return worker.snapshot(); }

    // cluster_lease.cpp
    bool keep_lease();
    bool renew_lease();
    bool new_lease(int64_t saved);
    void put_node_record();
    int64_t lease_left() const;          // (mu) seconds; -1 without a lease
    Clock::time_point renew_at() const;  // (mu)
    int64_t load_saved_lease() const;
    void save_lease(int64_t id) const;
    void refresh_node_ttls(const Decoded& d);

    // cluster_view.cpp
    void run_watch();
    bool list_once(int64_t& revision);
    void apply_batch(const etcd::WatchBatch& b);
    void sleep_backoff(std::chrono::milliseconds& backoff);
    void view_put(const etcd::KeyValue& kv);
    void view_erase(const std::string& key);
    void drop_lease_keys(int64_t lease);
    Decoded decoded() const;

    // cluster_networks.cpp
    void reconcile_networks(const Decoded& d);
    void reconcile_network(const core::OverlayNetworkDef& def, const Decoded& d,
                           const Snapshot& snap);
    std::optional<Ipv4Cidr> acquire_block(const core::OverlayNetworkDef& def, const Decoded& d,
                                          std::optional<Ipv4Cidr> previous);
    std::optional<Ipv4Cidr> adopt_block(const ViewBlock& b);
    void remove_local(const core::Network& n);
    void set_peers(const std::string& net_id, std::vector<core::OverlayPeer> want);

    // cluster_admin.cpp
    Result<core::Network> wait_local(const std::string& id, Clock::time_point deadline,
                                     bool present, const std::string& name);
    Result<void> check_unused(const core::OverlayNetworkDef& def);
    std::optional<std::pair<core::OverlayNetworkDef, int64_t>> find_def(
        const std::string& name_or_id);

    // cluster_endpoints.cpp
    void publish_endpoints(const Decoded& d);
    // The records this node should have for network `n` (all its endpoints on resolver
    // networks; one representative on IP-only ones).
    void wanted_records(const core::Network& n, const Decoded& d,
                        std::map<std::string, std::string>& want) const;
    void sync_remote_names(const Decoded& d);
};

template <class T>
Result<T> ClusterAgent::Impl::on_worker(std::function<Result<T>(Backend&)> fn) {
    auto done = std::make_shared<std::promise<Result<T>>>();
    auto fut = done->get_future();
    const bool queued = worker.post(
        [fn = std::move(fn), done](Backend& b) {
            try {
                done->set_value(fn(b));
            } catch (const std::exception& e) {
                done->set_value(Error::internal(e.what()));
            }
        },
        [done] { done->set_value(Error(ErrorKind::Unavailable, "the daemon is stopping")); });
    if (!queued) return Error(ErrorKind::Unavailable, "the daemon is stopping");
    return fut.get();
}

}  // namespace cnetd::daemon
