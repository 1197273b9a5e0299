// Which endpoint gives a namespace its default route, when it is on several networks.
//
// Docker's rule (libnetwork Endpoint.Less, Docker 28; docs: "gw-priority"), per family:
//   1. only endpoints that can provide one: networks that are not internal; IPv4 also needs an
//      IPv4 gateway on the bridge (not inhibit_ipv4), IPv6 an IPv6 address (dual-stack network);
//   2. the highest gw_priority (netctl network connect --gw-priority N; default 0);
//   3. then dual stack before IPv6-only before IPv4-only (Docker: the join's gw + 2 * gw6);
//   4. then the network name, ascending; then the endpoint id, so the choice is total.
// IPv4 and IPv6 are chosen separately. The engine keeps the kernel's default routes on the winners:
// a connect that wins takes the route over (the undo log puts the previous one back), a
// disconnect of a winner hands it to the next in line.
// Pure functions over the model: no kernel, no state of their own.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/kernel.hpp"
#include "core/model.hpp"

namespace cnetd::core {

// One endpoint of a namespace with its network.
struct GatewayCandidate {
    const Network* net = nullptr;
    const Endpoint* ep = nullptr;
};

// Whether `c` can provide the default route of `f` at all (rule 1).
bool can_be_gateway(const GatewayCandidate& c, IpFamily f);

// The winner among `cands` for `f` (all in one namespace), nullopt when none is eligible.
std::optional<GatewayCandidate> elect_gateway(const std::vector<GatewayCandidate>& cands,
                                              IpFamily f);

// Every endpoint in `networks` that lives in namespace `ns`.
std::vector<GatewayCandidate> endpoints_in(const std::vector<const Network*>& networks, NetnsId ns);

// For inspection: endpoint id -> {provides the IPv4 default route, provides the IPv6 one}, for
// every endpoint of `networks` (one pass over all endpoints).
struct GatewayRole {
    bool v4 = false;
    bool v6 = false;
};
std::map<std::string, GatewayRole> gateway_roles(const std::vector<Network>& networks);

}  // namespace cnetd::core
