#include "netlink/bridge.hpp"

#include <linux/if_addr.h>
#include <linux/netlink.h>

#include <cerrno>
#include <utility>

#include <unistd.h>

#include "netlink/addr.hpp"
#include "netlink/detail.hpp"
#include "netlink/link.hpp"
#include "base/sysctl.hpp"

namespace cnetd::netlink {

Result<NlMsg> build_bridge_create(const std::string& name, const Mac& mac, unsigned mtu) {
    const std::string what = fmt::format("create bridge {}", name);
    CNETD_TRY(validate_ifname(name));
    detail::LinkPtr link(rtnl_link_alloc());
    auto hw = detail::mac_addr(mac);
    if (!link || !hw) return Error::sys(ENOMEM, what);
    if (int rc = rtnl_link_set_type(link.get(), "bridge"); rc < 0)
        return Error::sys(nle_to_errno(-rc), what);
    rtnl_link_set_name(link.get(), name.c_str());
    rtnl_link_set_addr(link.get(), hw.get());
    rtnl_link_set_mtu(link.get(), mtu);
    nl_msg* msg = nullptr;
    if (int rc = rtnl_link_build_add_request(link.get(), NLM_F_CREATE | NLM_F_EXCL, &msg); rc < 0)
        return Error::sys(nle_to_errno(-rc), what);
    return NlMsg(msg);
}

namespace {

Result<void> configure_ipv6(RouteSocket& s, const BridgeParams& p, const LinkInfo& br) {
    // accept_ra/accept_dad before disable_ipv6=0: enabling IPv6 on an up bridge creates its
    // link-local address at once, and that one must not start DAD either. No ENOENT escape here:
    // a dual-stack network cannot work on a kernel without IPv6, so that is an error.
    for (const char* knob : {"accept_ra", "accept_dad", "disable_ipv6"}) {
        auto r = sysctl::write(fmt::format("net/ipv6/conf/{}/{}", p.name, knob), "0");
        if (!r.ok()) {
            if (r.error().error_number() == ENOENT && ::access("/proc/sys/net/ipv6", F_OK) != 0)
                return Error::sys(EAFNOSUPPORT, "enable IPv6: IPv6 is disabled in this kernel");
            return std::move(r).error();
        }
    }
    // Make address6 the only global address. A right one that is somehow tentative or failed DAD
    // (added by someone else without NODAD) is re-added; a clean one is refreshed in place
    // (NLM_F_REPLACE keeps the address and its routes).
    CNETD_TRY_ASSIGN(auto addrs, list_ipv6(s, br.ifindex));
    for (const auto& a : addrs) {
        if (a.local.addr().is_link_local()) continue;
        const bool bad_state = a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED);
        if (a.local == *p.address6 && !bad_state) continue;
        CNETD_TRY(del_ipv6(s, br.ifindex, p.name, a.local));
    }
    return add_ipv6_nodad(s, br.ifindex, p.name, *p.address6);
}

Result<void> configure(RouteSocket& s, const BridgeParams& p, const LinkInfo& br, bool created) {
    // Router advertisements must not configure the host's uplink-facing bridge. ENOENT: IPv6 is
    // disabled on this host, nothing to turn off.
    auto ra = sysctl::write(fmt::format("net/ipv6/conf/{}/accept_ra", p.name), "0");
    if (!ra.ok() && ra.error().error_number() != ENOENT) return std::move(ra).error();

    if (!created && br.mtu != p.mtu) CNETD_TRY(set_mtu(s, p.name, p.mtu));

    // Make p.address the only IPv4 address (none with no_ipv4_address).
    CNETD_TRY(make_only_ipv4(s, br.ifindex, p.name,
                             p.no_ipv4_address ? std::nullopt : std::optional(p.address)));
    if (p.address6) CNETD_TRY(configure_ipv6(s, p, br));
    return set_up(s, p.name);
}

}  // namespace

Result<bool> ensure_bridge(RouteSocket& s, const BridgeParams& p) {
    CNETD_TRY_ASSIGN(auto existing, get_link(s, p.name));
    bool created = false;
    if (!existing) {
        CNETD_TRY_ASSIGN(NlMsg msg, build_bridge_create(p.name, p.mac ? *p.mac : Mac::random_local(), p.mtu));
        if (int rc = s.send_sync(std::move(msg)); rc < 0) {
            // EEXIST: someone created it between our lookup and now; adopt it below.
            if (s.errno_of(rc) != EEXIST)
                return s.error(rc, fmt::format("create bridge {}{}", p.name, s.where()));
        } else {
            created = true;
        }
        auto again = get_link(s, p.name);
        if (!again.ok()) {
            if (created) (void)delete_link(s, p.name);  // rollback
            return std::move(again).error();
        }
        existing = std::move(again).value();
        if (!existing)
            return Error::sys(ENODEV, fmt::format("create bridge {}{}: vanished after creation",
                                                  p.name, s.where()));
    }
    if (existing->kind != "bridge") {
        return Error::conflict(fmt::format("\"{}\" exists and is a {} link, not a bridge", p.name,
                                           existing->kind.empty() ? "device" : existing->kind));
    }
    auto r = configure(s, p, *existing, created);
    if (!r.ok()) {
        if (created) (void)delete_link(s, p.name);  // rollback: leave nothing half-configured
        return std::move(r).error().wrap(fmt::format("bridge {}", p.name));
    }
    return created;
}

}  // namespace cnetd::netlink
