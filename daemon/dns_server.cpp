#include "daemon/dns_server.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "base/log.hpp"
#include "daemon/dns_files.hpp"
#include "daemon/dns_forward.hpp"
#include "daemon/dns_serve.hpp"
#include "daemon/dns_upstreams.hpp"
#include "dns/zone.hpp"

namespace cnetd::daemon {
namespace asio = boost::asio;

namespace {

// Who may ask what: the dns networks of one namespace (zone indices) and whether it may be
// forwarded upstream at all (not when every one of them is internal: moby's proxyDNS=false).
struct Scope {
    std::vector<uint32_t> nets;
    bool forward = false;
};

using RemoteEndpoints = std::map<std::string, std::vector<core::Endpoint>>;

// What sync() publishes for the DNS thread, immutable once built.
struct View {
    dns::Zone zone;
    std::map<NetnsId, Scope> scopes;
};

dns::HostEntry host_of(const core::Endpoint& ep) {
    dns::HostEntry h;
    h.name = ep.name;
    h.aliases = ep.aliases;
    h.endpoint_id = ep.id;
    h.container_id = ep.container_id;
    h.v4 = ep.address.addr();
    if (ep.address6) h.v6 = ep.address6->addr();
    return h;
}

// `remote`: other cluster nodes' endpoints by network id (set_remote_endpoints): names in the
// zone of that network, never a scope (no namespace of theirs is served here).
std::shared_ptr<const View> build_view(const std::vector<core::Network>& networks,
                                       const RemoteEndpoints& remote) {
    std::vector<dns::NetworkEntry> entries;
    for (const auto& n : networks) {
        if (!n.dns || n.is_default) continue;
        dns::NetworkEntry e{n.id, n.name, n.internal, {}};
        e.hosts.reserve(n.endpoints.size());
        for (const auto& [id, ep] : n.endpoints) e.hosts.push_back(host_of(ep));
        if (auto it = remote.find(n.id); it != remote.end())
            for (const auto& ep : it->second) e.hosts.push_back(host_of(ep));
        entries.push_back(std::move(e));
    }
    auto view = std::make_shared<View>();
    view->zone = dns::Zone(std::move(entries));
    for (const auto& n : networks) {
        auto index = view->zone.network_index(n.id);
        if (!index || !n.dns || n.is_default) continue;
        for (const auto& [id, ep] : n.endpoints) {
            Scope& s = view->scopes[ep.netns_id];
            if (std::find(s.nets.begin(), s.nets.end(), *index) == s.nets.end())
                s.nets.push_back(*index);
            if (!n.internal) s.forward = true;
        }
    }
    return view;
}

uint64_t inode_of(int fd) {
    struct stat st {};
    return fd >= 0 && ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

UniqueFd dup_fd(int fd) {
    return UniqueFd(fd >= 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1);
}

}  // namespace

struct DnsServer::Impl final : QueryHandler {
    explicit Impl(DnsOptions o);
    ~Impl() override;

    // What sync() hands to the DNS thread: sandboxes to start (replacing one of the same
    // namespace) and namespaces no longer served.
    struct SandboxChange {
        struct Add {
            core::DnsSandbox sb;  // fds: unused, see udp/tcp
            UniqueFd udp, tcp;
        };
        std::vector<Add> add;
        std::vector<NetnsId> remove;
    };

    bool handle(const NetnsId& ns, std::span<const uint8_t> pkt, bool tcp,
                std::vector<uint8_t>& out, const std::function<Respond()>& later) override;
    bool answer_local(const View& v, const Scope& s, const dns::Query& q,
                      std::span<const uint8_t> pkt, size_t limit, std::vector<uint8_t>& out);
    void forward(const dns::Query& q, std::span<const uint8_t> pkt, bool tcp,
                 const std::function<Respond()>& later);
    void sync_sandboxes(const std::vector<core::DnsSandbox>& sandboxes);
    void apply(SandboxChange& change);  // DNS thread
    void reload_host();                 // DNS thread
    std::shared_ptr<const View> view() const {
        std::lock_guard lk(view_mu);
        return view_;
    }
    HostResolv host() const {
        std::lock_guard lk(host_mu);
        return host_;
    }

