// Deleting conntrack entries over ctnetlink (NETLINK_NETFILTER, NFNL_SUBSYS_CTNETLINK) with libmnl,
// without the conntrack CLI.
//
// Why: a UDP "connection" lives in conntrack as long as datagrams keep flowing, and its NAT
// decision is fixed when the entry is created. When a published UDP port is removed or points at
// another container, the client's next datagram would still follow the old entry (to the old
// container, or to nothing); deleting the matching entries makes the new mapping apply at once.
// Docker does the same (`conntrack -D -p udp --orig-port-dst <port>`).
//
// Header hygiene as in nft.hpp: no libmnl/netfilter headers here.
// Threading: stateless; each call opens its own socket in the calling thread's network namespace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"

namespace cnetd::nft {

// Which entries to delete: those of `family` whose ORIGINAL tuple has this IP protocol, a
// destination port in [port_first, port_last] and, if given, this destination address (dst for
// V4, dst6 for V6).
struct ConntrackMatch {
    enum Family : uint8_t { V4, V6 };
    Family family = V4;
    uint8_t l4proto = 17;  // IPPROTO_UDP
    uint16_t port_first = 0;
    uint16_t port_last = 0;
    std::optional<Ipv4> dst;
    std::optional<Ipv6> dst6 = std::nullopt;
    std::string str() const;  // "udp dport 5353-5354 dst 198.51.100.1", "ipv6 udp dport 53"
};

// Deletes the entries matching ANY of `ms` (e.g. a container's published UDP ports): ONE dump of
// each family's table present in `ms`, then each matching entry is deleted by its original tuple
// (and zone). An entry that vanished in between (ENOENT) is not an error. Empty `ms`: 0, nothing
// opened. A namespace whose conntrack table is empty (its per-namespace count, asked first) is not
// dumped: the dump would walk the host's whole shared table. Returns how many entries were deleted. Errors name the operation, e.g. "delete conntrack
// entries (udp dport 5353): dump conntrack table: Operation not permitted"; on a delete error the
// remaining entries are still tried and every failure is reported.
Result<size_t> conntrack_delete(const std::vector<ConntrackMatch>& ms);

}  // namespace cnetd::nft
