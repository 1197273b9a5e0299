#include "firewall/ruleset.hpp"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <set>

#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "nft/expr.hpp"

namespace cnetd::firewall {
namespace {

using TablePtr = CHandle<nftnl_table, nftnl_table_free>;
using ChainPtr = CHandle<nftnl_chain, nftnl_chain_free>;
using RulePtr = CHandle<nftnl_rule, nftnl_rule_free>;
using SetPtr = CHandle<nftnl_set, nftnl_set_free>;

constexpr int kFamily = NFPROTO_INET;
constexpr uint32_t kIfnameLen = 16;  // IFNAMSIZ: meta iifname loads 16 zero-padded bytes

// nft's datatype numbers (nftables' enum datatypes), so `nft list` prints our sets readably.
// Concatenated types are packed 6 bits per field.
constexpr uint32_t kTypeNfproto = 2, kTypeIpv4 = 7, kTypeIpv6 = 8, kTypeInetProto = 12,
                   kTypeInetService = 13, kTypeIfname = 41;
constexpr uint32_t concat_type(std::initializer_list<uint32_t> t) {
    uint32_t v = 0;
    for (uint32_t x : t) v = (v << 6) | x;
    return v;
}

// ---- sets ---------------------------------------------------------------------------------

struct SetDef {
    const char* name;
    uint32_t flags;
    uint32_t key_type;
    std::vector<uint32_t> fields;  // field lengths (concatenations); key_len = sum of padded
    uint32_t data_type = 0;        // maps only
    uint32_t data_len = 0;
    const char* nft_decl;  // for render() and the batch journal
};

const std::vector<SetDef>& set_defs() {
    static const std::vector<SetDef> defs = {
        {"bridges", 0, kTypeIfname, {kIfnameLen}, 0, 0, "type ifname"},
        {"internal_bridges", 0, kTypeIfname, {kIfnameLen}, 0, 0, "type ifname"},
        {"icc_bridges",
         NFT_SET_CONCAT,
         concat_type({kTypeIfname, kTypeIfname}),
         {kIfnameLen, kIfnameLen},
         0,
         0,
         "type ifname . ifname"},
        // Gateway modes, per family (meta nfproto . bridge): isolated bridges exchange nothing
        // with the rest of the world; nat-unprotected ones accept direct routed inbound traffic.
        {"isolated_bridges",
         NFT_SET_CONCAT,
         concat_type({kTypeNfproto, kTypeIfname}),
         {1, kIfnameLen},
         0,
         0,
         "type nf_proto . ifname"},
        {"open_bridges",
         NFT_SET_CONCAT,
         concat_type({kTypeNfproto, kTypeIfname}),
         {1, kIfnameLen},
         0,
         0,
         "type nf_proto . ifname"},
        // Subnets protected against direct routing (gateway modes nat and isolated, internal).
        {"subnets", NFT_SET_INTERVAL, kTypeIpv4, {4}, 0, 0, "type ipv4_addr; flags interval"},
        {"nets",
         NFT_SET_INTERVAL | NFT_SET_CONCAT,
         concat_type({kTypeIpv4, kTypeIfname}),
         {4, kIfnameLen},
         0,
         0,
         "type ipv4_addr . ifname; flags interval"},
        {"masq_nets", NFT_SET_INTERVAL, kTypeIpv4, {4}, 0, 0, "type ipv4_addr; flags interval"},
        {"snat_nets",
         NFT_SET_MAP | NFT_SET_INTERVAL,
         kTypeIpv4,
         {4},
         kTypeIpv4,
         4,
         "type ipv4_addr : ipv4_addr; flags interval"},
        {"subnets6", NFT_SET_INTERVAL, kTypeIpv6, {16}, 0, 0, "type ipv6_addr; flags interval"},
        {"nets6",
         NFT_SET_INTERVAL | NFT_SET_CONCAT,
         concat_type({kTypeIpv6, kTypeIfname}),
         {16, kIfnameLen},
         0,
         0,
         "type ipv6_addr . ifname; flags interval"},
        {"masq_nets6", NFT_SET_INTERVAL, kTypeIpv6, {16}, 0, 0, "type ipv6_addr; flags interval"},
        // Gateway mode routed: the published container ports (container address . protocol .
        // container port range) reachable by direct routing.
        {"routed_ports",
         NFT_SET_INTERVAL | NFT_SET_CONCAT,
         concat_type({kTypeIpv4, kTypeInetProto, kTypeInetService}),
         {4, 1, 2},
         0,
         0,
         "type ipv4_addr . inet_proto . inet_service; flags interval"},
        {"routed_ports6",
         NFT_SET_INTERVAL | NFT_SET_CONCAT,
         concat_type({kTypeIpv6, kTypeInetProto, kTypeInetService}),
         {16, 1, 2},
         0,
         0,
         "type ipv6_addr . inet_proto . inet_service; flags interval"},
        // Hairpin to itself: `C . C` for each container address C with a published port (the
        // only hairpin connections masqueraded when bridged traffic passes netfilter).
        {"hairpin_self",
         NFT_SET_CONCAT,
         concat_type({kTypeIpv4, kTypeIpv4}),
         {4, 4},
         0,
         0,
         "type ipv4_addr . ipv4_addr"},
        {"hairpin_self6",
         NFT_SET_CONCAT,
         concat_type({kTypeIpv6, kTypeIpv6}),
         {16, 16},
         0,
         0,
         "type ipv6_addr . ipv6_addr"},
        // Families whose bridged traffic skips netfilter (BridgeNf): every hairpin connection of
        // that family is masqueraded, or the target's direct reply would never be un-DNAT'd.
        {"unbridged", 0, kTypeNfproto, {1}, 0, 0, "type nf_proto"},
        // Published ports, the common case (one host port on every host address): a plain hash
        // map (protocol . host port) -> (container address . port), so a connection's first
        // packet costs one hash lookup whatever the number of mappings (issue 4).
        {"published",
         NFT_SET_MAP | NFT_SET_CONCAT,
         concat_type({kTypeInetProto, kTypeInetService}),
         {1, 2},
         concat_type({kTypeIpv4, kTypeInetService}),
         8,
         "type inet_proto . inet_service : ipv4_addr . inet_service"},
        // Everything else (host port ranges, specific host addresses): (host address, protocol,
        // host port range) -> (container address, port_min, port_max); see port_map_values().
        {"published_ranges",
         NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_CONCAT,
         concat_type({kTypeIpv4, kTypeInetProto, kTypeInetService}),
         {4, 1, 2},
         concat_type({kTypeIpv4, kTypeInetService, kTypeInetService}),
         12,
         "type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service . inet_service; "
         "flags interval"},
        {"published6",
         NFT_SET_MAP | NFT_SET_CONCAT,
         concat_type({kTypeInetProto, kTypeInetService}),
         {1, 2},
         concat_type({kTypeIpv6, kTypeInetService}),
         20,
         "type inet_proto . inet_service : ipv6_addr . inet_service"},
        {"published6_ranges",
         NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_CONCAT,
         concat_type({kTypeIpv6, kTypeInetProto, kTypeInetService}),
         {16, 1, 2},
         concat_type({kTypeIpv6, kTypeInetService, kTypeInetService}),
         24,
         "type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service . inet_service; "
         "flags interval"},
    };
    return defs;
}

uint32_t padded(uint32_t len) {
    return (len + 3) & ~3u;
}

// ---- chains and rules ---------------------------------------------------------------------

struct ChainDef {
    const char* name;
    const char* type;
    uint32_t hook;
    int32_t prio;
    const char* nft_hook;  // for render()
};

const std::vector<ChainDef>& chain_defs() {
    static const std::vector<ChainDef> defs = {
        {"raw_prerouting", "filter", NF_INET_PRE_ROUTING, -300,
         "type filter hook prerouting priority raw; policy accept;"},
        {"forward", "filter", NF_INET_FORWARD, 0,
         "type filter hook forward priority filter; policy accept;"},
        {"nat_prerouting", "nat", NF_INET_PRE_ROUTING, -100,
         "type nat hook prerouting priority dstnat; policy accept;"},
        {"nat_output", "nat", NF_INET_LOCAL_OUT, -100,
         "type nat hook output priority dstnat; policy accept;"},
        {"nat_postrouting", "nat", NF_INET_POST_ROUTING, 100,
         "type nat hook postrouting priority srcnat; policy accept;"},
    };
    return defs;
}

// In the inet family an `ip ...` match needs `meta nfproto ipv4` first (nft adds it implicitly).
void ipv4_only(nftnl_rule* r) {
    nft::expr::meta(r, NFT_META_NFPROTO, NFT_REG_1);
    nft::expr::cmp_u32(r, NFT_REG_1, NFT_CMP_EQ, NFPROTO_IPV4);
}
void ifname_in(nftnl_rule* r, uint32_t key, const char* set) {
    nft::expr::meta(r, key, NFT_REG_1);
    nft::expr::lookup(r, NFT_REG_1, set);
}
void ct_state_any(nftnl_rule* r, uint32_t bits) {
    nft::expr::ct(r, NFT_CT_STATE, NFT_REG_1);
    nft::expr::bitwise_mask(r, NFT_REG_1, bits);
    uint32_t zero = 0;
    nft::expr::cmp(r, NFT_REG_1, NFT_CMP_NEQ, &zero, sizeof zero);
}
// `ct status dnat`: the connection's destination was rewritten (by us or anyone else).
void ct_dnat(nftnl_rule* r) {
    nft::expr::ct(r, NFT_CT_STATUS, NFT_REG_1);
    nft::expr::bitwise_mask(r, NFT_REG_1, IPS_DST_NAT);
    uint32_t zero = 0;
    nft::expr::cmp(r, NFT_REG_1, NFT_CMP_NEQ, &zero, sizeof zero);
}
constexpr uint32_t kIpSaddr = 12, kIpDaddr = 16;  // offsets in the IPv4 header
constexpr uint32_t kThDport = 2;                  // offset of the destination port (tcp/udp/sctp)

// `ip saddr|daddr 127.0.0.0/8` (the address is already in NFT_REG_1 as loaded from the header).
void is_loopback_net(nftnl_rule* r, uint32_t offset) {
    nft::expr::payload(r, NFT_PAYLOAD_NETWORK_HEADER, offset, 4, NFT_REG_1);
    nft::expr::bitwise_mask(r, NFT_REG_1, htonl(0xff000000u));  // mask bytes ff 00 00 00
    nft::expr::cmp_u32(r, NFT_REG_1, NFT_CMP_EQ, htonl(0x7f000000u));
}

void ipv6_only(nftnl_rule* r) {
    nft::expr::meta(r, NFT_META_NFPROTO, NFT_REG_1);
    nft::expr::cmp_u32(r, NFT_REG_1, NFT_CMP_EQ, NFPROTO_IPV6);
}
constexpr uint32_t kIp6Saddr = 8, kIp6Daddr = 24;  // offsets in the IPv6 header
constexpr uint8_t kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

// `ip6 saddr|daddr ::1` (op EQ) or `!= ::1` (op NEQ).
void is_loopback6(nftnl_rule* r, uint32_t offset, uint32_t op) {
    nft::expr::payload(r, NFT_PAYLOAD_NETWORK_HEADER, offset, 16, NFT_REG_1);
    nft::expr::cmp(r, NFT_REG_1, op, kLoopback6, sizeof kLoopback6);
}
// `fib daddr type local`, in register 3 (reg32 8..11): the DNAT rules evaluate it after their
// map lookup, whose result (up to six 32-bit registers) it must not overwrite. Lookup first: a
// packet for an unpublished port (most of them) costs one hash lookup and no route lookup.
void fib_local(nftnl_rule* r) {
    nft::expr::fib(r, NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_3);
    nft::expr::cmp_u32(r, NFT_REG_3, NFT_CMP_EQ, RTN_LOCAL);
}
// `meta nfproto . <iif|oif>name @set` (sets typed nf_proto . ifname).
void family_ifname_in(nftnl_rule* r, uint32_t key, const char* set) {
    nft::expr::meta(r, NFT_META_NFPROTO, NFT_REG32_00);
    nft::expr::meta(r, key, NFT_REG32_01);
    nft::expr::lookup(r, NFT_REG32_00, set);
}

// The published-port DNATs, the same in nat prerouting and nat output. The common case first:
//   fib daddr type local dnat ip to meta l4proto . th dport map @published
// a hash lookup keyed (l4proto reg32 0, dport reg32 1) giving (address reg32 0, port reg32 1).
void published_dnat4(nftnl_rule* r) {
    using namespace nft::expr;
    ipv4_only(r);
    meta(r, NFT_META_L4PROTO, NFT_REG32_00);
    payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, kThDport, 2, NFT_REG32_01);
    lookup(r, NFT_REG32_00, "published", false, NFT_REG32_00);
    fib_local(r);
    dnat(r, NFPROTO_IPV4, NFT_REG32_00, NFT_REG32_01, NFT_REG32_01, 0);
}
// Ranges and specific host addresses:
//   fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @published_ranges
// with NF_NAT_RANGE_PROTO_OFFSET (nft has no syntax for the flag; see port_map_values()).
// Key registers: daddr (reg32 0), l4proto (reg32 1, one byte, zero-padded as the key is),
// dport (reg32 2); the lookup writes (address, port_min, port_max) over the same registers.
void published_ranges_dnat4(nftnl_rule* r) {
    using namespace nft::expr;
    ipv4_only(r);
    payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpDaddr, 4, NFT_REG32_00);
    meta(r, NFT_META_L4PROTO, NFT_REG32_01);
    payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, kThDport, 2, NFT_REG32_02);
    lookup(r, NFT_REG32_00, "published_ranges", false, NFT_REG32_00);
    fib_local(r);
    dnat(r, NFPROTO_IPV4, NFT_REG32_00, NFT_REG32_01, NFT_REG32_02, NF_NAT_RANGE_PROTO_OFFSET);
}
// IPv6: the same two lookups; an IPv6 address takes four 32-bit registers. `not_loopback`: the
// host's own packets to ::1 are never DNAT'd (see docs/firewall.md: the kernel drops the answers).
void published_dnat6(nftnl_rule* r, bool not_loopback) {
    using namespace nft::expr;
    ipv6_only(r);
    if (not_loopback) is_loopback6(r, kIp6Daddr, NFT_CMP_NEQ);
    meta(r, NFT_META_L4PROTO, NFT_REG32_00);
    payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, kThDport, 2, NFT_REG32_01);
    lookup(r, NFT_REG32_00, "published6", false, NFT_REG32_00);
    fib_local(r);
    dnat(r, NFPROTO_IPV6, NFT_REG32_00, NFT_REG32_04, NFT_REG32_04, 0);
}
void published_ranges_dnat6(nftnl_rule* r, bool not_loopback) {
    using namespace nft::expr;
    ipv6_only(r);
    if (not_loopback) is_loopback6(r, kIp6Daddr, NFT_CMP_NEQ);
    payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIp6Daddr, 16, NFT_REG32_00);
    meta(r, NFT_META_L4PROTO, NFT_REG32_04);
    payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, kThDport, 2, NFT_REG32_05);
    lookup(r, NFT_REG32_00, "published6_ranges", false, NFT_REG32_00);
    fib_local(r);
    dnat(r, NFPROTO_IPV6, NFT_REG32_00, NFT_REG32_04, NFT_REG32_05, NF_NAT_RANGE_PROTO_OFFSET);
}
// Hairpin to itself, per family (`six`):
//   ct status dnat ip[6] saddr . ip[6] daddr @hairpin_self[6] masquerade
// The address pair in consecutive registers is the concatenated key (4 + 4 or 16 + 16 bytes).
void hairpin_self(nftnl_rule* r, bool six) {
    using namespace nft::expr;
    const uint32_t len = six ? 16 : 4;
    ct_dnat(r);
    six ? ipv6_only(r) : ipv4_only(r);
    payload(r, NFT_PAYLOAD_NETWORK_HEADER, six ? kIp6Saddr : kIpSaddr, len, NFT_REG32_00);
    payload(r, NFT_PAYLOAD_NETWORK_HEADER, six ? kIp6Daddr : kIpDaddr, len,
            six ? NFT_REG32_04 : NFT_REG32_01);
    lookup(r, NFT_REG32_00, six ? "hairpin_self6" : "hairpin_self");
    masquerade(r);
}
// Every hairpin connection of a family without br_netfilter:
//   ct status dnat meta nfproto @unbridged ip[6] saddr . oifname @nets[6] masquerade
void hairpin_unbridged(nftnl_rule* r, bool six) {
    using namespace nft::expr;
    ct_dnat(r);
    six ? ipv6_only(r) : ipv4_only(r);
    lookup(r, NFT_REG_1, "unbridged");  // NFT_REG_1 still holds meta nfproto
    payload(r, NFT_PAYLOAD_NETWORK_HEADER, six ? kIp6Saddr : kIpSaddr, six ? 16 : 4, NFT_REG32_00);
    meta(r, NFT_META_OIFNAME, six ? NFT_REG32_04 : NFT_REG32_01);
    lookup(r, NFT_REG32_00, six ? "nets6" : "nets");
    masquerade(r);
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

struct RuleDef {
    const char* chain;
    const char* comment;  // stable identity of the rule
    const char* nft;      // the same rule in nft syntax
    std::function<void(nftnl_rule*)> build;
};

const std::vector<RuleDef>& rule_defs() {
    using namespace nft::expr;
    static const std::vector<RuleDef> defs = {
        // Docker 28's raw PREROUTING `-d C ! -i br -j DROP`, for whole subnets at once: a packet
        // for a managed subnet must arrive on that subnet's bridge. Local addresses (the bridge's
        // own gateway address) stay reachable, as they are with Docker.
        {"raw_prerouting", "cnetd: no direct routing to container addresses",
         "ip daddr @subnets ip daddr . iifname != @nets fib daddr type != local drop",
         [](nftnl_rule* r) {
             ipv4_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpDaddr, 4, NFT_REG_1);
             lookup(r, NFT_REG_1, "subnets");
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpDaddr, 4, NFT_REG_1);
             meta(r, NFT_META_IIFNAME, NFT_REG32_01);
             lookup(r, NFT_REG_1, "nets", /*invert=*/true);
             fib(r, NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_1);
             cmp_u32(r, NFT_REG_1, NFT_CMP_NEQ, RTN_LOCAL);
             verdict(r, NF_DROP);
         }},
        {"raw_prerouting", "cnetd: no direct routing to container addresses (ipv6)",
         "ip6 daddr @subnets6 ip6 daddr . iifname != @nets6 fib daddr type != local drop",
         [](nftnl_rule* r) {
             ipv6_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIp6Daddr, 16, NFT_REG_1);
             lookup(r, NFT_REG_1, "subnets6");
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIp6Daddr, 16, NFT_REG32_00);
             meta(r, NFT_META_IIFNAME, NFT_REG32_04);
             lookup(r, NFT_REG32_00, "nets6", /*invert=*/true);
             fib(r, NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_1);
             cmp_u32(r, NFT_REG_1, NFT_CMP_NEQ, RTN_LOCAL);
             verdict(r, NF_DROP);
         }},
        // Docker 28's `-d 127.0.0.1 ! -i lo -j DROP` (CVE-2025-54388), for all of 127/8 at once:
        // route_localnet=1 on a bridge (needed for host -> 127.0.0.1 -> container) must not make
        // loopback-bound ports reachable from the bridge or, with a crafted route, from outside.
        // Before conntrack and NAT, so it cannot be undone by a DNAT.
        {"raw_prerouting", "cnetd: loopback only from lo",
         "ip daddr 127.0.0.0/8 iifname != \"lo\" drop",
         [](nftnl_rule* r) {
             ipv4_only(r);
             is_loopback_net(r, kIpDaddr);
             meta(r, NFT_META_IIFNAME, NFT_REG_1);
             char lo[kIfnameLen] = "lo";
             cmp(r, NFT_REG_1, NFT_CMP_NEQ, lo, sizeof lo);
             verdict(r, NF_DROP);
         }},
        // The same for ::1. The kernel itself already drops packets for ::1 arriving on any
        // other device (ip6_rcv_core, RFC 4291 2.5.3); kept so the protection does not depend on
        // it.
        {"raw_prerouting", "cnetd: ipv6 loopback only from lo",
         "ip6 daddr ::1 iifname != \"lo\" drop",
         [](nftnl_rule* r) {
             ipv6_only(r);
             is_loopback6(r, kIp6Daddr, NFT_CMP_EQ);
             meta(r, NFT_META_IIFNAME, NFT_REG_1);
             char lo[kIfnameLen] = "lo";
             cmp(r, NFT_REG_1, NFT_CMP_NEQ, lo, sizeof lo);
             verdict(r, NF_DROP);
         }},
        {"forward", "cnetd: established", "ct state established,related accept",
         [](nftnl_rule* r) {
             ct_state_any(r, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
             verdict(r, NF_ACCEPT);
         }},
        {"forward", "cnetd: invalid from bridge", "iifname @bridges ct state invalid drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_IIFNAME, "bridges");
             ct_state_any(r, NF_CT_STATE_INVALID_BIT);
             verdict(r, NF_DROP);
         }},
        {"forward", "cnetd: invalid to bridge", "oifname @bridges ct state invalid drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_OIFNAME, "bridges");
             ct_state_any(r, NF_CT_STATE_INVALID_BIT);
             verdict(r, NF_DROP);
         }},
        // Only bridged traffic (br_netfilter) has iifname == oifname == the bridge.
        {"forward", "cnetd: icc", "iifname . oifname @icc_bridges accept",
         [](nftnl_rule* r) {
             meta(r, NFT_META_IIFNAME, NFT_REG_1);
             meta(r, NFT_META_OIFNAME, NFT_REG_2);
             lookup(r, NFT_REG_1, "icc_bridges");
             verdict(r, NF_ACCEPT);
         }},
        {"forward", "cnetd: internal egress", "iifname @internal_bridges drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_IIFNAME, "internal_bridges");
             verdict(r, NF_DROP);
         }},
        {"forward", "cnetd: internal ingress", "oifname @internal_bridges drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_OIFNAME, "internal_bridges");
             verdict(r, NF_DROP);
         }},
        // Gateway mode isolated (per family): nothing in or out but the bridge itself (ICC,
        // accepted above) and the host (input/output hooks, not forward).
        {"forward", "cnetd: isolated egress", "meta nfproto . iifname @isolated_bridges drop",
         [](nftnl_rule* r) {
             family_ifname_in(r, NFT_META_IIFNAME, "isolated_bridges");
             verdict(r, NF_DROP);
         }},
        {"forward", "cnetd: isolated ingress", "meta nfproto . oifname @isolated_bridges drop",
         [](nftnl_rule* r) {
             family_ifname_in(r, NFT_META_OIFNAME, "isolated_bridges");
             verdict(r, NF_DROP);
         }},
        // Published ports: a DNAT'd connection to a container is let in, from outside, from
        // another network and with ICC off (Docker accepts published container ports before its
        // isolation and ICC drops). Un-DNAT'd traffic still falls through to the drops below.
        {"forward", "cnetd: published ports", "oifname @bridges ct status dnat accept",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_OIFNAME, "bridges");
             ct_dnat(r);
             verdict(r, NF_ACCEPT);
         }},
        // Between two managed bridges (isolation) or within one with ICC off.
        {"forward", "cnetd: isolation", "iifname @bridges oifname @bridges drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_IIFNAME, "bridges");
             ifname_in(r, NFT_META_OIFNAME, "bridges");
             verdict(r, NF_DROP);
         }},
        // Gateway mode routed: direct routed access from outside to published container ports
        // only (the container side of the mapping). After isolation: other bridges stay out.
        {"forward", "cnetd: routed published ports",
         "ip daddr . meta l4proto . th dport @routed_ports accept",
         [](nftnl_rule* r) {
             ipv4_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpDaddr, 4, NFT_REG32_00);
             meta(r, NFT_META_L4PROTO, NFT_REG32_01);
             payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, kThDport, 2, NFT_REG32_02);
             lookup(r, NFT_REG32_00, "routed_ports");
             verdict(r, NF_ACCEPT);
         }},
        {"forward", "cnetd: routed published ports (ipv6)",
         "ip6 daddr . meta l4proto . th dport @routed_ports6 accept",
         [](nftnl_rule* r) {
             ipv6_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIp6Daddr, 16, NFT_REG32_00);
             meta(r, NFT_META_L4PROTO, NFT_REG32_04);
             payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, kThDport, 2, NFT_REG32_05);
             lookup(r, NFT_REG32_00, "routed_ports6");
             verdict(r, NF_ACCEPT);
         }},
        // Gateway mode nat-unprotected: direct routed access to any container port.
        {"forward", "cnetd: unprotected", "meta nfproto . oifname @open_bridges accept",
         [](nftnl_rule* r) {
             family_ifname_in(r, NFT_META_OIFNAME, "open_bridges");
             verdict(r, NF_ACCEPT);
         }},
        // Docker's `! -i br -o br -j DROP`: nothing unsolicited from outside reaches a container.
        {"forward", "cnetd: no inbound", "oifname @bridges drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_OIFNAME, "bridges");
             verdict(r, NF_DROP);
         }},
        {"forward", "cnetd: outbound", "iifname @bridges accept",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_IIFNAME, "bridges");
             verdict(r, NF_ACCEPT);
         }},
        {"nat_prerouting", "cnetd: published ports", kPublishedNft, published_dnat4},
        {"nat_prerouting", "cnetd: published port ranges", kPublishedRangesNft,
         published_ranges_dnat4},
        {"nat_prerouting", "cnetd: published ports (ipv6)", kPublished6Nft,
         [](nftnl_rule* r) { published_dnat6(r, false); }},
        {"nat_prerouting", "cnetd: published port ranges (ipv6)", kPublished6RangesNft,
         [](nftnl_rule* r) { published_ranges_dnat6(r, false); }},
        {"nat_output", "cnetd: published ports from the host", kPublishedNft, published_dnat4},
        {"nat_output", "cnetd: published port ranges from the host", kPublishedRangesNft,
         published_ranges_dnat4},
        {"nat_output", "cnetd: published ports from the host (ipv6)", kPublished6OutNft,
         [](nftnl_rule* r) { published_dnat6(r, true); }},
        {"nat_output", "cnetd: published port ranges from the host (ipv6)", kPublished6RangesOutNft,
         [](nftnl_rule* r) { published_ranges_dnat6(r, true); }},
        // Hairpin: a container reaching a published port through a host address is DNAT'd back
        // out of its own bridge. Only a container reaching ITSELF needs SNAT (it would drop a
        // packet from its own address); a neighbour's reply goes straight back over the bridge
        // and, with br_netfilter, through conntrack, which un-DNATs it: the server sees the real
        // client, as with Docker without its proxy. Before "no nat on own bridge", which would
        // return first.
        {"nat_postrouting", "cnetd: hairpin to itself",
         "ct status dnat ip saddr . ip daddr @hairpin_self masquerade",
         [](nftnl_rule* r) { hairpin_self(r, false); }},
        {"nat_postrouting", "cnetd: hairpin to itself (ipv6)",
         "ct status dnat ip6 saddr . ip6 daddr @hairpin_self6 masquerade",
         [](nftnl_rule* r) { hairpin_self(r, true); }},
        // Without br_netfilter (`unbridged` has the family) the neighbour's reply is switched
        // past netfilter and never un-DNAT'd: masquerade every hairpin connection instead.
        {"nat_postrouting", "cnetd: hairpin without br_netfilter",
         "ct status dnat meta nfproto @unbridged ip saddr . oifname @nets masquerade",
         [](nftnl_rule* r) { hairpin_unbridged(r, false); }},
        {"nat_postrouting", "cnetd: hairpin without br_netfilter (ipv6)",
         "ct status dnat meta nfproto @unbridged ip6 saddr . oifname @nets6 masquerade",
         [](nftnl_rule* r) { hairpin_unbridged(r, true); }},
        // Host -> 127.0.0.1:port DNAT'd to a container keeps source 127.0.0.1, which the
        // container cannot answer (and the kernel routes out of a bridge only with
        // route_localnet=1 on it): masquerade to the bridge address.
        {"nat_postrouting", "cnetd: localhost to container",
         "ip saddr 127.0.0.0/8 oifname @bridges masquerade",
         [](nftnl_rule* r) {
             ipv4_only(r);
             is_loopback_net(r, kIpSaddr);
             ifname_in(r, NFT_META_OIFNAME, "bridges");
             masquerade(r);
         }},
        {"nat_postrouting", "cnetd: no nat on own bridge", "ip saddr . oifname @nets return",
         [](nftnl_rule* r) {
             ipv4_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpSaddr, 4, NFT_REG_1);
             meta(r, NFT_META_OIFNAME, NFT_REG32_01);
             lookup(r, NFT_REG_1, "nets");
             verdict(r, NFT_RETURN);
         }},
        {"nat_postrouting", "cnetd: no nat on own bridge (ipv6)",
         "ip6 saddr . oifname @nets6 return",
         [](nftnl_rule* r) {
             ipv6_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIp6Saddr, 16, NFT_REG32_00);
             meta(r, NFT_META_OIFNAME, NFT_REG32_04);
             lookup(r, NFT_REG32_00, "nets6");
             verdict(r, NFT_RETURN);
         }},
        {"nat_postrouting", "cnetd: masquerade", "ip saddr @masq_nets masquerade",
         [](nftnl_rule* r) {
             ipv4_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpSaddr, 4, NFT_REG_1);
             lookup(r, NFT_REG_1, "masq_nets");
             masquerade(r);
         }},
        {"nat_postrouting", "cnetd: masquerade (ipv6)", "ip6 saddr @masq_nets6 masquerade",
         [](nftnl_rule* r) {
             ipv6_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIp6Saddr, 16, NFT_REG_1);
             lookup(r, NFT_REG_1, "masq_nets6");
             masquerade(r);
         }},
        {"nat_postrouting", "cnetd: snat", "snat ip to ip saddr map @snat_nets",
         [](nftnl_rule* r) {
             ipv4_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpSaddr, 4, NFT_REG_1);
             lookup(r, NFT_REG_1, "snat_nets", false, NFT_REG_1);
             snat(r, NFPROTO_IPV4, NFT_REG_1);
         }},
    };
    return defs;
}

