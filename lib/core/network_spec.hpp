// Pure planning of networks: request text -> a validated Network, before any kernel call.
//
// Two steps, both pure (no kernel, no files, no clock; the engine passes every outside fact in as
// a value), so a request that can be refused is refused before the kernel is asked anything:
//   1. parse_network_request: the request's text (name, subnets, gateways, ranges, aux addresses,
//      labels) and, through the driver's parse_options, its driver options. Needs no host facts.
//   2. plan_network: subnets chosen from the pools where none was given (the host's on-link routes
//      and nameservers come in as PlanInputs::pool_context, read by the engine only when step 1
//      says a pool is needed), every address checked against its subnet, overlaps with the
//      existing networks refused, then the driver's check_against.
// plan_default_addressing is the same for the default network from the config (bip, fixed-cidr,
// fixed-cidr-v6, ipv6).
//
// Errors: InvalidArgument naming the field and the value ("subnet: \"10.0.0.0/33\": ...",
// "option com.docker.network.bridge.enable_icc: \"maybe\" is not a boolean ..."); Conflict for a
// name, subnet or bridge another network has. Threading: free functions on values.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"
#include "core/model.hpp"
#include "core/pools.hpp"

namespace cnetd::core {

class NetworkDriver;

// The driver a request names when it names none, and the one a state file without a driver field
// was written by.
inline constexpr const char* kDefaultDriver = "bridge";

// Requests carry user text; the engine parses and validates it so every error names the field.
struct CreateNetworkRequest {
    std::string name = {};
    // --subnet/--gateway/--ip-range may be given once per family (Docker's repeatable flags):
    // IPv4 text goes to subnet/gateway/ip_range, IPv6 text to the *6 fields.
    std::string subnet =
        {};  // optional: default address pools when empty; CIDR with host bits zero
    std::string gateway = {};   // optional; default: first host address of the subnet
    std::string ip_range = {};  // optional, CIDR inside the subnet
    // Driver options; for "bridge" Docker's: kOptBridgeName, kOptEnableIcc, kOptEnableMasquerade,
    // kOptHostIpv4, kOptHostBinding, mtu, iface prefix, gateway modes, inhibit_ipv4.
    std::map<std::string, std::string> options = {};
    bool internal = false;  // --internal
    bool ipv6 = false;      // --ipv6: dual stack (a /64 from the daemon's ULA /48 unless subnet6)
    std::string subnet6 = {};
    std::string gateway6 = {};
    std::string ip_range6 = {};
    std::map<std::string, std::string> aux_addresses = {};  // --aux-address name=IP
    std::map<std::string, std::string> labels = {};         // --label k=v
    // --driver: a name the engine has a NetworkDriver for (today "bridge"); InvalidArgument else.
    std::string driver = kDefaultDriver;
};

// The default network ("bridge" on docker0) as the config describes it.
struct DefaultNetworkSpec {
    std::string bridge = "docker0";
    Ipv4Cidr bip{Ipv4(0xAC110001), 16};  // 172.17.0.1/16: gateway address with prefix
    std::optional<Ipv4Cidr> fixed_cidr;  // sub-range for container addresses
    unsigned mtu = 0;        // 0: config `mtu` not set: the MTU of the default-route interface
    bool icc = true;         // config `icc`
    bool masquerade = true;  // config `ip-masq`
    std::optional<Ipv4> host_binding;       // config `ip`: default host address of published ports
    bool ipv6 = false;                      // config `ipv6`: dual stack
    std::optional<Ipv6Cidr> fixed_cidr_v6;  // config `fixed-cidr-v6` (else a /64 of the ULA /48)
};

// Every outside fact planning may use, as values.
struct PlanInputs {
    std::vector<const Network*> existing;  // the engine's networks (borrowed for the call)
    std::vector<AddressPool> pools;        // config default-address-pools (IPv4)
    std::vector<AddressPool6> pools6;      // its IPv6 entries (used before the ULA)
    std::optional<Ipv6Cidr> ula48;         // the daemon's ULA /48 (nullopt: none)
    std::optional<Ipv4> host_binding;      // config `ip`: drivers' default host binding
    // Host routes and nameservers for the pool choice; filled only when a pool is needed
    // (NetworkSpec::needs_pool4). `used` is filled by plan_network from `existing`.
    PoolContext pool_context;
};

// Step 1's result: the request parsed. `net` carries everything the text decides (id, name,
// driver, internal, labels, aux addresses, the driver's fields and options); the addressing the
// pools may still decide is kept apart.
struct NetworkSpec {
    CreateNetworkRequest req;  // the text, for error messages that quote it
    Network net;
    std::optional<Ipv4Cidr> subnet;  // nullopt: from the pools
    std::optional<Ipv4> gateway;     // nullopt: first host address
    std::optional<Ipv4Cidr> ip_range;
    bool ipv6 = false;                // dual stack asked for (--ipv6 or a v6 subnet)
    std::optional<Ipv6Cidr> subnet6;  // nullopt with ipv6: pools6, else the ULA
    std::optional<Ipv6> gateway6;
    std::optional<Ipv6Cidr> ip_range6;

    bool needs_pool4() const { return !subnet; }
};

// Step 1 (pure): `id` is the new network's id (drivers may derive names from it).
Result<NetworkSpec> parse_network_request(const CreateNetworkRequest& req, const std::string& id,
                                          const NetworkDriver& driver, const PlanInputs& in);
// Step 2 (pure): the complete Network (mtu 0 means "the daemon's default"; created unset; no
// endpoints).
Result<Network> plan_network(NetworkSpec spec, const PlanInputs& in, const NetworkDriver& driver);

// The default network's addressing from the config, checked.
struct DefaultAddressing {
    Ipv4Cidr subnet;
    Ipv4 gateway;
    std::optional<Ipv4Cidr> ip_range;
    std::optional<Ipv6Cidr> subnet6;
    Ipv6 gateway6;
};
// `current`: the default network as it is (nullptr: none yet); it keeps its IPv6 subnet when the
// config asks for IPv6 without fixed-cidr-v6. in.existing may include `current` (skipped).
// Errors name the config key (bip, fixed-cidr, fixed-cidr-v6, bridge, ipv6).
Result<DefaultAddressing> plan_default_addressing(const DefaultNetworkSpec& spec,
                                                  const Network* current, const PlanInputs& in);

// Go's strconv.ParseBool, which Docker uses for driver options.
std::optional<bool> parse_bool(const std::string& s);

}  // namespace cnetd::core
