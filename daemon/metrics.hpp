// The daemon's side of the metrics (docs/observability.md, "Metrics"): where each value comes
// from. lib/obs owns the Prometheus families; this file gathers the readings at scrape time and
// wires the hooks that record as things happen.
//
//   - at scrape (scrape(), on the io thread): networks, endpoints, published ports and held host
//     sockets from the worker's published snapshot (nothing on the attach path), the worker's
//     queue depth, the server's connection counters, the kernel operation errors and journal
//     compactions (base/opstats.hpp), the firewall repairs (snapshot), the DNS counters and the
//     cluster status;
//   - as they happen: API requests and operation durations (daemon/handlers.cpp, through
//     metrics()), journal fsync durations (the opstats observer installed by the constructor),
//     GC'd endpoints and reloads (count_event(), fed by the event log's tap: tap_events()).
//
// Ownership: borrows the worker; the server, resolver and cluster are attached when they exist
// and must outlive the DaemonMetrics or be detached (nullptr) first. One DaemonMetrics per
// process: the constructor installs the process-wide fsync observer, the destructor removes it.
// Threading: scrape() on the io thread (Server::stats() is read there); metrics() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "daemon/cluster.hpp"
#include "daemon/dns_server.hpp"
#include "daemon/events.hpp"
#include "daemon/worker.hpp"
#include "obs/metrics.hpp"

namespace cnetd::daemon {

class Server;

class DaemonMetrics {
public:
    explicit DaemonMetrics(const Worker& worker);
    ~DaemonMetrics();
    DaemonMetrics(const DaemonMetrics&) = delete;
    DaemonMetrics& operator=(const DaemonMetrics&) = delete;

    void set_server(const Server* s) { server_.store(s); }
    void set_dns(const DnsServer* d) { dns_.store(d); }
    void set_cluster(const Cluster* c) { cluster_.store(c); }

    obs::Metrics& metrics() { return metrics_; }
    // The text exposition: every recorded family plus the readings taken now.
    std::string scrape() const;
    obs::Readings readings() const;

private:
    const Worker& worker_;
    obs::Metrics metrics_;
    std::atomic<const Server*> server_{nullptr};
    std::atomic<const DnsServer*> dns_{nullptr};
    std::atomic<const Cluster*> cluster_{nullptr};
};

// What one event adds to the metrics: a "gc" event counts the endpoints it collected (its
// "endpoints" attribute when it has one, else 1: one event per endpoint), a "reload" event one
// reload by result (action "reload": ok; anything else: failed). Other events count nothing here
// (firewall repairs are read from the snapshot at scrape). Quick, any thread.
void count_event(obs::Metrics& m, const Event& e);

// Installs count_event as the log's tap (EventLog::set_tap). The daemon calls it once, when it
// makes its event log, before anything publishes. Inline so that nothing links EventLog unless
// called.
inline void tap_events(EventLog& log, obs::Metrics& m) {
    log.set_tap([&m](const Event& e) { count_event(m, e); });
}

// Runs `call` (an engine call returning a Result) and, with metrics (`m` non-null), records its
// duration and outcome as `op` via "api" or "cni" (the handlers' jobs, on the worker).
template <class F>
auto timed_op(DaemonMetrics* m, obs::Op op, const char* via, F&& call) -> decltype(call()) {
    if (!m) return call();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = call();
    m->metrics().operation(
        op, via, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
        r.ok());
    return r;
}

// Counts from a snapshot, for the gauges: published host ports (a range counts each port) and
// the sockets holding them (core/publish.cpp's rule: none for CNI attachments, except [::1]).
struct PortCounts {
    uint64_t published = 0, held = 0;
};
PortCounts count_ports(const std::vector<core::Network>& networks);

// "2026-12-04T11:00:00.123456789Z" (base/clock.hpp's rfc3339) as Unix seconds; 0 for "" or
// anything else.
double unix_seconds(const std::string& rfc3339);

}  // namespace cnetd::daemon
