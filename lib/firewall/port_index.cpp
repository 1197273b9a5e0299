// The port index: mapping identity (port_key, same_key), overlap (overlaps) and an O(log n)
// overlap search over an ordered index (find_overlap). See ruleset.hpp for the contract.
#include <iterator>

#include "firewall/elements.hpp"
#include "firewall/ruleset.hpp"

namespace cnetd::firewall {

using namespace detail;

bool overlaps(const PortForward& a, const PortForward& b) {
    if (a.family != b.family || a.proto != b.proto) return false;
    const bool same_addr =
        a.family == Family::V6
            ? (!host_addr6(a) || !host_addr6(b) || host_addr6(a) == host_addr6(b))
            : (!host_addr(a) || !host_addr(b) || host_addr(a) == host_addr(b));
    return same_addr && a.host_first <= b.host_last && b.host_first <= a.host_last;
}

PortKey port_key(const PortForward& p) {
    std::array<uint8_t, 16> a{};
    if (p.family == Family::V6) {
        if (p.host_ip6) a = p.host_ip6->bytes();
    } else if (p.host_ip) {
        const uint32_t v = p.host_ip->value();
        a = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
    }
    return {static_cast<uint8_t>(p.family), static_cast<uint8_t>(p.proto), a, p.host_first,
            p.host_last};
}

const PortForward* find_overlap(const PortMap& index, const PortForward& p, const PortMap& skip) {
    const auto fam = static_cast<uint8_t>(p.family), proto = static_cast<uint8_t>(p.proto);
    using Addr = std::array<uint8_t, 16>;
    auto in_slice = [&](PortMap::const_iterator it, const Addr& a) {
        return it != index.end() && std::get<0>(it->first) == fam &&
               std::get<1>(it->first) == proto && std::get<2>(it->first) == a;
    };
    auto hit = [&](PortMap::const_iterator it) {
        return !skip.count(it->first) && overlaps(p, it->second);
    };
    // One host address's slice: its mappings are disjoint, so sorted by first port they are
    // sorted by last port too. Only the last one starting below p's range can reach into it
    // (an earlier one ends before that one starts); the others that overlap start inside it.
    auto in_address = [&](const Addr& a) -> const PortForward* {
        auto it = index.lower_bound(PortKey{fam, proto, a, p.host_first, 0});
        if (it != index.begin())
            if (auto prev = std::prev(it); in_slice(prev, a) && hit(prev)) return &prev->second;
        for (; in_slice(it, a) && std::get<3>(it->first) <= p.host_last; ++it)
            if (hit(it)) return &it->second;
        return nullptr;
    };
    const Addr addr = std::get<2>(port_key(p));  // a copy: port_key() returns a temporary
    const Addr every{};
    if (addr != every) {
        if (const auto* q = in_address(addr)) return q;
        return in_address(every);
    }
    // p covers every address: it meets each address present (a handful on any host).
    for (auto it = index.lower_bound(PortKey{fam, proto, every, 0, 0});
         it != index.end() && std::get<0>(it->first) == fam && std::get<1>(it->first) == proto;) {
        const Addr a = std::get<2>(it->first);
        if (const auto* q = in_address(a)) return q;
        it = index.upper_bound(PortKey{fam, proto, a, 0xffff, 0xffff});
    }
    return nullptr;
}

bool same_key(const PortForward& a, const PortForward& b) {
    return a.family == b.family && a.proto == b.proto &&
           (a.family == Family::V6 ? host_addr6(a) == host_addr6(b)
                                   : host_addr(a) == host_addr(b)) &&
           a.host_first == b.host_first && a.host_last == b.host_last;
}

}  // namespace cnetd::firewall
