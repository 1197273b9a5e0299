// The engine's only door to the kernel. Everything here speaks kernel words (interface names,
// CIDRs, MACs, netns paths) and never sees a Network or an Endpoint.
//
// Implementations: platform::LinuxKernel (libnl + /proc/sys + nsfs, lib/platform) and the fakes in
// tests/unit/fakes. Engine tests make a fake fail at each step to prove rollback.
//
// Threading: an implementation may switch the calling thread's network namespace (setns) while a
// call runs and restores it before returning, so every call must come from one thread: the daemon's
// kernel worker. Errors: Result with ErrorKind::Kernel and the kernel's errno text, framed with the
// operation and object, e.g. "create veth vethc0ffee1 in /var/run/docker/netns/a: File exists".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"

namespace cnetd::core {

// A network namespace's identity (its nsfs inode): base/net.hpp.
using NetnsId = cnetd::NetnsId;

enum class LinkKind { Absent, Bridge, Other };

// Inspection results (reconciliation; see the end of Kernel).
struct LinkStatus {
    std::string kind;    // "veth", "bridge", "" for plain devices
    std::string master;  // name of the master link, "" when none
    bool up = false;     // IFF_UP
    Mac mac;             // its hardware address
};
struct PeerStatus {
    bool up = false;
    Mac mac;
    std::vector<Ipv4Cidr> addresses4;
    std::vector<Ipv6Cidr> addresses6;      // global scope only
    std::optional<Ipv4> default_gateway4;  // main table default route out of this link
    std::optional<Ipv6> default_gateway6;
};

enum class IpFamily { V4, V6 };

// A namespace's default route of one family as the kernel uses it (lowest metric), read before a
// request replaces it so that the undo log can put it back exactly.
struct DefaultRoute {
    std::string ifname;            // the link it leaves through
    std::optional<Ipv4> gateway4;  // IPv4: via this address (nullopt: an on-link "dev" route)
    std::optional<Ipv6> gateway6;  // IPv6: likewise
    uint32_t metric = 0;           // IPv6 routes added with 0 read back as 1024
    auto operator<=>(const DefaultRoute&) const = default;
};

struct BridgeSpec {
    std::string name;  // e.g. "docker0"
    Ipv4Cidr address;  // gateway address with the network's prefix, e.g. 172.17.0.1/16
    unsigned mtu = 1500;
    // Dual stack: the IPv6 gateway address with the network's prefix (fd12:3456:789a:1::1/64),
    // added with IFA_F_NODAD after disable_ipv6=0, accept_dad=0, accept_ra=0 on the bridge.
    // nullopt: IPv4 only (the bridge keeps disable_ipv6 as it is; existing v6 globals are left).
    std::optional<Ipv6Cidr> address6 = std::nullopt;
    // inhibit_ipv4: the bridge gets no IPv4 address at all (`address` is then ignored).
    bool no_ipv4_address = false;
    // The MAC a new bridge gets (nullopt: random, locally administered); an undo that makes a
    // deleted bridge again gives it its old one.
    std::optional<Mac> mac = std::nullopt;
};

struct VethSpec {
    std::string host_name;  // "veth" + 7 hex, in the daemon's namespace
    std::string bridge;     // master of the host side
    std::string peer_name;  // name of the container side, created inside the netns ("eth0")
    Mac peer_mac;
    unsigned mtu = 1500;
};

// The embedded resolver's sockets in a container namespace (Netns::open_dns_listener).
class DnsListener {
public:
    virtual ~DnsListener() = default;
    virtual uint16_t udp_port() const = 0;
    virtual uint16_t tcp_port() const = 0;
    // Borrowed; -1 for fakes.
    virtual int udp_fd() const { return -1; }
    virtual int tcp_fd() const { return -1; }
};

// An open network namespace (not the daemon's own): the fd is held for the object's lifetime, so
// the namespace cannot vanish under us while we configure it. A Netns handed to a Kernel may be a
// decorator of the one it opened (core::FailpointNetns forwards every call): a Kernel finds its
// own state of it through this interface (LinuxKernel: by id()), never by its dynamic type.
class Netns {
public:
    virtual ~Netns() = default;
    virtual const std::string& path() const = 0;
    virtual NetnsId id() const = 0;
    // Lowest "<prefix>N" (N = 0, 1, ...) not used by a link in this namespace.
    virtual Result<std::string> free_ifname(const std::string& prefix) = 0;
    // Steps on the container side of a veth, in the order the engine calls them.
    virtual Result<void> disable_ipv6(const std::string& ifname) = 0;
    virtual Result<void> add_address(const std::string& ifname, const Ipv4Cidr& addr) = 0;
    virtual Result<void> set_up(const std::string& ifname) = 0;
    virtual Result<void> add_default_route(const std::string& ifname, Ipv4 gateway) = 0;
    // Dual stack, container side: disable_ipv6=0, accept_dad=0 and accept_ra=0 on `ifname`
    // (called instead of disable_ipv6()).
    virtual Result<void> enable_ipv6(const std::string& ifname) = 0;
    // Adds a global IPv6 address with IFA_F_NODAD (usable at once: no ~2 s of DAD).
    virtual Result<void> add_address6(const std::string& ifname, const Ipv6Cidr& addr) = 0;
    virtual Result<void> add_default_route6(const std::string& ifname, Ipv6 gateway) = 0;
    // The default route of `family` (nullopt: none). Read-only.
    virtual Result<std::optional<DefaultRoute>> default_route(IpFamily family) = 0;
    // Adds `r` again, replacing a route of the same metric (the undo of add_default_route*).
    virtual Result<void> put_default_route(IpFamily family, const DefaultRoute& r) = 0;
    // Deletes the default route of `family` out of `ifname` with `metric` (IPv6: 0 matches any).
    // An absent route or link is success.
    virtual Result<void> delete_default_route(IpFamily family, const std::string& ifname,
                                              uint32_t metric) = 0;
    // After the link is up: 3 gratuitous ARPs for `v4` (and 3 unsolicited neighbour advertisements
    // for `v6`) from `mac`, so neighbours that cached a previous owner of a reused address update
    // at once. Best effort for the caller: an error is logged, never rolls the attach back.
    virtual Result<void> announce(const std::string& ifname, const Mac& mac, std::optional<Ipv4> v4,
                                  std::optional<Ipv6> v6) = 0;
    // Deletes a link in this namespace (its veth peer goes with it). Absent is not an error.
    virtual Result<void> delete_link(const std::string& ifname) = 0;

