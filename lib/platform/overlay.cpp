// LinuxKernel's overlay data plane: the VXLAN device of an overlay network and its peers' entries
// (netlink/vxlan.hpp has the model and the programming order). Input is checked here, before
// anything reaches the kernel, so a bad spec changes nothing and names its field.
#include <cerrno>

#include "netlink/addr.hpp"
#include "netlink/inspect.hpp"
#include "netlink/link.hpp"
#include "netlink/socket.hpp"
#include "netlink/vxlan.hpp"
#include "platform/linux_kernel.hpp"

namespace cnetd::platform {

namespace {

constexpr uint32_t kMaxVni = (1u << 24) - 1;

Result<void> check_spec(const core::VxlanSpec& spec) {
    const std::string what = fmt::format("ensure vxlan {}", spec.name);
    CNETD_TRY(validate_ifname(spec.name).context(what));
    if (spec.vni < 1 || spec.vni > kMaxVni)
        return Error::invalid(
            fmt::format("{}: vni {} out of range 1..{}", what, spec.vni, kMaxVni));
    if (spec.port == 0) return Error::invalid(fmt::format("{}: port 0", what));
    if (spec.local == Ipv4()) return Error::invalid(fmt::format("{}: local address 0.0.0.0", what));
    if (spec.mtu < 68 || spec.mtu > 65535)
        return Error::invalid(fmt::format("{}: mtu {} out of range 68..65535", what, spec.mtu));
    if (spec.mac.is_zero() || spec.mac.is_multicast())
        return Error::invalid(
            fmt::format("{}: mac {} is not a unicast address", what, spec.mac.str()));
    if (!spec.underlay.empty()) CNETD_TRY(validate_ifname(spec.underlay).context(what));
    return ok();
}

Result<void> check_peer(const std::string& op, const std::string& dev, const core::VxlanPeer& p) {
    const std::string what = fmt::format("{} {} on {}", op, p.block.str(), dev);
    CNETD_TRY(validate_ifname(dev).context(what));
    if (p.block != p.block.masked())
        return Error::invalid(
            fmt::format("{}: block {} is not a network address (the network is "
                        "{})",
                        what, p.block.str(), p.block.masked().str()));
    if (p.mac.is_zero() || p.mac.is_multicast())
        return Error::invalid(
            fmt::format("{}: mac {} is not a unicast address", what, p.mac.str()));
    if (p.underlay == Ipv4())
        return Error::invalid(fmt::format("{}: underlay address 0.0.0.0", what));
    return ok();
}

netlink::VxlanPeerEntry entry(const core::VxlanPeer& p) {
    return {p.block, p.underlay, p.mac};
}

}  // namespace

Result<bool> LinuxKernel::ensure_vxlan(const core::VxlanSpec& spec) {
    CNETD_TRY(check_spec(spec));
    netlink::RouteSocket& s = host_socket();
    int lower = 0;
    if (!spec.underlay.empty()) {
        CNETD_TRY_ASSIGN(auto link, netlink::get_link(s, spec.underlay));
        if (!link)
            return Error::sys(
                ENODEV, fmt::format("ensure vxlan {}: underlay link {}", spec.name, spec.underlay));
        lower = link->ifindex;
    }
    return netlink::ensure_vxlan(
        s, {spec.name, spec.vni, spec.local, spec.port, lower, spec.mtu, spec.mac, spec.address});
}

Result<void> LinuxKernel::add_vxlan_peer(const std::string& dev, const core::VxlanPeer& peer) {
    CNETD_TRY(check_peer("add vxlan peer", dev, peer));
    netlink::RouteSocket& s = host_socket();
    CNETD_TRY_ASSIGN(auto link, netlink::get_link(s, dev));
    if (!link)
        return Error::sys(ENODEV, fmt::format("add vxlan peer {} on {}", peer.block.str(), dev));
    return netlink::add_vxlan_peer(s, link->ifindex, dev, entry(peer));
}

Result<void> LinuxKernel::remove_vxlan_peer(const std::string& dev, const core::VxlanPeer& peer) {
    CNETD_TRY(check_peer("remove vxlan peer", dev, peer));
    netlink::RouteSocket& s = host_socket();
    CNETD_TRY_ASSIGN(auto link, netlink::get_link(s, dev));
    if (!link) return ok();  // the device's entries went with it
    return netlink::remove_vxlan_peer(s, link->ifindex, dev, entry(peer));
}

Result<std::vector<core::VxlanPeer>> LinuxKernel::vxlan_peers(const std::string& dev) {
    CNETD_TRY(validate_ifname(dev).context("list vxlan peers"));
    netlink::RouteSocket& s = host_socket();
    std::vector<core::VxlanPeer> out;
    CNETD_TRY_ASSIGN(auto link, netlink::get_link(s, dev));
    if (!link) return out;
    CNETD_TRY_ASSIGN(auto entries, netlink::list_vxlan_peers(s, link->ifindex, dev));
    for (const auto& e : entries) out.push_back({e.block, e.underlay, e.mac});
    return out;
}

Result<std::pair<std::string, unsigned>> LinuxKernel::link_of_address(Ipv4 a) {
    netlink::RouteSocket& s = host_socket();
    CNETD_TRY_ASSIGN(auto ifindex, netlink::ipv4_owner(s, a));
    if (!ifindex) return Error::not_found("no link has address " + a.str());
    CNETD_TRY_ASSIGN(auto link, netlink::get_link_by_index(s, *ifindex));
    if (!link)  // deleted between the two requests
        return Error::not_found("no link has address " + a.str());
    return std::pair(link->name, link->mtu);
}

}  // namespace cnetd::platform
