// The rules of cnetd's table (rule_defs(), a declarative table) and the expression sequences they
// share. Each rule is the list of typed expressions the nft CLI would compile from the nft text
// beside it (compare with `nft --debug=netlink`).
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>

#include "firewall/layout.hpp"

namespace cnetd::firewall::detail {
namespace {

using namespace nft::expr;
using nft::Exprs;

constexpr uint32_t kIpSaddr = 12, kIpDaddr = 16;   // offsets in the IPv4 header
constexpr uint32_t kIp6Saddr = 8, kIp6Daddr = 24;  // offsets in the IPv6 header
constexpr uint32_t kThDport = 2;                   // offset of the destination port (tcp/udp/sctp)
constexpr uint8_t kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

// In the inet family an `ip ...` match needs `meta nfproto ipv4` first (nft adds it implicitly).
Exprs family_only(bool six) {
    return seq(meta(NFT_META_NFPROTO, NFT_REG_1),
               cmp_u32(NFT_REG_1, NFT_CMP_EQ, six ? NFPROTO_IPV6 : NFPROTO_IPV4));
}
Exprs ipv4_only() {
    return family_only(false);
}
Exprs ipv6_only() {
    return family_only(true);
}
// `iifname|oifname @set`
Exprs ifname_in(uint32_t key, const char* set) {
    return seq(meta(key, NFT_REG_1), lookup(NFT_REG_1, set));
}
// `meta nfproto . <iif|oif>name @set` (sets typed nf_proto . ifname).
Exprs family_ifname_in(uint32_t key, const char* set) {
    return seq(meta(NFT_META_NFPROTO, NFT_REG32_00), meta(key, NFT_REG32_01),
               lookup(NFT_REG32_00, set));
}
// Any of `bits` set in the conntrack key (ct state / ct status).
Exprs ct_any(uint32_t key, uint32_t bits) {
    const uint32_t zero = 0;
    return seq(ct(key, NFT_REG_1), bitwise_mask(NFT_REG_1, bits),
               cmp(NFT_REG_1, NFT_CMP_NEQ, &zero, sizeof zero));
}
Exprs ct_state_any(uint32_t bits) {
    return ct_any(NFT_CT_STATE, bits);
}
// `ct status dnat`: the connection's destination was rewritten (by us or anyone else).
Exprs ct_dnat() {
    return ct_any(NFT_CT_STATUS, IPS_DST_NAT);
}
// `iifname != "lo"`
Exprs not_from_lo() {
    char lo[kIfnameLen] = "lo";
    return seq(meta(NFT_META_IIFNAME, NFT_REG_1), cmp(NFT_REG_1, NFT_CMP_NEQ, lo, sizeof lo));
}
// `ip saddr|daddr 127.0.0.0/8`.
Exprs is_loopback_net(uint32_t offset) {
    return seq(payload(NFT_PAYLOAD_NETWORK_HEADER, offset, 4, NFT_REG_1),
               bitwise_mask(NFT_REG_1, htonl(0xff000000u)),  // mask bytes ff 00 00 00
               cmp_u32(NFT_REG_1, NFT_CMP_EQ, htonl(0x7f000000u)));
}
// `ip6 saddr|daddr ::1` (op EQ) or `!= ::1` (op NEQ).
Exprs is_loopback6(uint32_t offset, uint32_t op) {
    return seq(payload(NFT_PAYLOAD_NETWORK_HEADER, offset, 16, NFT_REG_1),
               cmp(NFT_REG_1, op, kLoopback6, sizeof kLoopback6));
}
// `fib daddr type [!=] local` in `reg`.
Exprs fib_local(uint32_t reg, uint32_t op) {
    return seq(fib(NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, reg), cmp_u32(reg, op, RTN_LOCAL));
}
// Register of the second key field after an address of the family (4 or 16 bytes).
uint32_t after_addr(bool six) {
    return six ? NFT_REG32_04 : NFT_REG32_01;
}
uint32_t addr_len(bool six) {
    return six ? 16 : 4;
}

// Docker 28's raw PREROUTING `-d C ! -i br -j DROP`, for whole subnets at once, per family.
Exprs no_direct_routing(bool six) {
    const uint32_t daddr = six ? kIp6Daddr : kIpDaddr;
    const uint32_t key = six ? NFT_REG32_00 : NFT_REG_1;
    return seq(family_only(six),
               payload(NFT_PAYLOAD_NETWORK_HEADER, daddr, addr_len(six), NFT_REG_1),
               lookup(NFT_REG_1, six ? "subnets6" : "subnets"),
               payload(NFT_PAYLOAD_NETWORK_HEADER, daddr, addr_len(six), key),
               meta(NFT_META_IIFNAME, after_addr(six)),
               lookup(key, six ? "nets6" : "nets", /*invert=*/true),
               fib_local(NFT_REG_1, NFT_CMP_NEQ), verdict(NF_DROP));
}
// `ip[6] daddr . meta l4proto . th dport @routed_ports[6] accept`
Exprs routed_published(bool six) {
    return seq(
        family_only(six),
        payload(NFT_PAYLOAD_NETWORK_HEADER, six ? kIp6Daddr : kIpDaddr, addr_len(six),
                NFT_REG32_00),
        meta(NFT_META_L4PROTO, after_addr(six)),
        payload(NFT_PAYLOAD_TRANSPORT_HEADER, kThDport, 2, six ? NFT_REG32_05 : NFT_REG32_02),
        lookup(NFT_REG32_00, six ? "routed_ports6" : "routed_ports"), verdict(NF_ACCEPT));
}

// The published-port DNATs, the same in nat prerouting and nat output. The common case first:
//   fib daddr type local dnat ip to meta l4proto . th dport map @published
// a hash lookup keyed (l4proto reg32 0, dport reg32 1) giving (address reg32 0, port reg32 1);
// the IPv6 address takes four registers, so the port comes back in reg32 4. The `fib daddr type
// local` check runs in register 3 (reg32 8..11) after the lookup, whose result (up to six 32-bit
// registers) it must not overwrite: a packet for an unpublished port (most of them) costs one
// hash lookup and no route lookup. `not_loopback` (IPv6 from the host): the host's own packets
// to ::1 are never DNAT'd (see docs/firewall.md: the kernel drops the answers).
Exprs published_dnat(bool six, bool not_loopback = false) {
    const uint32_t port = six ? NFT_REG32_04 : NFT_REG32_01;
    return seq(family_only(six), not_loopback ? is_loopback6(kIp6Daddr, NFT_CMP_NEQ) : Exprs{},
               meta(NFT_META_L4PROTO, NFT_REG32_00),
               payload(NFT_PAYLOAD_TRANSPORT_HEADER, kThDport, 2, NFT_REG32_01),
               lookup(NFT_REG32_00, six ? "published6" : "published", false, NFT_REG32_00),
               fib_local(NFT_REG_3, NFT_CMP_EQ),
               dnat(six ? NFPROTO_IPV6 : NFPROTO_IPV4, NFT_REG32_00, port, port, 0));
}
// Ranges and specific host addresses:
//   fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @published_ranges
// with NF_NAT_RANGE_PROTO_OFFSET (nft has no syntax for the flag; see port_map_values()).
// Key registers: daddr (reg32 0, or 0..3), l4proto (next register, one byte, zero-padded as the
// key is), dport (the one after); the lookup writes (address, port_min, port_max) over them.
Exprs published_ranges_dnat(bool six, bool not_loopback = false) {
    const uint32_t proto = after_addr(six), dport = six ? NFT_REG32_05 : NFT_REG32_02;
    return seq(
        family_only(six), not_loopback ? is_loopback6(kIp6Daddr, NFT_CMP_NEQ) : Exprs{},
        payload(NFT_PAYLOAD_NETWORK_HEADER, six ? kIp6Daddr : kIpDaddr, addr_len(six),
                NFT_REG32_00),
        meta(NFT_META_L4PROTO, proto), payload(NFT_PAYLOAD_TRANSPORT_HEADER, kThDport, 2, dport),
        lookup(NFT_REG32_00, six ? "published6_ranges" : "published_ranges", false, NFT_REG32_00),
        fib_local(NFT_REG_3, NFT_CMP_EQ),
        dnat(six ? NFPROTO_IPV6 : NFPROTO_IPV4, NFT_REG32_00, proto, dport,
             NF_NAT_RANGE_PROTO_OFFSET));
}
// Hairpin to itself, per family (`six`):
//   ct status dnat ip[6] saddr . ip[6] daddr @hairpin_self[6] masquerade
// The address pair in consecutive registers is the concatenated key (4 + 4 or 16 + 16 bytes).
Exprs hairpin_self(bool six) {
    return seq(ct_dnat(), family_only(six),
               payload(NFT_PAYLOAD_NETWORK_HEADER, six ? kIp6Saddr : kIpSaddr, addr_len(six),
                       NFT_REG32_00),
               payload(NFT_PAYLOAD_NETWORK_HEADER, six ? kIp6Daddr : kIpDaddr, addr_len(six),
                       after_addr(six)),
               lookup(NFT_REG32_00, six ? "hairpin_self6" : "hairpin_self"), masquerade());
}
// Every hairpin connection of a family without br_netfilter:
//   ct status dnat meta nfproto @unbridged ip[6] saddr . oifname @nets[6] masquerade
Exprs hairpin_unbridged(bool six) {
    return seq(ct_dnat(), family_only(six),
               lookup(NFT_REG_1, "unbridged"),  // NFT_REG_1 still holds meta nfproto
               payload(NFT_PAYLOAD_NETWORK_HEADER, six ? kIp6Saddr : kIpSaddr, addr_len(six),
                       NFT_REG32_00),
               meta(NFT_META_OIFNAME, after_addr(six)),
               lookup(NFT_REG32_00, six ? "nets6" : "nets"), masquerade());
}
// `ip[6] saddr . oifname @nets[6] return`
Exprs own_bridge_return(bool six) {
    return seq(family_only(six),
               payload(NFT_PAYLOAD_NETWORK_HEADER, six ? kIp6Saddr : kIpSaddr, addr_len(six),
                       six ? NFT_REG32_00 : NFT_REG_1),
               meta(NFT_META_OIFNAME, after_addr(six)),
               lookup(six ? NFT_REG32_00 : NFT_REG_1, six ? "nets6" : "nets"), verdict(NFT_RETURN));
}
// `ip[6] saddr @masq_nets[6] masquerade`
Exprs masquerade_nets(bool six) {
    return seq(
        family_only(six),
        payload(NFT_PAYLOAD_NETWORK_HEADER, six ? kIp6Saddr : kIpSaddr, addr_len(six), NFT_REG_1),
        lookup(NFT_REG_1, six ? "masq_nets6" : "masq_nets"), masquerade());
}

constexpr const char* kPublishedNft =
    "fib daddr type local dnat ip to meta l4proto . th dport map @published";
constexpr const char* kPublishedRangesNft =
    "fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @published_ranges "
    "/* port offset */";
constexpr const char* kPublished6Nft =
    "fib daddr type local dnat ip6 to meta l4proto . th dport map @published6";
constexpr const char* kPublished6RangesNft =
    "fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @published6_ranges "
    "/* port offset */";
constexpr const char* kPublished6OutNft =
    "ip6 daddr != ::1 fib daddr type local dnat ip6 to meta l4proto . th dport map @published6";
constexpr const char* kPublished6RangesOutNft =
    "ip6 daddr != ::1 fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map "
    "@published6_ranges /* port offset */";

constexpr uint32_t kEstablishedRelated =
    NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED);

}  // namespace

