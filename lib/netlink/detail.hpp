// Private to lib/netlink: RAII aliases for libnl objects and address converters. Includes libnl, so
// only this layer's .cpp files (and tests that decode messages) may include it.
#pragma once

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

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

}  // namespace cnetd::netlink::detail
