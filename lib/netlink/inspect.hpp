// Read-mostly link, address and route queries for reconciliation and netns GC (owner: persist).
// Dumps are fine here: these run once per endpoint at start-up, never on the connect path.
// Errors: Kernel kind, "<op> <object>[ in <netns>]: <strerror>".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"
#include "netlink/link.hpp"
#include "netlink/socket.hpp"

namespace cnetd::netlink {

// One RTM_GETLINK by index; nullopt when absent.
Result<std::optional<LinkInfo>> get_link_by_index(RouteSocket& s, int ifindex);
// Every link of the socket's namespace (one dump).
Result<std::vector<LinkInfo>> list_links(RouteSocket& s);
// Enslaves `name` to the link `master_ifindex` (IFLA_MASTER).
Result<void> set_master(RouteSocket& s, const std::string& name, int master_ifindex);
// Global-scope IPv6 addresses on `ifindex` (one dump).
Result<std::vector<Ipv6Cidr>> list_ipv6_global(RouteSocket& s, int ifindex);
// Gateways of the main table's default routes out of `ifindex` (one dump per family).
Result<std::optional<Ipv4>> default_gateway4(RouteSocket& s, int ifindex);
Result<std::optional<Ipv6>> default_gateway6(RouteSocket& s, int ifindex);

}  // namespace cnetd::netlink
