#include "netlink/route.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>

#include "netlink/detail.hpp"

namespace cnetd::netlink {

Result<void> add_default_route(RouteSocket& s, int ifindex, const std::string& ifname,
                               Ipv4 gateway) {
    const std::string what =
        fmt::format("add default route via {} dev {}{}", gateway.str(), ifname, s.where());
    detail::RoutePtr route(rtnl_route_alloc());
    auto dst = detail::ipv4_addr(Ipv4(0), 0);
    auto gw = detail::ipv4_addr(gateway);
    rtnl_nexthop* nh = rtnl_route_nh_alloc();
    if (!route || !dst || !gw || !nh) {
        if (nh) rtnl_route_nh_free(nh);
        return Error::sys(ENOMEM, what);
    }
    rtnl_route_set_family(route.get(), AF_INET);
    rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
    rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
    rtnl_route_set_scope(route.get(), RT_SCOPE_UNIVERSE);
    rtnl_route_set_type(route.get(), RTN_UNICAST);
    if (int rc = rtnl_route_set_dst(route.get(), dst.get()); rc < 0)
        return Error::sys(nle_to_errno(-rc), what);
    rtnl_route_nh_set_ifindex(nh, ifindex);
    rtnl_route_nh_set_gateway(nh, gw.get());
    rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh from here
    s.clear_error();
    if (int rc = rtnl_route_add(s.get(), route.get(), NLM_F_REPLACE); rc < 0)
        return s.error(rc, what);
    return ok();
}

}  // namespace cnetd::netlink
