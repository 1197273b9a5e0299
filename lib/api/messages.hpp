// The control API's messages as typed values: every request body and every response body of
// docs/api.md, one struct each. lib/api/codec.hpp turns them into the wire JSON and back; the
// daemon maps them to and from core types (daemon/codec.cpp), netctl and cnetd-cni use only these.
//
// Field names follow the wire keys (Docker's), in snake_case. Strings stay strings where the wire
// has strings: what they mean (is it a CIDR? a free port?) is the engine's to judge.
// Threading: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cnetd::api {

// --- networks ---------------------------------------------------------------------------------

// POST /v1/networks. Empty strings and maps are not sent.
struct CreateNetworkRequest {
    std::string name;  // required, not empty
    std::string subnet, gateway, ip_range;
    bool enable_ipv6 = false;
    std::string subnet6, gateway6, ip_range6;
    std::map<std::string, std::string> aux_addresses, labels, options;
    bool internal = false;
    // "Driver": "bridge" (also when empty) or "overlay" (a cluster-wide network: the daemon needs
    // a `cluster:` config, docs/overlay.md); any other name is the engine's to refuse.
    std::string driver;
};

// One element of "PortBindings": the wire strings, checked by parse_connect (codec.hpp).
struct PortBinding {
    std::string proto;           // "tcp" (also when empty), "udp", "sctp"
    std::string host_ip;         // "" default, "0.0.0.0" / "::" every address, or one address
    std::string host_port;       // "" ephemeral, "8080", "8000-8010"
    std::string container_port;  // "80" or "80-90" (required)
};

// POST /v1/networks/{name}/connect (the network comes from the path).
struct ConnectRequest {
    std::string target;  // required: netns name or path
    std::string name, ipv4, ipv6, mac;
    std::vector<std::string> publish;  // Docker -p strings, passed through
    std::optional<int> gw_priority;
    std::vector<PortBinding> port_bindings;
    // Names the embedded resolver answers for the endpoint besides its own (netctl --alias,
    // Docker's --network-alias); not sent when empty. Syntax is the engine's to judge.
    std::vector<std::string> aliases;
};

// POST /v1/networks/{name}/disconnect.
struct DisconnectRequest {
    std::string target;  // required
};

// One host side of a published container port ("HostIp", "HostPort").
struct HostBinding {
    std::string host_ip, host_port;
};

// What a runtime writes into the container's resolv.conf ("Dns" of an endpoint, docs/dns.md):
// ["127.0.0.11"] on networks with the embedded resolver, else the host's servers.
struct EndpointDns {
    std::vector<std::string> nameservers, search, options;
};

// An endpoint as inspect shows it (a "Containers" entry, or the connect answer).
struct Endpoint {
    std::string name, endpoint_id, mac_address, ipv4_address, ipv6_address;
    std::string sandbox_key, interface, host_interface;
    int gw_priority = 0;
    // The families ("IPv4", "IPv6") of its namespace's default route it carries; only in
    // network inspect answers.
    std::optional<std::vector<std::string>> default_route;
    // Docker's NetworkSettings.Ports: "80/tcp" → its host bindings.
    std::map<std::string, std::vector<HostBinding>> ports;
    std::string network;  // the connect answer names its network; "" elsewhere (not sent)
    std::vector<std::string> aliases;  // "Aliases": always sent ([] when none)
    // While the daemon's embedded DNS runs: the ready resolv.conf file for the runtime to
    // bind-mount ("ResolvConf", "" not sent) and what it holds ("Dns", not sent when absent).
    std::string resolv_conf;
    std::optional<EndpointDns> dns;
};

// One "IPAM"."Config" element.
struct IpamConfig {
    std::string subnet, gateway, ip_range;             // ip_range "" is not sent
    std::map<std::string, std::string> aux_addresses;  // empty is not sent
};

// The driver option inspect always shows: the network's bridge.
inline constexpr const char* kBridgeNameOption = "com.docker.network.bridge.name";

// GET /v1/networks/{name} and the elements of GET /v1/networks (`docker network inspect`).
// Scope "local", Driver "bridge", EnableIPv4 true and IPAM's Driver/Options are constants.
struct Network {
    std::string name, id, created;
    bool enable_ipv6 = false;
    std::vector<IpamConfig> ipam;
    bool internal = false;
    std::map<std::string, std::string> options, labels;
    std::map<std::string, Endpoint> containers;  // by endpoint id
    std::string driver = "bridge";
    // "EnableDNS": the embedded resolver answers on it (user-defined networks unless created with
    // com.docker.network.enable_dns=false; never the default network).
    bool enable_dns = false;
};

// One row of GET /v1/ports.
struct PortRow {
    std::string network, endpoint, endpoint_id, container, proto, host_ip, host_port,
        container_port;
};

// --- namespaces, daemon -----------------------------------------------------------------------

// POST /v1/netns (request: name only) and its answer / the elements of GET /v1/netns.
struct CreateNetnsRequest {
    std::string name;  // required, not empty
};
struct Netns {
    std::string name, path;
};