    // --- the embedded resolver (docs/dns.md) ---
    // Sets "lo" up (127.0.0.11 needs the loopback route) and opens a UDP socket and a listening TCP
    // socket on 127.0.0.11, ports chosen by the kernel, inside this namespace (they stay in it
    // when the thread leaves). Closing the object closes them (TCP shut down first, so a dup
    // stops accepting at once).
    virtual Result<std::unique_ptr<DnsListener>> open_dns_listener() {
        return Error(ErrorKind::Kernel, "open_dns_listener: not supported by this kernel port");
    }
    // Makes 127.0.0.11:53 (udp and tcp) reach those ports: replaces this namespace's table
    // "ip cnetd-dns" (nat hook output: dnat 127.0.0.11 dport 53 → the port; one netlink batch, so
    // there is no moment without it) and deletes conntrack entries to 127.0.0.11 left from older
    // ports (a daemon restart), so no query is sent to a dead port. Ports are the listener's.
    virtual Result<void> set_dns_nat(uint16_t udp_port, uint16_t tcp_port) {
        (void)udp_port;
        (void)tcp_port;
        return Error(ErrorKind::Kernel, "set_dns_nat: not supported by this kernel port");
    }
    // Deletes the table. Absent is success.
    virtual Result<void> remove_dns_nat() { return ok(); }

