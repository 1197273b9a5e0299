#include "core/attach_plan.hpp"

#include <algorithm>

#include "base/validate.hpp"
#include "core/engine_detail.hpp"

namespace cnetd::core {

namespace {

// req.ports and req.publish (Docker -p text), as one list of well-formed mappings.
Result<std::vector<PortRequest>> port_requests(const ConnectRequest& req) {
    // Structured ports (CNI portMappings) come unparsed: their ranges must make sense (the
    // parser guarantees that for -p specs).
    for (size_t i = 0; i < req.ports.size(); ++i) {
        const PortRequest& pr = req.ports[i];
        if (pr.container.first == 0 || pr.container.last < pr.container.first ||
            (pr.host.first != 0 && pr.host.last < pr.host.first) ||
            (pr.container.size() > 1 && pr.host.first != 0 &&
             pr.host.size() != pr.container.size())) {
            return Error::invalid(fmt::format("ports[{}]: invalid mapping {}-{} -> {}-{}", i,
                                              pr.host.first, pr.host.last, pr.container.first,
                                              pr.container.last));
        }
    }
    std::vector<PortRequest> out = req.ports;
    for (size_t i = 0; i < req.publish.size(); ++i) {
        auto parsed = parse_port_spec(req.publish[i]);
        if (!parsed) return std::move(parsed).error().wrap(fmt::format("publish[{}]", i));
        if (out.size() + parsed->size() > kMaxMappings) {
            return Error::invalid(
                fmt::format("publish[{}]: \"{}\": more than {} port mappings in one request", i,
                            req.publish[i], kMaxMappings));
        }
        out.insert(out.end(), parsed->begin(), parsed->end());
    }
    return out;
}

// One mapping against the network's families, with its host address decided.
Result<PortPlan> plan_port(const Network& net, PortRequest req) {
    if (req.ipv6 && !net.subnet6) {
        return Error::invalid(fmt::format(
            "publish: IPv6 host address [{}] needs a dual-stack network; {} is IPv4 only",
            req.host_ip6 ? req.host_ip6->str() : "::", net.name));
    }
    if (req.ipv6 && req.host_ip6 && req.host_ip6->is_loopback() && req.proto == Proto::Sctp) {
        // docs/firewall.md: IPv6 has no route_localnet, so [::1] is served by the daemon's
        // userland relay (daemon/relay.hpp), which speaks tcp and udp only.
        return Error::invalid(fmt::format(
            "publish: [::1]:{}->{}/sctp: proto sctp cannot be published on [::1] (IPv6 "
            "loopback is relayed in userland, for tcp and udp only); publish sctp on [::], a "
            "host IPv6 address or 127.0.0.1",
            req.host.first == 0 ? std::string() : std::to_string(req.host.first),
            req.container.first));
    }
    // No address given: the network's host_binding_ipv4 / config `ip`; without one every IPv4
    // address and, on dual-stack networks, every IPv6 address with the same port.
    bool dual = false;
    if (!req.ipv6 && !req.host_ip) {
        req.host_ip = net.host_binding;
        dual = !net.host_binding && net.subnet6.has_value();
    }
    return PortPlan{std::move(req), dual};
}

Result<std::vector<PortPlan>> plan_ports(const Network& net, const ConnectRequest& req) {
    CNETD_TRY_ASSIGN(auto reqs, port_requests(req));
    if (!reqs.empty() && net.internal) {
        return Error::invalid(fmt::format(
            "publish: network {} is internal: nothing outside it can reach published ports",
            net.name));
    }
    std::vector<PortPlan> out;
    out.reserve(reqs.size());
    for (auto& r : reqs) {
        CNETD_TRY_ASSIGN(PortPlan p, plan_port(net, std::move(r)));
        out.push_back(std::move(p));
    }
    return out;
}

// The static addresses and MAC of `req`, checked against the network's families.
Result<void> plan_addresses(const Network& net, const ConnectRequest& req, AttachPlan& p) {
    if (!req.ipv4.empty()) {
        auto a = Ipv4::parse(req.ipv4);
        if (!a) return std::move(a).error().wrap("ip");
        p.ipv4 = *a;
    }
    if (!req.ipv6.empty()) {
        auto a = Ipv6::parse(req.ipv6);
        if (!a) return std::move(a).error().wrap("ip6");
        if (!net.subnet6) {
            return Error::invalid(
                fmt::format("ip6: {} given, but network {} is IPv4 only", req.ipv6, net.name));
        }
        p.ipv6 = *a;
    }
    if (!req.mac.empty()) {
        auto m = Mac::parse(req.mac);
        if (!m) return std::move(m).error().wrap("mac");
        if (m->is_multicast() || m->is_zero())
            return Error::invalid(fmt::format("mac: {} is not a unicast address", req.mac));
        p.mac = *m;
    }
    return ok();
}

bool same_name(std::string_view a, std::string_view b) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [&](char x, char y) { return lower(x) == lower(y); });
}

}  // namespace

