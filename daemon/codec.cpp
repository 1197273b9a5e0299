#include "daemon/codec.hpp"

#include <cstdint>

#include <algorithm>

#include "api/codec.hpp"
#include "core/ports.hpp"

namespace cnetd::daemon {
namespace {

std::string range_text(const core::PortRange& r) {
    return r.first == r.last ? std::to_string(r.first) : fmt::format("{}-{}", r.first, r.last);
}

const char* mode_text(firewall::GatewayMode m) {
    switch (m) {
        case firewall::GatewayMode::Nat:
            return "nat";
        case firewall::GatewayMode::NatUnprotected:
            return "nat-unprotected";
        case firewall::GatewayMode::Routed:
            return "routed";
        case firewall::GatewayMode::Isolated:
            return "isolated";
    }
    return "nat";
}

// A PortBindings element, already checked by api::parse_connect (so nothing here can fail).
core::PortRequest to_core(const api::PortBinding& b) {
    core::PortRequest req;
    if (auto p = core::parse_proto(b.proto.empty() ? "tcp" : b.proto)) req.proto = *p;
    // "" leaves the address to the network's/daemon's default; "0.0.0.0" asks for every IPv4
    // address, "::" for every IPv6 address.
    if (b.host_ip.find(':') != std::string::npos) {
        req.ipv6 = true;
        if (auto ip6 = Ipv6::parse(b.host_ip); ip6 && !ip6->is_unspecified()) req.host_ip6 = *ip6;
    } else if (auto ip = Ipv4::parse(b.host_ip); !b.host_ip.empty() && ip) {
        req.host_ip = *ip;
    }
    auto range = [](const std::string& text) {
        auto r = api::parse_port_range("", text, true);
        return r ? core::PortRange{r->first, r->last} : core::PortRange{};
    };
    req.host = range(b.host_port);
    req.container = range(b.container_port);
    return req;
}

}  // namespace

api::Endpoint to_api(const core::Endpoint& e, const std::string& network,
                     const core::GatewayRole* role) {
    api::Endpoint out;
    out.name = e.name;
    out.endpoint_id = e.id;
    out.mac_address = e.mac.str();
    out.ipv4_address = e.address.str();
    out.ipv6_address = e.address6 ? e.address6->str() : "";
    out.sandbox_key = e.netns_path;
    out.interface = e.ifname;
    out.host_interface = e.host_ifname;
    out.gw_priority = e.gw_priority;
    if (role) {
        out.default_route.emplace();
        if (role->v4) out.default_route->push_back("IPv4");
        if (role->v6) out.default_route->push_back("IPv6");
    }
    for (const auto& b : e.ports) {
        // After allocation host.size() == container.size(): container port i ↔ host port i.
        for (uint32_t i = 0; i < b.container.size(); ++i) {
            const std::string key =
                fmt::format("{}/{}", b.container.first + i, core::to_string(b.proto));
            out.ports[key].push_back({b.host_ip_text(), std::to_string(b.host.first + i)});
        }
    }
    out.network = network;
    out.aliases = e.aliases;
    return out;
}

void add_dns(api::Endpoint& out, const EndpointDns& dns) {
    out.resolv_conf = dns.resolv_conf;
    if (dns.resolv_conf.empty() && dns.nameservers.empty()) return;
    out.dns = api::EndpointDns{dns.nameservers, dns.search, dns.options};
}

std::vector<api::PortRow> port_rows(const std::vector<core::Network>& networks) {
    std::vector<api::PortRow> out;
    for (const auto& n : networks) {
        std::vector<const core::Endpoint*> eps;
        for (const auto& [id, ep] : n.endpoints) eps.push_back(&ep);
        std::sort(eps.begin(), eps.end(),
                  [](const auto* a, const auto* b) { return a->name < b->name; });
        for (const auto* ep : eps) {
            for (const auto& b : ep->ports) {
                out.push_back({n.name, ep->name, ep->id, ep->address.addr().str(),
                               core::to_string(b.proto), b.host_ip_text(), range_text(b.host),
                               range_text(b.container)});
            }
        }
    }
    return out;
}

namespace {
api::OverlayInfo overlay_info(const core::Network& n) {
    const core::Overlay& o = *n.overlay;
    api::OverlayInfo out{
        o.subnet.str(), o.block_prefix, n.subnet.str(), o.vni, o.vxlan, o.node, {}};
    for (const auto& p : o.peers)
        out.peers.push_back({p.node, p.underlay.str(), p.block.str(), p.mac.str()});
    return out;
}
}  // namespace

api::Network to_api(const core::Network& n, const std::map<std::string, core::GatewayRole>* roles,
                    const EndpointDnsSource* dns) {
    api::Network out;
    out.name = n.name;
    out.id = n.id;
    out.driver = n.driver;  // "bridge" today; the network's NetworkDriver (core/driver.hpp)
    out.created = n.created;
    out.enable_ipv6 = n.subnet6.has_value();
    out.internal = n.internal;
    out.enable_dns = n.dns;
    // An overlay network's subnet is the cluster's; this node allocates in its block of it.
    const Ipv4Cidr subnet = n.overlay ? n.overlay->subnet : n.subnet;
    out.ipam.push_back({subnet.str(), n.gateway.str(), n.ip_range ? n.ip_range->str() : "", {}});
    out.scope = n.scope();
    if (n.overlay) out.overlay = overlay_info(n);
    if (n.subnet6)
        out.ipam.push_back(
            {n.subnet6->str(), n.gateway6.str(), n.ip_range6 ? n.ip_range6->str() : "", {}});
    // Docker lists auxiliary addresses with the config of their family.
    for (const auto& [name, ip] : n.aux_addresses) {
        const bool v6 = ip.find(':') != std::string::npos && out.ipam.size() > 1;
        out.ipam[v6 ? 1 : 0].aux_addresses[name] = ip;
    }
    out.options = n.options;
    // Inspect always names the bridge, as Docker does, whatever the engine stored.
    out.options[core::kOptBridgeName] = n.bridge;
    if (n.is_default) out.options["com.docker.network.bridge.default_bridge"] = "true";
    out.options["com.docker.network.driver.mtu"] = std::to_string(n.mtu);
    out.options["com.docker.network.bridge.gateway_mode_ipv4"] = mode_text(n.mode4);
    if (n.subnet6) out.options["com.docker.network.bridge.gateway_mode_ipv6"] = mode_text(n.mode6);
    for (const auto& [id, ep] : n.endpoints) {
        const core::GatewayRole* role = nullptr;
        if (roles) {
            if (auto it = roles->find(id); it != roles->end()) role = &it->second;
        }
        api::Endpoint& e = out.containers[id] = to_api(ep, {}, role);
        if (dns) add_dns(e, dns->endpoint_dns(n, ep));
    }
    out.labels = n.labels;
    return out;
}

api::DnsStatus to_api(const DnsStatus& s) {
    const DnsCounters& c = s.counters;
    return {s.upstreams,
            s.upstreams_file,
            s.sandboxes,
            s.names,
            s.in_flight,
            {c.queries_udp, c.queries_tcp, c.answered_local, c.forwarded, c.upstream_failures,
             c.servfail, c.refused, c.malformed, c.tcp_rejected}};
}

api::CniAttachment attachment_of(const core::Endpoint& ep, const std::vector<core::Network>& nets,
                                 const EndpointDnsSource* dns) {
    api::CniAttachment out;
    out.endpoint = to_api(ep);
    for (const auto& n : nets) {
        if (!n.endpoints.count(ep.id)) continue;
        out.network = n.name;
        out.bridge = n.bridge;
        out.subnet = n.subnet.str();
        out.gateway = n.gateway.str();
        out.internal = n.internal;
        out.mtu = n.mtu;
        if (dns) add_dns(out.endpoint, dns->endpoint_dns(n, ep));
    }
    return out;
}

core::CreateNetworkRequest to_core(const api::CreateNetworkRequest& r) {
    core::CreateNetworkRequest req;
    req.name = r.name;
    if (!r.driver.empty()) req.driver = r.driver;
    req.subnet = r.subnet;
    req.gateway = r.gateway;
    req.ip_range = r.ip_range;
    req.ipv6 = r.enable_ipv6;
    req.subnet6 = r.subnet6;
    req.gateway6 = r.gateway6;
    req.ip_range6 = r.ip_range6;
    req.aux_addresses = r.aux_addresses;
    req.labels = r.labels;
    req.options = r.options;
    req.internal = r.internal;
    return req;
}

core::ConnectRequest to_core(const api::ConnectRequest& r, const std::string& network) {
    core::ConnectRequest req;
    req.network = network;
    req.target = r.target;
    req.name = r.name;
    req.ipv4 = r.ipv4;
    req.ipv6 = r.ipv6;
    req.mac = r.mac;
    req.publish = r.publish;
    req.gw_priority = r.gw_priority.value_or(0);
    for (const auto& b : r.port_bindings) req.ports.push_back(to_core(b));
    req.aliases = r.aliases;
    return req;
}

CniAdd to_core(const api::CniAddRequest& r) {
    CniAdd out;
    const api::CniNetwork& n = r.network;
    out.net.name = n.name;
    out.net.subnet = n.subnet;
    out.net.gateway = n.gateway;
    out.net.ip_range = n.ip_range;
    if (!n.bridge.empty()) out.net.options[core::kOptBridgeName] = n.bridge;
    if (n.mtu) out.net.options["com.docker.network.driver.mtu"] = std::to_string(n.mtu);
    out.net.options[core::kOptEnableIcc] = n.icc ? "true" : "false";
    out.net.options[core::kOptEnableMasquerade] = n.ip_masq ? "true" : "false";
    out.att.network = n.name;
    out.att.container_id = r.container_id;
    out.att.ifname = r.ifname;
    out.att.target = r.netns;
    out.att.ipv4 = r.ipv4_address;
    out.att.mac = r.mac_address;
    for (const auto& m : r.port_mappings) {
        core::PortRequest p;
        if (auto pr = core::parse_proto(m.protocol.empty() ? "tcp" : m.protocol)) p.proto = *pr;
        p.host = {static_cast<uint16_t>(m.host_port), static_cast<uint16_t>(m.host_port)};
        p.container = {static_cast<uint16_t>(m.container_port),
                       static_cast<uint16_t>(m.container_port)};
        // CNI: no hostIP means every host address (checked by api::parse_cni_add).
        auto a = Ipv4::parse(m.host_ip);
        p.host_ip = m.host_ip.empty() || !a ? Ipv4(0) : *a;
        out.att.ports.push_back(p);
    }
    return out;
}

json network_to_json(const core::Network& n, const std::map<std::string, core::GatewayRole>* roles,
                     const EndpointDnsSource* dns) {
    return api::to_json(to_api(n, roles, dns));
}

json endpoint_to_json(const core::Endpoint& e, const std::string& network,
                      const core::GatewayRole* role) {
    return api::to_json(to_api(e, network, role));
}

json connected_to_json(const core::Endpoint& e, const core::Network& net,
                       const EndpointDnsSource* dns) {
    api::Endpoint out = to_api(e, net.name);
    if (dns) add_dns(out, dns->endpoint_dns(net, e));
    return api::to_json(out);
}

json ports_to_json(const std::vector<core::Network>& networks) {
    return api::to_json(port_rows(networks));
}

Result<json> parse_object(std::string_view body) {
    return api::parse_object(body);
}

Result<core::CreateNetworkRequest> parse_create_network(std::string_view body) {
    CNETD_TRY_ASSIGN(api::CreateNetworkRequest r, api::parse_create_network(body));
    return to_core(r);
}

Result<core::ConnectRequest> parse_connect(std::string_view body, const std::string& network) {
    CNETD_TRY_ASSIGN(api::ConnectRequest r, api::parse_connect(body));
    return to_core(r, network);
}

Result<std::string> parse_disconnect(std::string_view body) {
    CNETD_TRY_ASSIGN(api::DisconnectRequest r, api::parse_disconnect(body));
    return r.target;
}

Result<std::string> parse_create_netns(std::string_view body) {
    CNETD_TRY_ASSIGN(api::CreateNetnsRequest r, api::parse_create_netns(body));
    return r.name;
}

}  // namespace cnetd::daemon
