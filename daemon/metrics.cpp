#include "daemon/metrics.hpp"

#include <ctime>
#include <string_view>

#include "base/opstats.hpp"
#include "daemon/server.hpp"

namespace cnetd::daemon {
namespace {

obs::Readings::Dns dns_readings(const DnsStatus& st) {
    const DnsCounters& c = st.counters;
    obs::Readings::Dns d;
    d.queries_udp = c.queries_udp;
    d.queries_tcp = c.queries_tcp;
    d.responses = {{"NOERROR", c.answered_local}, {"REFUSED", c.refused}, {"SERVFAIL", c.servfail}};
    d.forwards = c.forwarded;
    d.upstream_failures = c.upstream_failures;
    d.malformed = c.malformed;
    return d;
}

obs::Readings::Cluster cluster_readings(const ClusterStatus& st) {
    obs::Readings::Cluster c;
    c.peers = st.peers;
    c.networks = st.networks;
    c.pending = st.pending;
    c.etcd_reachable = st.etcd_reachable;
    c.lease_held = st.lease_id != 0;
    c.lease_ttl_left = static_cast<double>(st.lease_ttl_left);
    return c;
}

void add_snapshot(obs::Readings& r, const Snapshot& snap) {
    r.networks = snap.networks.size();
    for (const auto& n : snap.networks) r.endpoints += n.endpoints.size();
    const PortCounts ports = count_ports(snap.networks);
    r.published_ports = ports.published;
    r.held_host_sockets = ports.held;
    r.firewall_repairs = snap.firewall.repairs;
    r.firewall_last_repair = unix_seconds(snap.firewall.last_repair);
    const core::ReconcileReport& rec = snap.reconcile;
    r.reconcile = {{"kept", rec.kept},
                   {"repair_failed", rec.repair_failed},
                   {"removed", rec.removed},
                   {"unchecked", rec.unchecked}};
}

}  // namespace

DaemonMetrics::DaemonMetrics(const Worker& worker) : worker_(worker) {
    obs::Metrics* m = &metrics_;
    opstats::set_observer([m](const char* what, double seconds) {
        if (std::string_view(what) == "journal_fsync") m->journal_fsync(seconds);
    });
}

DaemonMetrics::~DaemonMetrics() {
    opstats::set_observer({});
}

obs::Readings DaemonMetrics::readings() const {
    obs::Readings r;
    if (auto snap = worker_.snapshot()) add_snapshot(r, *snap);
    const Worker::Queued q = worker_.queued();
    r.queued_mutations = q.mutations;
    r.queued_reads = q.reads;
    if (const Server* s = server_.load()) {
        const ServerStats st = s->stats();
        r.connections = st.active;
        r.rejected = {{"max_connections", st.refused_limit},
                      {"per_uid", st.refused_per_uid},
                      {"reserved_slots", st.refused_reserved},
                      {"permission_denied", st.denied}};
        r.timed_out = st.timed_out;
    }
    r.kernel_errors = opstats::errors();
    r.journal_compactions = opstats::count_of("journal_compactions");
    if (const DnsServer* d = dns_.load()) r.dns = dns_readings(d->status());
    if (const Cluster* c = cluster_.load()) r.cluster = cluster_readings(c->status());
    return r;
}

std::string DaemonMetrics::scrape() const {
    return metrics_.scrape(readings());
}

void count_event(obs::Metrics& m, const Event& e) {
    if (e.type == "gc") {
        uint64_t n = 1;
        if (auto it = e.attributes.find("endpoints"); it != e.attributes.end()) {
            try {
                n = std::stoull(it->second);
            } catch (const std::exception&) {
                n = 1;  // not a number: the event still stands for one collection
            }
        }
        m.gc_collected(n);
    } else if (e.type == "reload") {
        m.reload(e.action == "reload");
    }
}

PortCounts count_ports(const std::vector<core::Network>& networks) {
    PortCounts c;
    for (const auto& n : networks) {
        for (const auto& [id, ep] : n.endpoints) {
            (void)id;
            for (const auto& b : ep.ports) {
                c.published += b.host.size();
                const bool loopback6 = b.ipv6 && b.host_ip6 && b.host_ip6->is_loopback();
                if (ep.container_id.empty() || loopback6) c.held += b.host.size();
            }
        }
    }
    return c;
}

double unix_seconds(const std::string& s) {
    std::tm tm{};
    const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) return 0;
    double frac = 0;
    if (*end == '.') {
        double scale = 0.1;
        for (++end; *end >= '0' && *end <= '9'; ++end, scale /= 10) frac += (*end - '0') * scale;
    }
    if (*end != 'Z' || end[1] != '\0') return 0;
    return static_cast<double>(::timegm(&tm)) + frac;
}

}  // namespace cnetd::daemon