// ---- elements -----------------------------------------------------------------------------

struct Elem {
    std::vector<uint8_t> key, key_end, data;
    uint32_t flags = 0;
};
struct SetElems {
    const char* set;
    std::vector<Elem> elems;
    std::string text;  // "{ 172.17.0.0/16 . "docker0" }"
};

std::vector<uint8_t> be32(uint32_t host) {
    uint32_t v = htonl(host);
    std::vector<uint8_t> out(4);
    std::memcpy(out.data(), &v, 4);
    return out;
}
std::vector<uint8_t> ifname(const std::string& name) {
    std::vector<uint8_t> out(kIfnameLen, 0);
    std::memcpy(out.data(), name.data(), std::min<size_t>(name.size(), kIfnameLen - 1));
    return out;
}
std::vector<uint8_t> cat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// An rbtree interval: the start, and the first address after it flagged as an interval end
// (omitted when the range reaches 255.255.255.255, as nft does).
std::vector<Elem> interval(const Ipv4Cidr& c, std::vector<uint8_t> data = {}) {
    std::vector<Elem> out;
    out.push_back(Elem{be32(c.network().value()), {}, std::move(data), 0});
    if (c.broadcast().value() != 0xffffffffu)
        out.push_back(Elem{be32(c.broadcast().value() + 1), {}, {}, NFT_SET_ELEM_INTERVAL_END});
    return out;
}

