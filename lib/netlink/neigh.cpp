#include "netlink/neigh.hpp"

#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <sys/socket.h>

#include <cerrno>

namespace cnetd::netlink {

namespace {

Result<void> del_neigh(RouteSocket& s, int family, int ifindex, const void* addr, size_t len,
                       const std::string& what) {
    NlMsg msg(nlmsg_alloc_simple(RTM_DELNEIGH, 0));
    if (!msg) return Error::sys(ENOMEM, what);
    ndmsg nd{};
    nd.ndm_family = static_cast<uint8_t>(family);
    nd.ndm_ifindex = ifindex;
    if (nlmsg_append(msg.get(), &nd, sizeof nd, NLMSG_ALIGNTO) < 0 ||
        nla_put(msg.get(), NDA_DST, static_cast<int>(len), addr) < 0) {
        return Error::sys(ENOMEM, what);
    }
    if (int rc = s.send_sync(std::move(msg)); rc < 0) {
        if (s.errno_of(rc) == ENOENT) return ok();  // no entry: nothing to forget
        return s.error(rc, what);
    }
    return ok();
}

}  // namespace

Result<void> forget_neighbour(RouteSocket& s, int ifindex, const std::string& ifname, Ipv4 addr) {
    const uint32_t be = addr.network_order();
    return del_neigh(s, AF_INET, ifindex, &be, sizeof be,
                     fmt::format("forget neighbour {} on {}{}", addr.str(), ifname, s.where()));
}

Result<void> forget_neighbour6(RouteSocket& s, int ifindex, const std::string& ifname,
                               const Ipv6& addr) {
    return del_neigh(s, AF_INET6, ifindex, addr.bytes().data(), addr.bytes().size(),
                     fmt::format("forget neighbour {} on {}{}", addr.str(), ifname, s.where()));
}

}  // namespace cnetd::netlink
