// Element encoders: intent -> set and map elements (see elements.hpp), and port_map_values().
#include "firewall/elements.hpp"
#include "firewall/layout.hpp"

#include <arpa/inet.h>
#include <linux/netfilter.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace cnetd::firewall {
namespace detail {
namespace {

using Elem = nft::ElementSpec;

std::vector<uint8_t> be32(uint32_t host) {
    uint32_t v = htonl(host);
    std::vector<uint8_t> out(4);
    std::memcpy(out.data(), &v, 4);
    return out;
}

std::vector<uint8_t> ifname(const std::string& name) {
    std::vector<uint8_t> out(kIfnameLen, 0);
    std::memcpy(out.data(), name.data(), std::min<size_t>(name.size(), kIfnameLen - 1));
    return out;
}

std::vector<uint8_t> cat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// An rbtree interval: the start, and the first address after it flagged as an interval end
// (omitted when the range reaches 255.255.255.255, as nft does).
std::vector<Elem> interval(const Ipv4Cidr& c, std::vector<uint8_t> data = {}) {
    std::vector<Elem> out;
    out.push_back(Elem{be32(c.network().value()), {}, std::move(data), false});
    if (c.broadcast().value() != 0xffffffffu)
        out.push_back(Elem{be32(c.broadcast().value() + 1), {}, {}, true});
    return out;
}

std::vector<uint8_t> v6(const Ipv6& a) {
    return {a.bytes().begin(), a.bytes().end()};
}

Ipv6 v6_last(const Ipv6Cidr& c) {
    auto b = c.network().bytes();
    for (int i = 0; i < 16; ++i) {
        const int bits = std::clamp(c.prefix() - 8 * i, 0, 8);  // network bits in this byte
        b[i] = static_cast<uint8_t>(b[i] | (0xffu >> bits));
    }
    return Ipv6(b);
}

// An rbtree interval over an IPv6 prefix: start, and the first address after it (flagged as the
// interval end; omitted when the prefix reaches ffff:...:ffff).
std::vector<Elem> interval6(const Ipv6Cidr& c) {
    std::vector<Elem> out;
    out.push_back(Elem{v6(c.network()), {}, {}, false});
    auto b = v6_last(c).bytes();
    int i = 15;
    for (; i >= 0; --i)
        if (++b[i] != 0) break;  // +1 with carry
    if (i >= 0) out.push_back(Elem{v6(Ipv6(b)), {}, {}, true});
    return out;
}

std::vector<uint8_t> nfproto_padded(uint8_t f) {
    return {f, 0, 0, 0};  // meta nfproto: one byte, zero-padded to a register
}

const char* family_name(uint8_t f) {
    return f == NFPROTO_IPV6 ? "ipv6" : "ipv4";
}

bool masquerades(GatewayMode m) {
    return m == GatewayMode::Nat || m == GatewayMode::NatUnprotected;
}

// Subnets in `subnets`/`subnets6` get raw prerouting's "no direct routing" drop.
bool protects(GatewayMode m) {
    return m == GatewayMode::Nat || m == GatewayMode::Isolated;
}

std::vector<uint8_t> be16_padded(uint16_t host) {
    // inet_service in a concatenation: 2 bytes big endian, padded to a 4-byte register.
    return {static_cast<uint8_t>(host >> 8), static_cast<uint8_t>(host & 0xff), 0, 0};
}

std::vector<uint8_t> proto_padded(L4 p) {
    return {static_cast<uint8_t>(p), 0, 0, 0};  // inet_proto: 1 byte, padded
}

// The common case, served by the hash maps `published` / `published6`.
bool is_flat(const PortForward& p) {
    return p.host_first == p.host_last && (is_v6(p) ? !host_addr6(p) : !host_addr(p));
}

}  // namespace

std::vector<SetElems> network_elements(const NetworkRules& n) {
    const Ipv4Cidr s = n.subnet.masked();
    const std::string q = fmt::format("\"{}\"", n.bridge);
    std::vector<SetElems> out;
    out.push_back({"bridges", {Elem{ifname(n.bridge), {}, {}, false}}, fmt::format("{{ {} }}", q)});
    if (n.internal || protects(n.mode4))
        out.push_back({"subnets", interval(s), fmt::format("{{ {} }}", s.str())});
    auto net_elem = [&](const std::string& dev) {
        return Elem{cat(be32(s.network().value()), ifname(dev)),
                    cat(be32(s.broadcast().value()), ifname(dev)),
                    {},
                    false};
    };
    auto pair_elem = [&](const std::string& a, const std::string& b) {
        return Elem{cat(ifname(a), ifname(b)), {}, {}, false};
    };
    out.push_back({"nets", {net_elem(n.bridge)}, fmt::format("{{ {} . {} }}", s.str(), q)});
    if (n.icc)
        out.push_back(
            {"icc_bridges", {pair_elem(n.bridge, n.bridge)}, fmt::format("{{ {} . {} }}", q, q)});
    if (!n.tunnel.empty()) {
        // Overlay: the subnet (this node's block) may arrive on the tunnel (no direct routing)
        // and leaves through it un-NATed (no nat on own bridge); with icc, remote nodes'
        // containers are peers both ways, accepted before isolation and the internal drops.
        const std::string t = fmt::format("\"{}\"", n.tunnel);
        out.push_back({"nets", {net_elem(n.tunnel)}, fmt::format("{{ {} . {} }}", s.str(), t)});
        if (n.icc)
            out.push_back({"icc_bridges",
                           {pair_elem(n.bridge, n.tunnel), pair_elem(n.tunnel, n.bridge)},
                           fmt::format("{{ {} . {}, {} . {} }}", q, t, t, q)});
    }
    if (n.internal)
        out.push_back({"internal_bridges",
                       {Elem{ifname(n.bridge), {}, {}, false}},
                       fmt::format("{{ {} }}", q)});
    // Gateway modes per family (an internal network drops everything anyway).
    auto per_family = [&](const char* set, uint8_t fam) {
        SetElems* se = nullptr;
        for (auto& e : out)
            if (std::string_view(e.set) == set) se = &e;
        if (!se) {
            out.push_back({set, {}, {}});
            se = &out.back();
        }
        se->elems.push_back(Elem{cat(nfproto_padded(fam), ifname(n.bridge)), {}, {}, false});
        const std::string t = fmt::format("{} . {}", family_name(fam), q);
        se->text = se->text.empty() ? "{ " + t + " }"
                                    : se->text.substr(0, se->text.size() - 2) + ", " + t + " }";
    };
    if (!n.internal) {
        if (n.mode4 == GatewayMode::Isolated) per_family("isolated_bridges", NFPROTO_IPV4);
        if (n.subnet6 && n.mode6 == GatewayMode::Isolated)
            per_family("isolated_bridges", NFPROTO_IPV6);
        if (n.mode4 == GatewayMode::NatUnprotected) per_family("open_bridges", NFPROTO_IPV4);
        if (n.subnet6 && n.mode6 == GatewayMode::NatUnprotected)
            per_family("open_bridges", NFPROTO_IPV6);
    }
    if (n.masquerade && !n.internal && masquerades(n.mode4)) {
        if (n.snat_source)
            out.push_back({"snat_nets", interval(s, be32(n.snat_source->value())),
                           fmt::format("{{ {} : {} }}", s.str(), n.snat_source->str())});
        else
            out.push_back({"masq_nets", interval(s), fmt::format("{{ {} }}", s.str())});
    }
    if (n.subnet6) {
        const Ipv6Cidr s6 = n.subnet6->masked();
        if (n.internal || protects(n.mode6))
            out.push_back({"subnets6", interval6(s6), fmt::format("{{ {} }}", s6.str())});
        out.push_back({"nets6",
                       {Elem{cat(v6(s6.network()), ifname(n.bridge)),
                             cat(v6(v6_last(s6)), ifname(n.bridge)),
                             {},
                             false}},
                       fmt::format("{{ {} . {} }}", s6.str(), q)});
        // host_ipv4 (snat_source) is IPv4 only: IPv6 masquerades as usual.
        if (n.masquerade && !n.internal && masquerades(n.mode6))
            out.push_back({"masq_nets6", interval6(s6), fmt::format("{{ {} }}", s6.str())});
    }
    return out;
}

const char* proto_name(L4 p) {
    switch (p) {
        case L4::Tcp:
            return "tcp";
        case L4::Udp:
            return "udp";
        case L4::Sctp:
            return "sctp";
    }
    return "?";
}

std::string port_text(uint16_t first, uint16_t last) {
    return first == last ? fmt::format("{}", first) : fmt::format("{}-{}", first, last);
}

// 0.0.0.0 means "every address" too, as with Docker.
std::optional<Ipv4> host_addr(const PortForward& p) {
    if (p.host_ip && p.host_ip->value() != 0) return p.host_ip;
    return std::nullopt;
}

// :: likewise for IPv6.
std::optional<Ipv6> host_addr6(const PortForward& p) {
    if (p.host_ip6 && !p.host_ip6->is_unspecified()) return p.host_ip6;
    return std::nullopt;
}

bool is_v6(const PortForward& p) {
    return p.family == Family::V6;
}

std::string host_text(const PortForward& p) {
    // fmt rather than "[" + std::string&&: GCC 12 at -O3 warns (-Wrestrict, a false positive) on
    // operator+(const char*, std::string&&).
    if (is_v6(p)) return fmt::format("[{}]", host_addr6(p) ? host_addr6(p)->str() : "::");
    return host_addr(p) ? host_addr(p)->str() : "0.0.0.0";
}

std::string container_text(const PortForward& p) {
    return is_v6(p) ? fmt::format("[{}]", p.container_ip6.str()) : p.container_ip.str();
}

std::vector<uint8_t> container_addr(const PortForward& p) {
    return is_v6(p) ? v6(p.container_ip6) : be32(p.container_ip.value());
}

// The map elements of one mapping (normally exactly one; see port_map_values()).
SetElems port_elements(const PortForward& p) {
    const bool six = is_v6(p);
    const std::string cip = six ? p.container_ip6.str() : p.container_ip.str();
    if (is_flat(p)) {
        SetElems se{six ? "published6" : "published", {}, {}};
        Elem e;
        e.key = cat(proto_padded(p.proto), be16_padded(p.host_first));
        e.data = cat(container_addr(p), be16_padded(p.container_first));
        se.elems.push_back(std::move(e));
        se.text = fmt::format("{{ {} . {} : {} . {} }}", proto_name(p.proto), p.host_first, cip,
                              p.container_first);
        return se;
    }
    std::vector<uint8_t> lo, hi;
    std::string addr_text;
    if (six) {
        const auto a = host_addr6(p);
        lo = a ? v6(*a) : std::vector<uint8_t>(16, 0);
        hi = a ? v6(*a) : std::vector<uint8_t>(16, 0xff);
        addr_text = a ? a->str() : "::/0";
    } else {
        const auto a = host_addr(p);
        lo = be32(a ? a->value() : 0);
        hi = be32(a ? a->value() : 0xffffffffu);
        addr_text = a ? a->str() : "0.0.0.0/0";
    }
    SetElems se{six ? "published6_ranges" : "published_ranges", {}, {}};
    std::vector<std::string> texts;
    for (const auto& v : port_map_values(p)) {
        Elem e;
        e.key = cat(cat(lo, proto_padded(p.proto)), be16_padded(v.host_first));
        e.key_end = cat(cat(hi, proto_padded(p.proto)), be16_padded(v.host_last));
        e.data = cat(cat(container_addr(p), be16_padded(v.port_min)), be16_padded(v.port_max));
        se.elems.push_back(std::move(e));
        // As `nft list` prints it.
        texts.push_back(fmt::format("{} . {} . {} : {} . {} . {}", addr_text, proto_name(p.proto),
                                    port_text(v.host_first, v.host_last), cip, v.port_min,
                                    v.port_max));
    }
    std::string joined;
    for (size_t i = 0; i < texts.size(); ++i) joined += (i ? ", " : "") + texts[i];
    se.text = "{ " + joined + " }";
    return se;
}

// Gateway mode routed: the mapping's container side is reachable by direct routing. One
// interval element (container address . protocol . container port range), or none when the
// mapping's network (by bridge) is not routed for the mapping's family.
std::optional<SetElems> routed_elements(const PortForward& p,
                                        const std::vector<NetworkRules>& nets) {
    const NetworkRules* n = nullptr;
    for (const auto& x : nets)
        if (x.bridge == p.bridge) n = &x;
    if (!n || n->internal || (is_v6(p) ? n->mode6 : n->mode4) != GatewayMode::Routed)
        return std::nullopt;
    const uint16_t last = static_cast<uint16_t>(p.container_first + (p.host_last - p.host_first));
    const auto a = container_addr(p);
    Elem e;
    e.key = cat(cat(a, proto_padded(p.proto)), be16_padded(p.container_first));
    e.key_end = cat(cat(a, proto_padded(p.proto)), be16_padded(last));
    SetElems se{is_v6(p) ? "routed_ports6" : "routed_ports", {std::move(e)}, {}};
    se.text =
        fmt::format("{{ {} . {} . {} }}", is_v6(p) ? p.container_ip6.str() : p.container_ip.str(),
                    proto_name(p.proto), port_text(p.container_first, last));
    return se;
}

// The hairpin_self[6] element of a mapping's container address C: `C . C`.
SetElems self_element(const PortForward& p) {
    const auto a = container_addr(p);
    const std::string t = is_v6(p) ? p.container_ip6.str() : p.container_ip.str();
    return {is_v6(p) ? "hairpin_self6" : "hairpin_self",
            {Elem{cat(a, a), {}, {}, false}},
            fmt::format("{{ {} . {} }}", t, t)};
}

// One mapping per distinct container address (the first), in order.
std::vector<PortForward> distinct_self(const std::vector<PortForward>& ports) {
    std::set<SelfKey> seen;
    std::vector<PortForward> out;
    for (const auto& p : ports)
        if (seen.insert(self_key(p)).second) out.push_back(p);
    return out;
}

// The families whose bridged traffic skips netfilter (see BridgeNf).
std::optional<SetElems> unbridged_elements(BridgeNf bnf) {
    SetElems se{"unbridged", {}, {}};
    std::string names;
    for (auto [on, fam] :
         {std::pair{bnf.ipv4, uint8_t(NFPROTO_IPV4)}, std::pair{bnf.ipv6, uint8_t(NFPROTO_IPV6)}})
        if (!on) {
            se.elems.push_back(Elem{{fam}, {}, {}, false});
            names += (names.empty() ? "" : ", ") + std::string(family_name(fam));
        }
    if (se.elems.empty()) return std::nullopt;
    se.text = "{ " + names + " }";
    return se;
}

// Every element that depends on the mappings (and the environment), for expected_state() and
// render(): map elements, routed_ports, hairpin_self and unbridged.
std::vector<SetElems> all_port_elements(const std::vector<NetworkRules>& nets,
                                        const std::vector<PortForward>& ports, BridgeNf bnf) {
    std::vector<SetElems> out;
    for (const auto& p : ports) {
        out.push_back(port_elements(p));
        if (auto r = routed_elements(p, nets)) out.push_back(std::move(*r));
    }
    for (const auto& p : distinct_self(ports)) out.push_back(self_element(p));
    if (auto u = unbridged_elements(bnf)) out.push_back(std::move(*u));
    return out;
}

}  // namespace detail

std::vector<PortMapValue> port_map_values(const PortForward& p) {
    const uint32_t h = p.host_first, c = p.container_first;
    const uint32_t n = uint32_t(p.host_last) - p.host_first + 1;
    // Smallest modulus S >= n with r = h mod S: r <= c (port_min = c - r >= 0), r + n <= S (no
    // wrap inside the range) and port_max = c - r + S - 1 <= 65535. Small S first, so a single
    // port gives S = 1; at most 65536 cheap iterations, once per mapping.
    for (uint32_t S = n; S <= 65536; ++S) {
        const uint32_t r = h % S;
        if (r > c || r + n > S || c - r + S - 1 > 65535) continue;
        return {PortMapValue{p.host_first, p.host_last, static_cast<uint16_t>(c - r),
                             static_cast<uint16_t>(c - r + S - 1)}};
    }
    // n > h > c: no single modulus works; one element per port (S = 1 each).
    std::vector<PortMapValue> out;
    for (uint32_t i = 0; i < n; ++i)
        out.push_back(PortMapValue{static_cast<uint16_t>(h + i), static_cast<uint16_t>(h + i),
                                   static_cast<uint16_t>(c + i), static_cast<uint16_t>(c + i)});
    return out;
}

}  // namespace cnetd::firewall