std::vector<uint8_t> v6(const Ipv6& a) {
    return {a.bytes().begin(), a.bytes().end()};
}
Ipv6 v6_last(const Ipv6Cidr& c) {
    auto b = c.network().bytes();
    for (int i = 0; i < 16; ++i) {
        const int bits = std::clamp(c.prefix() - 8 * i, 0, 8);  // network bits in this byte
        b[i] = static_cast<uint8_t>(b[i] | (0xffu >> bits));
    }
    return Ipv6(b);
}
// An rbtree interval over an IPv6 prefix: start, and the first address after it (flagged as the
// interval end; omitted when the prefix reaches ffff:...:ffff).
std::vector<Elem> interval6(const Ipv6Cidr& c) {
    std::vector<Elem> out;
    out.push_back(Elem{v6(c.network()), {}, {}, 0});
    auto b = v6_last(c).bytes();
    int i = 15;
    for (; i >= 0; --i)
        if (++b[i] != 0) break;  // +1 with carry
    if (i >= 0) out.push_back(Elem{v6(Ipv6(b)), {}, {}, NFT_SET_ELEM_INTERVAL_END});
    return out;
}
std::vector<uint8_t> nfproto_padded(uint8_t f) {
    return {f, 0, 0, 0};  // meta nfproto: one byte, zero-padded to a register
}
const char* family_name(uint8_t f) {
    return f == NFPROTO_IPV6 ? "ipv6" : "ipv4";
}
bool masquerades(GatewayMode m) {
    return m == GatewayMode::Nat || m == GatewayMode::NatUnprotected;
}
// Subnets in `subnets`/`subnets6` get raw prerouting's "no direct routing" drop.
bool protects(GatewayMode m) {
    return m == GatewayMode::Nat || m == GatewayMode::Isolated;
}

