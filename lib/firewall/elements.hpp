// Element encoders (private to lib/firewall): intent (networks, published ports, br_netfilter)
// -> the elements of our sets and maps, as raw key/data bytes (nft::ElementSpec) with the text
// `nft list` would print for them. Pure functions, no kernel.
//
// Byte layouts follow the set types of layout.cpp: ifname 16 zero-padded bytes, addresses in
// network order, and in a concatenation every field padded to a 4-byte register.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "firewall/firewall.hpp"
#include "firewall/ruleset.hpp"
#include "nft/spec.hpp"

namespace cnetd::firewall::detail {

// Some elements of one set: what one message adds or deletes.
struct SetElems {
    const char* set;
    std::vector<nft::ElementSpec> elems;
    std::string text;  // "{ 172.17.0.0/16 . "docker0" }"
};

std::vector<SetElems> network_elements(const NetworkRules& n);
// The map elements of one mapping (normally exactly one; see port_map_values()).
SetElems port_elements(const PortForward& p);
// Gateway mode routed: the mapping's container side (container address . protocol . container
// port range), or nullopt when the mapping's network (by bridge) is not routed for its family.
std::optional<SetElems> routed_elements(const PortForward& p,
                                        const std::vector<NetworkRules>& nets);
// The hairpin_self[6] element of a mapping's container address C: `C . C`.
SetElems self_element(const PortForward& p);
// One mapping per distinct container address (the first), in order.
std::vector<PortForward> distinct_self(const std::vector<PortForward>& ports);
// The families whose bridged traffic skips netfilter (see BridgeNf); nullopt if none.
std::optional<SetElems> unbridged_elements(BridgeNf bnf);
// Every element that depends on the mappings (and the environment), for expected_state() and
// render(): map elements, routed_ports, hairpin_self and unbridged.
std::vector<SetElems> all_port_elements(const std::vector<NetworkRules>& nets,
                                        const std::vector<PortForward>& ports, BridgeNf bnf);

// ---- mapping helpers shared with the port index and validation ------------------------------
// The host address of a mapping, nullopt for every address (0.0.0.0 / :: mean that too).
std::optional<Ipv4> host_addr(const PortForward& p);
std::optional<Ipv6> host_addr6(const PortForward& p);
bool is_v6(const PortForward& p);
const char* proto_name(L4 p);                               // "tcp" / "udp" / "sctp"
std::string port_text(uint16_t first, uint16_t last);       // "80" or "80-82"
std::vector<uint8_t> container_addr(const PortForward& p);  // 4 or 16 bytes, network order
std::string host_text(const PortForward& p);                // "0.0.0.0", "[::]", "[2001:db8::1]"
std::string container_text(const PortForward& p);           // "172.17.0.2", "[fd00::2]"

}  // namespace cnetd::firewall::detail
