// netctl topology: what cnetd has built, as a picture (Graphviz dot or SVG) or an indented tree.
//
// Two halves, kept apart so the pictures are testable without a daemon:
//  - fetch_topology() reads the daemon's existing API (GET /v1/info, /v1/networks, /v1/netns,
//    /v1/ports, and /v1/nodes when the daemon is in a cluster) through lib/api's messages into a
//    Topology;
//  - topology_dot() / topology_text() turn a Topology into text: pure functions, no I/O.
// svg() pipes dot text through Graphviz's `dot -Tsvg` (Debian package graphviz).
// Threading: plain values and functions; svg() forks a child and waits for it.
#pragma once

#include <string>
#include <vector>

#include "api/client.hpp"
#include "api/codec.hpp"
#include "base/error.hpp"

namespace cnetd::netctl {

// `netctl topology`'s line in `netctl --help` (main.cpp's command table) and its own --help.
inline constexpr const char* kTopologySummary =
    "Draw what cnetd built: networks, bridges, endpoints (name, address, netns), published "
    "ports, overlay peers; Graphviz dot (default), SVG (needs graphviz) or a text tree";

// What the pictures show, as the API answered it.
struct Topology {
    std::vector<api::Network> networks;  // sorted by name (as GET /v1/networks answers)
    std::vector<api::Netns> netns;       // the netns dir's namespaces (names for SandboxKeys)
    std::vector<api::PortRow> ports;     // published ports, matched to endpoints by EndpointID
    std::vector<api::NodeStatus> nodes;  // the cluster's nodes; empty outside a cluster
    std::string node;                    // this node's cluster name; "" outside a cluster
};

// Reads the daemon's state (four or five GETs on `client`). `raw`, when given, receives the
// answers as they came: {"Networks": [...], "Netns": [...], "Ports": [...], "Nodes": [...]}.
// The reads are not one snapshot: a port row whose endpoint is gone by the time the networks are
// read is simply not drawn. Errors: the first failed request's (the client's wording).
Result<Topology> fetch_topology(const api::Client& client, api::json* raw = nullptr);

// The topology as one Graphviz graph (undirected, left to right), valid dot whatever the names
// hold (quotes, backslashes and control characters are escaped):
//  - one cluster per network (label: name, driver, scope, subnets, internal) holding its bridge
//    (name, gateways) and its endpoints (name, IPv4/IPv6 address, interface); bridge—endpoint
//    edges carry the host-side veth;
//  - one node per network namespace ("netns NAME", or its path when outside the netns dir), with
//    an edge from each endpoint in it (a multi-homed namespace links several networks); namespaces
//    without endpoints are drawn alone;
//  - one node per published port ("tcp 0.0.0.0:8080 -> 80") linked to its endpoint;
//  - overlay networks: their VXLAN device (name, VNI, this node's block) in the network's cluster,
//    and a dashed edge (labelled with the peer's block) to each remote node; cluster nodes without
//    a peer edge are drawn alone.
std::string topology_dot(const Topology& t);

// The same facts as an indented tree for terminals: one "network" line per network, its bridge,
// VXLAN device and peers, its endpoints indented below it and their ports below them; then the
// namespaces without endpoints and the cluster's nodes.
std::string topology_text(const Topology& t);

// `dot` rendered by Graphviz: runs `dot -Tsvg` (found through PATH) with `dot` on its stdin and
// returns what it printed. Errors: dot missing ("... install the Debian package graphviz ..."),
// dot failing (its exit status; its own message went to stderr), or the fork/pipe failing.
Result<std::string> svg(const std::string& dot);

}  // namespace cnetd::netctl