Result<void> validate_dns_name(std::string_view field, const std::string& name) {
    auto refuse = [&](std::string_view why) {
        return Error::invalid(fmt::format("{}: \"{}\" is not a DNS name: {}", field, name, why));
    };
    if (name.empty()) return refuse("empty");
    if (name.size() > 255) return refuse("longer than 255 characters");
    size_t label = 0;
    for (size_t i = 0; i <= name.size(); ++i) {
        if (i == name.size() || name[i] == '.') {
            if (label == 0) return refuse("an empty label");
            if (label > 63) return refuse("a label longer than 63 characters");
            label = 0;
            continue;
        }
        const char c = name[i];
        const bool good = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!good) return refuse(fmt::format("'{}' (allowed: letters, digits, '-', '_', '.')", c));
        ++label;
    }
    return ok();
}

Result<std::vector<std::string>> plan_aliases(const std::vector<std::string>& aliases) {
    std::vector<std::string> out;
    for (size_t i = 0; i < aliases.size(); ++i) {
        CNETD_TRY(validate_dns_name(fmt::format("Aliases[{}]", i), aliases[i]));
        // Names are case-insensitive: "DB" after "db" adds nothing.
        auto same = [&](const std::string& o) { return same_name(o, aliases[i]); };
        if (std::none_of(out.begin(), out.end(), same)) out.push_back(aliases[i]);
    }
    return out;
}

Result<std::string> resolve_netns_target(const std::string& netns_dir, const std::string& target) {
    if (target.empty()) return Error::invalid("target: must not be empty");
    if (target[0] == '/') return target;
    if (target.find('/') != std::string::npos) {
        return Error::invalid(
            fmt::format("target: \"{}\" is neither a netns name nor an absolute path", target));
    }
    CNETD_TRY(validate_name("target", target));
    return netns_dir + "/" + target;
}

Result<AttachPlan> plan_attach(const Network& net, const ConnectRequest& req,
                               const std::string& netns_dir) {
    AttachPlan p;
    CNETD_TRY_ASSIGN(p.path, resolve_netns_target(netns_dir, req.target));
    CNETD_TRY(plan_addresses(net, req, p));
    if (!req.ifname.empty()) {
        if (auto v = validate_ifname(req.ifname); !v) return std::move(v).error().wrap("ifname");
    }
    if (!req.container_id.empty()) CNETD_TRY(validate_container_id(req.container_id));
    CNETD_TRY_ASSIGN(p.ports, plan_ports(net, req));
    CNETD_TRY_ASSIGN(p.aliases, plan_aliases(req.aliases));
    p.name = req.name;
    if (p.name.empty()) {
        const std::string dir = netns_dir + "/";
        p.name = p.path.rfind(dir, 0) == 0 ? p.path.substr(dir.size()) : p.path;
    } else {
        CNETD_TRY(validate_name("name", p.name));
    }
    return p;
}

Result<void> check_namespace(const Network& net, const NetnsId& id,
                             const std::vector<NetnsId>& host_ids, const AttachPlan& p) {
    for (const NetnsId& host : host_ids) {
        if (id == host) {
            return Error::invalid(fmt::format(
                "target: {} is the host's own network namespace (the daemon's or PID 1's); cnetd "
                "connects containers only: connecting the host would replace its default route",
                p.path));
        }
    }
    for (const auto& [eid, ep] : net.endpoints) {
        if (ep.netns_id == id) {
            return Error::conflict(
                fmt::format("namespace {} is already connected as endpoint {}", p.path, ep.name));
        }
        if (ep.name == p.name)
            return Error::conflict(
                fmt::format("name: an endpoint named {} already exists", p.name));
    }
    return ok();
}

}  // namespace cnetd::core
