// VXLAN devices and the per-peer entries of an overlay network (flannel's vxlan backend, see
// docs/overlay.md), in the socket's namespace.
//
// The data plane is routed, one device per overlay network: every remote node (peer) owns a block
// of the overlay subnet and gets three entries on the device, programmed in flannel's order:
//   1. neighbour  block.network() -> peer MAC               (AF_INET, NUD_PERMANENT)
//   2. FDB        peer MAC -> peer underlay address         (AF_BRIDGE, NTF_SELF, NUD_PERMANENT)
//   3. route      block via block.network() dev <vx> onlink (main table)
// The route comes last: with the route first, the kernel would ARP for the gateway (the device
// does not answer ARP: learning and proxy are off) and cache a failed neighbour. No miss
// notifications, no learning: the three entries are the whole state of one peer.
//
// Messages are built by pure functions (unit-tested without a kernel) and sent by the others.
// Errors: Kernel kind, "<op> <object>[ in <netns>]: <strerror>"; InvalidArgument when a link of
// another kind holds the device's name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"
#include "netlink/socket.hpp"

namespace cnetd::netlink {

struct VxlanParams {
    std::string name;
    uint32_t vni = 0;       // 1 .. 2^24-1
    Ipv4 local;             // source of the encapsulated packets (the underlay address)
    uint16_t port = 4789;   // UDP destination port, host order
    int lower_ifindex = 0;  // the underlay link (IFLA_VXLAN_LINK); 0: none
    unsigned mtu = 1450;
    Mac mac;
    Ipv4Cidr address;  // the node's block network address /32
};

// Pure: the RTM_NEWLINK (NLM_F_CREATE|NLM_F_EXCL) creating the device: kind vxlan, name, MTU,
// MAC, IFLA_VXLAN_ID/LOCAL/PORT/LINK and IFLA_VXLAN_LEARNING 0.
Result<NlMsg> build_vxlan_create(const VxlanParams& p);

// Creates the device, or brings an existing vxlan device of that name to `p` without disturbing
// its FDB, neighbours and routes: MTU set when it differs, p.address made the only IPv4 address
// (an already-present one is left alone), then up. A vxlan device that differs in VNI, port,
// local address, lower link (when p.lower_ifindex is set) or MAC, or has learning on, is deleted
// and created again (flannel's "incompatible link" rule; the MAC because the kernel flushes a
// device's neighbours when its MAC changes, so an in-place change would lose them unnoticed).
// Returns true when it created the device: the caller must program the peers again. (A device
// someone set down lost its routes to the kernel then; it is set up again, and vxlan_peers shows
// what to repair.) A link of another kind holding the name: InvalidArgument naming it, left
// alone (it is not ours). A device this call created is deleted again when a later step fails.
Result<bool> ensure_vxlan(RouteSocket& s, const VxlanParams& p);

// One remote node on an overlay device.
struct VxlanPeerEntry {
    Ipv4Cidr block;  // the peer's block (a network address)
    Ipv4 underlay;   // its VTEP
    Mac mac;         // its device's MAC
    auto operator<=>(const VxlanPeerEntry&) const = default;
};

// The three entries of a peer, in programming order.
enum class PeerPart { Neighbour, Fdb, Route };

// Pure: the request adding `part` of `peer` on `ifindex`, with NLM_F_CREATE | nlm_flags
// (NLM_F_EXCL or NLM_F_REPLACE).
Result<NlMsg> build_peer_add(PeerPart part, int ifindex, const VxlanPeerEntry& peer, int nlm_flags);
// Pure: the request deleting `part` by its key (neighbour: block.network(); FDB: the MAC, every
// destination of it; route: block out of `ifindex`), whatever the entry points at now.
Result<NlMsg> build_peer_delete(PeerPart part, int ifindex, const VxlanPeerEntry& peer);

// Programs the three entries in order. Each is first added with NLM_F_EXCL; an existing one
// (EEXIST) is then replaced (NLM_F_REPLACE), so the call is idempotent and repairs stale entries
// while knowing which entries it added: on a failure exactly those are deleted again (reverse
// order) before the error returns; replaced entries stay. `dev` labels errors.
Result<void> add_vxlan_peer(RouteSocket& s, int ifindex, const std::string& dev,
                            const VxlanPeerEntry& peer);

// Deletes route, FDB entry and neighbour (that order). Absent entries are success; every part is
// tried, the first error is returned.
Result<void> remove_vxlan_peer(RouteSocket& s, int ifindex, const std::string& dev,
                               const VxlanPeerEntry& peer);

// The peers on `ifindex`: one per main-table onlink route via a gateway out of it; mac from the
// permanent neighbour of the gateway (zero when missing), underlay from the FDB entry of that MAC
// (0.0.0.0 when missing). Three dumps: not for the hot path.
Result<std::vector<VxlanPeerEntry>> list_vxlan_peers(RouteSocket& s, int ifindex,
                                                     const std::string& dev);

}  // namespace cnetd::netlink
