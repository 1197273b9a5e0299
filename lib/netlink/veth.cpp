#include "netlink/veth.hpp"

#include <linux/netlink.h>
#include <netlink/route/link/veth.h>

#include <cerrno>

#include "netlink/detail.hpp"

namespace cnetd::netlink {

namespace {

struct VethFree {
    void operator()(rtnl_link* l) const noexcept { rtnl_link_veth_release(l); }
};

}  // namespace

Result<NlMsg> build_veth_create(const VethParams& p) {
    const std::string what = fmt::format("create veth {}", p.host_name);
    CNETD_TRY(validate_ifname(p.host_name).context(what));
    CNETD_TRY(validate_ifname(p.peer_name).context(what));
    // rtnl_link_veth_alloc() makes the link and its peer; releasing the link releases both.
    std::unique_ptr<rtnl_link, VethFree> link(rtnl_link_veth_alloc());
    if (!link) return Error::sys(ENOMEM, what);
    detail::LinkPtr peer(rtnl_link_veth_get_peer(link.get()));  // +1 reference
    auto mac = detail::mac_addr(p.peer_mac);
    if (!peer || !mac) return Error::sys(ENOMEM, what);

    rtnl_link_set_name(link.get(), p.host_name.c_str());
    rtnl_link_set_mtu(link.get(), p.mtu);
    if (p.master_ifindex > 0) rtnl_link_set_master(link.get(), p.master_ifindex);

    rtnl_link_set_name(peer.get(), p.peer_name.c_str());
    rtnl_link_set_mtu(peer.get(), p.mtu);
    rtnl_link_set_addr(peer.get(), mac.get());
    if (p.peer_netns_fd >= 0) rtnl_link_set_ns_fd(peer.get(), p.peer_netns_fd);

    nl_msg* msg = nullptr;
    if (int rc = rtnl_link_build_add_request(link.get(), NLM_F_CREATE | NLM_F_EXCL, &msg); rc < 0)
        return Error::sys(nle_to_errno(-rc), what);
    return NlMsg(msg);
}

Result<void> create_veth(RouteSocket& s, const VethParams& p, const std::string& netns_label) {
    const std::string what = fmt::format("create veth {}{}", p.host_name,
                                         netns_label.empty() ? "" : " in " + netns_label);
    auto msg = build_veth_create(p);
    if (!msg.ok()) return std::move(msg).error();
    if (int rc = s.send_sync(std::move(msg).value()); rc < 0) return s.error(rc, what);
    return ok();
}

}  // namespace cnetd::netlink