    const DnsOptions opts;
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    DnsAtomicCounters counters;
    Forwarder fwd;
    SandboxPoller poller{io};  // after io: destroyed before it
    SandboxShared shared{io, *this, counters, poller};
    std::mt19937 rng{std::random_device{}()};  // DNS thread: round robin shuffles

    mutable std::mutex view_mu;
    std::shared_ptr<const View> view_ = std::make_shared<View>();
    // What the view is built from: the last synced networks and the remote endpoints (either
    // changes → a new view). build_mu orders the two writers (worker, cluster agent).
    std::mutex build_mu;
    std::vector<core::Network> networks_;
    RemoteEndpoints remote_;
    void rebuild() {  // build_mu held
        auto v = build_view(networks_, remote_);
        std::lock_guard lk(view_mu);
        view_ = std::move(v);
    }
    mutable std::mutex host_mu;
    HostResolv host_;
    EndpointFiles files;

    std::map<NetnsId, std::pair<uint64_t, uint64_t>> sent;     // worker thread: sockets handed over
    std::map<NetnsId, std::shared_ptr<ServedSandbox>> served;  // DNS thread
    std::atomic<size_t> served_count{0};
    std::unique_ptr<ResolvWatch> watch;  // DNS thread
    std::thread thread;
};

DnsServer::Impl::Impl(DnsOptions o)
    : opts(std::move(o)),
      fwd(io, counters, opts.max_in_flight, opts.budget),
      files(opts.resolv_dir) {
    shared.limits.tcp_idle = opts.tcp_idle;
    // The watch first, then the read: a change in between is never missed. Set up before the
    // thread runs the io_context, so it is in place when the constructor returns.
    try {
        watch = std::make_unique<ResolvWatch>(
            io, std::vector<std::string>{opts.host_resolv_conf, opts.systemd_resolv_conf},
            [this] { reload_host(); });
    } catch (const std::exception& e) {
        log::warn("dns: watching the host's resolv.conf: {}", e.what());
    }
    host_ = read_host_resolv(opts.host_resolv_conf, opts.systemd_resolv_conf);
    fwd.set_servers(upstream_endpoints(host_.upstreams));
    files.set_host(host_.conf);
    log::info("dns: upstream servers from {}: {}", host_.file, host_.upstreams.size());
    thread = std::thread([this] {
        for (;;) {
            try {
                io.run();
                break;
            } catch (const std::exception& e) {  // never stops the resolver
                log::error("dns: {}", e.what());
            }
        }
    });
}

DnsServer::Impl::~Impl() {
    asio::post(io, [this] {
        watch.reset();
        for (auto& [ns, s] : served) s->close();
        served.clear();
        io.stop();
    });
    work.reset();
    thread.join();
}

bool DnsServer::Impl::handle(const NetnsId& ns, std::span<const uint8_t> pkt, bool tcp,
                             std::vector<uint8_t>& out, const std::function<Respond()>& later) {
    (tcp ? counters.queries_tcp : counters.queries_udp).fetch_add(1, std::memory_order_relaxed);
    const auto q = dns::parse_query(pkt);
    if (!q) {
        counters.malformed.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    const size_t limit = tcp ? dns::kMaxTcpMessage : q->udp_size;
    if (q->opcode != 0) {
        dns::build_response(*q, pkt, dns::Rcode::NotImp, {}, 0, limit, out);
        return true;
    }
    const auto v = view();
    const auto it = v->scopes.find(ns);
    if (it != v->scopes.end() && q->qclass == dns::kClassIn &&
        answer_local(*v, it->second, *q, pkt, limit, out)) {
        counters.answered_local.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    if (it == v->scopes.end() || !it->second.forward) {
        // Only internal networks (or none any more): never out through the host. moby answers
        // SERVFAIL here (its forwardExtDNS skips the host's servers and finds none).
        counters.servfail.fetch_add(1, std::memory_order_relaxed);
        dns::build_response(*q, pkt, dns::Rcode::ServFail, {}, 0, limit, out);
        return true;
    }
    forward(*q, pkt, tcp, later);
    return false;
}

bool DnsServer::Impl::answer_local(const View& v, const Scope& s, const dns::Query& q,
                                   std::span<const uint8_t> pkt, size_t limit,
                                   std::vector<uint8_t>& out) {
    dns::Records recs;
    if (q.qtype == dns::kTypeA || q.qtype == dns::kTypeAaaa || q.qtype == dns::kTypeMx) {
        dns::Found f = v.zone.lookup(s.nets, q.name);
        if (!f.found) return false;
        // Round robin: every answer in a new order. Empty for MX, or no address of the family.
        if (q.qtype == dns::kTypeA) {
            recs.a = std::move(f.v4);
            std::shuffle(recs.a.begin(), recs.a.end(), rng);
        } else if (q.qtype == dns::kTypeAaaa) {
            recs.aaaa = std::move(f.v6);
            std::shuffle(recs.aaaa.begin(), recs.aaaa.end(), rng);
        }
    } else if (q.qtype == dns::kTypePtr) {
        const auto addr = dns::parse_reverse_name(q.name);
        std::optional<std::string> name;
        if (const auto* a4 = std::get_if<Ipv4>(&addr)) name = v.zone.reverse(s.nets, *a4);
        if (const auto* a6 = std::get_if<Ipv6>(&addr)) name = v.zone.reverse(s.nets, *a6);
        if (!name) return false;
        recs.ptr.push_back(std::move(*name));
    } else {
        return false;
    }
    dns::build_response(q, pkt, dns::Rcode::NoError, recs, dns::kLocalTtl, limit, out);
    return true;
}

// Upstream, on its own path: a local name never waits for it (handle() answered those already).
void DnsServer::Impl::forward(const dns::Query& q, std::span<const uint8_t> pkt, bool tcp,
                              const std::function<Respond()>& later) {
    const size_t limit = tcp ? dns::kMaxTcpMessage : q.udp_size;
    Respond respond = later();
    auto fail = [this, limit](const dns::Query& q, std::span<const uint8_t> query, dns::Rcode rc,
                              const Respond& respond) {
        auto& c = rc == dns::Rcode::Refused ? counters.refused : counters.servfail;
        c.fetch_add(1, std::memory_order_relaxed);
        std::vector<uint8_t> out;
        dns::build_response(q, query, rc, {}, 0, limit, out);
        respond(out);
    };
    auto done = [fail, respond, q,
                 query = std::vector<uint8_t>(pkt.begin(), pkt.end())](std::vector<uint8_t> reply) {
        if (reply.empty()) return fail(q, query, dns::Rcode::ServFail, respond);
        respond(reply);
    };
    if (!fwd.forward(pkt, q, tcp, std::move(done))) fail(q, pkt, dns::Rcode::Refused, respond);
}

void DnsServer::Impl::sync_sandboxes(const std::vector<core::DnsSandbox>& sandboxes) {
    auto change = std::make_shared<SandboxChange>();
    std::map<NetnsId, std::pair<uint64_t, uint64_t>> now;
    for (const auto& sb : sandboxes) {
        if (sb.udp_fd < 0 && sb.tcp_fd < 0) continue;  // a fake's
        const std::pair<uint64_t, uint64_t> inodes{inode_of(sb.udp_fd), inode_of(sb.tcp_fd)};
        now.emplace(sb.netns, inodes);
        const auto it = sent.find(sb.netns);
        if (it != sent.end() && it->second == inodes) continue;  // served already
        SandboxChange::Add add{sb, dup_fd(sb.udp_fd), dup_fd(sb.tcp_fd)};
        if (!add.udp.valid() && !add.tcp.valid()) {
            log::error("dns: sandbox {}: dup: {}", sb.netns_path, std::strerror(errno));
            now.erase(sb.netns);
            continue;
        }
        change->add.push_back(std::move(add));
    }
    for (const auto& [ns, inodes] : sent)
        if (!now.count(ns)) change->remove.push_back(ns);
    sent = std::move(now);
    if (change->add.empty() && change->remove.empty()) return;
    asio::post(io, [this, change] { apply(*change); });
}

void DnsServer::Impl::apply(SandboxChange& change) {
    try {
        for (const auto& ns : change.remove) {
            if (auto it = served.find(ns); it != served.end()) {
                it->second->close();
                served.erase(it);
            }
        }
        for (auto& a : change.add) {
            if (auto it = served.find(a.sb.netns); it != served.end()) {
                it->second->close();  // the engine reopened its sockets: serve the new ones
                served.erase(it);
            }
            auto s = std::make_shared<ServedSandbox>(a.sb.netns, a.sb.netns_path, shared);
            if (s->start(std::move(a.udp), std::move(a.tcp))) served.emplace(a.sb.netns, s);
        }
        served_count.store(served.size(), std::memory_order_relaxed);
        log::debug("dns: {} sandbox(es) served", served.size());
    } catch (const std::exception& e) {
        log::error("dns: apply sandboxes: {}", e.what());
    }
}

void DnsServer::Impl::reload_host() {
    HostResolv next = read_host_resolv(opts.host_resolv_conf, opts.systemd_resolv_conf);
    {
        std::lock_guard lk(host_mu);
        if (next == host_) return;
        host_ = next;
    }
    fwd.set_servers(upstream_endpoints(next.upstreams));
    log::info("dns: host resolv.conf changed: {} upstream server(s) from {}", next.upstreams.size(),
              next.file);
    files.set_host(next.conf);  // rewrites the endpoint files whose content changes
}

DnsServer::DnsServer(DnsOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}

DnsServer::~DnsServer() = default;

void DnsServer::sync(const std::vector<core::Network>& networks,
                     const std::vector<core::DnsSandbox>& sandboxes) {
    try {
        {
            std::lock_guard lk(impl_->build_mu);
            impl_->networks_ = networks;  // O(networks): endpoints are shared, not copied
            impl_->rebuild();
        }
        std::vector<EndpointFiles::Want> want;
        for (const auto& n : networks)
            for (const auto& [id, ep] : n.endpoints)
                want.push_back({id, n.dns && !n.is_default, n.subnet6.has_value()});
        impl_->files.set_wanted(std::move(want));
        impl_->sync_sandboxes(sandboxes);
    } catch (const std::exception& e) {
        log::error("dns: sync: {}", e.what());
    }
}

void DnsServer::set_remote_endpoints(
    std::map<std::string, std::vector<core::Endpoint>> by_network_id) {
    try {
        std::lock_guard lk(impl_->build_mu);
        impl_->remote_ = std::move(by_network_id);
        impl_->rebuild();
    } catch (const std::exception& e) {
        log::error("dns: remote endpoints: {}", e.what());
    }
}

DnsStatus DnsServer::status() const {
    DnsStatus s;
    const HostResolv h = impl_->host();
    for (const auto& u : h.upstreams) s.upstreams.push_back(u.text);
    s.upstreams_file = h.file;
    s.sandboxes = impl_->served_count.load(std::memory_order_relaxed);
    s.names = impl_->view()->zone.names();
    s.in_flight = impl_->fwd.in_flight();
    s.counters = impl_->counters.load();
    return s;
}

EndpointDns DnsServer::endpoint_dns(const core::Network& net, const core::Endpoint& ep) const {
    const HostResolv h = impl_->host();
    const bool resolver = net.dns && !net.is_default;
    const dns::ResolvConf rc =
        dns::parse_resolv_conf(resolver ? dns::render_resolver_file(h.conf)
                                        : dns::render_plain_file(h.conf, net.subnet6.has_value()));
    return EndpointDns{dns::endpoint_file(impl_->opts.resolv_dir, ep.id), rc.nameservers, rc.search,
                       rc.options};
}

}  // namespace cnetd::daemon