// The firewall part of GET /v1/info.
struct FirewallState {
    std::string backend;
    uint64_t repairs = 0;
    std::string last_repair;
    std::vector<std::string> warnings;
};

// --- cluster (overlay networks, docs/overlay.md) ------------------------------------------------

// One element of GET /v1/nodes: a node of the cluster as this node's agent sees it.
struct NodeStatus {
    std::string name;
    std::string address;              // its advertise-address (underlay)
    std::vector<std::string> blocks;  // "mesh 10.200.1.0/24": one per overlay network
    int64_t ttl = -1;                 // seconds left on its etcd lease; -1 unknown
    std::string last_seen;            // RFC 3339 UTC of its last lease renewal; "" unknown
    bool self = false;                // the node that answered
};

// "Cluster" of GET /v1/info, present only when the daemon has a `cluster:` config.
struct ClusterStatus {
    std::string node, advertise_address;
    std::vector<std::string> etcd;  // endpoints as configured
    bool etcd_reachable = false;
    std::string etcd_error;         // the last error while unreachable
    std::string unreachable_since;  // RFC 3339; "" while reachable
    int64_t lease_id = 0;
    int64_t lease_ttl = -1;  // seconds left; -1 unknown
    uint64_t pending = 0;    // publications/deletions waiting for etcd
    uint64_t networks = 0;   // overlay networks known
    uint64_t peers = 0;      // remote nodes programmed (sum over networks)
};

// GET /v1/info.
struct Info {
    std::string version, netns_dir, state_dir, socket;
    uint64_t networks = 0, endpoints = 0;
    std::string started_at, last_reload;
    std::vector<std::string> pending_restart;
    std::string state_read_only;  // why mutations are refused; "" while writable
    FirewallState firewall;
    std::optional<ClusterStatus> cluster;  // "Cluster": only with a `cluster:` config
};

// GET /v1/firewall.
struct FirewallShow {
    std::string backend, table;
    bool in_sync = false;
    uint64_t repairs = 0;
    std::string last_repair;
    std::vector<std::string> warnings;
    std::string text;
};

// GET /v1/ping.
struct Ping {
    bool ok = true;
};

// GET /v1/dns: the embedded resolver's state (daemon/dns_server.hpp DnsStatus), counters since
// the daemon started.
struct DnsCounters {
    uint64_t queries_udp = 0, queries_tcp = 0, answered_local = 0, forwarded = 0,
             upstream_failures = 0, servfail = 0, refused = 0, malformed = 0, tcp_rejected = 0;
};
struct DnsStatus {
    std::vector<std::string> upstreams;  // the host's servers, as the file writes them
    std::string upstreams_file;          // the file they come from
    uint64_t sandboxes = 0, names = 0, in_flight = 0;
    DnsCounters counters;
};

// What `netctl --json network disconnect` prints (the route itself answers 204).
struct Disconnected {
    std::string network, target;
};

// --- CNI (cnetd-cni ↔ /v1/cni/...) ------------------------------------------------------------

// The network an ADD creates when missing ("Network" of CniAddRequest).
struct CniNetwork {
    std::string name, subnet;  // required
    std::string gateway, ip_range, bridge;
    unsigned mtu = 0;  // 0: the daemon's default (not sent)
    bool ip_masq = false;
    bool icc = true;
};

struct CniPortMapping {
    unsigned host_port = 0, container_port = 0;  // required, 1-65535
    std::string protocol;                        // "" tcp
    std::string host_ip;                         // "" every host address
};

// POST /v1/cni/add.
struct CniAddRequest {
    CniNetwork network;
    std::string container_id, ifname, netns;  // required
    std::string ipv4_address, mac_address;
    std::vector<CniPortMapping> port_mappings;
};

// POST /v1/cni/del and /v1/cni/check (netns: required by CHECK only; DEL does not send it).
struct CniKeyRequest {
    std::string network, container_id, ifname, netns;
};

// POST /v1/cni/gc: the attachments of `network` to keep.
struct CniGcRequest {
    std::string network;
    std::vector<std::pair<std::string, std::string>> valid;  // (container id, ifname)
};

// The answer of ADD and CHECK: what cnetd-cni builds its CNI result from.
struct CniAttachment {
    Endpoint endpoint;
    std::string network, bridge, subnet, gateway;
    bool internal = false;
    unsigned mtu = 0;
};

// The answer of DEL ("Removed": bool) and of GC ("Removed": the "<container id>/<ifname>" list).
struct CniDelResult {
    bool removed = false;
};
struct CniGcResult {
    std::vector<std::string> removed;
};

// GET /v1/cni/status/{network}.
struct CniStatus {
    bool ready = true;
    std::vector<std::string> problems;
};

// --- errors -------------------------------------------------------------------------------------

// Every non-2xx body: {"message","kind"} (protocol.hpp), plus "CniCode" on the CNI routes.
struct ErrorBody {
    std::string message, kind;
    std::optional<int> cni_code;
};

}  // namespace cnetd::api
