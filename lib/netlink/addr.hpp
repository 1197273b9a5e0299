// IPv4 interface addresses, in the socket's namespace.
// Errors: Kernel kind, "<op> <cidr> on <ifname>[ in <netns>]: <strerror>".
#pragma once

#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"
#include "netlink/socket.hpp"

namespace cnetd::netlink {

struct Ipv4Addr {
    Ipv4Cidr local;  // address with its prefix length
    Ipv4 broadcast;  // 0.0.0.0 when the address has none
    auto operator<=>(const Ipv4Addr&) const = default;
};

// The IPv4 addresses on `ifindex` (one dump of the namespace's addresses: not for the hot path).
Result<std::vector<Ipv4Addr>> list_ipv4(RouteSocket& s, int ifindex);

// Adds `addr` with broadcast addr.broadcast() to `ifindex`. With replace=true an existing identical
// address is updated in place instead of failing with EEXIST (idempotent).
Result<void> add_ipv4(RouteSocket& s, int ifindex, const std::string& ifname, const Ipv4Cidr& addr,
                      bool replace);

// Removes `addr` from `ifindex`. An absent address is success.
Result<void> del_ipv4(RouteSocket& s, int ifindex, const std::string& ifname, const Ipv4Cidr& addr);

}  // namespace cnetd::netlink
