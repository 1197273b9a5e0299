// Validation of intent (networks, mappings) and the text of a mapping for errors and logs.
#include "firewall/elements.hpp"
#include "firewall/ruleset.hpp"

namespace cnetd::firewall {

using namespace detail;

namespace {
// The interfaces a network's rules name: its bridge, and an overlay network's tunnel.
std::vector<std::string> devices(const NetworkRules& n) {
    std::vector<std::string> out{n.bridge};
    if (!n.tunnel.empty()) out.push_back(n.tunnel);
    return out;
}
}  // namespace

Result<void> validate(const NetworkRules& n) {
    auto frame = [&] { return fmt::format("network {}", n.id.empty() ? n.bridge : n.id); };
    if (n.id.empty()) return Error::invalid(fmt::format("{}: empty network id", frame()));
    if (auto r = validate_ifname(n.bridge); !r.ok())
        return Error(r.error()).wrap(frame() + ": bridge");
    if (!n.tunnel.empty()) {
        if (auto r = validate_ifname(n.tunnel); !r.ok())
            return Error(r.error()).wrap(frame() + ": tunnel");
        if (n.tunnel == n.bridge)
            return Error::invalid(
                fmt::format("{}: tunnel {} is the network's bridge", frame(), n.tunnel));
    }
    if (n.subnet.prefix() < 1 || n.subnet.prefix() > 32)
        return Error::invalid(
            fmt::format("{}: subnet {}: prefix must be 1..32", frame(), n.subnet.str()));
    if (n.subnet6 && (n.subnet6->prefix() < 1 || n.subnet6->prefix() > 128))
        return Error::invalid(
            fmt::format("{}: subnet6 {}: prefix must be 1..128", frame(), n.subnet6->str()));
    return ok();
}

std::string describe(const PortForward& p) {
    const uint16_t clast = static_cast<uint16_t>(p.container_first + (p.host_last - p.host_first));
    return fmt::format("{} {}:{} -> {}:{} ({})", proto_name(p.proto), host_text(p),
                       port_text(p.host_first, p.host_last), container_text(p),
                       port_text(p.container_first, clast), p.bridge);
}

Result<void> validate(const PortForward& p) {
    auto bad = [&](std::string_view why) {
        return Error::invalid(fmt::format("published port {}: {}", describe(p), why));
    };
    if (p.proto != L4::Tcp && p.proto != L4::Udp && p.proto != L4::Sctp)
        return bad("protocol must be tcp, udp or sctp");
    if (p.host_first == 0 || p.container_first == 0) return bad("port 0");
    if (p.host_last < p.host_first) return bad("host port range ends before it starts");
    if (uint32_t(p.container_first) + (p.host_last - p.host_first) > 65535)
        return bad("container port range goes beyond 65535");
    if (p.family == Family::V6) {
        if (p.container_ip6.is_unspecified() || p.container_ip6.is_multicast() ||
            p.container_ip6.is_loopback())
            return bad(
                fmt::format("container_ip6 {} is not a container address", p.container_ip6.str()));
        if (p.host_ip6 && p.host_ip6->is_multicast())
            return bad(fmt::format("host_ip6 {} is a multicast address", p.host_ip6->str()));
        // Unlike 127.0.0.1 (route_localnet), ::1 cannot be served in the kernel: after the nat
        // output DNAT and the masquerade the container's answer comes back on the bridge, is
        // un-NATed to destination ::1 in prerouting, and the IPv6 input route lookup for a
        // loopback destination is strict (rt6_need_strict: the route must be on the incoming
        // device; ::1's is on lo), so the kernel drops it (docs/firewall.md, kernel test
        // PublishedPorts6.LoopbackIsRefusedAndKernelDropsIt).
        if (p.host_ip6 && p.host_ip6->is_loopback())
            return bad(
                "host_ip6 ::1 cannot be published in the kernel: IPv6 has no route_localnet, the "
                "kernel drops the container's answers to ::1 arriving on the bridge");
    } else if (p.container_ip.value() == 0) {
        return bad("no container address");
    }
    if (auto r = validate_ifname(p.bridge); !r.ok())
        return Error(r.error()).wrap(fmt::format("published port {}: bridge", describe(p)));
    return ok();
}

Result<void> validate(const std::vector<NetworkRules>& nets) {
    for (size_t i = 0; i < nets.size(); ++i) {
        CNETD_TRY(validate(nets[i]));
        for (size_t j = 0; j < i; ++j) {
            if (nets[i].id == nets[j].id)
                return Error::invalid(fmt::format("network {}: duplicate id", nets[i].id));
            if (nets[i].bridge == nets[j].bridge)
                return Error::invalid(fmt::format("network {}: bridge {} already used by {}",
                                                  nets[i].id, nets[i].bridge, nets[j].id));
            for (const auto& a : devices(nets[i]))
                for (const auto& b : devices(nets[j]))
                    if (a == b)
                        return Error::invalid(
                            fmt::format("network {}: interface {} already used by {}", nets[i].id,
                                        a, nets[j].id));
            if (nets[i].subnet.masked().overlaps(nets[j].subnet.masked()))
                return Error::invalid(fmt::format("network {}: subnet {} overlaps {} of {}",
                                                  nets[i].id, nets[i].subnet.str(),
                                                  nets[j].subnet.str(), nets[j].id));
            if (nets[i].subnet6 && nets[j].subnet6 &&
                nets[i].subnet6->masked().overlaps(nets[j].subnet6->masked()))
                return Error::invalid(fmt::format("network {}: subnet6 {} overlaps {} of {}",
                                                  nets[i].id, nets[i].subnet6->str(),
                                                  nets[j].subnet6->str(), nets[j].id));
        }
    }
    return ok();
}

}  // namespace cnetd::firewall