std::vector<SetElems> network_elements(const NetworkRules& n) {
    const Ipv4Cidr s = n.subnet.masked();
    const std::string q = fmt::format("\"{}\"", n.bridge);
    std::vector<SetElems> out;
    out.push_back({"bridges", {Elem{ifname(n.bridge), {}, {}, 0}}, fmt::format("{{ {} }}", q)});
    if (n.internal || protects(n.mode4))
        out.push_back({"subnets", interval(s), fmt::format("{{ {} }}", s.str())});
    out.push_back({"nets",
                   {Elem{cat(be32(s.network().value()), ifname(n.bridge)),
                         cat(be32(s.broadcast().value()), ifname(n.bridge)),
                         {},
                         0}},
                   fmt::format("{{ {} . {} }}", s.str(), q)});
    if (n.icc)
        out.push_back({"icc_bridges",
                       {Elem{cat(ifname(n.bridge), ifname(n.bridge)), {}, {}, 0}},
                       fmt::format("{{ {} . {} }}", q, q)});
    if (n.internal)
        out.push_back(
            {"internal_bridges", {Elem{ifname(n.bridge), {}, {}, 0}}, fmt::format("{{ {} }}", q)});
    // Gateway modes per family (an internal network drops everything anyway).
    auto per_family = [&](const char* set, uint8_t fam) {
        SetElems* se = nullptr;
        for (auto& e : out)
            if (std::string_view(e.set) == set) se = &e;
        if (!se) {
            out.push_back({set, {}, {}});
            se = &out.back();
        }
        se->elems.push_back(Elem{cat(nfproto_padded(fam), ifname(n.bridge)), {}, {}, 0});
        const std::string t = fmt::format("{} . {}", family_name(fam), q);
        se->text = se->text.empty() ? "{ " + t + " }"
                                    : se->text.substr(0, se->text.size() - 2) + ", " + t + " }";
    };
    if (!n.internal) {
        if (n.mode4 == GatewayMode::Isolated) per_family("isolated_bridges", NFPROTO_IPV4);
        if (n.subnet6 && n.mode6 == GatewayMode::Isolated)
            per_family("isolated_bridges", NFPROTO_IPV6);
        if (n.mode4 == GatewayMode::NatUnprotected) per_family("open_bridges", NFPROTO_IPV4);
        if (n.subnet6 && n.mode6 == GatewayMode::NatUnprotected)
            per_family("open_bridges", NFPROTO_IPV6);
    }
    if (n.masquerade && !n.internal && masquerades(n.mode4)) {
        if (n.snat_source)
            out.push_back({"snat_nets", interval(s, be32(n.snat_source->value())),
                           fmt::format("{{ {} : {} }}", s.str(), n.snat_source->str())});
        else
            out.push_back({"masq_nets", interval(s), fmt::format("{{ {} }}", s.str())});
    }
    if (n.subnet6) {
        const Ipv6Cidr s6 = n.subnet6->masked();
        if (n.internal || protects(n.mode6))
            out.push_back({"subnets6", interval6(s6), fmt::format("{{ {} }}", s6.str())});
        out.push_back({"nets6",
                       {Elem{cat(v6(s6.network()), ifname(n.bridge)),
                             cat(v6(v6_last(s6)), ifname(n.bridge)),
                             {},
                             0}},
                       fmt::format("{{ {} . {} }}", s6.str(), q)});
        // host_ipv4 (snat_source) is IPv4 only: IPv6 masquerades as usual.
        if (n.masquerade && !n.internal && masquerades(n.mode6))
            out.push_back({"masq_nets6", interval6(s6), fmt::format("{{ {} }}", s6.str())});
    }
    return out;
}

