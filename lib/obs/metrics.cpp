#include "obs/metrics.hpp"

#include <map>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace cnetd::obs {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Operations: a connect is ~1-10 ms, a network create up to ~100 ms, a slow kernel seconds.
const prometheus::Histogram::BucketBoundaries kOpBuckets{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
// fdatasync: tens of microseconds on tmpfs/NVMe, tens of milliseconds on a busy disk.
const prometheus::Histogram::BucketBoundaries kFsyncBuckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};

// A family read at scrape time: name, help, type; samples added with add().
struct Scraped {
    MetricFamily f;
    Scraped(std::string name, std::string help, MetricType type) {
        f.name = std::move(name);
        f.help = std::move(help);
        f.type = type;
    }
    Scraped& add(double v, std::vector<ClientMetric::Label> labels = {}) {
        ClientMetric m;
        m.label = std::move(labels);
        if (f.type == MetricType::Counter)
            m.counter.value = v;
        else
            m.gauge.value = v;
        f.metric.push_back(std::move(m));
        return *this;
    }
    // One sample per (label value, total).
    Scraped& add_each(const std::string& label,
                      const std::vector<std::pair<std::string, uint64_t>>& values) {
        for (const auto& [k, v] : values) add(static_cast<double>(v), {{label, k}});
        return *this;
    }
};

Scraped gauge(std::string name, std::string help) {
    return {std::move(name), std::move(help), MetricType::Gauge};
}
Scraped counter(std::string name, std::string help) {
    return {std::move(name), std::move(help), MetricType::Counter};
}
double d(uint64_t v) {
    return static_cast<double>(v);
}

void add_core(std::vector<MetricFamily>& out, const Readings& r) {
    out.push_back(gauge("cnetd_networks", "Networks (bridge and overlay).").add(d(r.networks)).f);
    out.push_back(
        gauge("cnetd_endpoints", "Endpoints attached, all networks.").add(d(r.endpoints)).f);
    out.push_back(gauge("cnetd_published_ports", "Host ports published (a range counts each port).")
                      .add(d(r.published_ports))
                      .f);
    out.push_back(gauge("cnetd_held_host_sockets", "Sockets holding published host ports.")
                      .add(d(r.held_host_sockets))
                      .f);
    out.push_back(gauge("cnetd_worker_queue_depth", "Jobs waiting for the kernel worker.")
                      .add(d(r.queued_mutations), {{"priority", "mutation"}})
                      .add(d(r.queued_reads), {{"priority", "read"}})
                      .f);
    out.push_back(
        gauge("cnetd_connections", "Open control socket connections.").add(d(r.connections)).f);
    out.push_back(counter("cnetd_connections_rejected_total",
                          "Control connections or requests turned away, by reason.")
                      .add_each("reason", r.rejected)
                      .f);
    out.push_back(counter("cnetd_connections_timed_out_total",
                          "Control connections closed by the idle, read or write timeout.")
                      .add(d(r.timed_out))
                      .f);
    out.push_back(counter("cnetd_kernel_operation_errors_total",
                          "Failed kernel, netns and firewall calls, by layer.operation.")
                      .add_each("op", r.kernel_errors)
                      .f);
    out.push_back(
        counter("cnetd_firewall_repairs_total", "Drift repairs of the nftables table since start.")
            .add(d(r.firewall_repairs))
            .f);
    out.push_back(gauge("cnetd_firewall_last_repair_timestamp_seconds",
                        "Unix time of the last firewall drift repair (0: none since start).")
                      .add(r.firewall_last_repair)
                      .f);
    out.push_back(gauge("cnetd_reconcile_endpoints",
                        "Persisted endpoints by outcome of the start-up reconciliation with the "
                        "kernel (set once at start).")
                      .add_each("outcome", r.reconcile)
                      .f);
    out.push_back(counter("cnetd_journal_compactions_total",
                          "Compactions of the state journal into the snapshot.")
                      .add(d(r.journal_compactions))
                      .f);
}

void add_dns(std::vector<MetricFamily>& out, const Readings::Dns& dns) {
    out.push_back(counter("cnetd_dns_queries_total", "Queries to the embedded resolver.")
                      .add(d(dns.queries_udp), {{"proto", "udp"}})
                      .add(d(dns.queries_tcp), {{"proto", "tcp"}})
                      .f);
    out.push_back(counter("cnetd_dns_responses_total",
                          "Answers the resolver made itself, by rcode (forwarded answers are "
                          "cnetd_dns_forwards_total).")
                      .add_each("rcode", dns.responses)
                      .f);
    out.push_back(
        counter("cnetd_dns_forwards_total", "Queries forwarded upstream.").add(d(dns.forwards)).f);
    out.push_back(counter("cnetd_dns_upstream_failures_total",
                          "Upstream servers that timed out, errored or said SERVFAIL/REFUSED.")
                      .add(d(dns.upstream_failures))
                      .f);
    out.push_back(counter("cnetd_dns_malformed_total", "Packets dropped: not a parseable query.")
                      .add(d(dns.malformed))
                      .f);
}

