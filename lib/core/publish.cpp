#include "core/publish.hpp"

#include <cstdio>
#include <set>

#include "base/log.hpp"
#include "core/engine_detail.hpp"

namespace cnetd::core {

namespace {

// "32768\t60999" -> {32768, 60999}; anything odd falls back to the kernel's default range.
PortRange parse_port_range_sysctl(const std::string& s) {
    unsigned a = 0, b = 0;
    if (std::sscanf(s.c_str(), "%u %u", &a, &b) == 2 && a > 0 && a <= b && b <= 65535) {
        return {static_cast<uint16_t>(a), static_cast<uint16_t>(b)};
    }
    return {32768, 60999};
}

// "8080,9000-9010" -> {8080, 9000, ..., 9010}
std::set<uint16_t> parse_reserved_ports(const std::string& s) {
    std::set<uint16_t> out;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t comma = s.find(',', pos);
        std::string item =
            s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        unsigned a = 0, b = 0;
        if (std::sscanf(item.c_str(), "%u-%u", &a, &b) == 2) {
            for (unsigned p = a; p <= b && p <= 65535; ++p) out.insert(static_cast<uint16_t>(p));
        } else if (std::sscanf(item.c_str(), "%u", &a) == 1 && a <= 65535) {
            out.insert(static_cast<uint16_t>(a));
        }
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return out;
}

bool loopback6(const PortBinding& b) {
    return b.ipv6 && b.host_ip6 && b.host_ip6->is_loopback();
}

// The relays of one endpoint's [::1] bindings, with the sockets of `holds` (its entry of
// Publisher::holds_, aligned with ep.ports; null when it has none).
void relays_of(const Endpoint& ep, const std::vector<std::unique_ptr<PortHold>>* holds,
               std::vector<LoopbackRelay>& out) {
    for (size_t i = 0; i < ep.ports.size(); ++i) {
        const PortBinding& b = ep.ports[i];
        if (!loopback6(b)) continue;
        std::vector<int> fds;
        if (holds && i < holds->size() && (*holds)[i]) fds = (*holds)[i]->fds();
        for (uint32_t k = 0; k < b.host.size(); ++k) {
            LoopbackRelay r;
            r.endpoint = ep.name;
            r.proto = b.proto;
            r.host_port = static_cast<uint16_t>(b.host.first + k);
            r.container_ip = ep.address6->addr();
            r.container_port = static_cast<uint16_t>(b.container.first + k);
            r.fd = k < fds.size() ? fds[k] : -1;
            out.push_back(std::move(r));
        }
    }
}

}  // namespace

Publisher::Publisher(Kernel& kernel, firewall::Backend& fw) : kernel_(kernel), fw_(fw) {}

void Publisher::load_port_range() {
    auto range = kernel_.read_sysctl("net/ipv4/ip_local_port_range");
    auto reserved = kernel_.read_sysctl("net/ipv4/ip_local_reserved_ports");
    ports_ = PortAllocator(parse_port_range_sysctl(range.ok() ? *range : ""),
                           parse_reserved_ports(reserved.ok() ? *reserved : ""));
}

Result<void> Publisher::restore(const Endpoint& ep) {
    for (const auto& b : ep.ports) {
        CNETD_TRY(ports_.claim(b));
        auto h = hold_one(ep, b);
        if (h.ok()) {
            holds_[ep.id].push_back(std::move(h).value());
        } else {
            log::warn("endpoint {}: {}", ep.name, h.error().message());
            holds_[ep.id].push_back(nullptr);  // keeps holds_ aligned with ep.ports
        }
    }
    return ok();
}

Result<void> Publisher::reserve(const Network& net, Endpoint& ep,
                                const std::vector<PortPlan>& ports, Rollback& undo) {
    for (const PortPlan& p : ports) {
        CNETD_TRY_ASSIGN(auto bs, ports_.allocate(p.req, p.dual));
        undo.add([this, bs] {
            for (const auto& b : bs) ports_.release(b);
        });
        ep.ports.insert(ep.ports.end(), bs.begin(), bs.end());
    }
    return fw_.check_ports(forwards_of(net, ep)).context("publish ports");
}

// The one rule (docs/cni.md, "Host ports"): no hold for CNI attachments (endpoints with a
// container_id), because with CNI the runtime owns the host-port reservation: Podman binds every
// published port itself right after ADD, and a socket of ours makes that bind fail (no shared hold
// works for UDP, and a shared one reserves nothing). Conflicts with other mappings are still
// refused by the allocator. [::1] stays held: cnetd serves it itself, on that very socket
// (daemon/relay.hpp).
Result<std::unique_ptr<PortHold>> Publisher::hold_one(const Endpoint& ep, const PortBinding& b) {
    if (!ep.container_id.empty() && !loopback6(b)) return std::unique_ptr<PortHold>();
    const int proto = proto_number(b.proto);
    return b.ipv6 ? kernel_.hold_ports6(proto, b.host_ip6, b.host.first, b.host.last)
                  : kernel_.hold_ports(proto, b.host_ip, b.host.first, b.host.last);
}

Result<void> Publisher::hold(const Endpoint& ep, Rollback& undo) {
    std::vector<std::unique_ptr<PortHold>> holds;
    for (const auto& b : ep.ports) {
        CNETD_TRY_ASSIGN(auto h, hold_one(ep, b));
        holds.push_back(std::move(h));  // nullptr (kept, for alignment with ep.ports): not held
    }
    if (holds.empty()) return ok();
    holds_[ep.id] = std::move(holds);
    undo.add([this, id = ep.id] { holds_.erase(id); });
    return ok();
}

Result<void> Publisher::publish(const Network& net, const Endpoint& ep, Rollback& undo) {
    auto forwards = forwards_of(net, ep);
    CNETD_TRY(fw_.add_ports(forwards).context("publish ports"));
    undo.add([this, forwards = std::move(forwards)] {
        if (auto r = fw_.remove_ports(forwards); !r.ok())
            log::error("rollback: unpublish: {}", r.error().message());
    });
    return ok();
}

void Publisher::unpublish(const Network& net, const Endpoint& ep, bool firewall) {
    if (firewall && !ep.ports.empty()) {
        if (auto fw = fw_.remove_ports(forwards_of(net, ep)); !fw.ok())
            log::warn("endpoint {}: unpublish: {}", ep.name, fw.error().message());
    }
    holds_.erase(ep.id);
    for (const auto& b : ep.ports) ports_.release(b);
}

std::vector<LoopbackRelay> Publisher::loopback_relays(
    const std::vector<const Network*>& nets) const {
    std::vector<LoopbackRelay> out;
    for (const Network* n : nets) {
        for (const auto& [eid, ep] : n->endpoints) {
            if (!ep.address6) continue;
            auto held = holds_.find(eid);
            relays_of(ep, held == holds_.end() ? nullptr : &held->second, out);
        }
    }
    return out;
}

std::vector<firewall::PortForward> Publisher::forwards_of(const Network& n, const Endpoint& ep) {
    std::vector<firewall::PortForward> out;
    for (const auto& b : ep.ports) {
        firewall::PortForward f;
        f.proto = static_cast<firewall::L4>(proto_number(b.proto));
        f.host_first = b.host.first;
        f.host_last = b.host.last;
        f.container_ip = ep.address.addr();
        f.container_first = b.container.first;
        f.bridge = n.bridge;
        if (b.ipv6) {
            if (!ep.address6) continue;  // cannot happen: v6 bindings need a v6 endpoint
            // [::1] is relayed in userland by the daemon (loopback_relays()): no map element.
            if (loopback6(b)) continue;
            f.family = firewall::Family::V6;
            f.host_ip6 = b.host_ip6;
            f.container_ip6 = ep.address6->addr();
        } else {
            f.host_ip = b.host_ip;
        }
        out.push_back(std::move(f));
    }
    return out;
}

bool Publisher::in_use(Proto p, std::optional<Ipv4> ip, uint16_t port) const {
    return ports_.in_use(p, ip, port);
}

size_t Publisher::held(const std::string& ep_id) const {
    auto it = holds_.find(ep_id);
    if (it == holds_.end()) return 0;
    size_t n = 0;
    for (const auto& h : it->second) n += h != nullptr;
    return n;
}

}  // namespace cnetd::core
