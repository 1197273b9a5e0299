#include "netlink/detail.hpp"

#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <netlink/handlers.h>
#include <netlink/netlink.h>

namespace cnetd::netlink::detail {

NlAddrPtr ipv4_addr(Ipv4 a, int prefix) {
    uint32_t be = a.network_order();
    NlAddrPtr p(nl_addr_build(AF_INET, &be, sizeof be));
    if (p) nl_addr_set_prefixlen(p.get(), prefix);
    return p;
}

NlAddrPtr ipv6_addr(const Ipv6& a, int prefix) {
    NlAddrPtr p(nl_addr_build(AF_INET6, a.bytes().data(), a.bytes().size()));
    if (p) nl_addr_set_prefixlen(p.get(), prefix);
    return p;
}

NlAddrPtr mac_addr(const Mac& m) {
    return NlAddrPtr(nl_addr_build(AF_LLC, m.bytes().data(), m.bytes().size()));
}

bool to_ipv4(const nl_addr* a, Ipv4& out) {
    if (!a || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != 4) return false;
    uint32_t be;
    std::memcpy(&be, nl_addr_get_binary_addr(a), 4);
    out = Ipv4(ntohl(be));
    return true;
}

bool to_ipv6(const nl_addr* a, Ipv6& out) {
    if (!a || nl_addr_get_family(a) != AF_INET6 || nl_addr_get_len(a) != 16) return false;
    std::array<uint8_t, 16> b{};
    std::memcpy(b.data(), nl_addr_get_binary_addr(a), 16);
    out = Ipv6(b);
    return true;
}

LinkInfo link_info(rtnl_link* l) {
    LinkInfo info;
    info.ifindex = rtnl_link_get_ifindex(l);
    info.name = rtnl_link_get_name(l) ? rtnl_link_get_name(l) : "";
    const char* kind = rtnl_link_get_type(l);
    info.kind = kind ? kind : "";
    info.mtu = rtnl_link_get_mtu(l);
    info.flags = rtnl_link_get_flags(l);
    info.master = rtnl_link_get_master(l);
    if (nl_addr* a = rtnl_link_get_addr(l); a && nl_addr_get_len(a) == 6) {
        std::array<uint8_t, 6> b{};
        std::memcpy(b.data(), nl_addr_get_binary_addr(a), 6);
        info.mac = Mac(b);
    }
    return info;
}

Result<std::optional<LinkInfo>> get_link(RouteSocket& s, int ifindex, const std::string& name,
                                         const std::string& what) {
    rtnl_link* raw = nullptr;
    s.clear_error();
    int rc = rtnl_link_get_kernel(s.get(), ifindex, ifindex ? nullptr : name.c_str(), &raw);
    LinkPtr l(raw);
    if (rc < 0) {
        int e = s.errno_of(rc);
        if (e == ENODEV || e == ENOENT) return std::optional<LinkInfo>{};
        return s.error(rc, fmt::format("{}{}", what, s.where()));
    }
    return std::optional<LinkInfo>(link_info(l.get()));
}

Result<void> change_by_name(RouteSocket& s, const std::string& name, rtnl_link* changes,
                            std::string_view op) {
    LinkPtr orig(rtnl_link_alloc());
    if (!orig) return Error::sys(ENOMEM, op);
    rtnl_link_set_name(changes, name.c_str());
    s.clear_error();
    if (int rc = rtnl_link_change(s.get(), orig.get(), changes, 0); rc < 0)
        return s.error(rc, fmt::format("{} {}{}", op, name, s.where()));
    return ok();
}

Result<void> each_addr(RouteSocket& s, int family, int ifindex,
                       const std::function<void(rtnl_addr*)>& fn) {
    nl_cache* raw = nullptr;
    s.clear_error();
    int rc = rtnl_addr_alloc_cache(s.get(), &raw);
    CachePtr cache(raw);
    if (rc < 0) return s.error(rc, fmt::format("list addresses{}", s.where()));
    for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
        auto* a = reinterpret_cast<rtnl_addr*>(o);
        if (rtnl_addr_get_family(a) == family &&
            (ifindex == 0 || rtnl_addr_get_ifindex(a) == ifindex))
            fn(a);
    }
    return ok();
}

namespace {

int on_dump_msg(nl_msg* msg, void* arg) noexcept {
    (*static_cast<const std::function<void(nl_msg*)>*>(arg))(msg);
    return NL_OK;
}

}  // namespace

Result<void> dump(RouteSocket& s, const std::function<Result<NlMsg>()>& request,
                  const std::function<void(nl_msg*)>& fn, const std::function<void()>& restart,
                  const std::string& what) {
    // A private copy of the socket's callbacks (it keeps the error hook) with our VALID handler.
    nl_cb* base = nl_socket_get_cb(s.get());
    CHandle<nl_cb, nl_cb_put> cb(nl_cb_clone(base));
    nl_cb_put(base);
    if (!cb) return Error::sys(ENOMEM, what);
    nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_dump_msg,
              const_cast<std::function<void(nl_msg*)>*>(&fn));
    for (int attempt = 0;; ++attempt) {
        CNETD_TRY_ASSIGN(NlMsg msg, request());
        s.clear_error();
        restart();
        if (int rc = nl_send_auto(s.get(), msg.get()); rc < 0) return s.error(rc, what);
        int rc = nl_recvmsgs(s.get(), cb.get());
        if (rc == -NLE_DUMP_INTR && attempt < 10) continue;
        if (rc < 0) return s.error(rc, what);
        return ok();
    }
}

Result<void> each_main_route(RouteSocket& s, int family, std::string_view op,
                             const std::function<void(rtnl_route*)>& fn) {
    nl_cache* raw = nullptr;
    s.clear_error();
    int rc = rtnl_route_alloc_cache(s.get(), family, 0, &raw);
    CachePtr cache(raw);
    if (rc < 0) return s.error(rc, fmt::format("{}{}", op, s.where()));
    for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
        auto* r = reinterpret_cast<rtnl_route*>(o);
        if (rtnl_route_get_family(r) == family && rtnl_route_get_table(r) == RT_TABLE_MAIN) fn(r);
    }
    return ok();
}

}  // namespace cnetd::netlink::detail
