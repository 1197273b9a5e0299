#include "netlink/link.hpp"

#include <net/if.h>

#include <cerrno>
#include <cstring>
#include <set>

#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <netlink/handlers.h>
#include <netlink/netlink.h>

#include "netlink/detail.hpp"

namespace cnetd::netlink {

using detail::CachePtr;
using detail::LinkPtr;

Result<std::optional<LinkInfo>> get_link(RouteSocket& s, const std::string& name) {
    return detail::get_link(s, 0, name, fmt::format("get link {}", name));
}

Result<unsigned> count_ports(RouteSocket& s, int master_ifindex, const std::string& master_name) {
    const std::string what = fmt::format("count ports of {}{}", master_name, s.where());
    auto request = [&]() -> Result<NlMsg> {
        NlMsg msg(nlmsg_alloc_simple(RTM_GETLINK, NLM_F_DUMP));
        if (!msg) return Error::sys(ENOMEM, what);
        ifinfomsg ifi{};
        ifi.ifi_family = AF_UNSPEC;
        if (nlmsg_append(msg.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
            nla_put_u32(msg.get(), IFLA_MASTER, static_cast<uint32_t>(master_ifindex)) < 0 ||
            nla_put_u32(msg.get(), IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0)
            return Error::sys(ENOBUFS, what);
        return msg;
    };
    // Kernels without dump filtering (< 4.1) send every link, so the master is checked here too.
    unsigned n = 0;
    auto count = [&](nl_msg* msg) {
        nlattr* tb[IFLA_MAX + 1] = {};
        if (nlmsg_parse(nlmsg_hdr(msg), sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0) return;
        if (tb[IFLA_MASTER] &&
            nla_get_u32(tb[IFLA_MASTER]) == static_cast<uint32_t>(master_ifindex))
            ++n;
    };
    // A link list that changes during the dump (e.g. the veth reaper deleting retired pairs)
    // marks it NLM_F_DUMP_INTR: detail::dump counts again.
    CNETD_TRY(detail::dump(
        s, request, count, [&] { n = 0; }, what));
    return n;
}

Result<void> set_up(RouteSocket& s, const std::string& name) {
    LinkPtr ch(rtnl_link_alloc());
    if (!ch) return Error::sys(ENOMEM, "set up");
    rtnl_link_set_flags(ch.get(), IFF_UP);
    return detail::change_by_name(s, name, ch.get(), "set up");
}

Result<void> set_mtu(RouteSocket& s, const std::string& name, unsigned mtu) {
    LinkPtr ch(rtnl_link_alloc());
    if (!ch) return Error::sys(ENOMEM, "set mtu");
    rtnl_link_set_mtu(ch.get(), mtu);
    return detail::change_by_name(s, name, ch.get(), fmt::format("set mtu {} on", mtu));
}

Result<void> set_hairpin(RouteSocket& s, int ifindex, const std::string& name) {
    const std::string what = fmt::format("set hairpin mode on bridge port {}{}", name, s.where());
    NlMsg msg(nlmsg_alloc_simple(RTM_SETLINK, 0));
    if (!msg) return Error::sys(ENOMEM, what);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_BRIDGE;
    ifi.ifi_index = ifindex;
    nlattr* pi = nullptr;
    if (nlmsg_append(msg.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
        !(pi = nla_nest_start(msg.get(), IFLA_PROTINFO | NLA_F_NESTED)) ||
        nla_put_u8(msg.get(), IFLA_BRPORT_MODE, 1) < 0) {
        return Error::sys(ENOBUFS, what);
    }
    nla_nest_end(msg.get(), pi);
    s.clear_error();
    if (int rc = s.send_sync(std::move(msg)); rc < 0) return s.error(rc, what);
    return ok();
}

Result<void> delete_link(RouteSocket& s, const std::string& name) {
    LinkPtr l(rtnl_link_alloc());
    if (!l) return Error::sys(ENOMEM, "delete link");
    rtnl_link_set_name(l.get(), name.c_str());
    s.clear_error();
    if (int rc = rtnl_link_delete(s.get(), l.get()); rc < 0) {
        int e = s.errno_of(rc);
        if (e == ENODEV || e == ENOENT) return ok();  // already gone: the goal is met
        return s.error(rc, fmt::format("delete link {}{}", name, s.where()));
    }
    return ok();
}

Result<std::string> free_ifname(RouteSocket& s, const std::string& prefix) {
    nl_cache* raw = nullptr;
    s.clear_error();
    int rc = rtnl_link_alloc_cache(s.get(), AF_UNSPEC, &raw);
    CachePtr cache(raw);
    if (rc < 0) return s.error(rc, fmt::format("list links{}", s.where()));
    std::set<std::string> used;
    for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
        const char* n = rtnl_link_get_name(reinterpret_cast<rtnl_link*>(o));
        if (n) used.insert(n);
    }
    for (unsigned i = 0;; ++i) {
        std::string candidate = fmt::format("{}{}", prefix, i);
        if (!used.count(candidate)) {
            CNETD_TRY(validate_ifname(candidate));
            return candidate;
        }
    }
}

}  // namespace cnetd::netlink