void add_cluster(std::vector<MetricFamily>& out, const Readings::Cluster& c) {
    out.push_back(gauge("cnetd_overlay_peers", "Remote nodes programmed, summed over networks.")
                      .add(d(c.peers))
                      .f);
    out.push_back(gauge("cnetd_overlay_networks", "Overlay networks known.").add(d(c.networks)).f);
    out.push_back(gauge("cnetd_cluster_pending", "Publications/deletions waiting for etcd.")
                      .add(d(c.pending))
                      .f);
    out.push_back(gauge("cnetd_cluster_etcd_reachable", "1 while etcd answers.")
                      .add(c.etcd_reachable ? 1 : 0)
                      .f);
    out.push_back(gauge("cnetd_cluster_lease_held", "1 while this node holds its etcd lease.")
                      .add(c.lease_held ? 1 : 0)
                      .f);
    out.push_back(
        gauge("cnetd_cluster_lease_ttl_seconds", "Seconds left on the lease (-1 unknown).")
            .add(c.lease_ttl_left)
            .f);
}

}  // namespace

std::string_view op_name(Op op) {
    switch (op) {
        case Op::CreateNetwork:
            return "create_network";
        case Op::RemoveNetwork:
            return "remove_network";
        case Op::Attach:
            return "attach";
        case Op::Detach:
            return "detach";
    }
    return "unknown";
}

struct Metrics::Impl {
    prometheus::Registry registry;
    prometheus::Family<prometheus::Counter>& api =
        prometheus::BuildCounter()
            .Name("cnetd_api_requests_total")
            .Help("Control API requests answered, by method, route pattern and HTTP status code.")
            .Register(registry);
    prometheus::Family<prometheus::Histogram>& op_seconds =
        prometheus::BuildHistogram()
            .Name("cnetd_operation_duration_seconds")
            .Help("Duration of network create/remove and endpoint attach/detach (engine call).")
            .Register(registry);
    prometheus::Family<prometheus::Counter>& ops =
        prometheus::BuildCounter()
            .Name("cnetd_operations_total")
            .Help("Network create/remove and endpoint attach/detach, by outcome.")
            .Register(registry);
    prometheus::Histogram& fsync =
        prometheus::BuildHistogram()
            .Name("cnetd_journal_fsync_duration_seconds")
            .Help("Duration of each fdatasync of the state journal (one per saved change).")
            .Register(registry)
            .Add({}, kFsyncBuckets);
    prometheus::Counter& gc =
        prometheus::BuildCounter()
            .Name("cnetd_gc_endpoints_total")
            .Help("Endpoints detached by the netns GC because their namespace died.")
            .Register(registry)
            .Add({});
    prometheus::Family<prometheus::Counter>& reloads =
        prometheus::BuildCounter()
            .Name("cnetd_reloads_total")
            .Help("Config reloads (SIGHUP), by result.")
            .Register(registry);
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {
    // Present from the first scrape (a rate() needs the zero), for every label value there is.
    for (Op op : {Op::CreateNetwork, Op::RemoveNetwork, Op::Attach, Op::Detach}) {
        for (const char* via : {"api", "cni"}) {
            if (via == std::string_view("cni") &&
                (op == Op::CreateNetwork || op == Op::RemoveNetwork))
                continue;  // CNI creates networks implicitly, inside its attach
            const std::string o(op_name(op));
            impl_->op_seconds.Add({{"op", o}, {"via", via}}, kOpBuckets);
            impl_->ops.Add({{"op", o}, {"via", via}, {"result", "ok"}});
            impl_->ops.Add({{"op", o}, {"via", via}, {"result", "error"}});
        }
    }
    impl_->reloads.Add({{"result", "ok"}});
    impl_->reloads.Add({{"result", "failed"}});
}

Metrics::~Metrics() = default;

void Metrics::api_request(std::string_view method, std::string_view route, int status) {
    impl_->api
        .Add({{"method", std::string(method)},
              {"route", std::string(route)},
              {"code", std::to_string(status)}})
        .Increment();
}

void Metrics::operation(Op op, std::string_view via, double seconds, bool ok) {
    const std::string o(op_name(op)), v(via);
    impl_->op_seconds.Add({{"op", o}, {"via", v}}, kOpBuckets).Observe(seconds);
    impl_->ops.Add({{"op", o}, {"via", v}, {"result", ok ? "ok" : "error"}}).Increment();
}

void Metrics::journal_fsync(double seconds) {
    impl_->fsync.Observe(seconds);
}

void Metrics::gc_collected(uint64_t endpoints) {
    impl_->gc.Increment(static_cast<double>(endpoints));
}

void Metrics::reload(bool ok) {
    impl_->reloads.Add({{"result", ok ? "ok" : "failed"}}).Increment();
}

std::string Metrics::scrape(const Readings& r) const {
    std::vector<MetricFamily> families = impl_->registry.Collect();
    add_core(families, r);
    if (r.dns) add_dns(families, *r.dns);
    if (r.cluster) add_cluster(families, *r.cluster);
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families);
    return out.str();
}

}  // namespace cnetd::obs