    // --- overlay networks (docs/overlay.md) ---
    // Adds the route `dst via gateway dev ifname` (main table, IPv4). The overlay driver gives
    // every endpoint a route to the whole overlay subnet through its node's gateway, so remote
    // blocks are reached even when another network holds the namespace's default route (and on
    // internal overlay networks, which have no default route). EEXIST is an error.
    virtual Result<void> add_route(const std::string& ifname, const Ipv4Cidr& dst, Ipv4 gateway) {
        (void)ifname;
        (void)dst;
        (void)gateway;
        return Error(ErrorKind::Kernel, "add_route: not supported by this kernel port");
    }
    // Whether that route exists (repair and the endpoint defect check). Reads only.
    virtual Result<bool> has_route(const std::string& ifname, const Ipv4Cidr& dst, Ipv4 gateway) {
        (void)ifname;
        (void)dst;
        (void)gateway;
        return false;
    }
};

// A held host port: sockets bound (never listening) so no other process can take the port while
// it is published; DNAT happens before socket lookup, so traffic never reaches them. Closing the
// object releases the port.
class PortHold {
public:
    virtual ~PortHold() = default;
    // The holding sockets, one per port from first to last (borrowed; empty for fakes). The daemon
    // relays [::1] bindings through these very sockets (daemon/relay.hpp).
    virtual std::vector<int> fds() const { return {}; }
};

// An overlay network's VXLAN device on this node (flannel's vxlan backend, overlay.md): one
// device per overlay network, VNI = the network's, learning off, UDP `port` from `local`.
struct VxlanSpec {
    std::string name;      // "vx-" + first 12 hex of the network id
    uint32_t vni = 0;      // 1 .. 2^24-1
    Ipv4 local;            // this node's underlay address (cluster advertise-address)
    uint16_t port = 4789;  // cluster vxlan-port
    std::string underlay;  // the link holding `local` (the device's lower link); "" for none
    unsigned mtu = 1450;   // underlay MTU - 50 (VXLAN over IPv4 costs 50 bytes)
    Mac mac;               // stable (remote FDB entries point at it): derived, never random
    // The node's block network address as /32 (flannel gives the device subnet.IP/32): the
    // source of the host's own packets to remote blocks, and what remote neighbours point at.
    Ipv4Cidr address;
    auto operator<=>(const VxlanSpec&) const = default;
};

// One remote node as the data plane of an overlay network sees it.
struct VxlanPeer {
    Ipv4Cidr block;  // the remote node's block, e.g. 10.200.2.0/24
    Ipv4 underlay;   // its VTEP (advertise-address)
    Mac mac;         // its VXLAN device's MAC
    auto operator<=>(const VxlanPeer&) const = default;
};

class Kernel {
public:
    virtual ~Kernel() = default;

    // --- network namespace files ---
    // Opens `path` and checks that it is a network namespace (nsfs, CLONE_NEWNET); error names
    // path.
    virtual Result<std::unique_ptr<Netns>> open_netns(const std::string& path) = 0;
    // Creates a new network namespace and bind-mounts it at `path` (the directory must exist).
    virtual Result<void> create_netns(const std::string& path) = 0;
    // Detach-unmounts and unlinks `path`. The namespace dies when its last user goes.
    virtual Result<void> delete_netns(const std::string& path) = 0;
    // The undo of delete_netns() while `ns` (opened from `path` before) is still held: `path`
    // names that very namespace again.
    virtual Result<void> restore_netns(const std::string& path, Netns& ns) = 0;

