// IPv4 and IPv6 interface addresses, in the socket's namespace.
// Errors: Kernel kind, "<op> <cidr> to/from <ifname>[ in <netns>]: <strerror>".
#pragma once

#include <optional>
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

// Makes `want` the only IPv4 address of `ifindex` (nullopt: removes every IPv4 address). A right
// one already there (same address, prefix and broadcast) is left alone: re-adding would flap its
// routes and neighbours. Wrong ones go first: deleting a primary address also deletes the
// secondaries of its subnet, which would take a freshly added right one with it.
Result<void> make_only_ipv4(RouteSocket& s, int ifindex, const std::string& ifname,
                            const std::optional<Ipv4Cidr>& want);

// The ifindex of the link holding IPv4 address `a` (any prefix), nullopt when no link has it (one
// dump of the namespace's addresses).
Result<std::optional<int>> ipv4_owner(RouteSocket& s, Ipv4 a);

struct Ipv6Addr {
    Ipv6Cidr local;      // address with its prefix length
    unsigned flags = 0;  // IFA_F_* (NODAD, TENTATIVE, DADFAILED, PERMANENT, ...)
    auto operator<=>(const Ipv6Addr&) const = default;
};

// The IPv6 addresses on `ifindex`, link-local ones included (one dump: not for the hot path).
Result<std::vector<Ipv6Addr>> list_ipv6(RouteSocket& s, int ifindex);

// Adds (NLM_F_REPLACE: idempotent) `addr` to `ifindex` with IFA_F_NODAD, so it is usable at once
// instead of staying "tentative" for the ~2 s of duplicate address detection. IPv6 must be enabled
// on the link (disable_ipv6=0), else the kernel answers EACCES.
Result<void> add_ipv6_nodad(RouteSocket& s, int ifindex, const std::string& ifname,
                            const Ipv6Cidr& addr);

// Removes `addr` from `ifindex`. An absent address is success.
Result<void> del_ipv6(RouteSocket& s, int ifindex, const std::string& ifname, const Ipv6Cidr& addr);

}  // namespace cnetd::netlink
