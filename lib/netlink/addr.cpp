#include "netlink/addr.hpp"

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <cerrno>

#include "netlink/detail.hpp"

namespace cnetd::netlink {

using detail::AddrPtr;

namespace {

// An address object for `local`/`prefix` on `ifindex` (`local` is null when its allocation failed):
// what add and delete send, for either family.
Result<AddrPtr> make_addr(int ifindex, int family, detail::NlAddrPtr local, int prefix) {
    AddrPtr addr(rtnl_addr_alloc());
    if (!addr || !local) return Error::sys(ENOMEM, "allocate address");
    rtnl_addr_set_ifindex(addr.get(), ifindex);
    rtnl_addr_set_family(addr.get(), family);
    if (int rc = rtnl_addr_set_local(addr.get(), local.get()); rc < 0)
        return Error::sys(nle_to_errno(-rc), "set local address");
    rtnl_addr_set_prefixlen(addr.get(), prefix);
    return addr;
}

Result<AddrPtr> make_addr4(int ifindex, const Ipv4Cidr& a, bool with_broadcast) {
    auto addr = make_addr(ifindex, AF_INET, detail::ipv4_addr(a.addr(), a.prefix()), a.prefix());
    if (!addr.ok() || !with_broadcast || a.prefix() >= 31) return addr;
    auto brd = detail::ipv4_addr(a.broadcast());
    if (!brd) return Error::sys(ENOMEM, "allocate address");
    if (int rc = rtnl_addr_set_broadcast(addr->get(), brd.get()); rc < 0)
        return Error::sys(nle_to_errno(-rc), "set broadcast address");
    return addr;
}

Result<AddrPtr> make_addr6(int ifindex, const Ipv6Cidr& a) {
    return make_addr(ifindex, AF_INET6, detail::ipv6_addr(a.addr(), a.prefix()), a.prefix());
}

// RTM_NEWADDR with `nlm_flags` (NLM_F_REPLACE or NLM_F_EXCL); errors framed by `what`.
Result<void> send_add(RouteSocket& s, Result<AddrPtr> addr, int nlm_flags,
                      const std::string& what) {
    if (!addr.ok()) return std::move(addr).error().wrap(what);
    s.clear_error();
    if (int rc = rtnl_addr_add(s.get(), addr->get(), nlm_flags); rc < 0) return s.error(rc, what);
    return ok();
}

// RTM_DELADDR; an address that is already gone is success (delete is idempotent).
Result<void> send_del(RouteSocket& s, Result<AddrPtr> addr, const std::string& what) {
    if (!addr.ok()) return std::move(addr).error().wrap(what);
    s.clear_error();
    if (int rc = rtnl_addr_delete(s.get(), addr->get(), 0); rc < 0) {
        int e = s.errno_of(rc);
        if (e == EADDRNOTAVAIL || e == ENOENT) return ok();
        return s.error(rc, what);
    }
    return ok();
}

std::string add_what(RouteSocket& s, const std::string& ifname, const std::string& cidr) {
    return fmt::format("add address {} to {}{}", cidr, ifname, s.where());
}

std::string del_what(RouteSocket& s, const std::string& ifname, const std::string& cidr) {
    return fmt::format("remove address {} from {}{}", cidr, ifname, s.where());
}

}  // namespace

Result<std::vector<Ipv4Addr>> list_ipv4(RouteSocket& s, int ifindex) {
    std::vector<Ipv4Addr> out;
    CNETD_TRY(detail::each_addr(s, AF_INET, ifindex, [&](rtnl_addr* a) {
        Ipv4 local, brd;
        if (!detail::to_ipv4(rtnl_addr_get_local(a), local)) return;
        detail::to_ipv4(rtnl_addr_get_broadcast(a), brd);
        out.push_back({Ipv4Cidr(local, rtnl_addr_get_prefixlen(a)), brd});
    }));
    return out;
}

Result<void> add_ipv4(RouteSocket& s, int ifindex, const std::string& ifname, const Ipv4Cidr& a,
                      bool replace) {
    return send_add(s, make_addr4(ifindex, a, true), replace ? NLM_F_REPLACE : NLM_F_EXCL,
                    add_what(s, ifname, a.str()));
}

Result<void> del_ipv4(RouteSocket& s, int ifindex, const std::string& ifname, const Ipv4Cidr& a) {
    return send_del(s, make_addr4(ifindex, a, false), del_what(s, ifname, a.str()));
}

Result<void> make_only_ipv4(RouteSocket& s, int ifindex, const std::string& ifname,
                            const std::optional<Ipv4Cidr>& want) {
    CNETD_TRY_ASSIGN(auto addrs, list_ipv4(s, ifindex));
    bool have_right = false;
    for (const auto& a : addrs) {
        // /31 and /32 addresses are added without a broadcast address (make_addr4).
        const Ipv4 brd = want && want->prefix() < 31 ? want->broadcast() : Ipv4();
        if (want && a.local == *want && a.broadcast == brd) {
            have_right = true;
            continue;
        }
        CNETD_TRY(del_ipv4(s, ifindex, ifname, a.local));
    }
    if (want && !have_right) CNETD_TRY(add_ipv4(s, ifindex, ifname, *want, true));
    return ok();
}

Result<std::optional<int>> ipv4_owner(RouteSocket& s, Ipv4 a) {
    std::optional<int> owner;
    CNETD_TRY(detail::each_addr(s, AF_INET, 0, [&](rtnl_addr* addr) {
        Ipv4 local;
        if (!owner && detail::to_ipv4(rtnl_addr_get_local(addr), local) && local == a)
            owner = rtnl_addr_get_ifindex(addr);
    }));
    return owner;
}

Result<std::vector<Ipv6Addr>> list_ipv6(RouteSocket& s, int ifindex) {
    std::vector<Ipv6Addr> out;
    CNETD_TRY(detail::each_addr(s, AF_INET6, ifindex, [&](rtnl_addr* a) {
        Ipv6 local;
        if (!detail::to_ipv6(rtnl_addr_get_local(a), local)) return;
        out.push_back({Ipv6Cidr(local, rtnl_addr_get_prefixlen(a)), rtnl_addr_get_flags(a)});
    }));
    return out;
}

Result<void> add_ipv6_nodad(RouteSocket& s, int ifindex, const std::string& ifname,
                            const Ipv6Cidr& a) {
    auto addr = make_addr6(ifindex, a);
    if (addr.ok()) rtnl_addr_set_flags(addr->get(), IFA_F_NODAD);
    return send_add(s, std::move(addr), NLM_F_REPLACE, add_what(s, ifname, a.str()));
}

Result<void> del_ipv6(RouteSocket& s, int ifindex, const std::string& ifname, const Ipv6Cidr& a) {
    return send_del(s, make_addr6(ifindex, a), del_what(s, ifname, a.str()));
}

}  // namespace cnetd::netlink
