#include "netlink/inspect.hpp"

#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <netlink/route/nexthop.h>

#include "netlink/detail.hpp"

namespace cnetd::netlink {

using detail::CachePtr;
using detail::LinkPtr;

namespace {

// The default route's gateway out of `ifindex` in `family`, through `to` (address converter).
template <class Addr, class Conv>
Result<std::optional<Addr>> default_gateway(RouteSocket& s, int family, int ifindex, Conv to) {
    std::optional<Addr> found;
    CNETD_TRY(detail::each_main_route(s, family, "list routes", [&](rtnl_route* r) {
        nl_addr* dst = rtnl_route_get_dst(r);
        if (found || (dst && nl_addr_get_prefixlen(dst) != 0)) return;
        for (int i = 0; i < rtnl_route_get_nnexthops(r) && !found; ++i) {
            rtnl_nexthop* nh = rtnl_route_nexthop_n(r, i);
            if (!nh || rtnl_route_nh_get_ifindex(nh) != ifindex) continue;
            Addr a;
            if (to(rtnl_route_nh_get_gateway(nh), a)) found = a;
        }
    }));
    return found;
}

}  // namespace

Result<std::optional<LinkInfo>> get_link_by_index(RouteSocket& s, int ifindex) {
    return detail::get_link(s, ifindex, "", fmt::format("get link #{}", ifindex));
}

Result<std::vector<LinkInfo>> list_links(RouteSocket& s) {
    nl_cache* raw = nullptr;
    s.clear_error();
    int rc = rtnl_link_alloc_cache(s.get(), AF_UNSPEC, &raw);
    CachePtr cache(raw);
    if (rc < 0) return s.error(rc, fmt::format("list links{}", s.where()));
    std::vector<LinkInfo> out;
    for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
        out.push_back(detail::link_info(reinterpret_cast<rtnl_link*>(o)));
    }
    return out;
}

Result<void> set_master(RouteSocket& s, const std::string& name, int master_ifindex) {
    LinkPtr ch(rtnl_link_alloc());
    if (!ch) return Error::sys(ENOMEM, "set master");
    rtnl_link_set_master(ch.get(), master_ifindex);
    return detail::change_by_name(s, name, ch.get(), "set master of");
}

Result<std::vector<Ipv6Cidr>> list_ipv6_global(RouteSocket& s, int ifindex) {
    std::vector<Ipv6Cidr> out;
    CNETD_TRY(detail::each_addr(s, AF_INET6, ifindex, [&](rtnl_addr* a) {
        Ipv6 v;
        if (rtnl_addr_get_scope(a) == RT_SCOPE_UNIVERSE &&
            detail::to_ipv6(rtnl_addr_get_local(a), v))
            out.emplace_back(v, rtnl_addr_get_prefixlen(a));
    }));
    return out;
}

Result<std::optional<Ipv4>> default_gateway4(RouteSocket& s, int ifindex) {
    return default_gateway<Ipv4>(s, AF_INET, ifindex, [](const nl_addr* a, Ipv4& out) {
        return a && detail::to_ipv4(a, out);
    });
}

Result<std::optional<Ipv6>> default_gateway6(RouteSocket& s, int ifindex) {
    return default_gateway<Ipv6>(
        s, AF_INET6, ifindex, [](const nl_addr* a, Ipv6& out) { return detail::to_ipv6(a, out); });
}

}  // namespace cnetd::netlink
