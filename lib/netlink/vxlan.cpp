#include "netlink/vxlan.hpp"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "base/log.hpp"
#include "netlink/addr.hpp"
#include "netlink/detail.hpp"
#include "netlink/link.hpp"
#include "netlink/route.hpp"

namespace cnetd::netlink {

namespace {

using NeighPtr = CHandle<rtnl_neigh, rtnl_neigh_put>;

constexpr const char* part_name(PeerPart part) {
    switch (part) {
        case PeerPart::Neighbour:
            return "neighbour";
        case PeerPart::Fdb:
            return "fdb entry";
        case PeerPart::Route:
            return "route";
    }
    return "?";
}

// An existing link of the device's name and, when it is a vxlan device, what identifies it.
struct Existing {
    LinkInfo info;
    uint32_t vni = 0;
    Ipv4 local;
    uint32_t port = 0;
    uint32_t lower = 0;
    bool learning = false;
};

Result<std::optional<Existing>> read_link(RouteSocket& s, const std::string& name) {
    rtnl_link* raw = nullptr;
    s.clear_error();
    int rc = rtnl_link_get_kernel(s.get(), 0, name.c_str(), &raw);
    detail::LinkPtr l(raw);
    if (rc < 0) {
        int e = s.errno_of(rc);
        if (e == ENODEV || e == ENOENT) return std::optional<Existing>{};
        return s.error(rc, fmt::format("get link {}{}", name, s.where()));
    }
    Existing ex;
    ex.info = detail::link_info(l.get());
    if (ex.info.kind != "vxlan" || !rtnl_link_is_vxlan(l.get())) return std::optional(ex);
    (void)rtnl_link_vxlan_get_id(l.get(), &ex.vni);
    (void)rtnl_link_vxlan_get_port(l.get(), &ex.port);
    (void)rtnl_link_vxlan_get_link(l.get(), &ex.lower);  // absent: stays 0
    ex.learning = rtnl_link_vxlan_get_learning(l.get()) > 0;
    nl_addr* local = nullptr;
    if (rtnl_link_vxlan_get_local(l.get(), &local) == 0) {
        detail::NlAddrPtr owned(local);  // the getter hands out a new address object
        detail::to_ipv4(owned.get(), ex.local);
    }
    return std::optional(ex);
}

// Why an existing vxlan device cannot be adjusted in place, "" when it can.
std::string incompatibility(const Existing& ex, const VxlanParams& p) {
    if (ex.vni != p.vni) return fmt::format("vni {} (want {})", ex.vni, p.vni);
    if (ex.port != p.port) return fmt::format("port {} (want {})", ex.port, p.port);
    if (ex.local != p.local)
        return fmt::format("local {} (want {})", ex.local.str(), p.local.str());
    if (p.lower_ifindex != 0 && ex.lower != static_cast<uint32_t>(p.lower_ifindex))
        return fmt::format("lower link {} (want {})", ex.lower, p.lower_ifindex);
    if (ex.learning) return "learning on";
    // The kernel flushes a device's neighbours (permanent ones too) when its MAC changes: set in
    // place, the peers' entries would be lost without the caller knowing. Made again, it does.
    if (ex.info.mac != p.mac)
        return fmt::format("mac {} (want {})", ex.info.mac.str(), p.mac.str());
    return "";
}

// MTU, the only IPv4 address, up: what ensure_vxlan adjusts in place.
Result<void> configure(RouteSocket& s, const VxlanParams& p, const LinkInfo& dev) {
    if (dev.mtu != p.mtu) CNETD_TRY(set_mtu(s, p.name, p.mtu));
    CNETD_TRY(make_only_ipv4(s, dev.ifindex, p.name, p.address));
    return set_up(s, p.name);
}

Result<void> create(RouteSocket& s, const VxlanParams& p) {
    CNETD_TRY_ASSIGN(NlMsg msg, build_vxlan_create(p));
    s.clear_error();
    if (int rc = s.send_sync(std::move(msg)); rc < 0)
        return s.error(rc, fmt::format("create vxlan {}{}", p.name, s.where()));
    return ok();
}

}  // namespace

Result<NlMsg> build_vxlan_create(const VxlanParams& p) {
    const std::string what = fmt::format("create vxlan {}", p.name);
    CNETD_TRY(validate_ifname(p.name).context(what));
    detail::LinkPtr link(rtnl_link_vxlan_alloc());
    auto hw = detail::mac_addr(p.mac);
    auto local = detail::ipv4_addr(p.local);
    if (!link || !hw || !local) return Error::sys(ENOMEM, what);
    rtnl_link_set_name(link.get(), p.name.c_str());
    rtnl_link_set_mtu(link.get(), p.mtu);
    rtnl_link_set_addr(link.get(), hw.get());
    int rc = rtnl_link_vxlan_set_id(link.get(), p.vni);
    if (rc >= 0) rc = rtnl_link_vxlan_set_local(link.get(), local.get());
    if (rc >= 0) rc = rtnl_link_vxlan_set_port(link.get(), p.port);  // stored in network order
    // Learning off: every peer is programmed, nothing is learnt from received packets.
    if (rc >= 0) rc = rtnl_link_vxlan_set_learning(link.get(), 0);
    if (rc >= 0 && p.lower_ifindex > 0)
        rc = rtnl_link_vxlan_set_link(link.get(), static_cast<uint32_t>(p.lower_ifindex));
    if (rc < 0) return Error::sys(nle_to_errno(-rc), what);
    nl_msg* msg = nullptr;
    if (rc = rtnl_link_build_add_request(link.get(), NLM_F_CREATE | NLM_F_EXCL, &msg); rc < 0)
        return Error::sys(nle_to_errno(-rc), what);
    return NlMsg(msg);
}

Result<bool> ensure_vxlan(RouteSocket& s, const VxlanParams& p) {
    CNETD_TRY_ASSIGN(auto existing, read_link(s, p.name));
    if (existing && existing->info.kind != "vxlan") {
        return Error::invalid(fmt::format(
            "ensure vxlan {}{}: \"{}\" exists and is a {} link, not a vxlan device (left alone)",
            p.name, s.where(), p.name,
            existing->info.kind.empty() ? "device" : existing->info.kind));
    }
    if (existing) {
        if (auto why = incompatibility(*existing, p); !why.empty()) {
            log::info("vxlan {}{}: {}: deleting and creating it again", p.name, s.where(), why);
            CNETD_TRY(delete_link(s, p.name));
            existing.reset();
        }
    }
    const bool created = !existing;
    if (created) {
        CNETD_TRY(create(s, p));
        auto again = read_link(s, p.name);
        if (!again.ok() || !*again) {
            (void)delete_link(s, p.name);
            if (!again.ok()) return std::move(again).error();
            return Error::sys(ENODEV, fmt::format("create vxlan {}{}: vanished after creation",
                                                  p.name, s.where()));
        }
        existing = std::move(again).value();
    }
    if (auto r = configure(s, p, existing->info); !r.ok()) {
        if (created) (void)delete_link(s, p.name);  // rollback: nothing half-configured stays
        return std::move(r).error().wrap(fmt::format("vxlan {}", p.name));
    }
    return created;
}

namespace {

// The neighbour object of a part: ARP entry (family from the address) or FDB entry (AF_BRIDGE).
Result<NeighPtr> neigh_object(PeerPart part, int ifindex, const VxlanPeerEntry& peer, bool add) {
    NeighPtr n(rtnl_neigh_alloc());
    auto mac = detail::mac_addr(peer.mac);
    auto dst =
        detail::ipv4_addr(part == PeerPart::Neighbour ? peer.block.network() : peer.underlay);
    if (!n || !mac || !dst) return Error::sys(ENOMEM, part_name(part));
    rtnl_neigh_set_ifindex(n.get(), ifindex);
    rtnl_neigh_set_state(n.get(), NUD_PERMANENT);
    if (part == PeerPart::Neighbour) {
        if (int rc = rtnl_neigh_set_dst(n.get(), dst.get()); rc < 0)
            return Error::sys(nle_to_errno(-rc), part_name(part));
        if (add) rtnl_neigh_set_lladdr(n.get(), mac.get());
        return n;
    }
    // FDB: keyed by the MAC. The delete names no destination, so the whole entry goes. The family
    // is set after the destination (libnl takes the family from the first address it is given).
    if (add) {
        if (int rc = rtnl_neigh_set_dst(n.get(), dst.get()); rc < 0)
            return Error::sys(nle_to_errno(-rc), part_name(part));
    }
    rtnl_neigh_set_family(n.get(), AF_BRIDGE);
    rtnl_neigh_set_flags(n.get(), NTF_SELF);  // the vxlan device's own table, not a bridge's
    rtnl_neigh_set_lladdr(n.get(), mac.get());
    return n;
}

GatewayRoute4 peer_route(int ifindex, const VxlanPeerEntry& peer) {
    return {ifindex, peer.block.masked(), peer.block.network(), /*onlink=*/true};
}

// Sends one request; `absent_ok`: the errno that means "no such entry" is success.
Result<void> send(RouteSocket& s, Result<NlMsg> msg, const std::string& what, bool absent_ok) {
    if (!msg.ok()) return std::move(msg).error().wrap(what);
    s.clear_error();
    if (int rc = s.send_sync(std::move(msg).value()); rc < 0) {
        const int e = s.errno_of(rc);
        if (absent_ok && (e == ENOENT || e == ESRCH || e == ENODEV)) return ok();
        return s.error(rc, what);
    }
    return ok();
}

}  // namespace

Result<NlMsg> build_peer_add(PeerPart part, int ifindex, const VxlanPeerEntry& peer,
                             int nlm_flags) {
    if (part == PeerPart::Route) return build_route4_add(peer_route(ifindex, peer), nlm_flags);
    CNETD_TRY_ASSIGN(NeighPtr n, neigh_object(part, ifindex, peer, true));
    nl_msg* msg = nullptr;
    // rtnl_neigh_build_add_request() adds no NLM_F_CREATE (the kernel then answers ENOENT).
    if (int rc = rtnl_neigh_build_add_request(n.get(), NLM_F_CREATE | nlm_flags, &msg); rc < 0)
        return Error::sys(nle_to_errno(-rc), part_name(part));
    return NlMsg(msg);
}

Result<NlMsg> build_peer_delete(PeerPart part, int ifindex, const VxlanPeerEntry& peer) {
    if (part == PeerPart::Route) return build_route4_delete(peer_route(ifindex, peer));
    CNETD_TRY_ASSIGN(NeighPtr n, neigh_object(part, ifindex, peer, false));
    nl_msg* msg = nullptr;
    if (int rc = rtnl_neigh_build_delete_request(n.get(), 0, &msg); rc < 0)
        return Error::sys(nle_to_errno(-rc), part_name(part));
    return NlMsg(msg);
}

Result<void> add_vxlan_peer(RouteSocket& s, int ifindex, const std::string& dev,
                            const VxlanPeerEntry& peer) {
    const std::string what = fmt::format("add vxlan peer {} ({} at {}) on {}{}", peer.block.str(),
                                         peer.mac.str(), peer.underlay.str(), dev, s.where());
    constexpr std::array kOrder{PeerPart::Neighbour, PeerPart::Fdb, PeerPart::Route};
    std::vector<PeerPart> added;
    for (PeerPart part : kOrder) {
        const std::string step = fmt::format("{}: {}", what, part_name(part));
        auto r = send(s, build_peer_add(part, ifindex, peer, NLM_F_EXCL), step, false);
        if (r.ok()) {
            added.push_back(part);
            continue;
        }
        if (r.error().error_number() == EEXIST)
            r = send(s, build_peer_add(part, ifindex, peer, NLM_F_REPLACE), step, false);
        if (r.ok()) continue;
        // Undo what this call added, newest first, so the kernel never keeps half a peer.
        for (auto it = added.rbegin(); it != added.rend(); ++it) {
            auto undo = send(s, build_peer_delete(*it, ifindex, peer),
                             fmt::format("{}: undo {}", what, part_name(*it)), true);
            if (!undo.ok()) log::warn("{}", undo.error().message());
        }
        return r;
    }
    return ok();
}

Result<void> remove_vxlan_peer(RouteSocket& s, int ifindex, const std::string& dev,
                               const VxlanPeerEntry& peer) {
    const std::string what =
        fmt::format("remove vxlan peer {} ({} at {}) from {}{}", peer.block.str(), peer.mac.str(),
                    peer.underlay.str(), dev, s.where());
    Result<void> first = ok();
    for (PeerPart part : {PeerPart::Route, PeerPart::Fdb, PeerPart::Neighbour}) {
        auto r = send(s, build_peer_delete(part, ifindex, peer),
                      fmt::format("{}: {}", what, part_name(part)), true);
        if (!r.ok() && first.ok()) first = std::move(r);
    }
    return first;
}

namespace {

// One entry of a neighbour dump (ARP or FDB): its device, state, lladdr and IPv4 destination.
struct NeighRow {
    int ifindex = 0;
    unsigned state = 0;
    std::optional<Mac> lladdr;
    std::optional<Ipv4> dst;
};

// Dumps the neighbour table of `family` (AF_INET: ARP; AF_BRIDGE: FDBs) and keeps the rows on
// `ifindex`. Parsed from the attributes directly: libnl's parser guesses families of bridge
// entries' addresses differently between versions.
Result<std::vector<NeighRow>> neigh_rows(RouteSocket& s, int family, int ifindex,
                                         const std::string& what) {
    auto request = [&]() -> Result<NlMsg> {
        NlMsg msg(nlmsg_alloc_simple(RTM_GETNEIGH, NLM_F_DUMP));
        ndmsg nd{};
        nd.ndm_family = static_cast<uint8_t>(family);
        if (!msg || nlmsg_append(msg.get(), &nd, sizeof nd, NLMSG_ALIGNTO) < 0)
            return Error::sys(ENOMEM, what);
        return msg;
    };
    std::vector<NeighRow> rows;
    auto on_msg = [&](nl_msg* msg) {
        nlmsghdr* h = nlmsg_hdr(msg);
        if (h->nlmsg_type != RTM_NEWNEIGH) return;
        auto* nd = static_cast<ndmsg*>(nlmsg_data(h));
        nlattr* tb[NDA_MAX + 1] = {};
        if (nlmsg_parse(h, sizeof(ndmsg), tb, NDA_MAX, nullptr) < 0 || nd->ndm_ifindex != ifindex)
            return;
        NeighRow row{nd->ndm_ifindex, nd->ndm_state, std::nullopt, std::nullopt};
        if (tb[NDA_LLADDR] && nla_len(tb[NDA_LLADDR]) == 6) {
            std::array<uint8_t, 6> b{};
            std::memcpy(b.data(), nla_data(tb[NDA_LLADDR]), 6);
            row.lladdr = Mac(b);
        }
        if (tb[NDA_DST] && nla_len(tb[NDA_DST]) == 4) {
            uint32_t be;
            std::memcpy(&be, nla_data(tb[NDA_DST]), 4);
            row.dst = Ipv4(ntohl(be));
        }
        rows.push_back(row);
    };
    CNETD_TRY(detail::dump(
        s, request, on_msg, [&] { rows.clear(); }, what));
    return rows;
}

}  // namespace

Result<std::vector<VxlanPeerEntry>> list_vxlan_peers(RouteSocket& s, int ifindex,
                                                     const std::string& dev) {
    const std::string what = fmt::format("list vxlan peers of {}{}", dev, s.where());
    CNETD_TRY_ASSIGN(auto routes, list_main_routes4(s));
    CNETD_TRY_ASSIGN(auto arp, neigh_rows(s, AF_INET, ifindex, what));
    CNETD_TRY_ASSIGN(auto fdb, neigh_rows(s, AF_BRIDGE, ifindex, what));
    std::map<Ipv4, Mac> mac_of;
    for (const auto& n : arp)
        if (n.dst && n.lladdr && (n.state & NUD_PERMANENT)) mac_of[*n.dst] = *n.lladdr;
    std::map<Mac, Ipv4> underlay_of;
    for (const auto& f : fdb)
        if (f.lladdr && f.dst && !underlay_of.count(*f.lladdr)) underlay_of[*f.lladdr] = *f.dst;
    std::vector<VxlanPeerEntry> out;
    for (const auto& r : routes) {
        if (r.oif != ifindex || !r.gateway || !(r.flags & RTNH_F_ONLINK)) continue;
        VxlanPeerEntry p{r.dst, Ipv4(), Mac()};
        if (auto m = mac_of.find(*r.gateway); m != mac_of.end()) p.mac = m->second;
        if (auto u = underlay_of.find(p.mac); !p.mac.is_zero() && u != underlay_of.end())
            p.underlay = u->second;
        out.push_back(p);
    }
    return out;
}

}  // namespace cnetd::netlink
