// Neighbour (ARP / NDP) entries, in the socket's namespace.
//
// Why: an address is reused at once (lowest free first), and the host's neighbour entry on the
// bridge may still map it to the previous owner's MAC. The new owner's gratuitous ARP does not
// fix that reliably: it is sent right after the veth comes up, before the bridge has enabled the
// port (that follows the operstate change the kernel's linkwatch applies asynchronously), so the
// bridge drops it and the host keeps sending to a MAC that no longer exists, for as long as the
// entry stays REACHABLE (up to ~45 s) plus the probes. Deleting the entry makes the next packet
// resolve the address afresh.
// Errors: Kernel kind, "forget neighbour <addr> on <ifname>[ in <netns>]: <strerror>".
#pragma once

#include <string>

#include "base/error.hpp"
#include "base/net.hpp"
#include "netlink/socket.hpp"

namespace cnetd::netlink {

// One RTM_DELNEIGH: deletes the entry of `addr` on `ifindex` (whatever its state or MAC). An
// absent entry is success (idempotent).
Result<void> forget_neighbour(RouteSocket& s, int ifindex, const std::string& ifname, Ipv4 addr);
Result<void> forget_neighbour6(RouteSocket& s, int ifindex, const std::string& ifname,
                               const Ipv6& addr);

}  // namespace cnetd::netlink
