// The cluster's keys and values in etcd (docs/overlay.md "Keys"), as pure functions: no I/O.
//
//   /cnetd/networks/<name>                          OverlayNetworkDef as JSON (no lease)
//   /cnetd/vni/<vni>                                the network id (no lease)
//   /cnetd/nodes/<node>                             NodeRecord (node lease)
//   /cnetd/blocks/<net id>/<a.b.c.d>-<prefix>       BlockRecord (node lease)
//   /cnetd/endpoints/<net id>/<node>/<endpoint id>  EndpointRecord (node lease)
//
// Decoders are strict (a value another version or a person wrote): unknown fields are ignored,
// missing or malformed required fields are InvalidArgument naming the key and the field. Layer:
// cluster (base, core model, nlohmann-json); no etcd client here.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"
#include "core/engine.hpp"
#include "core/model.hpp"

namespace cnetd::cluster {

inline constexpr const char* kPrefix = "/cnetd/";

std::string network_key(const std::string& name);
std::string vni_key(uint32_t vni);
std::string node_key(const std::string& node);
std::string blocks_prefix(const std::string& net_id);  // "/cnetd/blocks/<id>/"
std::string block_key(const std::string& net_id, const Ipv4Cidr& block);
std::string endpoints_prefix(const std::string& net_id);  // "/cnetd/endpoints/<id>/"
std::string endpoint_key(const std::string& net_id, const std::string& node,
                         const std::string& ep_id);

// What a key under kPrefix is, with its parts; Other for anything else (ignored by readers).
struct ParsedKey {
    enum class Kind { Network, Vni, Node, Block, Endpoint, Other };
    Kind kind = Kind::Other;
    std::string name;     // Network: network name; Node: node name; Endpoint: node
    std::string net_id;   // Block, Endpoint
    Ipv4Cidr block;       // Block
    uint32_t vni = 0;     // Vni
    std::string ep_id;    // Endpoint
};
ParsedKey parse_key(const std::string& key);

struct NodeRecord {
    std::string name;
    Ipv4 address;           // advertise-address
    uint16_t port = 4789;   // vxlan-port
    std::string started;    // RFC 3339 UTC
    std::string last_seen;  // RFC 3339 UTC of the last renewal
    bool operator==(const NodeRecord&) const = default;
};

struct BlockRecord {
    std::string node;
    Ipv4 underlay;  // the node's advertise-address (its VTEP)
    Mac mac;        // its VXLAN device's MAC for this network
    bool operator==(const BlockRecord&) const = default;
};

struct EndpointRecord {
    std::string name;
    std::vector<std::string> aliases;
    Ipv4 address;
    std::string container_id;
    bool operator==(const EndpointRecord&) const = default;
};

std::string encode(const core::OverlayNetworkDef& d);
std::string encode(const NodeRecord& r);
std::string encode(const BlockRecord& r);
std::string encode(const EndpointRecord& r);
// `key` only names the record in errors.
Result<core::OverlayNetworkDef> decode_network(const std::string& key, const std::string& json);
Result<NodeRecord> decode_node(const std::string& key, const std::string& json);
Result<BlockRecord> decode_block(const std::string& key, const std::string& json);
Result<EndpointRecord> decode_endpoint(const std::string& key, const std::string& json);

// The VXLAN device MAC of `node` on network `net_id`: locally administered unicast, derived from
// a hash of both, so it is the same after every restart (remote FDB entries point at it) without
// being stored anywhere.
Mac vtep_mac(const std::string& node, const std::string& net_id);

// Block choice (flannel's acquire order): `own` (a block already leased by this node) first, else
// `previous` (the block this node's state has for the network) when free, else one of the first
// 100 free blocks of `subnet` with prefix `block_prefix`, chosen by `pick` (an index below the
// count; random in the daemon, fixed in tests). `taken`: blocks leased by any node. nullopt when
// the subnet is full.
std::optional<Ipv4Cidr> choose_block(const Ipv4Cidr& subnet, unsigned block_prefix,
                                     const std::vector<Ipv4Cidr>& taken,
                                     std::optional<Ipv4Cidr> own,
                                     std::optional<Ipv4Cidr> previous,
                                     const std::function<std::size_t(std::size_t)>& pick);

}  // namespace cnetd::cluster
