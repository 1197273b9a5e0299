// The nftables layout of cnetd's table, as pure functions: intent in, netlink batch (bytes) or
// expected kernel state out. No kernel access here, so unit tests decode the batches directly.
//
// Names in one place (see docs/firewall.md for the full nft text and the reasons):
//   table inet <t>
//     sets:   bridges, internal_bridges, icc_bridges (ifname . ifname), subnets (interval),
//             nets (ipv4_addr . ifname, interval), masq_nets (interval),
//     maps:   snat_nets (ipv4_addr : ipv4_addr, interval),
//             published (ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service) —
//             reserved
//     chains: raw_prerouting (filter, prerouting, -300), forward (filter, forward, 0),
//             nat_prerouting (nat, prerouting, -100), nat_output (nat, output, -100) — reserved for
//             published ports, nat_postrouting (nat, postrouting, 100)
// Every rule carries a comment naming it; the comments identify our rules in a dump.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "firewall/firewall.hpp"
#include "nft/nft.hpp"

namespace cnetd::firewall {

// The expected kernel view of the table (what nft::Socket::dump_table should return).
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

// Full atomic rebuild: "add table; delete table" (so it works whether or not the table exists),
// then the table, sets, chains, rules and every network's elements.
nft::Batch build_rebuild(std::string_view table, const std::vector<NetworkRules>& nets);
// One network's elements: add (NEWSETELEM) or delete (DELSETELEM), one message per set.
nft::Batch build_network(std::string_view table, const NetworkRules& n, bool add);
Expected expected_state(std::string_view table, const std::vector<NetworkRules>& nets);
// True if the dump has our chains with our rules (by comment, in order) and our sets; with
// `elements` also the element counts.
bool matches(const nft::TableInfo& have, const Expected& want, bool elements);
// Why they do not match ("set nets has 3 elements, not 2"), or "" when they do.
std::string mismatch(const nft::TableInfo& have, const Expected& want, bool elements);
// nft-like text of the intended table.
std::string render(std::string_view table, const std::vector<NetworkRules>& nets);

}  // namespace cnetd::firewall