std::vector<uint8_t> be16_padded(uint16_t host) {
    // inet_service in a concatenation: 2 bytes big endian, padded to a 4-byte register.
    return {static_cast<uint8_t>(host >> 8), static_cast<uint8_t>(host & 0xff), 0, 0};
}
std::vector<uint8_t> proto_padded(L4 p) {
    return {static_cast<uint8_t>(p), 0, 0, 0};  // inet_proto: 1 byte, padded
}
const char* proto_name(L4 p) {
    switch (p) {
        case L4::Tcp:
            return "tcp";
        case L4::Udp:
            return "udp";
        case L4::Sctp:
            return "sctp";
    }
    return "?";
}
std::string port_text(uint16_t first, uint16_t last) {
    return first == last ? fmt::format("{}", first) : fmt::format("{}-{}", first, last);
}
// 0.0.0.0 means "every address" too, as with Docker.
std::optional<Ipv4> host_addr(const PortForward& p) {
    if (p.host_ip && p.host_ip->value() != 0) return p.host_ip;
    return std::nullopt;
}
// :: likewise for IPv6.
std::optional<Ipv6> host_addr6(const PortForward& p) {
    if (p.host_ip6 && !p.host_ip6->is_unspecified()) return p.host_ip6;
    return std::nullopt;
}
bool is_v6(const PortForward& p) {
    return p.family == Family::V6;
}
// The common case, served by the hash maps `published` / `published6`.
bool is_flat(const PortForward& p) {
    return p.host_first == p.host_last && (is_v6(p) ? !host_addr6(p) : !host_addr(p));
}
std::string host_text(const PortForward& p) {
    if (is_v6(p)) return "[" + (host_addr6(p) ? host_addr6(p)->str() : std::string("::")) + "]";
    return host_addr(p) ? host_addr(p)->str() : "0.0.0.0";
}
std::string container_text(const PortForward& p) {
    return is_v6(p) ? "[" + p.container_ip6.str() + "]" : p.container_ip.str();
}
std::vector<uint8_t> container_addr(const PortForward& p) {
    return is_v6(p) ? v6(p.container_ip6) : be32(p.container_ip.value());
}

// The map elements of one mapping (normally exactly one; see port_map_values()).
SetElems port_elements(const PortForward& p) {
    const bool six = is_v6(p);
    const std::string cip = six ? p.container_ip6.str() : p.container_ip.str();
    if (is_flat(p)) {
        SetElems se{six ? "published6" : "published", {}, {}};
        Elem e;
        e.key = cat(proto_padded(p.proto), be16_padded(p.host_first));
        e.data = cat(container_addr(p), be16_padded(p.container_first));
        se.elems.push_back(std::move(e));
        se.text = fmt::format("{{ {} . {} : {} . {} }}", proto_name(p.proto), p.host_first, cip,
                              p.container_first);
        return se;
    }
    std::vector<uint8_t> lo, hi;
    std::string addr_text;
    if (six) {
        const auto a = host_addr6(p);
        lo = a ? v6(*a) : std::vector<uint8_t>(16, 0);
        hi = a ? v6(*a) : std::vector<uint8_t>(16, 0xff);
        addr_text = a ? a->str() : "::/0";
    } else {
        const auto a = host_addr(p);
        lo = be32(a ? a->value() : 0);
        hi = be32(a ? a->value() : 0xffffffffu);
        addr_text = a ? a->str() : "0.0.0.0/0";
    }
    SetElems se{six ? "published6_ranges" : "published_ranges", {}, {}};
    std::vector<std::string> texts;
    for (const auto& v : port_map_values(p)) {
        Elem e;
        e.key = cat(cat(lo, proto_padded(p.proto)), be16_padded(v.host_first));
        e.key_end = cat(cat(hi, proto_padded(p.proto)), be16_padded(v.host_last));
        e.data = cat(cat(container_addr(p), be16_padded(v.port_min)), be16_padded(v.port_max));
        se.elems.push_back(std::move(e));
        // As `nft list` prints it.
        texts.push_back(fmt::format("{} . {} . {} : {} . {} . {}", addr_text, proto_name(p.proto),
                                    port_text(v.host_first, v.host_last), cip, v.port_min,
                                    v.port_max));
    }
    std::string joined;
    for (size_t i = 0; i < texts.size(); ++i) joined += (i ? ", " : "") + texts[i];
    se.text = "{ " + joined + " }";
    return se;
}

