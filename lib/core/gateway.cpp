#include "core/gateway.hpp"

#include <algorithm>
#include <tuple>

namespace cnetd::core {

namespace {

// Docker's join score: 1 for an IPv4 gateway, 2 for an IPv6 one (dual stack scores 3).
int family_score(const GatewayCandidate& c) {
    return (can_be_gateway(c, IpFamily::V4) ? 1 : 0) + (can_be_gateway(c, IpFamily::V6) ? 2 : 0);
}

// True when `a` comes before `b` in Docker's order (rules 2 to 4).
bool before(const GatewayCandidate& a, const GatewayCandidate& b) {
    return std::make_tuple(-a.ep->gw_priority, -family_score(a), std::cref(a.net->name),
                           std::cref(a.ep->id)) <
           std::make_tuple(-b.ep->gw_priority, -family_score(b), std::cref(b.net->name),
                           std::cref(b.ep->id));
}

}  // namespace

bool can_be_gateway(const GatewayCandidate& c, IpFamily f) {
    if (c.net->internal) return false;
    if (f == IpFamily::V4) return !c.net->inhibit_ipv4;
    return c.ep->address6.has_value() && c.net->subnet6.has_value();
}

std::optional<GatewayCandidate> elect_gateway(const std::vector<GatewayCandidate>& cands,
                                              IpFamily f) {
    std::optional<GatewayCandidate> best;
    for (const auto& c : cands) {
        if (!can_be_gateway(c, f)) continue;
        if (!best || before(c, *best)) best = c;
    }
    return best;
}

std::vector<GatewayCandidate> endpoints_in(const std::vector<const Network*>& networks,
                                           NetnsId ns) {
    std::vector<GatewayCandidate> out;
    for (const Network* n : networks) {
        for (const auto& [id, ep] : n->endpoints)
            if (ep.netns_id == ns) out.push_back({n, &ep});
    }
    return out;
}

std::map<std::string, GatewayRole> gateway_roles(const std::vector<Network>& networks) {
    std::map<NetnsId, std::vector<GatewayCandidate>> by_ns;
    for (const auto& n : networks) {
        for (const auto& [id, ep] : n.endpoints) by_ns[ep.netns_id].push_back({&n, &ep});
    }
    std::map<std::string, GatewayRole> roles;
    for (const auto& [ns, cands] : by_ns) {
        for (const auto& c : cands) roles[c.ep->id];
        if (auto w = elect_gateway(cands, IpFamily::V4)) roles[w->ep->id].v4 = true;
        if (auto w = elect_gateway(cands, IpFamily::V6)) roles[w->ep->id].v6 = true;
    }
    return roles;
}

}  // namespace cnetd::core
