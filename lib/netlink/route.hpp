// Routes, in the socket's namespace.
// Errors: Kernel kind, "add default route via <gw> dev <ifname>[ in <netns>]: <strerror>",
// "add route <dst> via <gw> dev <ifname>[ in <netns>]: <strerror>".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"
#include "netlink/socket.hpp"

namespace cnetd::netlink {

// Adds (or replaces: idempotent) the main table's default route via `gateway` out of `ifindex`.
// The gateway must be on-link (an address in its subnet is on the up interface).
Result<void> add_default_route(RouteSocket& s, int ifindex, const std::string& ifname,
                               Ipv4 gateway);

// Adds (or replaces) the main table's IPv6 default route ::/0 via `gateway` out of `ifindex`.
// The link must be up (the kernel refuses IPv6 nexthops on a down device with ENETDOWN) and the
// gateway on-link (in the prefix of an address on it).
Result<void> add_default_route6(RouteSocket& s, int ifindex, const std::string& ifname,
                                const Ipv6& gateway);

// The main table's default route of one family as the kernel uses it (the lowest metric), so a
// caller that replaces it can put it back exactly: out of `ifindex`, via `gateway4`/`gateway6`
// (neither: an on-link "dev" route), with `metric`.
struct DefaultRoute {
    int ifindex = 0;
    std::optional<Ipv4> gateway4;
    std::optional<Ipv6> gateway6;
    uint32_t metric = 0;
};

// The default route of `family` (AF_INET or AF_INET6), nullopt when there is none. One dump of
// that family's routes: cheap in a container's namespace.
Result<std::optional<DefaultRoute>> get_default_route(RouteSocket& s, int family);

// Adds or replaces (same metric) the default route `r` of `family`.
Result<void> put_default_route(RouteSocket& s, int family, const DefaultRoute& r,
                               const std::string& ifname);

// Deletes the default route of `family` with `metric` out of `ifindex`. Absent: success.
Result<void> delete_default_route(RouteSocket& s, int family, int ifindex, uint32_t metric,
                                  const std::string& ifname);

// One IPv4 route of the main table, as the kernel dumps it.
struct Route4 {
    Ipv4Cidr dst;                 // 0.0.0.0/0 for a default route
    unsigned scope = 0;           // RT_SCOPE_* (RT_SCOPE_LINK = 253 for on-link routes)
    unsigned type = 0;            // RTN_* (RTN_UNICAST, ...)
    uint32_t priority = 0;        // metric: lower wins among equal destinations
    int oif = 0;                  // ifindex of the first nexthop, 0 if none (blackhole, ...)
    std::optional<Ipv4> gateway;  // the first nexthop's gateway, nullopt for "dev" routes
    unsigned flags = 0;           // rtm_flags, with the nexthop's RTNH_F_* (RTNH_F_ONLINK = 4)
};

// Every IPv4 route of the main table (RT_TABLE_MAIN). One dump: not for the hot path.
Result<std::vector<Route4>> list_main_routes4(RouteSocket& s);

// A main-table IPv4 route `dst via gateway dev ifindex` (protocol boot, scope universe). With
// onlink (RTNH_F_ONLINK) the kernel takes the gateway as directly reachable on the link even when
// no address of the link covers it: the overlay's "block via block.0 dev vx onlink" (the kernel
// then resolves the gateway with the neighbour entry programmed before the route).
struct GatewayRoute4 {
    int ifindex = 0;
    Ipv4Cidr dst;  // a network address (host bits zero), else the kernel answers EINVAL
    Ipv4 gateway;
    bool onlink = false;
};

// Pure: the RTM_NEWROUTE (NLM_F_CREATE | nlm_flags: NLM_F_EXCL or NLM_F_REPLACE) adding `r`.
Result<NlMsg> build_route4_add(const GatewayRoute4& r, int nlm_flags);
// Pure: the RTM_DELROUTE of the main table's route to r.dst out of r.ifindex, whatever its
// gateway, scope or protocol.
Result<NlMsg> build_route4_delete(const GatewayRoute4& r);

// Adds `r` with NLM_F_EXCL: an existing route to r.dst (same metric) is an error (EEXIST).
Result<void> add_route4(RouteSocket& s, const GatewayRoute4& r, const std::string& ifname);

}  // namespace cnetd::netlink
