// Pure network planning (see network_spec.hpp): no kernel, no files, no clock.
#include "core/network_spec.hpp"

#include "core/driver.hpp"
#include "core/engine_detail.hpp"
#include "core/ula.hpp"

namespace cnetd::core {

namespace {

constexpr int kMinPrefix = 8;    // a /8 is 16M addresses: the IPAM bitmap stays at 2 MiB
constexpr int kMaxPrefix = 30;   // gateway + at least one container
constexpr int kMinPrefix6 = 48;  // Docker's ULA /48 is the widest v6 subnet we hand addresses in
constexpr int kMaxPrefix6 = 124;

template <class Cidr>
Result<Cidr> parse_subnet(std::string_view field, const std::string& text, int min, int max) {
    auto r = Cidr::parse_network(text);
    if (!r) return std::move(r).error().wrap(std::string(field));
    if (r->prefix() < min || r->prefix() > max) {
        return Error::invalid(fmt::format("{}: \"{}\": prefix length must be between {} and {}",
                                          field, text, min, max));
    }
    return *r;
}

template <class Addr>
Result<std::optional<Addr>> parse_optional(std::string_view field, const std::string& text) {
    if (text.empty()) return std::optional<Addr>();
    auto a = Addr::parse(text);
    if (!a) return std::move(a).error().wrap(std::string(field));
    return std::optional<Addr>(*a);
}

Result<void> parse_common(const CreateNetworkRequest& req, const PlanInputs& in, Network& n) {
    CNETD_TRY(detail::validate_name("name", req.name));
    for (const Network* o : in.existing) {
        if (o->name == req.name) {
            return Error::conflict(fmt::format("network with name {} already exists", req.name));
        }
    }
    for (const auto& [k, v] : req.labels) {
        if (k.empty()) return Error::invalid(fmt::format("label: empty key (value \"{}\")", v));
    }
    for (const auto& [name, text] : req.aux_addresses) {
        if (name.empty())
            return Error::invalid(fmt::format("aux-address: empty name for {}", text));
        if (!Ipv4::parse(text).ok() && !Ipv6::parse(text).ok()) {
            return Error::invalid(
                fmt::format("aux-address: {}={}: \"{}\" is not an IP address", name, text, text));
        }
    }
    n.name = req.name;
    n.driver = req.driver;
    n.internal = req.internal;
    n.labels = req.labels;
    n.aux_addresses = req.aux_addresses;
    return ok();
}

Result<void> parse_addressing4(const CreateNetworkRequest& req, NetworkSpec& s) {
    if (!req.subnet.empty()) {
        CNETD_TRY_ASSIGN(s.subnet,
                         parse_subnet<Ipv4Cidr>("subnet", req.subnet, kMinPrefix, kMaxPrefix));
    } else if (!req.gateway.empty() || !req.ip_range.empty()) {
        return Error::invalid(
            fmt::format("{}: given without subnet", req.gateway.empty() ? "ip-range" : "gateway"));
    }
    CNETD_TRY_ASSIGN(s.gateway, parse_optional<Ipv4>("gateway", req.gateway));
    if (!req.ip_range.empty()) {
        auto r = Ipv4Cidr::parse_network(req.ip_range);
        if (!r) return std::move(r).error().wrap("ip-range");
        s.ip_range = *r;
    }
    return ok();
}

Result<void> parse_addressing6(const CreateNetworkRequest& req, NetworkSpec& s) {
    s.ipv6 = req.ipv6 || !req.subnet6.empty();
    if (!s.ipv6 && (!req.gateway6.empty() || !req.ip_range6.empty())) {
        return Error::invalid(fmt::format("{}: IPv6 settings need --ipv6 and an IPv6 subnet",
                                          req.gateway6.empty() ? "ip-range" : "gateway"));
    }
    if (!req.subnet6.empty()) {
        CNETD_TRY_ASSIGN(s.subnet6,
                         parse_subnet<Ipv6Cidr>("subnet", req.subnet6, kMinPrefix6, kMaxPrefix6));
    }
    CNETD_TRY_ASSIGN(s.gateway6, parse_optional<Ipv6>("gateway", req.gateway6));
    if (!req.ip_range6.empty()) {
        auto r = Ipv6Cidr::parse_network(req.ip_range6);
        if (!r) return std::move(r).error().wrap("ip-range");
        s.ip_range6 = *r;
    }
    return ok();
}

// IPv4: the given subnet, else the first free one of the address pools; gateway and range in it.
Result<void> plan_addressing4(const NetworkSpec& s, const PlanInputs& in, Network& n) {
    const CreateNetworkRequest& req = s.req;
    if (s.subnet) {
        n.subnet = *s.subnet;
    } else {
        PoolContext ctx = in.pool_context;
        for (const Network* o : in.existing) ctx.used.push_back(o->subnet);
        CNETD_TRY_ASSIGN(n.subnet, choose_subnet(in.pools, ctx));
    }
    const Ipv4Cidr& subnet = n.subnet;
    n.gateway = Ipv4(subnet.network().value() + 1);
    if (s.gateway) {
        const Ipv4 g = *s.gateway;
        if (!subnet.contains(g)) {
            return Error::invalid(
                fmt::format("gateway: {} is not in subnet {}", req.gateway, subnet.str()));
        }
        if (g == subnet.network() || g == subnet.broadcast()) {
            return Error::invalid(fmt::format("gateway: {} is the {} address of {}", req.gateway,
                                              g == subnet.network() ? "network" : "broadcast",
                                              subnet.str()));
        }
        n.gateway = g;
    }
    if (s.ip_range &&
        (s.ip_range->prefix() < subnet.prefix() || !subnet.contains(s.ip_range->network()))) {
        return Error::invalid(
            fmt::format("ip-range: {} is not inside subnet {}", req.ip_range, subnet.str()));
    }
    n.ip_range = s.ip_range;
    return ok();
}

// IPv6 (dual stack): the given /N, else the next free /64 of the v6 pools or the daemon's ULA.
Result<void> plan_addressing6(const NetworkSpec& s, const PlanInputs& in, Network& n) {
    if (!s.ipv6) return ok();
    const CreateNetworkRequest& req = s.req;
    if (s.subnet6) {
        n.subnet6 = s.subnet6;
    } else {
        std::vector<Ipv6Cidr> used6;
        for (const Network* o : in.existing)
            if (o->subnet6) used6.push_back(*o->subnet6);
        if (!in.pools6.empty()) {
            CNETD_TRY_ASSIGN(n.subnet6, choose_subnet6(in.pools6, used6).context("ipv6"));
        } else {
            if (!in.ula48) return Error::invalid("ipv6: no IPv6 subnet given and no ULA prefix");
            CNETD_TRY_ASSIGN(n.subnet6, choose_subnet6(*in.ula48, used6).context("ipv6"));
        }
    }
    const Ipv6Cidr& subnet6 = *n.subnet6;
    n.gateway6 = subnet6.at(1);
    if (s.gateway6) {
        if (!subnet6.contains(*s.gateway6) || *s.gateway6 == subnet6.network()) {
            return Error::invalid(fmt::format("gateway: {} is not a host address of subnet {}",
                                              req.gateway6, subnet6.str()));
        }
        n.gateway6 = *s.gateway6;
    }
    if (s.ip_range6 &&
        (s.ip_range6->prefix() < subnet6.prefix() || !subnet6.contains(s.ip_range6->network()))) {
        return Error::invalid(
            fmt::format("ip-range: {} is not inside subnet {}", req.ip_range6, subnet6.str()));
    }
    n.ip_range6 = s.ip_range6;
    return ok();
}

// Auxiliary addresses: inside a subnet of the network, not the gateway, never handed out.
Result<void> check_aux_addresses(const Network& n) {
    for (const auto& [name, text] : n.aux_addresses) {
        if (auto a4 = Ipv4::parse(text); a4.ok()) {
            if (!n.subnet.contains(*a4) || *a4 == n.gateway || *a4 == n.subnet.network() ||
                *a4 == n.subnet.broadcast()) {
                return Error::invalid(
                    fmt::format("aux-address: {}={} is not a free host address of subnet {}", name,
                                text, n.subnet.str()));
            }
        } else if (auto a6 = Ipv6::parse(text); a6.ok()) {
            if (!n.subnet6 || !n.subnet6->contains(*a6) || *a6 == n.gateway6 ||
                *a6 == n.subnet6->network()) {
                return Error::invalid(fmt::format(
                    "aux-address: {}={} is not a free host address of the network's IPv6 subnet{}",
                    name, text,
                    n.subnet6 ? fmt::format(" {}", n.subnet6->str()) : " (IPv6 is not enabled)"));
            }
        }
    }
    return ok();
}

Result<void> check_overlaps(const Network& n, const std::vector<const Network*>& existing) {
    for (const Network* o : existing) {
        if (o->subnet.overlaps(n.subnet)) {
            return Error::conflict(fmt::format("subnet: {} overlaps network {} ({})",
                                               n.subnet.str(), o->name, o->subnet.str()));
        }
        if (n.subnet6 && o->subnet6 && o->subnet6->overlaps(*n.subnet6)) {
            return Error::conflict(fmt::format("subnet: {} overlaps network {} ({})",
                                               n.subnet6->str(), o->name, o->subnet6->str()));
        }
    }
    return ok();
}

}  // namespace

std::optional<bool> parse_bool(const std::string& s) {
    if (s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True") return true;
    if (s == "0" || s == "f" || s == "F" || s == "false" || s == "FALSE" || s == "False")
        return false;
    return std::nullopt;
}

Result<NetworkSpec> parse_network_request(const CreateNetworkRequest& req, const std::string& id,
                                          const NetworkDriver& driver, const PlanInputs& in) {
    NetworkSpec s;
    s.req = req;
    s.net.id = id;
    CNETD_TRY(parse_common(req, in, s.net));
    // The resolver is the engine's (every driver's endpoints get it), so its option never
    // reaches the driver, which refuses keys it does not know.
    auto driver_opts = req.options;
    std::optional<std::string> dns_opt;
    if (auto it = driver_opts.find(kOptEnableDns); it != driver_opts.end()) {
        dns_opt = it->second;
        driver_opts.erase(it);
    }
    CNETD_TRY(driver.parse_options(driver_opts, in, s.net));
    if (dns_opt) {
        auto b = parse_bool(*dns_opt);
        if (!b) {
            return Error::invalid(fmt::format("option {}: \"{}\" is not a boolean (true or false)",
                                              kOptEnableDns, *dns_opt));
        }
        s.net.dns = *b;
        s.net.options[kOptEnableDns] = *dns_opt;  // inspect shows it as given
    }
    CNETD_TRY(parse_addressing4(req, s));
    CNETD_TRY(parse_addressing6(req, s));
    return s;
}

Result<Network> plan_network(NetworkSpec spec, const PlanInputs& in, const NetworkDriver& driver) {
    Network& n = spec.net;
    CNETD_TRY(plan_addressing4(spec, in, n));
    CNETD_TRY(plan_addressing6(spec, in, n));
    CNETD_TRY(check_aux_addresses(n));
    CNETD_TRY(check_overlaps(n, in.existing));
    CNETD_TRY(driver.check_against(n, in.existing));
    return std::move(n);
}

// ---------------------------------------------------------------------------------------------
// the default network

namespace {

Result<void> check_bip(const DefaultNetworkSpec& spec) {
    const Ipv4Cidr subnet = spec.bip.masked();
    if (spec.bip.prefix() < kMinPrefix || spec.bip.prefix() > kMaxPrefix) {
        return Error::invalid(fmt::format("bip: \"{}\": prefix length must be between {} and {}",
                                          spec.bip.str(), kMinPrefix, kMaxPrefix));
    }
    if (spec.bip.addr() == subnet.network() || spec.bip.addr() == subnet.broadcast()) {
        return Error::invalid(fmt::format(
            "bip: \"{}\" is the network or broadcast address; give the gateway address, e.g. {}/{}",
            spec.bip.str(), Ipv4(subnet.network().value() + 1).str(), subnet.prefix()));
    }
    if (spec.fixed_cidr && !(spec.fixed_cidr->prefix() >= subnet.prefix() &&
                             subnet.contains(spec.fixed_cidr->network()))) {
        return Error::invalid(fmt::format("fixed-cidr: \"{}\" is not inside bip's subnet {}",
                                          spec.fixed_cidr->str(), subnet.str()));
    }
    return ok();
}

Result<std::optional<Ipv6Cidr>> default_subnet6(const DefaultNetworkSpec& spec,
                                                const Network* current,
                                                const std::vector<const Network*>& others,
                                                const PlanInputs& in) {
    if (spec.fixed_cidr_v6) {
        if (spec.fixed_cidr_v6->prefix() < kMinPrefix6 ||
            spec.fixed_cidr_v6->prefix() > kMaxPrefix6) {
            return Error::invalid(
                fmt::format("fixed-cidr-v6: \"{}\": prefix length must be between {} and {}",
                            spec.fixed_cidr_v6->str(), kMinPrefix6, kMaxPrefix6));
        }
        return std::optional(spec.fixed_cidr_v6->masked());
    }
    if (!spec.ipv6) return std::optional<Ipv6Cidr>();
    if (current && current->subnet6) return current->subnet6;
    if (!in.ula48) return Error::invalid("ipv6: no fixed-cidr-v6 and no daemon ULA prefix");
    std::vector<Ipv6Cidr> used6;
    for (const Network* o : others)
        if (o->subnet6) used6.push_back(*o->subnet6);
    CNETD_TRY_ASSIGN(Ipv6Cidr s, choose_subnet6(*in.ula48, used6).context("ipv6"));
    return std::optional(s);
}

}  // namespace

Result<DefaultAddressing> plan_default_addressing(const DefaultNetworkSpec& spec,
                                                  const Network* current, const PlanInputs& in) {
    CNETD_TRY(check_bip(spec));
    DefaultAddressing a;
    a.subnet = spec.bip.masked();
    a.gateway = spec.bip.addr();
    std::vector<const Network*> others;
    for (const Network* o : in.existing)
        if (o != current) others.push_back(o);
    for (const Network* o : others) {
        if (o->subnet.overlaps(a.subnet)) {
            return Error::invalid(fmt::format("bip: {} overlaps network {} ({})", a.subnet.str(),
                                              o->name, o->subnet.str()));
        }
        if (o->bridge == spec.bridge) {
            return Error::invalid(
                fmt::format("bridge: \"{}\" is already used by network {}", spec.bridge, o->name));
        }
    }
    if (spec.fixed_cidr) a.ip_range = spec.fixed_cidr->masked();
    CNETD_TRY_ASSIGN(a.subnet6, default_subnet6(spec, current, others, in));
    if (!a.subnet6) return a;
    for (const Network* o : others) {
        if (o->subnet6 && o->subnet6->overlaps(*a.subnet6)) {
            return Error::invalid(fmt::format("fixed-cidr-v6: {} overlaps network {} ({})",
                                              a.subnet6->str(), o->name, o->subnet6->str()));
        }
    }
    a.gateway6 = a.subnet6->at(1);
    return a;
}

}  // namespace cnetd::core