// Gateway mode routed: the mapping's container side is reachable by direct routing. One
// interval element (container address . protocol . container port range), or none when the
// mapping's network (by bridge) is not routed for the mapping's family.
std::optional<SetElems> routed_elements(const PortForward& p,
                                        const std::vector<NetworkRules>& nets) {
    const NetworkRules* n = nullptr;
    for (const auto& x : nets)
        if (x.bridge == p.bridge) n = &x;
    if (!n || n->internal || (is_v6(p) ? n->mode6 : n->mode4) != GatewayMode::Routed)
        return std::nullopt;
    const uint16_t last = static_cast<uint16_t>(p.container_first + (p.host_last - p.host_first));
    const auto a = container_addr(p);
    Elem e;
    e.key = cat(cat(a, proto_padded(p.proto)), be16_padded(p.container_first));
    e.key_end = cat(cat(a, proto_padded(p.proto)), be16_padded(last));
    SetElems se{is_v6(p) ? "routed_ports6" : "routed_ports", {std::move(e)}, {}};
    se.text =
        fmt::format("{{ {} . {} . {} }}", is_v6(p) ? p.container_ip6.str() : p.container_ip.str(),
                    proto_name(p.proto), port_text(p.container_first, last));
    return se;
}

void add_elements(nft::Batch& b, std::string_view table, const SetElems& se, bool add) {
    SetPtr s(nftnl_set_alloc());
    const std::string t(table);
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, t.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, se.set);
    for (const auto& e : se.elems) {
        nftnl_set_elem* el = nftnl_set_elem_alloc();
        nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, e.key.data(), e.key.size());
        if (!e.key_end.empty())
            nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY_END, e.key_end.data(), e.key_end.size());
        if (!e.data.empty())
            nftnl_set_elem_set(el, NFTNL_SET_ELEM_DATA, e.data.data(), e.data.size());
        if (e.flags) nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_FLAGS, e.flags);
        nftnl_set_elem_add(s.get(), el);
    }
    b.add_elements(
        add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, kFamily, add ? NLM_F_CREATE : 0, s.get(),
        fmt::format("{} element inet {} {} {}", add ? "add" : "delete", table, se.set, se.text));
}

// The hairpin_self[6] element of a mapping's container address C: `C . C`.
SetElems self_element(const PortForward& p) {
    const auto a = container_addr(p);
    const std::string t = is_v6(p) ? p.container_ip6.str() : p.container_ip.str();
    return {is_v6(p) ? "hairpin_self6" : "hairpin_self",
            {Elem{cat(a, a), {}, {}, 0}},
            fmt::format("{{ {} . {} }}", t, t)};
}
// One mapping per distinct container address (the first), in order.
std::vector<PortForward> distinct_self(const std::vector<PortForward>& ports) {
    std::set<SelfKey> seen;
    std::vector<PortForward> out;
    for (const auto& p : ports)
        if (seen.insert(self_key(p)).second) out.push_back(p);
    return out;
}
// The families whose bridged traffic skips netfilter (see BridgeNf).
std::optional<SetElems> unbridged_elements(BridgeNf bnf) {
    SetElems se{"unbridged", {}, {}};
    std::string names;
    for (auto [on, fam] :
         {std::pair{bnf.ipv4, uint8_t(NFPROTO_IPV4)}, std::pair{bnf.ipv6, uint8_t(NFPROTO_IPV6)}})
        if (!on) {
            se.elems.push_back(Elem{{fam}, {}, {}, 0});
            names += (names.empty() ? "" : ", ") + std::string(family_name(fam));
        }
    if (se.elems.empty()) return std::nullopt;
    se.text = "{ " + names + " }";
    return se;
}

// Packs elements into messages of at most kMaxElemsPerMsg elements per set: one message per
// mapping would make a 10,000-port rebuild 10,000 messages. A message's description keeps the
// first few items' text (an error names the message; see docs/firewall.md).
class ElemPacker {
public:
    ElemPacker(nft::Batch& b, std::string_view table, bool add) : b_(b), table_(table), add_(add) {}
    void put(SetElems se) {
        Chunk* c = nullptr;
        for (auto& x : chunks_)
            if (std::string_view(x.se.set) == se.set) c = &x;
        if (!c) {
            chunks_.push_back(Chunk{SetElems{se.set, {}, {}}, {}});
            c = &chunks_.back();
        }
        for (auto& e : se.elems) {
            if (c->se.elems.size() >= kMaxElemsPerMsg) flush(*c);
            c->se.elems.push_back(std::move(e));
        }
        c->texts.push_back(se.text.substr(2, se.text.size() - 4));
    }
    // Writes the open chunks (one per set, in order of first use).
    void finish() {
        for (auto& c : chunks_) flush(c);
    }

private:
    struct Chunk {
        SetElems se;
        std::vector<std::string> texts;
    };
    void flush(Chunk& c) {
        if (c.se.elems.empty()) return;
        std::string t;
        for (size_t i = 0; i < c.texts.size() && i < 3; ++i) t += (i ? ", " : "") + c.texts[i];
        if (c.texts.size() > 3) t += fmt::format(", ... ({} mappings)", c.texts.size());
        c.se.text = "{ " + t + " }";
        add_elements(b_, table_, c.se, add_);
        c.se.elems.clear();
        c.texts.clear();
    }
    nft::Batch& b_;
    std::string_view table_;
    bool add_;
    std::vector<Chunk> chunks_;
};

// Every element that depends on the mappings (and the environment), for expected_state() and
// render(): map elements, routed_ports, hairpin_self and unbridged.
std::vector<SetElems> all_port_elements(const std::vector<NetworkRules>& nets,
                                        const std::vector<PortForward>& ports, BridgeNf bnf) {
    std::vector<SetElems> out;
    for (const auto& p : ports) {
        out.push_back(port_elements(p));
        if (auto r = routed_elements(p, nets)) out.push_back(std::move(*r));
    }
    for (const auto& p : distinct_self(ports)) out.push_back(self_element(p));
    if (auto u = unbridged_elements(bnf)) out.push_back(std::move(*u));
    return out;
}

}  // namespace

SelfKey self_key(const PortForward& p) {
    SelfKey k{static_cast<uint8_t>(p.family), {}};
    const auto a = container_addr(p);
    std::copy(a.begin(), a.end(), k.second.begin());
    return k;
}

// ---- public ---------------------------------------------------------------------------------

nft::Batch build_network(std::string_view table, const NetworkRules& n, bool add) {
    nft::Batch b;
    for (const auto& se : network_elements(n)) add_elements(b, table, se, add);
    return b;
}

nft::Batch build_ports(std::string_view table, const std::vector<PortForward>& ports, bool add,
                       const std::vector<NetworkRules>& nets) {
    nft::Batch b;
    ElemPacker pack(b, table, add);
    for (const auto& p : ports) {
        pack.put(port_elements(p));
        if (auto r = routed_elements(p, nets)) pack.put(std::move(*r));
    }
    pack.finish();
    return b;
}

nft::Batch build_hairpin_self(std::string_view table, const std::vector<PortForward>& ports,
                              bool add) {
    nft::Batch b;
    ElemPacker pack(b, table, add);
    for (const auto& p : distinct_self(ports)) pack.put(self_element(p));
    pack.finish();
    return b;
}

