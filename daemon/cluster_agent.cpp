// The cluster agent's threads and main loop (daemon/cluster_agent.hpp; the parts are listed in
// daemon/cluster_agent_impl.hpp).
#include "daemon/cluster_agent.hpp"

#include "base/clock.hpp"
#include "daemon/cluster_agent_impl.hpp"

namespace cnetd::daemon {
namespace {

etcd::ClientOptions client_options(const config::ClusterConfig& c) {
    etcd::ClientOptions o;
    o.endpoints = c.etcd;
    if (!c.tls_ca.empty() || !c.tls_cert.empty() || !c.tls_key.empty())
        o.tls = etcd::TlsFiles{c.tls_ca, c.tls_cert, c.tls_key};
    return o;
}

}  // namespace

ClusterAgent::Impl::Impl(config::ClusterConfig c, std::string dir, Worker& w, DnsServer* d)
    : cfg(std::move(c)),
      state_dir(std::move(dir)),
      worker(w),
      dns(d),
      kv(client_options(cfg)),
      watch(client_options(cfg)),
      api(client_options(cfg)) {}

bool ClusterAgent::Impl::note(const Error* err) {
    std::lock_guard lk(mu);
    // A write under a lease etcd no longer has (revoked, or expired while we were away): renew
    // now, which finds it gone and takes a new one (cluster_lease.cpp), instead of at its time.
    if (err && err->message().find("lease not found") != std::string::npos) {
        lease_seen = Clock::time_point{};
        wake = true;
    }
    if (!err || err->kind() != ErrorKind::Unavailable) {
        if (!reachable) log::info("cluster: etcd reachable");
        reachable = true;
        etcd_error.clear();
        unreachable_since.clear();
        return err == nullptr;
    }
    if (reachable || unreachable_since.empty()) {
        log::warn(
            "cluster: etcd unreachable: {} (local networks keep working; changes sync when "
            "it answers again)",
            err->message());
        unreachable_since = now_rfc3339();
    }
    reachable = false;
    etcd_error = err->message();
    return false;
}

void ClusterAgent::Impl::log_once(const std::string& key, const std::string& msg) {
    if (logged.insert(key + "\n" + msg).second) log::warn("cluster: {}", msg);
}

void ClusterAgent::Impl::forget_log(const std::string& key) {
    for (auto it = logged.lower_bound(key + "\n");
         it != logged.end() && it->rfind(key + "\n", 0) == 0;)
        it = logged.erase(it);
}

void ClusterAgent::Impl::wake_up() {
    {
        std::lock_guard lk(mu);
        wake = true;
    }
    cv.notify_all();
}

// One pass: the lease first (every key the node writes lives under it), then what the view asks
// for. Each part records in `retry` whether it must run again soon.
void ClusterAgent::Impl::pass() {
    retry = false;
    const bool leased = keep_lease();
    if (!leased) retry = true;
    const Decoded d = decoded();
    refresh_node_ttls(d);
    reconcile_networks(d);
    publish_endpoints(d);
    sync_remote_names(d);
}

// Until woken (a view change, a snapshot, a call), the lease's renewal time, or 1 s after a
// failure; at least every 30 s (the other nodes' TTLs shown by nodes()).
void ClusterAgent::Impl::wait_next() {
    std::unique_lock lk(mu);
    auto until = std::min(renew_at(), Clock::now() + std::chrono::seconds(30));
    if (retry) until = std::min(until, Clock::now() + std::chrono::seconds(1));
    cv.wait_until(lk, until, [this] { return wake || stopping; });
    wake = false;
}

void ClusterAgent::Impl::run() {
    for (;;) {
        {
            std::lock_guard lk(mu);
            if (stopping) return;
        }
        pass();
        wait_next();
    }
}

void ClusterAgent::Impl::stop_threads() {
    {
        std::lock_guard lk(mu);
        if (!running) return;
        stopping = true;
        running = false;
    }
    cv.notify_all();
    kv.cancel();
    watch.cancel();
    api.cancel();  // a create/remove still waiting on etcd returns now
    if (agent_thread.joinable()) agent_thread.join();
    if (watch_thread.joinable()) watch_thread.join();
}

ClusterAgent::ClusterAgent(config::ClusterConfig cfg, std::string state_dir, Worker& worker,
                           DnsServer* dns)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(state_dir), worker, dns)) {}

ClusterAgent::~ClusterAgent() {
    stop();
}

void ClusterAgent::start() {
    {
        std::lock_guard lk(impl_->mu);
        if (impl_->running || impl_->stopping) return;
        impl_->running = true;
        impl_->started = now_rfc3339();
        impl_->unreachable_since = impl_->started;
    }
    log::info("cluster: node {} ({}), etcd {}", impl_->cfg.node_name,
              impl_->cfg.advertise_address.str(), fmt::join(impl_->cfg.etcd, ","));
    impl_->watch_thread = std::thread([this] { impl_->run_watch(); });
    impl_->agent_thread = std::thread([this] { impl_->run(); });
}

void ClusterAgent::stop() {
    impl_->stop_threads();
}

void ClusterAgent::notify() {
    impl_->wake_up();
}

}  // namespace cnetd::daemon
