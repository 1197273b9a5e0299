// IPv4 routes, in the socket's namespace.
// Errors: Kernel kind, "add default route via <gw> dev <ifname>[ in <netns>]: <strerror>".
#pragma once

#include <string>

#include "base/error.hpp"
#include "base/net.hpp"
#include "netlink/socket.hpp"

namespace cnetd::netlink {

// Adds (or replaces: idempotent) the main table's default route via `gateway` out of `ifindex`.
// The gateway must be on-link (an address in its subnet is on the up interface).
Result<void> add_default_route(RouteSocket& s, int ifindex, const std::string& ifname,
                               Ipv4 gateway);

}  // namespace cnetd::netlink
