#include "firewall/layout.hpp"

#include <netinet/in.h>  // before any <linux/*.h>: it keeps linux/in.h's duplicates out
#include <linux/netfilter.h>

#include <string>

namespace cnetd::firewall::detail {

static_assert(kFamily == NFPROTO_INET);

const std::vector<SetDef>& set_defs() {
    using enum nft::Type;
    static const std::vector<SetDef> defs = {
        {"bridges", {Ifname}, {}, false},
        {"internal_bridges", {Ifname}, {}, false},
        {"icc_bridges", {Ifname, Ifname}, {}, false},
        // Gateway modes, per family (meta nfproto . bridge): isolated bridges exchange nothing
        // with the rest of the world; nat-unprotected ones accept direct routed inbound traffic.
        {"isolated_bridges", {NfProto, Ifname}, {}, false},
        {"open_bridges", {NfProto, Ifname}, {}, false},
        // Subnets protected against direct routing (gateway modes nat and isolated, internal).
        {"subnets", {Ipv4Addr}, {}, true},
        {"nets", {Ipv4Addr, Ifname}, {}, true},
        {"masq_nets", {Ipv4Addr}, {}, true},
        {"snat_nets", {Ipv4Addr}, {Ipv4Addr}, true},
        {"subnets6", {Ipv6Addr}, {}, true},
        {"nets6", {Ipv6Addr, Ifname}, {}, true},
        {"masq_nets6", {Ipv6Addr}, {}, true},
        // Gateway mode routed: the published container ports (container address . protocol .
        // container port range) reachable by direct routing.
        {"routed_ports", {Ipv4Addr, InetProto, InetService}, {}, true},
        {"routed_ports6", {Ipv6Addr, InetProto, InetService}, {}, true},
        // Hairpin to itself: `C . C` for each container address C with a published port (the
        // only hairpin connections masqueraded when bridged traffic passes netfilter).
        {"hairpin_self", {Ipv4Addr, Ipv4Addr}, {}, false},
        {"hairpin_self6", {Ipv6Addr, Ipv6Addr}, {}, false},
        // Families whose bridged traffic skips netfilter (BridgeNf): every hairpin connection of
        // that family is masqueraded, or the target's direct reply would never be un-DNAT'd.
        {"unbridged", {NfProto}, {}, false},
        // Published ports, the common case (one host port on every host address): a plain hash
        // map (protocol . host port) -> (container address . port), so a connection's first
        // packet costs one hash lookup whatever the number of mappings (issue 4).
        {"published", {InetProto, InetService}, {Ipv4Addr, InetService}, false},
        // Everything else (host port ranges, specific host addresses): (host address, protocol,
        // host port range) -> (container address, port_min, port_max); see port_map_values().
        {"published_ranges",
         {Ipv4Addr, InetProto, InetService},
         {Ipv4Addr, InetService, InetService},
         true},
        {"published6", {InetProto, InetService}, {Ipv6Addr, InetService}, false},
        {"published6_ranges",
         {Ipv6Addr, InetProto, InetService},
         {Ipv6Addr, InetService, InetService},
         true},
    };
    return defs;
}

const std::vector<ChainDef>& chain_defs() {
    static const std::vector<ChainDef> defs = {
        {"raw_prerouting", "filter", NF_INET_PRE_ROUTING, -300},
        {"forward", "filter", NF_INET_FORWARD, 0},
        {"nat_prerouting", "nat", NF_INET_PRE_ROUTING, -100},
        {"nat_output", "nat", NF_INET_LOCAL_OUT, -100},
        {"nat_postrouting", "nat", NF_INET_POST_ROUTING, 100},
    };
    return defs;
}

nft::TableSpec table_spec(std::string_view table) {
    return {kFamily, std::string(table)};
}

nft::SetSpec set_spec(std::string_view table, const SetDef& d, uint32_t id) {
    return {kFamily, std::string(table), d.name, d.key, d.data, d.interval, id};
}

nft::ChainSpec chain_spec(std::string_view table, const ChainDef& d) {
    return {kFamily, std::string(table), d.name, nft::BaseChain{d.type, d.hook, d.prio, NF_ACCEPT}};
}

nft::RuleSpec rule_spec(std::string_view table, const RuleDef& d) {
    return {kFamily, std::string(table), d.chain, d.exprs, d.comment};
}

}  // namespace cnetd::firewall::detail