// A declarative table (exempt from the function-length limit): one row per rule, in order.
const std::vector<RuleDef>& rule_defs() {
    static const std::vector<RuleDef> defs = {
        // Docker 28's raw PREROUTING `-d C ! -i br -j DROP`, for whole subnets at once: a packet
        // for a managed subnet must arrive on that subnet's bridge. Local addresses (the bridge's
        // own gateway address) stay reachable, as they are with Docker.
        {"raw_prerouting", "cnetd: no direct routing to container addresses",
         "ip daddr @subnets ip daddr . iifname != @nets fib daddr type != local drop",
         no_direct_routing(false)},
        {"raw_prerouting", "cnetd: no direct routing to container addresses (ipv6)",
         "ip6 daddr @subnets6 ip6 daddr . iifname != @nets6 fib daddr type != local drop",
         no_direct_routing(true)},
        // Docker 28's `-d 127.0.0.1 ! -i lo -j DROP` (CVE-2025-54388), for all of 127/8 at once:
        // route_localnet=1 on a bridge (needed for host -> 127.0.0.1 -> container) must not make
        // loopback-bound ports reachable from the bridge or, with a crafted route, from outside.
        // Before conntrack and NAT, so it cannot be undone by a DNAT.
        {"raw_prerouting", "cnetd: loopback only from lo",
         "ip daddr 127.0.0.0/8 iifname != \"lo\" drop",
         seq(ipv4_only(), is_loopback_net(kIpDaddr), not_from_lo(), verdict(NF_DROP))},
        // The same for ::1. The kernel itself already drops packets for ::1 arriving on any
        // other device (ip6_rcv_core, RFC 4291 2.5.3); kept so the protection does not depend on
        // it.
        {"raw_prerouting", "cnetd: ipv6 loopback only from lo",
         "ip6 daddr ::1 iifname != \"lo\" drop",
         seq(ipv6_only(), is_loopback6(kIp6Daddr, NFT_CMP_EQ), not_from_lo(), verdict(NF_DROP))},
        {"forward", "cnetd: established", "ct state established,related accept",
         seq(ct_state_any(kEstablishedRelated), verdict(NF_ACCEPT))},
        {"forward", "cnetd: invalid from bridge", "iifname @bridges ct state invalid drop",
         seq(ifname_in(NFT_META_IIFNAME, "bridges"), ct_state_any(NF_CT_STATE_INVALID_BIT),
             verdict(NF_DROP))},
        {"forward", "cnetd: invalid to bridge", "oifname @bridges ct state invalid drop",
         seq(ifname_in(NFT_META_OIFNAME, "bridges"), ct_state_any(NF_CT_STATE_INVALID_BIT),
             verdict(NF_DROP))},
        // Only bridged traffic (br_netfilter) has iifname == oifname == the bridge.
        {"forward", "cnetd: icc", "iifname . oifname @icc_bridges accept",
         seq(meta(NFT_META_IIFNAME, NFT_REG_1), meta(NFT_META_OIFNAME, NFT_REG_2),
             lookup(NFT_REG_1, "icc_bridges"), verdict(NF_ACCEPT))},
        {"forward", "cnetd: internal egress", "iifname @internal_bridges drop",
         seq(ifname_in(NFT_META_IIFNAME, "internal_bridges"), verdict(NF_DROP))},
        {"forward", "cnetd: internal ingress", "oifname @internal_bridges drop",
         seq(ifname_in(NFT_META_OIFNAME, "internal_bridges"), verdict(NF_DROP))},
        // Gateway mode isolated (per family): nothing in or out but the bridge itself (ICC,
        // accepted above) and the host (input/output hooks, not forward).
        {"forward", "cnetd: isolated egress", "meta nfproto . iifname @isolated_bridges drop",
         seq(family_ifname_in(NFT_META_IIFNAME, "isolated_bridges"), verdict(NF_DROP))},
        {"forward", "cnetd: isolated ingress", "meta nfproto . oifname @isolated_bridges drop",
         seq(family_ifname_in(NFT_META_OIFNAME, "isolated_bridges"), verdict(NF_DROP))},
        // Published ports: a DNAT'd connection to a container is let in, from outside, from
        // another network and with ICC off (Docker accepts published container ports before its
        // isolation and ICC drops). Un-DNAT'd traffic still falls through to the drops below.
        {"forward", "cnetd: published ports", "oifname @bridges ct status dnat accept",
         seq(ifname_in(NFT_META_OIFNAME, "bridges"), ct_dnat(), verdict(NF_ACCEPT))},
        // Between two managed bridges (isolation) or within one with ICC off.
        {"forward", "cnetd: isolation", "iifname @bridges oifname @bridges drop",
         seq(ifname_in(NFT_META_IIFNAME, "bridges"), ifname_in(NFT_META_OIFNAME, "bridges"),
             verdict(NF_DROP))},
        // Gateway mode routed: direct routed access from outside to published container ports
        // only (the container side of the mapping). After isolation: other bridges stay out.
        {"forward", "cnetd: routed published ports",
         "ip daddr . meta l4proto . th dport @routed_ports accept", routed_published(false)},
        {"forward", "cnetd: routed published ports (ipv6)",
         "ip6 daddr . meta l4proto . th dport @routed_ports6 accept", routed_published(true)},
        // Gateway mode nat-unprotected: direct routed access to any container port.
        {"forward", "cnetd: unprotected", "meta nfproto . oifname @open_bridges accept",
         seq(family_ifname_in(NFT_META_OIFNAME, "open_bridges"), verdict(NF_ACCEPT))},
        // Docker's `! -i br -o br -j DROP`: nothing unsolicited from outside reaches a container.
        {"forward", "cnetd: no inbound", "oifname @bridges drop",
         seq(ifname_in(NFT_META_OIFNAME, "bridges"), verdict(NF_DROP))},
        {"forward", "cnetd: outbound", "iifname @bridges accept",
         seq(ifname_in(NFT_META_IIFNAME, "bridges"), verdict(NF_ACCEPT))},
        {"nat_prerouting", "cnetd: published ports", kPublishedNft, published_dnat(false)},
        {"nat_prerouting", "cnetd: published port ranges", kPublishedRangesNft,
         published_ranges_dnat(false)},
        {"nat_prerouting", "cnetd: published ports (ipv6)", kPublished6Nft, published_dnat(true)},
        {"nat_prerouting", "cnetd: published port ranges (ipv6)", kPublished6RangesNft,
         published_ranges_dnat(true)},
        {"nat_output", "cnetd: published ports from the host", kPublishedNft,
         published_dnat(false)},
        {"nat_output", "cnetd: published port ranges from the host", kPublishedRangesNft,
         published_ranges_dnat(false)},
        {"nat_output", "cnetd: published ports from the host (ipv6)", kPublished6OutNft,
         published_dnat(true, true)},
        {"nat_output", "cnetd: published port ranges from the host (ipv6)", kPublished6RangesOutNft,
         published_ranges_dnat(true, true)},
        // Hairpin: a container reaching a published port through a host address is DNAT'd back
        // out of its own bridge. Only a container reaching ITSELF needs SNAT (it would drop a
        // packet from its own address); a neighbour's reply goes straight back over the bridge
        // and, with br_netfilter, through conntrack, which un-DNATs it: the server sees the real
        // client, as with Docker without its proxy. Before "no nat on own bridge", which would
        // return first.
        {"nat_postrouting", "cnetd: hairpin to itself",
         "ct status dnat ip saddr . ip daddr @hairpin_self masquerade", hairpin_self(false)},
        {"nat_postrouting", "cnetd: hairpin to itself (ipv6)",
         "ct status dnat ip6 saddr . ip6 daddr @hairpin_self6 masquerade", hairpin_self(true)},
        // Without br_netfilter (`unbridged` has the family) the neighbour's reply is switched
        // past netfilter and never un-DNAT'd: masquerade every hairpin connection instead.
        {"nat_postrouting", "cnetd: hairpin without br_netfilter",
         "ct status dnat meta nfproto @unbridged ip saddr . oifname @nets masquerade",
         hairpin_unbridged(false)},
        {"nat_postrouting", "cnetd: hairpin without br_netfilter (ipv6)",
         "ct status dnat meta nfproto @unbridged ip6 saddr . oifname @nets6 masquerade",
         hairpin_unbridged(true)},
        // Host -> 127.0.0.1:port DNAT'd to a container keeps source 127.0.0.1, which the
        // container cannot answer (and the kernel routes out of a bridge only with
        // route_localnet=1 on it): masquerade to the bridge address.
        {"nat_postrouting", "cnetd: localhost to container",
         "ip saddr 127.0.0.0/8 oifname @bridges masquerade",
         seq(ipv4_only(), is_loopback_net(kIpSaddr), ifname_in(NFT_META_OIFNAME, "bridges"),
             masquerade())},
        {"nat_postrouting", "cnetd: no nat on own bridge", "ip saddr . oifname @nets return",
         own_bridge_return(false)},
        {"nat_postrouting", "cnetd: no nat on own bridge (ipv6)",
         "ip6 saddr . oifname @nets6 return", own_bridge_return(true)},
        {"nat_postrouting", "cnetd: masquerade", "ip saddr @masq_nets masquerade",
         masquerade_nets(false)},
        {"nat_postrouting", "cnetd: masquerade (ipv6)", "ip6 saddr @masq_nets6 masquerade",
         masquerade_nets(true)},
        {"nat_postrouting", "cnetd: snat", "snat ip to ip saddr map @snat_nets",
         seq(ipv4_only(), payload(NFT_PAYLOAD_NETWORK_HEADER, kIpSaddr, 4, NFT_REG_1),
             lookup(NFT_REG_1, "snat_nets", false, NFT_REG_1), snat(NFPROTO_IPV4, NFT_REG_1))},
    };
    return defs;
}

}  // namespace cnetd::firewall::detail