    // --- links in the daemon's own namespace ---
    virtual Result<LinkKind> link_kind(const std::string& name) = 0;
    // Creates the bridge (random locally administered MAC, MTU, accept_ra=0), or adopts an existing
    // bridge of that name; then makes `address` its only IPv4 address (with broadcast; with
    // no_ipv4_address every IPv4 address is removed), with address6 makes it the only global IPv6
    // address (link-local kept), and sets it up. Idempotent.
    // Returns true when it created the bridge. Errors if `name` exists and is not a bridge.
    virtual Result<bool> ensure_bridge(const BridgeSpec& spec) = 0;
    // Creates a veth pair: host side in our namespace, enslaved to spec.bridge; the peer is born
    // inside `ns` (IFLA_NET_NS_FD) with its name, MAC and MTU. Fails with EEXIST when the host name
    // is taken (the engine picks another).
    virtual Result<void> create_veth(const VethSpec& spec, Netns& ns) = 0;
    virtual Result<void> set_up(const std::string& ifname) = 0;
    // Deletes a link in our namespace. Absent is not an error (idempotent).
    virtual Result<void> delete_link(const std::string& ifname) = 0;
    // Detach fast path: takes the veth pair `host_ifname` (ours) / `peer_ifname` (inside `ns`;
    // nullptr when that namespace is gone) out of service at once (host end down and off its
    // bridge; container end down and renamed, so `peer_ifname` is free again at once) and deletes
    // the pair soon after, batched with others: one kernel RCU wait per batch instead of one per
    // pair. Absent links are not an error. Default: delete_link(host_ifname) right away.
    virtual Result<void> retire_veth(const std::string& host_ifname, Netns* ns,
                                     const std::string& peer_ifname) {
        (void)ns;
        (void)peer_ifname;
        return delete_link(host_ifname);
    }
    // Blocks until every pair retired so far is deleted. Default: nothing is ever pending.
    virtual Result<void> flush_retired() { return ok(); }
    // Writes a sysctl of our namespace, key relative to /proc/sys ("net/ipv4/ip_forward").
    virtual Result<void> write_sysctl(const std::string& key, const std::string& value) = 0;
    // Reads one (trailing newline removed).
    virtual Result<std::string> read_sysctl(const std::string& key) = 0;

    // Binds every port of [first, last] for `proto` (6 tcp, 17 udp, 132 sctp) on `addr` (nullopt:
    // 0.0.0.0) and holds them. A port another process uses fails with EADDRINUSE and the error
    // names it ("Bind for 0.0.0.0:8080 failed: address already in use"); nothing stays bound then.
    virtual Result<std::unique_ptr<PortHold>> hold_ports(int proto, std::optional<Ipv4> addr,
                                                         uint16_t first, uint16_t last) = 0;
    // The same for IPv6 (nullopt: [::]), sockets with IPV6_V6ONLY so they never touch IPv4.
    // On ::1 (no DNAT: the daemon's relay serves on these very sockets through dups) tcp sockets
    // are SO_REUSEADDR and listening (exclusive all the same), and the hold shuts its sockets down
    // before closing them, so a relay's dup stops accepting at once.
    virtual Result<std::unique_ptr<PortHold>> hold_ports6(int proto, std::optional<Ipv6> addr,
                                                          uint16_t first, uint16_t last) = 0;

    // --- host facts (for defaults) ---
    // MTU of the interface that carries our namespace's IPv4 default route (nullopt: no default
    // route), so bridges follow 1400/1450 uplinks instead of Docker's fixed 1500.
    virtual Result<std::optional<unsigned>> default_route_mtu() = 0;
    // Destinations of our namespace's IPv4 routes that are on-link (scope link, e.g. the LAN's
    // 192.168.1.0/24 on eth0), for default address pool selection. Excludes our own bridges' routes
    // only if the caller filters them.
    virtual Result<std::vector<Ipv4Cidr>> onlink_routes4() = 0;
    // Identities of the host's network namespaces: the daemon's own (its main thread's) and PID
    // 1's. Connecting one of them would hand the host's own routes to a container network, so
    // the engine refuses them as targets. Default: none known (fakes).
    virtual std::vector<NetnsId> host_netns_ids() { return {}; }
    // Number of ports enslaved to `bridge` (Linux refuses the 1025th with "exchange full").
    virtual Result<unsigned> bridge_port_count(const std::string& bridge) = 0;

