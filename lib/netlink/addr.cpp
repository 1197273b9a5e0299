#include "netlink/addr.hpp"

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <functional>

#include "netlink/detail.hpp"

namespace cnetd::netlink {

using detail::AddrPtr;
using detail::CachePtr;

namespace {

Result<AddrPtr> make_addr(int ifindex, const Ipv4Cidr& a, bool with_broadcast) {
    AddrPtr addr(rtnl_addr_alloc());
    auto local = detail::ipv4_addr(a.addr(), a.prefix());
    if (!addr || !local) return Error::sys(ENOMEM, "allocate address");
    rtnl_addr_set_ifindex(addr.get(), ifindex);
    rtnl_addr_set_family(addr.get(), AF_INET);
    if (int rc = rtnl_addr_set_local(addr.get(), local.get()); rc < 0)
        return Error::sys(nle_to_errno(-rc), "set local address");
    rtnl_addr_set_prefixlen(addr.get(), a.prefix());
    if (with_broadcast && a.prefix() < 31) {
        auto brd = detail::ipv4_addr(a.broadcast());
        if (!brd) return Error::sys(ENOMEM, "allocate address");
        if (int rc = rtnl_addr_set_broadcast(addr.get(), brd.get()); rc < 0)
            return Error::sys(nle_to_errno(-rc), "set broadcast address");
    }
    return addr;
}

Result<AddrPtr> make_addr6(int ifindex, const Ipv6Cidr& a) {
    AddrPtr addr(rtnl_addr_alloc());
    auto local = detail::ipv6_addr(a.addr(), a.prefix());
    if (!addr || !local) return Error::sys(ENOMEM, "allocate address");
    rtnl_addr_set_ifindex(addr.get(), ifindex);
    rtnl_addr_set_family(addr.get(), AF_INET6);
    if (int rc = rtnl_addr_set_local(addr.get(), local.get()); rc < 0)
        return Error::sys(nle_to_errno(-rc), "set local address");
    rtnl_addr_set_prefixlen(addr.get(), a.prefix());
    return addr;
}

}  // namespace

namespace {

// One address dump; calls `fn` for each address of `family` on `ifindex`.
Result<void> each_addr(RouteSocket& s, int family, int ifindex,
                       const std::function<void(rtnl_addr*)>& fn) {
    nl_cache* raw = nullptr;
    s.clear_error();
    int rc = rtnl_addr_alloc_cache(s.get(), &raw);
    CachePtr cache(raw);
    if (rc < 0) return s.error(rc, fmt::format("list addresses{}", s.where()));
    for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
        auto* a = reinterpret_cast<rtnl_addr*>(o);
        if (rtnl_addr_get_family(a) == family && rtnl_addr_get_ifindex(a) == ifindex) fn(a);
    }
    return ok();
}

}  // namespace

Result<std::vector<Ipv4Addr>> list_ipv4(RouteSocket& s, int ifindex) {
    std::vector<Ipv4Addr> out;
    CNETD_TRY(each_addr(s, AF_INET, ifindex, [&](rtnl_addr* a) {
        Ipv4 local, brd;
        if (!detail::to_ipv4(rtnl_addr_get_local(a), local)) return;
        detail::to_ipv4(rtnl_addr_get_broadcast(a), brd);
        out.push_back({Ipv4Cidr(local, rtnl_addr_get_prefixlen(a)), brd});
    }));
    return out;
}

Result<void> add_ipv4(RouteSocket& s, int ifindex, const std::string& ifname, const Ipv4Cidr& a,
                      bool replace) {
    const std::string what = fmt::format("add address {} to {}{}", a.str(), ifname, s.where());
    auto addr = make_addr(ifindex, a, true);
    if (!addr.ok()) return std::move(addr).error().wrap(what);
    s.clear_error();
    if (int rc = rtnl_addr_add(s.get(), addr->get(), replace ? NLM_F_REPLACE : NLM_F_EXCL); rc < 0)
        return s.error(rc, what);
    return ok();
}

Result<void> del_ipv4(RouteSocket& s, int ifindex, const std::string& ifname, const Ipv4Cidr& a) {
    const std::string what = fmt::format("remove address {} from {}{}", a.str(), ifname, s.where());
    auto addr = make_addr(ifindex, a, false);
    if (!addr.ok()) return std::move(addr).error().wrap(what);
    s.clear_error();
    if (int rc = rtnl_addr_delete(s.get(), addr->get(), 0); rc < 0) {
        int e = s.errno_of(rc);
        if (e == EADDRNOTAVAIL || e == ENOENT) return ok();
        return s.error(rc, what);
    }
    return ok();
}

Result<std::vector<Ipv6Addr>> list_ipv6(RouteSocket& s, int ifindex) {
    std::vector<Ipv6Addr> out;
    CNETD_TRY(each_addr(s, AF_INET6, ifindex, [&](rtnl_addr* a) {
        Ipv6 local;
        if (!detail::to_ipv6(rtnl_addr_get_local(a), local)) return;
        out.push_back({Ipv6Cidr(local, rtnl_addr_get_prefixlen(a)), rtnl_addr_get_flags(a)});
    }));
    return out;
}

Result<void> add_ipv6_nodad(RouteSocket& s, int ifindex, const std::string& ifname,
                            const Ipv6Cidr& a) {
    const std::string what = fmt::format("add address {} to {}{}", a.str(), ifname, s.where());
    auto addr = make_addr6(ifindex, a);
    if (!addr.ok()) return std::move(addr).error().wrap(what);
    rtnl_addr_set_flags(addr->get(), IFA_F_NODAD);
    s.clear_error();
    if (int rc = rtnl_addr_add(s.get(), addr->get(), NLM_F_REPLACE); rc < 0)
        return s.error(rc, what);
    return ok();
}

Result<void> del_ipv6(RouteSocket& s, int ifindex, const std::string& ifname, const Ipv6Cidr& a) {
    const std::string what = fmt::format("remove address {} from {}{}", a.str(), ifname, s.where());
    auto addr = make_addr6(ifindex, a);
    if (!addr.ok()) return std::move(addr).error().wrap(what);
    s.clear_error();
    if (int rc = rtnl_addr_delete(s.get(), addr->get(), 0); rc < 0) {
        int e = s.errno_of(rc);
        if (e == EADDRNOTAVAIL || e == ENOENT) return ok();
        return s.error(rc, what);
    }
    return ok();
}

}  // namespace cnetd::netlink
