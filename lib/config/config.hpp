// cnetd's configuration: a YAML file using Docker's daemon.json key names where they exist, so a
// daemon.json parses as a config (JSON is YAML). A missing file means defaults.
//
// Keys (see etc/cnetd/cnetd.yaml for the annotated reference):
//   bip, fixed-cidr, mtu, icc, ip-masq, ip-forward, bridge, ip   (Docker's meaning)
//   socket, state-dir, netns-dir, log-level, firewall         (cnetd's own)
//   iptables: false                                           (Docker's; same as firewall: none)
// Docker daemon.json keys that do not concern networking are accepted and ignored with a warning;
// any other key is an error naming it. Errors are path-qualified: `bip: "10.0.0.1/33": prefix
// length 33 > 32`. This is the only file that includes yaml-cpp; its exceptions never escape.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"
#include "core/engine.hpp"

namespace cnetd::config {

struct Config {
    std::string socket = "/run/cnetd/cnetd.sock";
    std::string state_dir = "/var/lib/cnetd";
    std::string netns_dir = "/var/run/docker/netns";
    std::string log_level = "info";  // debug, info, warning, error
    // bridge: "none" turns the default network off.
    bool default_network = true;
    core::DefaultNetworkSpec default_net;  // bridge, bip, fixed-cidr, mtu
    unsigned mtu = 1500;
    bool icc = true;         // used by the firewall (issue 3)
    bool ip_masq = true;     // used by the firewall (issue 3)
    bool ip_forward = true;  // net.ipv4.ip_forward=1 at start
    // `ip`: default host address of published ports (nullopt: 0.0.0.0, every address).
    std::optional<Ipv4> default_host_ip;
    // "nftables": cnetd's private table; "none": another tool owns the firewall.
    std::string firewall = "nftables";
    std::vector<std::string> warnings;  // e.g. ignored Docker keys; the daemon logs them
};

// Parses YAML text; `source` names the file in errors.
Result<Config> parse(std::string_view text, std::string_view source = "config");
// Reads and parses `path`. A missing file gives defaults unless `must_exist`.
Result<Config> load(const std::string& path, bool must_exist);

}  // namespace cnetd::config