    // --- inspection and repair, for reconciliation at start and netns GC (owner: persist;
    // implemented in lib/platform/inspect.cpp, tests/unit/fakes). Read-only unless named set_.
    // A link of our namespace: absent (nullopt) or its kind, master and state.
    virtual Result<std::optional<LinkStatus>> link_status(const std::string& name) = 0;
    // The container side `ifname` inside `ns`: absent (nullopt) or its state, IPv4/IPv6 global
    // addresses and the gateway of its default routes.
    virtual Result<std::optional<PeerStatus>> peer_status(Netns& ns, const std::string& ifname) = 0;
    // Enslaves `ifname` to `bridge` (idempotent).
    virtual Result<void> set_master(const std::string& ifname, const std::string& bridge) = 0;
    // Names of the veth links enslaved to `bridge` (one dump of our namespace's links).
    virtual Result<std::vector<std::string>> bridge_veths(const std::string& bridge) = 0;
    // Deletes our namespace's neighbour (ARP/NDP) entries for `v4` / `v6` on `dev` (the bridge),
    // so the next packet resolves the address afresh: a reused address may still map to the MAC
    // of its previous owner (netlink/neigh.hpp says why the new owner's announce cannot be relied
    // on). Absent entries are success. Default: nothing (fakes without a neighbour table).
    virtual Result<void> forget_neighbours(const std::string& dev, std::optional<Ipv4> v4,
                                           std::optional<Ipv6> v6) {
        (void)dev;
        (void)v4;
        (void)v6;
        return ok();
    }

    // --- overlay data plane (lib/netlink/vxlan.hpp; docs/overlay.md) ---
    // Creates the VXLAN device as `spec` says, or brings an existing one to it (MTU, the /32
    // address, up) without disturbing its FDB/neighbours/routes; a vxlan device whose VNI, port,
    // local address, lower link or MAC differ, or with learning on, is deleted and created again
    // (flannel's rule; the MAC too because the kernel flushes a device's neighbours when its MAC
    // changes). Returns true when it created the device (program every peer again).
    // InvalidArgument naming the link when a link of another kind holds the name (never
    // deleted: it is not ours).
    virtual Result<bool> ensure_vxlan(const VxlanSpec& spec) {
        (void)spec;
        return Error(ErrorKind::Kernel, "ensure_vxlan: not supported by this kernel port");
    }
    // Programs one remote node on `dev`, in flannel's order: neighbour (peer.block.network() ->
    // peer.mac, NUD_PERMANENT), FDB (peer.mac -> peer.underlay, NTF_SELF, permanent), then the
    // route `peer.block via peer.block.network() dev <dev> onlink` (last: with the route first
    // the kernel would ARP for the gateway). Existing entries are replaced (NLM_F_REPLACE). On a
    // failure the entries this call added are removed again before the error returns.
    virtual Result<void> add_vxlan_peer(const std::string& dev, const VxlanPeer& peer) {
        (void)dev;
        (void)peer;
        return Error(ErrorKind::Kernel, "add_vxlan_peer: not supported by this kernel port");
    }
    // Removes route, FDB entry and neighbour (in that order). Absent entries are success.
    virtual Result<void> remove_vxlan_peer(const std::string& dev, const VxlanPeer& peer) {
        (void)dev;
        (void)peer;
        return ok();
    }
    // The peers programmed on `dev`: one per onlink route via a neighbour with a permanent
    // lladdr whose FDB entry exists (entries missing a part are returned too, so a caller can
    // repair them: then mac or underlay is zero). Reads only; empty when `dev` does not exist.
    virtual Result<std::vector<VxlanPeer>> vxlan_peers(const std::string& dev) {
        (void)dev;
        return std::vector<VxlanPeer>{};
    }
    // The link holding IPv4 address `a` in our namespace and its MTU (the VXLAN device's lower
    // link and MTU). NotFound naming the address when no link has it.
    virtual Result<std::pair<std::string, unsigned>> link_of_address(Ipv4 a) {
        return Error(ErrorKind::NotFound, "no link has address " + a.str());
    }
};

}  // namespace cnetd::core
