#include "netlink/route.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>

#include "netlink/detail.hpp"

namespace cnetd::netlink {

namespace {

// A main-table default route (dst 0/0 of `family`) out of `ifindex`, via `gw` (null: on-link).
Result<detail::RoutePtr> default_route_object(int family, int ifindex, detail::NlAddrPtr gw,
                                              uint32_t metric, const std::string& what) {
    detail::RoutePtr route(rtnl_route_alloc());
    detail::NlAddrPtr dst = family == AF_INET ? detail::ipv4_addr(Ipv4(0), 0)
                                              : detail::ipv6_addr(Ipv6(), 0);
    rtnl_nexthop* nh = rtnl_route_nh_alloc();
    if (!route || !dst || !nh) {
        if (nh) rtnl_route_nh_free(nh);
        return Error::sys(ENOMEM, what);
    }
    rtnl_route_set_family(route.get(), static_cast<uint8_t>(family));
    rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
    rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
    rtnl_route_set_scope(route.get(), gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
    rtnl_route_set_type(route.get(), RTN_UNICAST);
    rtnl_route_set_priority(route.get(), metric);
    if (int rc = rtnl_route_set_dst(route.get(), dst.get()); rc < 0) {
        rtnl_route_nh_free(nh);
        return Error::sys(nle_to_errno(-rc), what);
    }
    rtnl_route_nh_set_ifindex(nh, ifindex);
    if (gw) rtnl_route_nh_set_gateway(nh, gw.get());
    rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh from here
    return route;
}

// Adds or replaces (same metric) the default route via `gw` (null: on-link) out of `ifindex`.
Result<void> replace_default(RouteSocket& s, int family, int ifindex, detail::NlAddrPtr gw,
                             uint32_t metric, const std::string& what) {
    CNETD_TRY_ASSIGN(detail::RoutePtr route,
                     default_route_object(family, ifindex, std::move(gw), metric, what));
    s.clear_error();
    if (int rc = rtnl_route_add(s.get(), route.get(), NLM_F_REPLACE); rc < 0)
        return s.error(rc, what);
    return ok();
}

// One default route via `gw` on `ifindex`, in the main table, replacing any of the same metric.
Result<void> add_default(RouteSocket& s, int family, int ifindex, detail::NlAddrPtr gw,
                         uint32_t metric, const std::string& what) {
    if (!gw) return Error::sys(ENOMEM, what);  // the gateway's allocation failed
    return replace_default(s, family, ifindex, std::move(gw), metric, what);
}

}  // namespace

Result<void> add_default_route(RouteSocket& s, int ifindex, const std::string& ifname,
                               Ipv4 gateway) {
    return add_default(
        s, AF_INET, ifindex, detail::ipv4_addr(gateway), 0,
        fmt::format("add default route via {} dev {}{}", gateway.str(), ifname, s.where()));
}

Result<void> add_default_route6(RouteSocket& s, int ifindex, const std::string& ifname,
                                const Ipv6& gateway) {
    return add_default(
        s, AF_INET6, ifindex, detail::ipv6_addr(gateway), 0,
        fmt::format("add default route via {} dev {}{}", gateway.str(), ifname, s.where()));
}

Result<std::optional<DefaultRoute>> get_default_route(RouteSocket& s, int family) {
    std::optional<DefaultRoute> best;
    CNETD_TRY(detail::each_main_route(s, family, "read default route", [&](rtnl_route* r) {
        nl_addr* d = rtnl_route_get_dst(r);
        if (rtnl_route_get_type(r) != RTN_UNICAST || (d && nl_addr_get_prefixlen(d) != 0) ||
            rtnl_route_get_nnexthops(r) < 1)
            return;
        DefaultRoute cur;
        cur.metric = rtnl_route_get_priority(r);
        rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
        cur.ifindex = rtnl_route_nh_get_ifindex(nh);
        if (nl_addr* gw = rtnl_route_nh_get_gateway(nh)) {
            Ipv4 g4;
            Ipv6 g6;
            if (family == AF_INET && detail::to_ipv4(gw, g4)) cur.gateway4 = g4;
            if (family == AF_INET6 && detail::to_ipv6(gw, g6)) cur.gateway6 = g6;
        }
        if (!best || cur.metric < best->metric) best = cur;
    }));
    return best;
}

Result<void> put_default_route(RouteSocket& s, int family, const DefaultRoute& r,
                               const std::string& ifname) {
    const std::string what = fmt::format("restore default route dev {}{}", ifname, s.where());
    detail::NlAddrPtr gw;
    if (r.gateway4) gw = detail::ipv4_addr(*r.gateway4);
    if (r.gateway6) gw = detail::ipv6_addr(*r.gateway6);
    return replace_default(s, family, r.ifindex, std::move(gw), r.metric, what);
}

Result<void> delete_default_route(RouteSocket& s, int family, int ifindex, uint32_t metric,
                                  const std::string& ifname) {
    const std::string what = fmt::format("delete default route dev {}{}", ifname, s.where());
    CNETD_TRY_ASSIGN(detail::RoutePtr route,
                     default_route_object(family, ifindex, nullptr, metric, what));
    // Any scope and protocol: the kernel then matches on table, dst, metric (IPv6: 0 = any) and
    // the nexthop's device only.
    rtnl_route_set_scope(route.get(), RT_SCOPE_NOWHERE);
    rtnl_route_set_protocol(route.get(), RTPROT_UNSPEC);
    s.clear_error();
    int rc = rtnl_route_delete(s.get(), route.get(), 0);
    if (rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV) return ok();
    if (rc < 0) return s.error(rc, what);
    return ok();
}

Result<std::vector<Route4>> list_main_routes4(RouteSocket& s) {
    std::vector<Route4> out;
    CNETD_TRY(detail::each_main_route(s, AF_INET, "list IPv4 routes", [&](rtnl_route* r) {
        Route4 out_r;
        nl_addr* d = rtnl_route_get_dst(r);
        Ipv4 dst;
        // A default route may come without RTA_DST: libnl then reports no (or an empty) address.
        if (d && nl_addr_get_len(d) > 0 && !detail::to_ipv4(d, dst)) return;
        out_r.dst = Ipv4Cidr(dst, d ? static_cast<int>(nl_addr_get_prefixlen(d)) : 0);
        out_r.scope = static_cast<unsigned>(rtnl_route_get_scope(r));
        out_r.type = rtnl_route_get_type(r);
        out_r.priority = rtnl_route_get_priority(r);
        out_r.flags = rtnl_route_get_flags(r);
        if (rtnl_route_get_nnexthops(r) > 0) {
            rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
            out_r.oif = rtnl_route_nh_get_ifindex(nh);
            out_r.flags |= rtnl_route_nh_get_flags(nh);
            Ipv4 gw;
            if (detail::to_ipv4(rtnl_route_nh_get_gateway(nh), gw)) out_r.gateway = gw;
        }
        out.push_back(out_r);
    }));
    return out;
}

namespace {

// The route object of `r` (gateway left out when `with_gateway` is false: a delete by key).
Result<detail::RoutePtr> route4_object(const GatewayRoute4& r, bool with_gateway,
                                       const std::string& what) {
    detail::RoutePtr route(rtnl_route_alloc());
    detail::NlAddrPtr dst = detail::ipv4_addr(r.dst.addr(), r.dst.prefix());
    detail::NlAddrPtr gw = detail::ipv4_addr(r.gateway);
    rtnl_nexthop* nh = rtnl_route_nh_alloc();
    if (!route || !dst || !gw || !nh) {
        if (nh) rtnl_route_nh_free(nh);
        return Error::sys(ENOMEM, what);
    }
    rtnl_route_set_family(route.get(), AF_INET);
    rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
    rtnl_route_set_type(route.get(), RTN_UNICAST);
    if (int rc = rtnl_route_set_dst(route.get(), dst.get()); rc < 0) {
        rtnl_route_nh_free(nh);
        return Error::sys(nle_to_errno(-rc), what);
    }
    rtnl_route_nh_set_ifindex(nh, r.ifindex);
    if (with_gateway) {
        rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
        rtnl_route_set_scope(route.get(), RT_SCOPE_UNIVERSE);
        rtnl_route_nh_set_gateway(nh, gw.get());
        // A single-nexthop route carries its nexthop flags in rtm_flags (as `ip route` sends it).
        if (r.onlink) rtnl_route_set_flags(route.get(), RTNH_F_ONLINK);
    } else {
        // Any scope and protocol: the kernel then matches on table, dst and the device only.
        rtnl_route_set_scope(route.get(), RT_SCOPE_NOWHERE);
        rtnl_route_set_protocol(route.get(), RTPROT_UNSPEC);
    }
    rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh from here
    return route;
}

}  // namespace

Result<NlMsg> build_route4_add(const GatewayRoute4& r, int nlm_flags) {
    const std::string what = fmt::format("add route {} via {}{}", r.dst.str(), r.gateway.str(),
                                         r.onlink ? " onlink" : "");
    CNETD_TRY_ASSIGN(detail::RoutePtr route, route4_object(r, true, what));
    nl_msg* msg = nullptr;
    if (int rc = rtnl_route_build_add_request(route.get(), nlm_flags, &msg); rc < 0)
        return Error::sys(nle_to_errno(-rc), what);
    return NlMsg(msg);
}

Result<NlMsg> build_route4_delete(const GatewayRoute4& r) {
    const std::string what = fmt::format("delete route {}", r.dst.str());
    CNETD_TRY_ASSIGN(detail::RoutePtr route, route4_object(r, false, what));
    nl_msg* msg = nullptr;
    if (int rc = rtnl_route_build_del_request(route.get(), 0, &msg); rc < 0)
        return Error::sys(nle_to_errno(-rc), what);
    return NlMsg(msg);
}

Result<void> add_route4(RouteSocket& s, const GatewayRoute4& r, const std::string& ifname) {
    const std::string what = fmt::format("add route {} via {} dev {}{}", r.dst.str(),
                                         r.gateway.str(), ifname, s.where());
    auto msg = build_route4_add(r, NLM_F_EXCL);
    if (!msg.ok()) return std::move(msg).error().wrap(what);
    s.clear_error();
    if (int rc = s.send_sync(std::move(msg).value()); rc < 0) return s.error(rc, what);
    return ok();
}

}  // namespace cnetd::netlink
