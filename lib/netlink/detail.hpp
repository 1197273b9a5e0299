// Private to lib/netlink: RAII aliases for libnl objects and address converters. Includes libnl, so
// only this layer's .cpp files (and tests that decode messages) may include it.
#pragma once

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "base/net.hpp"
#include "netlink/link.hpp"

namespace cnetd::netlink::detail {

using LinkPtr = CHandle<rtnl_link, rtnl_link_put>;
using AddrPtr = CHandle<rtnl_addr, rtnl_addr_put>;
using RoutePtr = CHandle<rtnl_route, rtnl_route_put>;
using NlAddrPtr = CHandle<nl_addr, nl_addr_put>;
using CachePtr = CHandle<nl_cache, nl_cache_free>;

// An AF_INET nl_addr holding `a` with prefix length `prefix` (nullptr only on ENOMEM).
NlAddrPtr ipv4_addr(Ipv4 a, int prefix = 32);
// An AF_INET6 nl_addr holding `a` with prefix length `prefix` (nullptr only on ENOMEM).
NlAddrPtr ipv6_addr(const Ipv6& a, int prefix = 128);
// An AF_LLC nl_addr holding a MAC address.
NlAddrPtr mac_addr(const Mac& m);
// Reads an AF_INET nl_addr back (false if it is not a 4-byte address).
bool to_ipv4(const nl_addr* a, Ipv4& out);
// Reads an AF_INET6 nl_addr back (false if it is not a 16-byte address).
bool to_ipv6(const nl_addr* a, Ipv6& out);
// The fields of a libnl link object cnetd uses.
LinkInfo link_info(rtnl_link* l);

// RTM_GETLINK of one link by `ifindex` (or, with ifindex 0, by `name`). nullopt when it does not
// exist (ENODEV/ENOENT); other errors "<what>[ in <netns>]: <strerror>".
Result<std::optional<LinkInfo>> get_link(RouteSocket& s, int ifindex, const std::string& name,
                                         const std::string& what);

// RTM_NEWLINK without NLM_F_CREATE, addressed by IFLA_IFNAME (ifindex 0): the kernel applies
// `changes` to the named link or answers ENODEV. This saves the name -> ifindex lookup round trip.
// Errors: "<op> <name>[ in <netns>]: <strerror>".
Result<void> change_by_name(RouteSocket& s, const std::string& name, rtnl_link* changes,
                            std::string_view op);

// One dump of the namespace's addresses; calls `fn` for each address of `family` on `ifindex`
// (0: on any link).
// Errors: "list addresses[ in <netns>]: <strerror>".
Result<void> each_addr(RouteSocket& s, int family, int ifindex,
                       const std::function<void(rtnl_addr*)>& fn);

// Sends the dump request `request()` builds and calls `fn` for each message of the answer. A dump
// the kernel marks interrupted (NLM_F_DUMP_INTR: the table changed meanwhile) is run again, up to
// 10 times, as libnl's cache refill does: `restart` is called first so `fn` can drop what it
// collected. Errors: "<what>: <strerror>" (what already carries the namespace).
Result<void> dump(RouteSocket& s, const std::function<Result<NlMsg>()>& request,
                  const std::function<void(nl_msg*)>& fn, const std::function<void()>& restart,
                  const std::string& what);

// One dump of `family`'s routes; calls `fn` for each route of the main table.
// Errors: "<op>[ in <netns>]: <strerror>".
Result<void> each_main_route(RouteSocket& s, int family, std::string_view op,
                             const std::function<void(rtnl_route*)>& fn);

}  // namespace cnetd::netlink::detail
