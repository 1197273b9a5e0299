// Generic link operations by interface name, in the socket's namespace.
//
// Each call is one netlink round trip except free_ifname (one dump of the namespace's links, meant
// for container namespaces which hold a handful) and count_ports (a dump the kernel filters by
// master, so only the bridge's ports cross the socket; not for the hot path).
// Errors: Kernel kind, "<op> <ifname>[ in <netns>]: <strerror>".
#pragma once

#include <optional>
#include <string>

#include "base/error.hpp"
#include "base/net.hpp"
#include "netlink/socket.hpp"

namespace cnetd::netlink {

struct LinkInfo {
    int ifindex = 0;
    std::string name;
    std::string kind;  // IFLA_INFO_KIND ("bridge", "veth", ...); "" for plain devices such as lo
    unsigned mtu = 0;
    unsigned flags = 0;  // IFF_*
    int master = 0;      // ifindex of the master, 0 if none
    Mac mac;
};

// One RTM_GETLINK by name. std::nullopt when no such link exists.
Result<std::optional<LinkInfo>> get_link(RouteSocket& s, const std::string& name);

// Number of links whose master is `master_ifindex` (a bridge's ports). `master_name` labels errors.
Result<unsigned> count_ports(RouteSocket& s, int master_ifindex, const std::string& master_name);

// Sets IFF_UP on `name` (one RTM_NEWLINK addressed by name, no lookup). Idempotent.
Result<void> set_up(RouteSocket& s, const std::string& name);

// Sets the MTU of `name`.
Result<void> set_mtu(RouteSocket& s, const std::string& name, unsigned mtu);

// Deletes `name` (a veth takes its peer with it). An absent link is success.
Result<void> delete_link(RouteSocket& s, const std::string& name);

// Turns hairpin mode on for the bridge port `ifindex` (RTM_SETLINK, AF_BRIDGE, IFLA_PROTINFO >
// IFLA_BRPORT_MODE): a container can then reach its own published port through a host address
// when br_netfilter hands bridged frames to the DNAT hook. `name` labels errors.
Result<void> set_hairpin(RouteSocket& s, int ifindex, const std::string& name);

// Lowest "<prefix>N" (N = 0, 1, ...) that no link in the socket's namespace uses (one dump).
Result<std::string> free_ifname(RouteSocket& s, const std::string& prefix);

}  // namespace cnetd::netlink
