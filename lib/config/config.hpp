// cnetd's configuration: a YAML file using Docker's daemon.json key names where they exist, so a
// daemon.json parses as a config (JSON is YAML). A missing file means defaults.
//
// Keys (see etc/cnetd/cnetd.yaml for the annotated reference):
//   bip, fixed-cidr, mtu, icc, ip-masq, ip-forward, bridge, ip   (Docker's meaning)
//   socket, state-dir, netns-dir, log-level, firewall         (cnetd's own)
//   group (Docker's: the socket's group), read-group, max-connections   (socket access, limits)
//   max-connections-per-uid, reserved-write-connections                 (connection slots)
//   iptables: false                                           (Docker's; same as firewall: none)
//   default-address-pools, ipv6, fixed-cidr-v6                (Docker's; address pools, dual stack)
//   metrics-address (alias Docker's metrics-addr)             (Prometheus TCP listener)
// Docker daemon.json keys that do not concern networking are accepted and ignored with a warning;
// any other key is an error naming it. Errors are path-qualified: `bip: "10.0.0.1/33": prefix
// length 33 > 32`. This is the only file that includes yaml-cpp; its exceptions never escape.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"
#include "core/engine.hpp"
#include "core/pools.hpp"

namespace cnetd::config {

// `cluster:` (docs/overlay.md): this node's membership of an overlay cluster. Absent: no cluster,
// nothing changes (overlay networks are refused). Restart-only (a reload reports it pending).
struct ClusterConfig {
    std::vector<std::string> etcd;  // `etcd`: endpoints, "http://192.0.2.1:2379" (>= 1)
    std::string node_name;          // `node-name`: unique in the cluster; default: hostname
    Ipv4 advertise_address;         // `advertise-address`: underlay IPv4 (required)
    uint16_t vxlan_port = 4789;     // `vxlan-port`: UDP port of every node's VXLAN devices
    // `tls: {ca, cert, key}`: etcd over https with client certificates (all three, readable).
    std::string tls_ca, tls_cert, tls_key;
    // `lease-ttl` (seconds, >= 10): how long a silent node keeps its blocks and routes on the
    // other nodes. `lease-renew-margin` (seconds, < lease-ttl): renewal starts when this much is
    // left. docs/overlay.md says why 3600/900: a node away from etcd for up to 45 minutes flaps
    // nothing; a dead node's routes go within an hour.
    unsigned lease_ttl = 3600;
    unsigned lease_renew_margin = 900;
};

struct Config {
    std::string socket = "/run/cnetd/cnetd.sock";
    std::string state_dir = "/var/lib/cnetd";
    std::string netns_dir = "/var/run/docker/netns";
    std::string log_level = "info";  // debug, info, warning, error
    // bridge: "none" turns the default network off.
    bool default_network = true;
    core::DefaultNetworkSpec default_net;  // bridge, bip, fixed-cidr, mtu
    // 0: `mtu` not set: bridges and veths take the MTU of the interface carrying the host's
    // default route (1500 without one), so 1400/1450 uplinks work without configuration.
    unsigned mtu = 0;
    bool icc = true;         // used by the firewall (issue 3)
    bool ip_masq = true;     // used by the firewall (issue 3)
    bool ip_forward = true;  // net.ipv4.ip_forward=1 at start
    // `ip`: default host address of published ports (nullopt: 0.0.0.0, every address).
    std::optional<Ipv4> default_host_ip;
    // "nftables": cnetd's private table; "none": another tool owns the firewall.
    std::string firewall = "nftables";
    // Control socket access (docs/security.md): members of `group` (Docker's key: the socket's
    // group) may change state, members of `read-group` may only read; root always may. A group
    // name or a numeric gid; "" for none. `max-connections`: open control connections at a time.
    // `max-connections-per-uid`: per uid (root and the daemon's own uid exempt).
    // `reserved-write-connections`: of max-connections, slots only peers with write access get
    // (must be less than max-connections).
    std::string group = "cnetd";
    std::string read_group;
    unsigned max_connections = 1024;
    unsigned max_connections_per_uid = 64;
    unsigned reserved_write_connections = 32;
    // `metrics-address` / Docker's `metrics-addr`: "host:port" of the Prometheus listener
    // (GET /metrics over TCP), normalized ("9323" and ":9323" become "127.0.0.1:9323"); "" off.
    std::string metrics_address;
    // `default-address-pools` (Docker's daemon.json shape, [{base: CIDR, size: N}]): subnets for
    // networks created without one. Given, it replaces Docker's defaults for both families (as
    // Docker does): IPv4 entries go to address_pools (empty if only IPv6 entries were given),
    // IPv6 entries to address_pools6 (empty: a /64 from the ULA /48 of the daemon ID, core/ula.hpp).
    std::vector<core::AddressPool> address_pools = core::default_address_pools();
    std::vector<core::AddressPool6> address_pools6;
    // `ipv6`: dual stack for the default network. `fixed-cidr-v6`: its IPv6 subnet (gateway: the
    // first address after the network address); unset with ipv6 on: a /64 from the ULA (Docker 27+).
    bool ipv6 = false;
    std::optional<Ipv6Cidr> fixed_cidr_v6;
    std::vector<std::string> warnings;  // e.g. ignored Docker keys; the daemon logs them
    std::optional<ClusterConfig> cluster;  // `cluster:` (overlay networks); nullopt: none
};

// Parses YAML text; `source` names the file in errors.
Result<Config> parse(std::string_view text, std::string_view source = "config");
// Reads and parses `path`. A missing file gives defaults unless `must_exist`.
Result<Config> load(const std::string& path, bool must_exist);

}  // namespace cnetd::config
