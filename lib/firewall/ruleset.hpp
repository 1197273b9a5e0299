// The nftables layout of cnetd's table, as pure functions: intent in, netlink batch (bytes) or
// expected kernel state out. No kernel access here, so unit tests decode the batches directly.
// The objects are typed specs (lib/nft/spec.hpp); only lib/nft turns them into netlink messages.
//
// Where each concern lives (lib/firewall):
//   layout.hpp/.cpp  the sets, maps and base chains (declarative tables set_defs, chain_defs)
//   rules.cpp        the rules (declarative table rule_defs) and their expression sequences
//   elements.*       element encoders: networks, mappings, hairpin, br_netfilter -> elements
//   builders.cpp     batch builders (build_*)
//   verify.cpp       expected_state, mismatch/matches, render
//   validate.cpp     validate, describe
//   port_index.cpp   port_key, same_key, overlaps, find_overlap
//
// Names in one place (see docs/firewall.md for the full nft text and the reasons):
//   table inet <t>
//     sets:   bridges, internal_bridges, icc_bridges (ifname . ifname),
//             isolated_bridges, open_bridges (nf_proto . ifname: gateway modes per family),
//             subnets (interval), nets (ipv4_addr . ifname, interval), masq_nets (interval),
//             subnets6, nets6, masq_nets6 (the same for IPv6),
//             routed_ports[6] (container addr . inet_proto . inet_service, interval),
//             hairpin_self (ipv4_addr . ipv4_addr), hairpin_self6 (ipv6_addr . ipv6_addr):
//                        C . C for each container address C with a published port,
//             unbridged (nf_proto): families whose bridged traffic skips netfilter (BridgeNf)
//     maps:   snat_nets (ipv4_addr : ipv4_addr, interval),
//             published (inet_proto . inet_service : ipv4_addr . inet_service, HASH) — a single
//                        host port on every address, the common case: constant-time lookup
//             published_ranges (ipv4_addr . inet_proto . inet_service :
//                        ipv4_addr . inet_service . inet_service, interval) — port ranges and
//                        specific host addresses (a host port RANGE is one element too)
//             published6, published6_ranges — the same for IPv6 mappings
//     chains: raw_prerouting (filter, prerouting, -300), forward (filter, forward, 0),
//             nat_prerouting (nat, prerouting, -100), nat_output (nat, output, -100),
//             nat_postrouting (nat, postrouting, 100)
// Every rule carries a comment naming it; the comments identify our rules in a dump.
// The rules are fixed: 0 and 10,000 networks or published ports give the same chains and rules.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "firewall/firewall.hpp"
#include "nft/batch.hpp"
#include "nft/dump.hpp"

