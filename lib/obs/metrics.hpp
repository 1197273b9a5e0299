// cnetd's Prometheus metrics (docs/observability.md, "Metrics"): the one place prometheus-cpp is
// used (tools/check-layers.py keeps its headers in lib/obs). Every family is owned here, names are
// prefixed "cnetd_" with their unit, and every label has a bounded set of values (route patterns,
// operation kinds, status codes, reasons: never a container, a network or a port).
//
// Two kinds of values:
//   - recorded as they happen, through the typed methods below (API requests, operation
//     durations, journal fsyncs, GC'd endpoints, reloads): thread-safe, a few hundred ns each;
//   - read at scrape time from what the daemon already keeps (snapshot gauges, server and DNS
//     counters, kernel operation errors, cluster state), handed to scrape() as plain Readings, so
//     the attach path pays nothing for them.
// scrape() serializes both with prometheus::TextSerializer (text format 0.0.4), never by hand.
//
// Threading: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cnetd::obs {

// The operations whose duration is a histogram (label op).
enum class Op { CreateNetwork, RemoveNetwork, Attach, Detach };
std::string_view op_name(Op op);  // "create_network", "remove_network", "attach", "detach"

// What the daemon reads at scrape time (all totals are since start, monotonic).
struct Readings {
    // Snapshot gauges.
    uint64_t networks = 0, endpoints = 0;
    uint64_t published_ports = 0;    // host ports published (a range counts each port)
    uint64_t held_host_sockets = 0;  // sockets holding them (not for CNI attachments)
    // Worker queue depth by priority (jobs waiting, not the one running).
    uint64_t queued_mutations = 0, queued_reads = 0;
    // Control connections: open now, turned away by reason, closed by a timeout.
    uint64_t connections = 0;
    std::vector<std::pair<std::string, uint64_t>> rejected;  // reason -> total
    uint64_t timed_out = 0;
    // Failed kernel/netns/firewall calls by "layer.op" (base/opstats.hpp).
    std::vector<std::pair<std::string, uint64_t>> kernel_errors;
    // Firewall drift repairs and the time of the last one (Unix seconds, 0: none yet).
    uint64_t firewall_repairs = 0;
    double firewall_last_repair = 0;
    uint64_t journal_compactions = 0;
    // Start-up's reconciliation: endpoints by outcome (kept, repair_failed, removed, unchecked).
    std::vector<std::pair<std::string, uint64_t>> reconcile;
    // The embedded resolver, when running.
    struct Dns {
        uint64_t queries_udp = 0, queries_tcp = 0;
        std::vector<std::pair<std::string, uint64_t>> responses;  // rcode -> total
        uint64_t forwards = 0, upstream_failures = 0, malformed = 0;
    };
    std::optional<Dns> dns;
    // Cluster membership (overlay networks), when configured.
    struct Cluster {
        uint64_t peers = 0, networks = 0, pending = 0;
        bool etcd_reachable = false;
        bool lease_held = false;
        double lease_ttl_left = -1;  // seconds, -1 unknown
    };
    std::optional<Cluster> cluster;
};

class Metrics {
public:
    Metrics();
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // One answered API request: the route's PATTERN ("/v1/networks/{name}"; "unmatched" when no
    // route matched), the method and the HTTP status code.
    void api_request(std::string_view method, std::string_view route, int status);
    // One operation (a create/remove of a network, an attach/detach): its duration around the
    // engine call and outcome. `via` is "api" or "cni".
    void operation(Op op, std::string_view via, double seconds, bool ok);
    // One fdatasync of the state journal.
    void journal_fsync(double seconds);
    // Endpoints the netns GC removed (one collection).
    void gc_collected(uint64_t endpoints);
    // One config reload (SIGHUP), applied or not.
    void reload(bool ok);

    // The text exposition (Content-Type kContentType) of every family.
    std::string scrape(const Readings& r) const;
    static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace cnetd::obs
