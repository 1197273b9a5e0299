// LinuxKernel's inspection and repair calls for reconciliation and netns GC (owner: persist).
// They open their own route socket per call (start-up and GC only, never the connect path), so
// they need nothing from linux_kernel.cpp's internals. Worker thread only, like every call.
#include <net/if.h>

#include <cerrno>

#include "netlink/addr.hpp"
#include "netlink/inspect.hpp"
#include "netlink/link.hpp"
#include "netlink/neigh.hpp"
#include "netlink/socket.hpp"
#include "netns/netns.hpp"
#include "platform/linux_kernel.hpp"

namespace cnetd::platform {

Result<std::optional<core::LinkStatus>> LinuxKernel::link_status(const std::string& name) {
    CNETD_TRY_ASSIGN(auto sock, netlink::RouteSocket::open_current());
    CNETD_TRY_ASSIGN(auto link, netlink::get_link(sock, name));
    if (!link) return std::optional<core::LinkStatus>{};
    core::LinkStatus st;
    st.kind = link->kind;
    st.up = (link->flags & IFF_UP) != 0;
    st.mac = link->mac;
    if (link->master != 0) {
        CNETD_TRY_ASSIGN(auto m, netlink::get_link_by_index(sock, link->master));
        if (m) st.master = m->name;
    }
    return std::optional<core::LinkStatus>(st);
}

Result<std::optional<core::PeerStatus>> LinuxKernel::peer_status(core::Netns& ns,
                                                                 const std::string& ifname) {
    CNETD_TRY_ASSIGN(UniqueFd fd, netns::open(ns.path()));
    CNETD_TRY_ASSIGN(netns::Id id, netns::identity(fd.get()));
    if (id != ns.id()) {
        return Error::sys(ESTALE, fmt::format("inspect {} in {}: the path now names another "
                                              "namespace",
                                              ifname, ns.path()));
    }
    CNETD_TRY_ASSIGN(auto sock, netlink::RouteSocket::open_in(fd.get(), ns.path()));
    CNETD_TRY_ASSIGN(auto link, netlink::get_link(sock, ifname));
    if (!link) return std::optional<core::PeerStatus>{};
    core::PeerStatus st;
    st.up = (link->flags & IFF_UP) != 0;
    st.mac = link->mac;
    CNETD_TRY_ASSIGN(auto v4, netlink::list_ipv4(sock, link->ifindex));
    for (const auto& a : v4) st.addresses4.push_back(a.local);
    CNETD_TRY_ASSIGN(st.addresses6, netlink::list_ipv6_global(sock, link->ifindex));
    CNETD_TRY_ASSIGN(st.default_gateway4, netlink::default_gateway4(sock, link->ifindex));
    CNETD_TRY_ASSIGN(st.default_gateway6, netlink::default_gateway6(sock, link->ifindex));
    return std::optional<core::PeerStatus>(std::move(st));
}

Result<void> LinuxKernel::set_master(const std::string& ifname, const std::string& bridge) {
    CNETD_TRY_ASSIGN(auto sock, netlink::RouteSocket::open_current());
    CNETD_TRY_ASSIGN(auto br, netlink::get_link(sock, bridge));
    if (!br)
        return Error::sys(ENODEV, fmt::format("set master of {} to {}: bridge", ifname, bridge));
    return netlink::set_master(sock, ifname, br->ifindex);
}

Result<std::vector<std::string>> LinuxKernel::bridge_veths(const std::string& bridge) {
    CNETD_TRY_ASSIGN(auto sock, netlink::RouteSocket::open_current());
    CNETD_TRY_ASSIGN(auto br, netlink::get_link(sock, bridge));
    std::vector<std::string> out;
    if (!br) return out;
    CNETD_TRY_ASSIGN(auto links, netlink::list_links(sock));
    for (const auto& l : links) {
        if (l.master == br->ifindex && l.kind == "veth") out.push_back(l.name);
    }
    return out;
}

Result<void> LinuxKernel::forget_neighbours(const std::string& dev, std::optional<Ipv4> v4,
                                            std::optional<Ipv6> v6) {
    CNETD_TRY_ASSIGN(auto sock, netlink::RouteSocket::open_current());
    CNETD_TRY_ASSIGN(auto link, netlink::get_link(sock, dev));
    if (!link) return ok();  // no device: no neighbour table entries on it either
    if (v4) CNETD_TRY(netlink::forget_neighbour(sock, link->ifindex, dev, *v4));
    if (v6) CNETD_TRY(netlink::forget_neighbour6(sock, link->ifindex, dev, *v6));
    return ok();
}

}  // namespace cnetd::platform