namespace cnetd::firewall {

// The expected kernel view of the table (what nft::dump_table() should return).
struct ExpectedChain {
    std::string name;
    std::vector<std::string> rule_comments;
};
struct ExpectedSet {
    std::string name;
    size_t elements = 0;  // as the kernel stores them (an rbtree interval is a start and an end)
};
struct Expected {
    std::vector<ExpectedChain> chains;
    std::vector<ExpectedSet> sets;
};

// Whether traffic switched between two ports of one bridge passes the inet hooks: br_netfilter's
// net.bridge.bridge-nf-call-iptables (ipv4) / -ip6tables (ipv6) is 1 in the network namespace.
// Hairpin between two containers without masquerade relies on it: the target answers the client
// directly over the bridge, and only then does that reply pass conntrack to be un-DNAT'd. A
// family set to false gets an element in `unbridged`, and its hairpin connections are all
// masqueraded (the server sees the gateway address, but the connection works).
struct BridgeNf {
    bool ipv4 = true;
    bool ipv6 = true;
    bool operator==(const BridgeNf&) const = default;
};

// Full atomic rebuild: "add table; delete table" (so it works whether or not the table exists),
// then the table, sets, chains, rules and every network's and port's elements.
nft::Batch build_rebuild(std::string_view table, const std::vector<NetworkRules>& nets,
                         const std::vector<PortForward>& ports = {}, BridgeNf bnf = {});
// One network's elements: add (NEWSETELEM) or delete (DELSETELEM), one message per set.
nft::Batch build_network(std::string_view table, const NetworkRules& n, bool add);
// Published ports' elements in map `published`, each mapping normally ONE element (see
// port_map_values()); at most kMaxElemsPerMsg elements per message, so 10,000 mappings are ~20
// messages. A best-effort delete retries mapping by mapping with build_ports({p}, false).
constexpr size_t kMaxElemsPerMsg = 500;  // ~32 KiB per message (the builder's buffer is 64 KiB)
// `nets` (the current networks) decides which mappings also get a `routed_ports[6]` element
// (their bridge's network is in gateway mode routed for their family).
nft::Batch build_ports(std::string_view table, const std::vector<PortForward>& ports, bool add,
                       const std::vector<NetworkRules>& nets = {});
// The `hairpin_self[6]` elements `C . C` of the container addresses of `ports` (each distinct
// address once, however many of `ports` share it). A container reaching its own published port
// through a host address is masqueraded (it would drop its own address as a source); another
// container doing the same keeps its address. The element of an address must exist while any
// mapping targets it: the caller counts references (build_rebuild() takes the distinct ones).
nft::Batch build_hairpin_self(std::string_view table, const std::vector<PortForward>& ports,
                              bool add);
// The identity of a mapping's hairpin_self element: family and container address.
using SelfKey = std::pair<uint8_t, std::array<uint8_t, 16>>;
SelfKey self_key(const PortForward& p);
Expected expected_state(std::string_view table, const std::vector<NetworkRules>& nets,
                        const std::vector<PortForward>& ports = {}, BridgeNf bnf = {});
// True if the dump has our chains with our rules (by comment, in order) and our sets; with
// `elements` also the element counts.
bool matches(const nft::TableInfo& have, const Expected& want, bool elements);
// Why they do not match ("set nets has 3 elements, not 2"), or "" when they do.
std::string mismatch(const nft::TableInfo& have, const Expected& want, bool elements);
// nft-like text of the intended table.
std::string render(std::string_view table, const std::vector<NetworkRules>& nets,
                   const std::vector<PortForward>& ports = {}, BridgeNf bnf = {});

// ---- published ports ------------------------------------------------------------------------
//
// A mapping host ports [h, h+n-1] -> container ports [c, c+n-1] is ONE interval element whose
// value is (container address, port_min, port_max). The DNAT rule sets NF_NAT_RANGE_PROTO_OFFSET,
// for which the kernel (nf_nat_l4proto_unique_tuple; nft cannot pass a base port, so base = 0)
// picks   new_port = port_min + (dport % (port_max - port_min + 1)).
// port_map_values() chooses port_min/port_max so that this is c + (dport - h) for every dport of
// the range: a modulus S = port_max - port_min + 1 with (h mod S) + n <= S, port_min = c - (h mod
// S). For a single port S = 1 and port_min = port_max = c. Such an S exists unless n > h > c (e.g.
// 100-300 -> 50-250); then the mapping is split into n single-port elements (still no rules).
struct PortMapValue {
    uint16_t host_first, host_last;  // the part of the host range this element covers
    uint16_t port_min, port_max;
};
std::vector<PortMapValue> port_map_values(const PortForward& p);

// Checks one mapping: ports non-zero, host_first <= host_last, the container range fits below
// 65536, a valid bridge name, a container address. Errors name the mapping.
Result<void> validate(const PortForward& p);
// "tcp 0.0.0.0:8000-8002 -> 172.17.0.2:80-82 (docker0)", for errors and logs.
std::string describe(const PortForward& p);
// The identity of a mapping in the map: same proto, host address and host range is the same key.
bool same_key(const PortForward& a, const PortForward& b);
// True if a and b would answer some common (address, proto, port): same protocol, intersecting
// host ranges, and one of them on every address or both on the same one. Docker refuses such
// pairs; the kernel's concatenated interval map would accept them and pick either.
bool overlaps(const PortForward& a, const PortForward& b);

// An ordered index of mappings by identity (what same_key() compares):
// (family, proto, host address (IPv4 in the first 4 bytes; all zero = every address), host range).
using PortKey = std::tuple<uint8_t, uint8_t, std::array<uint8_t, 16>, uint16_t, uint16_t>;
PortKey port_key(const PortForward& p);
using PortMap = std::map<PortKey, PortForward>;
// A mapping of `index` that overlaps `p`, ignoring those whose key is in `skip` (the ones `p`'s
// request replaces); nullptr if none. O(log n) per host address in the index (one address, plus
// every-address, for a specific `p`; each address present for an every-address `p`), not O(n):
// adding the 10,001st mapping costs what adding the second does.
// Requires what the firewall keeps true: no two mappings of `index` overlap each other.
const PortForward* find_overlap(const PortMap& index, const PortForward& p, const PortMap& skip);

}  // namespace cnetd::firewall
