#include "netlink/detail.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

namespace cnetd::netlink::detail {

NlAddrPtr ipv4_addr(Ipv4 a, int prefix) {
    uint32_t be = a.network_order();
    NlAddrPtr p(nl_addr_build(AF_INET, &be, sizeof be));
    if (p) nl_addr_set_prefixlen(p.get(), prefix);
    return p;
}

NlAddrPtr ipv6_addr(const Ipv6& a, int prefix) {
    NlAddrPtr p(nl_addr_build(AF_INET6, a.bytes().data(), a.bytes().size()));
    if (p) nl_addr_set_prefixlen(p.get(), prefix);
    return p;
}

NlAddrPtr mac_addr(const Mac& m) {
    return NlAddrPtr(nl_addr_build(AF_LLC, m.bytes().data(), m.bytes().size()));
}

bool to_ipv4(const nl_addr* a, Ipv4& out) {
    if (!a || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != 4) return false;
    uint32_t be;
    std::memcpy(&be, nl_addr_get_binary_addr(a), 4);
    out = Ipv4(ntohl(be));
    return true;
}

bool to_ipv6(const nl_addr* a, Ipv6& out) {
    if (!a || nl_addr_get_family(a) != AF_INET6 || nl_addr_get_len(a) != 16) return false;
    std::array<uint8_t, 16> b{};
    std::memcpy(b.data(), nl_addr_get_binary_addr(a), 16);
    out = Ipv6(b);
    return true;
}

LinkInfo link_info(rtnl_link* l) {
    LinkInfo info;
    info.ifindex = rtnl_link_get_ifindex(l);
    info.name = rtnl_link_get_name(l) ? rtnl_link_get_name(l) : "";
    const char* kind = rtnl_link_get_type(l);
    info.kind = kind ? kind : "";
    info.mtu = rtnl_link_get_mtu(l);
    info.flags = rtnl_link_get_flags(l);
    info.master = rtnl_link_get_master(l);
    if (nl_addr* a = rtnl_link_get_addr(l); a && nl_addr_get_len(a) == 6) {
        std::array<uint8_t, 6> b{};
        std::memcpy(b.data(), nl_addr_get_binary_addr(a), 6);
        info.mac = Mac(b);
    }
    return info;
}

}  // namespace cnetd::netlink::detail