nft::Batch build_rebuild(std::string_view table, const std::vector<NetworkRules>& nets,
                         const std::vector<PortForward>& ports, BridgeNf bnf) {
    nft::Batch b;
    const std::string t(table);
    {
        TablePtr tb(nftnl_table_alloc());
        nftnl_table_set_str(tb.get(), NFTNL_TABLE_NAME, t.c_str());
        // "add; delete; add": the delete never fails, and drops every old object in the same
        // transaction that creates the new ones.
        b.add_table(NFT_MSG_NEWTABLE, kFamily, NLM_F_CREATE, tb.get(), "add table inet " + t);
        b.add_table(NFT_MSG_DELTABLE, kFamily, 0, tb.get(), "delete table inet " + t);
        b.add_table(NFT_MSG_NEWTABLE, kFamily, NLM_F_CREATE | NLM_F_EXCL, tb.get(),
                    "add table inet " + t);
    }
    uint32_t set_id = 0;
    for (const auto& d : set_defs()) {
        SetPtr s(nftnl_set_alloc());
        // The kernel requires a transaction-local set id (used by nft for anonymous sets).
        nftnl_set_set_u32(s.get(), NFTNL_SET_ID, ++set_id);
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, t.c_str());
        nftnl_set_set_str(s.get(), NFTNL_SET_NAME, d.name);
        nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, kFamily);
        nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, d.flags);
        nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, d.key_type);
        // A concatenation pads each field to a register; a single field keeps its size (nft's
        // nf_proto is one byte, and `nft list` prints the set only with that key length).
        uint32_t key_len = d.fields.size() == 1 ? d.fields[0] : 0;
        if (d.fields.size() > 1)
            for (uint32_t f : d.fields) key_len += padded(f);
        nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, key_len);
        if (d.fields.size() > 1) {
            // The kernel needs the field lengths to pick the concatenation-aware (pipapo) backend.
            // libnftnl takes the whole array of field lengths at once, as bytes (uint8_t[]).
            std::vector<uint8_t> lens(d.fields.begin(), d.fields.end());
            nftnl_set_set_data(s.get(), NFTNL_SET_DESC_CONCAT, lens.data(),
                               static_cast<uint32_t>(lens.size()));
        }
        {
            // nft reads the key's byte order from the set's user data: without it an ifname
            // (a host-order string) set lists as "" in `nft list`. 1 = host, 2 = big endian.
            nftnl_udata_buf* ud = nftnl_udata_buf_alloc(64);
            nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER,
                                d.key_type == kTypeIfname ? 1 : 2);
            if (d.flags & NFT_SET_MAP) nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_DATABYTEORDER, 2);
            if (d.flags & NFT_SET_INTERVAL)
                nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_MERGE_ELEMENTS, 1);
            nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud),
                               nftnl_udata_buf_len(ud));
            nftnl_udata_buf_free(ud);
        }
        if (d.flags & NFT_SET_MAP) {
            nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, d.data_type);
            nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_LEN, d.data_len);
        }
        b.add_set(NFT_MSG_NEWSET, kFamily, NLM_F_CREATE | NLM_F_EXCL, s.get(),
                  fmt::format("add {} inet {} {} {{ {}; }}", d.flags & NFT_SET_MAP ? "map" : "set",
                              t, d.name, d.nft_decl));
    }
    for (const auto& d : chain_defs()) {
        ChainPtr c(nftnl_chain_alloc());
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, t.c_str());
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, d.name);
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, d.type);
        nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, d.hook);
        nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, d.prio);
        nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
        b.add_chain(NFT_MSG_NEWCHAIN, kFamily, NLM_F_CREATE | NLM_F_EXCL, c.get(),
                    fmt::format("add chain inet {} {} {{ {} }}", t, d.name, d.nft_hook));
    }
    for (const auto& d : rule_defs()) {
        RulePtr r(nftnl_rule_alloc());
        nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, t.c_str());
        nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, d.chain);
        nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, kFamily);
        d.build(r.get());
        nft::expr::comment(r.get(), d.comment);
        b.add_rule(NFT_MSG_NEWRULE, kFamily, NLM_F_CREATE | NLM_F_APPEND, r.get(),
                   fmt::format("add rule inet {} {} {}", t, d.chain, d.nft));
    }
    for (const auto& n : nets) b.append(build_network(table, n, true));
    b.append(build_ports(table, ports, true, nets));
    b.append(build_hairpin_self(table, ports, true));
    if (auto u = unbridged_elements(bnf)) add_elements(b, table, *u, true);
    return b;
}

Expected expected_state(std::string_view, const std::vector<NetworkRules>& nets,
                        const std::vector<PortForward>& ports, BridgeNf bnf) {
    Expected e;
    for (const auto& c : chain_defs()) {
        ExpectedChain ec{c.name, {}};
        for (const auto& r : rule_defs())
            if (std::string_view(r.chain) == c.name) ec.rule_comments.push_back(r.comment);
        e.chains.push_back(std::move(ec));
    }
    for (const auto& s : set_defs()) e.sets.push_back({s.name, 0});
    for (const auto& n : nets)
        for (const auto& se : network_elements(n))
            for (auto& es : e.sets)
                if (es.name == se.set) es.elements += se.elems.size();
    for (const auto& se : all_port_elements(nets, ports, bnf))
        for (auto& es : e.sets)
            if (es.name == se.set) es.elements += se.elems.size();
    return e;
}

std::string mismatch(const nft::TableInfo& have, const Expected& want, bool elements) {
    if (!have.exists) return "table missing";
    for (const auto& c : want.chains) {
        const nft::ChainInfo* h = have.chain(c.name);
        if (!h) return fmt::format("chain {} missing", c.name);
        if (h->rule_comments != c.rule_comments)
            return fmt::format("chain {} has {} rules, not our {}", c.name, h->rule_comments.size(),
                               c.rule_comments.size());
    }
    if (have.chains.size() != want.chains.size())
        return fmt::format("{} chains instead of {}", have.chains.size(), want.chains.size());
    for (const auto& s : want.sets) {
        const nft::SetInfo* h = have.set(s.name);
        if (!h) return fmt::format("set {} missing", s.name);
        if (elements && h->elements != s.elements)
            return fmt::format("set {} has {} elements, not {}", s.name, h->elements, s.elements);
    }
    if (have.sets.size() != want.sets.size())
        return fmt::format("{} sets instead of {}", have.sets.size(), want.sets.size());
    return {};
}

bool matches(const nft::TableInfo& have, const Expected& want, bool elements) {
    return mismatch(have, want, elements).empty();
}

std::string render(std::string_view table, const std::vector<NetworkRules>& nets,
                   const std::vector<PortForward>& ports, BridgeNf bnf) {
    std::string out = fmt::format("table inet {} {{\n", table);
    const std::vector<SetElems> port_elems = all_port_elements(nets, ports, bnf);
    for (const auto& d : set_defs()) {
        out += fmt::format("\t{} {} {{\n", d.flags & NFT_SET_MAP ? "map" : "set", d.name);
        out += fmt::format("\t\t{}\n", d.nft_decl);
        std::vector<std::string> elems;
        for (const auto& n : nets)
            for (const auto& se : network_elements(n))
                if (std::string_view(se.set) == d.name)
                    elems.push_back(se.text.substr(2, se.text.size() - 4));  // strip "{ " " }"
        for (const auto& se : port_elems)
            if (std::string_view(se.set) == d.name)
                elems.push_back(se.text.substr(2, se.text.size() - 4));
        if (!elems.empty()) {
            out += "\t\telements = { ";
            for (size_t i = 0; i < elems.size(); ++i) out += (i ? ", " : "") + elems[i];
            out += " }\n";
        }
        out += "\t}\n";
    }
    for (const auto& c : chain_defs()) {
        out += fmt::format("\tchain {} {{\n\t\t{}\n", c.name, c.nft_hook);
        for (const auto& r : rule_defs())
            if (std::string_view(r.chain) == c.name)
                out += fmt::format("\t\t{} comment \"{}\"\n", r.nft, r.comment);
        out += "\t}\n";
    }
    out += "}\n";
    return out;
}

Result<void> validate(const NetworkRules& n) {
    auto frame = [&] { return fmt::format("network {}", n.id.empty() ? n.bridge : n.id); };
    if (n.id.empty()) return Error::invalid(fmt::format("{}: empty network id", frame()));
    if (auto r = validate_ifname(n.bridge); !r.ok())
        return Error(r.error()).wrap(frame() + ": bridge");
    if (n.subnet.prefix() < 1 || n.subnet.prefix() > 32)
        return Error::invalid(
            fmt::format("{}: subnet {}: prefix must be 1..32", frame(), n.subnet.str()));
    if (n.subnet6 && (n.subnet6->prefix() < 1 || n.subnet6->prefix() > 128))
        return Error::invalid(
            fmt::format("{}: subnet6 {}: prefix must be 1..128", frame(), n.subnet6->str()));
    return ok();
}

