// The daemon's model: networks and their endpoints. Plain values, copied freely (the daemon
// publishes immutable snapshots of them for readers).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/net.hpp"
#include "core/kernel.hpp"
#include "core/ports.hpp"
#include "firewall/firewall.hpp"

namespace cnetd::core {

// Docker's option names that cnetd understands on a network (others are rejected by name).
inline constexpr const char* kOptBridgeName = "com.docker.network.bridge.name";
inline constexpr const char* kOptEnableIcc = "com.docker.network.bridge.enable_icc";
inline constexpr const char* kOptEnableMasquerade = "com.docker.network.bridge.enable_ip_masquerade";
inline constexpr const char* kOptHostIpv4 = "com.docker.network.host_ipv4";
inline constexpr const char* kOptHostBinding = "com.docker.network.bridge.host_binding_ipv4";

struct Endpoint {
    std::string id;           // 64 hex characters
    std::string name;         // container name: --name, else the netns file's base name
    std::string netns_path;   // as given (a file in the netns dir, or e.g. /proc/PID/ns/net)
    NetnsId netns_id;         // identity of the namespace, so two paths to it are one target
    std::string host_ifname;  // "veth" + 7 hex
    std::string ifname;       // inside the namespace: "eth0"
    Mac mac;
    Ipv4Cidr address;         // container address with the network's prefix (172.17.0.2/16)
    std::vector<PortBinding> ports;  // published ports, host side chosen
    std::optional<Ipv6Cidr> address6;  // dual-stack networks: fd..::2/64
    std::string container_id;  // CNI_CONTAINERID (CNI attachments are container_id + ifname)
};

struct Network {
    std::string id;    // 64 hex characters
    std::string name;  // "bridge" for the default network
    std::string bridge;
    Ipv4Cidr subnet;   // host bits zero
    Ipv4 gateway;
    std::optional<Ipv4Cidr> ip_range;  // addresses for endpoints come from here (fixed-cidr)
    unsigned mtu = 1500;
    bool is_default = false;
    bool internal = false;    // --internal: no traffic beyond the subnet, no default route
    bool icc = true;          // inter-container communication on this bridge
    bool masquerade = true;   // NAT traffic leaving through other interfaces
    std::optional<Ipv4> host_ipv4;  // SNAT to this address instead of MASQUERADE
    std::optional<Ipv4> host_binding;  // default host address of published ports (nullopt: all)
    bool bridge_adopted = false;  // the bridge existed before us: left in place on removal
    std::string created;          // RFC 3339, UTC
    std::map<std::string, std::string> options;  // Docker-style driver options, as inspect shows
    std::map<std::string, Endpoint> endpoints;   // by endpoint id

    // Dual stack (--ipv6): subnet6 set means every endpoint gets an IPv6 address too.
    std::optional<Ipv6Cidr> subnet6;
    Ipv6 gateway6;
    std::optional<Ipv6Cidr> ip_range6;
    std::map<std::string, std::string> labels;        // --label k=v
    std::map<std::string, std::string> aux_addresses; // --aux-address name=IP (never handed out)
    firewall::GatewayMode mode4 = firewall::GatewayMode::Nat;
    firewall::GatewayMode mode6 = firewall::GatewayMode::Nat;
    bool inhibit_ipv4 = false;         // com.docker.network.bridge.inhibit_ipv4
    std::string iface_prefix = "eth";  // com.docker.network.container_iface_prefix

    Ipv4Cidr gateway_cidr() const { return {gateway, subnet.prefix()}; }
    std::optional<Ipv6Cidr> gateway6_cidr() const {
        if (!subnet6) return std::nullopt;
        return Ipv6Cidr{gateway6, subnet6->prefix()};
    }
};

}  // namespace cnetd::core
