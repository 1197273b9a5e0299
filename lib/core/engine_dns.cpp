// The embedded resolver's sandboxes (engine.hpp, DnsSandbox; docs/dns.md): which namespaces get
// the 127.0.0.11 sockets and DNAT, opened with the first endpoint on a dns network and closed with
// the last. This is the engine's (namespace-wide, whatever the network's driver), not a driver's:
// the sockets belong to the namespace, which may sit on networks of several drivers.
#include "base/log.hpp"
#include "core/engine.hpp"
#include "core/engine_detail.hpp"

namespace cnetd::core {

Result<std::unique_ptr<DnsListener>> Engine::open_dns(Netns& ns) {
    CNETD_TRY_ASSIGN(std::unique_ptr<DnsListener> l,
                     ns.open_dns_listener().context("embedded DNS: open 127.0.0.11 listener"));
    CNETD_TRY(ns.set_dns_nat(l->udp_port(), l->tcp_port())
                  .context(fmt::format("embedded DNS: DNAT 127.0.0.11:53 to udp {} tcp {}",
                                       l->udp_port(), l->tcp_port())));
    return l;
}

Result<void> Engine::ensure_dns(const Net& n, Netns& ns, Rollback& undo) {
    if (!n.net.dns || dns_.count(ns.id())) return ok();
    CNETD_TRY_ASSIGN(std::unique_ptr<DnsListener> l,
                     ns.open_dns_listener().context("embedded DNS: open 127.0.0.11 listener"));
    const NetnsId id = ns.id();
    const uint16_t udp = l->udp_port(), tcp = l->tcp_port();
    dns_.emplace(id, DnsState{ns.path(), std::move(l)});
    undo.add([this, id] { dns_.erase(id); });  // closes the sockets
    // Undone even when set_dns_nat fails: a failed batch changed nothing, but removing an absent
    // table is success, and the table is ours in any case.
    undo.add([&ns] { log_undo_failure(ns.remove_dns_nat(), "remove table ip cnetd-dns"); });
    CNETD_TRY(ns.set_dns_nat(udp, tcp).context(
        fmt::format("embedded DNS: DNAT 127.0.0.11:53 to udp {} tcp {}", udp, tcp)));
    log::info("embedded DNS in {}: 127.0.0.11:53 -> udp {} tcp {}", ns.path(), udp, tcp);
    return ok();
}

bool Engine::has_dns_endpoint(NetnsId id) const {
    for (const auto& [nid, n] : nets_) {
        if (!n.net.dns) continue;
        for (const auto& [eid, ep] : n.net.endpoints)
            if (ep.netns_id == id) return true;
    }
    return false;
}

void Engine::release_dns(NetnsId id, Netns* ns) {
    auto it = dns_.find(id);
    if (it == dns_.end() || has_dns_endpoint(id)) return;
    if (ns) {
        if (auto r = ns->remove_dns_nat(); !r.ok())
            log::warn("embedded DNS in {}: remove table ip cnetd-dns: {}", it->second.netns_path,
                      r.error().message());
    }
    log::info("embedded DNS in {}: closed", it->second.netns_path);
    dns_.erase(it);  // closes the sockets (TCP shut down first: a server's dup stops at once)
}

void Engine::open_dns_sandboxes() {
    // One endpoint per namespace is enough to open it by (all of them name the same namespace).
    std::map<NetnsId, const Endpoint*> wanted;
    for (const auto& [nid, n] : nets_) {
        if (!n.net.dns) continue;
        for (const auto& [eid, ep] : n.net.endpoints)
            if (!dns_.count(ep.netns_id)) wanted.emplace(ep.netns_id, &ep);
    }
    for (const auto& [id, ep] : wanted) {
        std::unique_ptr<Netns> ns;
        if (netns_fate(*ep, &ns) != NetnsFate::Alive) continue;  // GC takes it (logged there)
        auto l = open_dns(*ns);
        if (!l.ok()) {
            log::error("embedded DNS in {}: {}", ep->netns_path, l.error().message());
            continue;
        }
        log::info("embedded DNS in {}: 127.0.0.11:53 -> udp {} tcp {}", ep->netns_path,
                  (*l)->udp_port(), (*l)->tcp_port());
        dns_.emplace(id, DnsState{ep->netns_path, std::move(l).value()});
    }
}

std::vector<DnsSandbox> Engine::dns_sandboxes() const {
    std::map<NetnsId, std::vector<std::string>> networks;
    for (const auto& [nid, n] : nets_) {
        if (!n.net.dns) continue;
        for (const auto& [eid, ep] : n.net.endpoints)
            if (dns_.count(ep.netns_id)) networks[ep.netns_id].push_back(nid);
    }
    std::vector<DnsSandbox> out;
    out.reserve(dns_.size());
    for (const auto& [id, st] : dns_) {
        DnsSandbox s;
        s.netns = id;
        s.netns_path = st.netns_path;
        s.udp_fd = st.listener->udp_fd();
        s.tcp_fd = st.listener->tcp_fd();
        if (auto it = networks.find(id); it != networks.end()) s.networks = std::move(it->second);
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace cnetd::core