std::vector<PortMapValue> port_map_values(const PortForward& p) {
    const uint32_t h = p.host_first, c = p.container_first;
    const uint32_t n = uint32_t(p.host_last) - p.host_first + 1;
    // Smallest modulus S >= n with r = h mod S: r <= c (port_min = c - r >= 0), r + n <= S (no
    // wrap inside the range) and port_max = c - r + S - 1 <= 65535. Small S first, so a single
    // port gives S = 1; at most 65536 cheap iterations, once per mapping.
    for (uint32_t S = n; S <= 65536; ++S) {
        const uint32_t r = h % S;
        if (r > c || r + n > S || c - r + S - 1 > 65535) continue;
        return {PortMapValue{p.host_first, p.host_last, static_cast<uint16_t>(c - r),
                             static_cast<uint16_t>(c - r + S - 1)}};
    }
    // n > h > c: no single modulus works; one element per port (S = 1 each).
    std::vector<PortMapValue> out;
    for (uint32_t i = 0; i < n; ++i)
        out.push_back(PortMapValue{static_cast<uint16_t>(h + i), static_cast<uint16_t>(h + i),
                                   static_cast<uint16_t>(c + i), static_cast<uint16_t>(c + i)});
    return out;
}

std::string describe(const PortForward& p) {
    const uint16_t clast = static_cast<uint16_t>(p.container_first + (p.host_last - p.host_first));
    return fmt::format("{} {}:{} -> {}:{} ({})", proto_name(p.proto), host_text(p),
                       port_text(p.host_first, p.host_last), container_text(p),
                       port_text(p.container_first, clast), p.bridge);
}

bool overlaps(const PortForward& a, const PortForward& b) {
    if (a.family != b.family || a.proto != b.proto) return false;
    const bool same_addr =
        a.family == Family::V6
            ? (!host_addr6(a) || !host_addr6(b) || host_addr6(a) == host_addr6(b))
            : (!host_addr(a) || !host_addr(b) || host_addr(a) == host_addr(b));
    return same_addr && a.host_first <= b.host_last && b.host_first <= a.host_last;
}

PortKey port_key(const PortForward& p) {
    std::array<uint8_t, 16> a{};
    if (p.family == Family::V6) {
        if (p.host_ip6) a = p.host_ip6->bytes();
    } else if (p.host_ip) {
        const uint32_t v = p.host_ip->value();
        a = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
    }
    return {static_cast<uint8_t>(p.family), static_cast<uint8_t>(p.proto), a, p.host_first,
            p.host_last};
}

const PortForward* find_overlap(const PortMap& index, const PortForward& p, const PortMap& skip) {
    const auto fam = static_cast<uint8_t>(p.family), proto = static_cast<uint8_t>(p.proto);
    using Addr = std::array<uint8_t, 16>;
    auto in_slice = [&](PortMap::const_iterator it, const Addr& a) {
        return it != index.end() && std::get<0>(it->first) == fam &&
               std::get<1>(it->first) == proto && std::get<2>(it->first) == a;
    };
    auto hit = [&](PortMap::const_iterator it) {
        return !skip.count(it->first) && overlaps(p, it->second);
    };
    // One host address's slice: its mappings are disjoint, so sorted by first port they are
    // sorted by last port too. Only the last one starting below p's range can reach into it
    // (an earlier one ends before that one starts); the others that overlap start inside it.
    auto in_address = [&](const Addr& a) -> const PortForward* {
        auto it = index.lower_bound(PortKey{fam, proto, a, p.host_first, 0});
        if (it != index.begin())
            if (auto prev = std::prev(it); in_slice(prev, a) && hit(prev)) return &prev->second;
        for (; in_slice(it, a) && std::get<3>(it->first) <= p.host_last; ++it)
            if (hit(it)) return &it->second;
        return nullptr;
    };
    const Addr addr = std::get<2>(port_key(p));  // a copy: port_key() returns a temporary
    const Addr every{};
    if (addr != every) {
        if (const auto* q = in_address(addr)) return q;
        return in_address(every);
    }
    // p covers every address: it meets each address present (a handful on any host).
    for (auto it = index.lower_bound(PortKey{fam, proto, every, 0, 0});
         it != index.end() && std::get<0>(it->first) == fam && std::get<1>(it->first) == proto;) {
        const Addr a = std::get<2>(it->first);
        if (const auto* q = in_address(a)) return q;
        it = index.upper_bound(PortKey{fam, proto, a, 0xffff, 0xffff});
    }
    return nullptr;
}

bool same_key(const PortForward& a, const PortForward& b) {
    return a.family == b.family && a.proto == b.proto &&
           (a.family == Family::V6 ? host_addr6(a) == host_addr6(b)
                                   : host_addr(a) == host_addr(b)) &&
           a.host_first == b.host_first && a.host_last == b.host_last;
}

Result<void> validate(const PortForward& p) {
    auto bad = [&](std::string_view why) {
        return Error::invalid(fmt::format("published port {}: {}", describe(p), why));
    };
    if (p.proto != L4::Tcp && p.proto != L4::Udp && p.proto != L4::Sctp)
        return bad("protocol must be tcp, udp or sctp");
    if (p.host_first == 0 || p.container_first == 0) return bad("port 0");
    if (p.host_last < p.host_first) return bad("host port range ends before it starts");
    if (uint32_t(p.container_first) + (p.host_last - p.host_first) > 65535)
        return bad("container port range goes beyond 65535");
    if (p.family == Family::V6) {
        if (p.container_ip6.is_unspecified() || p.container_ip6.is_multicast() ||
            p.container_ip6.is_loopback())
            return bad(
                fmt::format("container_ip6 {} is not a container address", p.container_ip6.str()));
        if (p.host_ip6 && p.host_ip6->is_multicast())
            return bad(fmt::format("host_ip6 {} is a multicast address", p.host_ip6->str()));
        // Unlike 127.0.0.1 (route_localnet), ::1 cannot be served in the kernel: after the nat
        // output DNAT and the masquerade the container's answer comes back on the bridge, is
        // un-NATed to destination ::1 in prerouting, and the IPv6 input route lookup for a
        // loopback destination is strict (rt6_need_strict: the route must be on the incoming
        // device; ::1's is on lo), so the kernel drops it (docs/firewall.md, kernel test
        // PublishedPorts6.LoopbackIsRefusedAndKernelDropsIt).
        if (p.host_ip6 && p.host_ip6->is_loopback())
            return bad(
                "host_ip6 ::1 cannot be published in the kernel: IPv6 has no route_localnet, the "
                "kernel drops the container's answers to ::1 arriving on the bridge");
    } else if (p.container_ip.value() == 0) {
        return bad("no container address");
    }
    if (auto r = validate_ifname(p.bridge); !r.ok())
        return Error(r.error()).wrap(fmt::format("published port {}: bridge", describe(p)));
    return ok();
}

Result<void> validate(const std::vector<NetworkRules>& nets) {
    for (size_t i = 0; i < nets.size(); ++i) {
        CNETD_TRY(validate(nets[i]));
        for (size_t j = 0; j < i; ++j) {
            if (nets[i].id == nets[j].id)
                return Error::invalid(fmt::format("network {}: duplicate id", nets[i].id));
            if (nets[i].bridge == nets[j].bridge)
                return Error::invalid(fmt::format("network {}: bridge {} already used by {}",
                                                  nets[i].id, nets[i].bridge, nets[j].id));
            if (nets[i].subnet.masked().overlaps(nets[j].subnet.masked()))
                return Error::invalid(fmt::format("network {}: subnet {} overlaps {} of {}",
                                                  nets[i].id, nets[i].subnet.str(),
                                                  nets[j].subnet.str(), nets[j].id));
            if (nets[i].subnet6 && nets[j].subnet6 &&
                nets[i].subnet6->masked().overlaps(nets[j].subnet6->masked()))
                return Error::invalid(fmt::format("network {}: subnet6 {} overlaps {} of {}",
                                                  nets[i].id, nets[i].subnet6->str(),
                                                  nets[j].subnet6->str(), nets[j].id));
        }
    }
    return ok();
}

}  // namespace cnetd::firewall
