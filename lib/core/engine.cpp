#include "core/engine.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <set>

#include "base/failpoint.hpp"
#include "base/log.hpp"
#include "base/validate.hpp"
#include "core/attach_plan.hpp"
#include "core/engine_detail.hpp"
#include "core/ula.hpp"

namespace cnetd::core {

namespace {

constexpr int kMinPrefix = 8;   // a /8 is 16M addresses: the IPAM bitmap stays at 2 MiB
constexpr int kMaxPrefix = 30;  // gateway + at least one container
constexpr int kMinPrefix6 = 48;  // Docker's ULA /48 is the widest v6 subnet we hand addresses in
constexpr int kMaxPrefix6 = 124;

constexpr const char* kOptMtu = "com.docker.network.driver.mtu";
constexpr const char* kOptIfacePrefix = "com.docker.network.container_iface_prefix";
constexpr const char* kOptGatewayMode4 = "com.docker.network.bridge.gateway_mode_ipv4";
constexpr const char* kOptGatewayMode6 = "com.docker.network.bridge.gateway_mode_ipv6";
constexpr const char* kOptInhibitIpv4 = "com.docker.network.bridge.inhibit_ipv4";

Result<firewall::GatewayMode> parse_gateway_mode(const std::string& key, const std::string& v) {
    if (v == "nat") return firewall::GatewayMode::Nat;
    if (v == "nat-unprotected") return firewall::GatewayMode::NatUnprotected;
    if (v == "routed") return firewall::GatewayMode::Routed;
    if (v == "isolated") return firewall::GatewayMode::Isolated;
    return Error::invalid(fmt::format(
        "option {}: \"{}\" is not a gateway mode (nat, nat-unprotected, routed, isolated)", key,
        v));
}

// Nameserver lines of resolv.conf that are IPv4 addresses.
std::vector<Ipv4> nameservers_of(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "re");
    if (!f) return {};
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < (1u << 20))
        text.append(buf, n);
    std::fclose(f);
    return read_nameservers(text);
}

std::string now_rfc3339() {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// Go's strconv.ParseBool, which Docker uses for driver options.
std::optional<bool> parse_bool(const std::string& s) {
    if (s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True") return true;
    if (s == "0" || s == "f" || s == "F" || s == "false" || s == "FALSE" || s == "False")
        return false;
    return std::nullopt;
}

const char* bool_str(bool b) {
    return b ? "true" : "false";
}

}  // namespace

namespace detail {

Result<void> validate_name(std::string_view field, const std::string& name) {
    if (name.empty()) return Error::invalid(fmt::format("{}: must not be empty", field));
    if (name.size() > 128) {
        return Error::invalid(fmt::format("{}: \"{}\" is longer than 128 characters", field, name));
    }
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    bool good = alnum(name[0]);
    for (char c : name) good = good && (alnum(c) || c == '_' || c == '.' || c == '-');
    if (!good) {
        return Error::invalid(fmt::format(
            "{}: \"{}\" is invalid (allowed: [a-zA-Z0-9][a-zA-Z0-9_.-]*)", field, name));
    }
    return ok();
}

int proto_number(Proto p) {
    switch (p) {
        case Proto::Tcp:
            return 6;
        case Proto::Udp:
            return 17;
        case Proto::Sctp:
            return 132;
    }
    return 6;
}


}  // namespace detail

Engine::Engine(Kernel& kernel, firewall::Backend& fw, StateStore& store, EngineOptions opts)
    : kernel_(kernel), fw_(fw), store_(store), opts_(std::move(opts)), publisher_(kernel, fw) {}

firewall::NetworkRules Engine::rules_of(const Network& n) {
    firewall::NetworkRules r;
    r.id = n.id;
    r.bridge = n.bridge;
    r.subnet = n.subnet;
    r.masquerade = n.masquerade && !n.internal;
    r.snat_source = n.host_ipv4;
    r.icc = n.icc;
    r.internal = n.internal;
    r.subnet6 = n.subnet6;
    r.mode4 = n.mode4;
    r.mode6 = n.mode6;
    return r;
}

std::vector<Network> Engine::networks() const {
    std::vector<Network> out;
    out.reserve(nets_.size());
    for (const auto& [id, n] : nets_) out.push_back(n.net);
    std::sort(out.begin(), out.end(),
              [](const Network& a, const Network& b) { return a.name < b.name; });
    return out;
}

Result<const Network*> Engine::find_network(const std::string& key) const {
    const Network* prefix_match = nullptr;
    int prefix_matches = 0;
    for (const auto& [id, n] : nets_) {
        if (n.net.name == key || id == key) return &n.net;
        if (!key.empty() && id.compare(0, key.size(), key) == 0) {
            prefix_match = &n.net;
            ++prefix_matches;
        }
    }
    if (prefix_matches == 1) return prefix_match;
    if (prefix_matches > 1) {
        return Error::invalid(fmt::format("network id prefix \"{}\" is ambiguous", key));
    }
    return Error::not_found(fmt::format("network {} not found", key));
}

Result<Engine::Net*> Engine::lookup(const std::string& key) {
    CNETD_TRY_ASSIGN(const Network* n, find_network(key));
    return &nets_.at(n->id);
}

Result<void> Engine::persist() {
    return store_.save(networks());
}

Result<void> Engine::sync_firewall() {
    std::vector<firewall::NetworkRules> rules;
    std::vector<firewall::PortForward> forwards;
    for (const auto& [id, n] : nets_) {
        rules.push_back(rules_of(n.net));
        for (const auto& [eid, ep] : n.net.endpoints) {
            auto f = Publisher::forwards_of(n.net, ep);
            forwards.insert(forwards.end(), f.begin(), f.end());
        }
    }
    return fw_.sync(rules, forwards);
}

Result<Engine::Net> Engine::make_net(Network n) {
    Ipam ipam(n.subnet, n.gateway, n.ip_range);
    std::optional<Ipam6> ipam6;
    if (n.subnet6) ipam6.emplace(*n.subnet6, n.gateway6, n.ip_range6);
    const std::string frame = fmt::format("network {}", n.name);
    for (const auto& [name, text] : n.aux_addresses) {
        if (auto a4 = Ipv4::parse(text); a4.ok()) {
            (void)ipam.allocate(*a4);
        } else if (auto a6 = Ipv6::parse(text); a6.ok() && ipam6) {
            (void)ipam6->allocate(*a6);
        }
    }
    for (const auto& [eid, ep] : n.endpoints) {
        if (auto r = ipam.allocate(ep.address.addr()); !r.ok()) {
            return Error::internal(
                fmt::format("{} endpoint {}: {}", frame, ep.name, r.error().message()));
        }
        if (ep.address6) {
            if (!ipam6) {
                return Error::internal(
                    fmt::format("{} endpoint {}: IPv6 address {} on an IPv4-only "
                                "network",
                                frame, ep.name, ep.address6->str()));
            }
            if (auto r = ipam6->allocate(ep.address6->addr()); !r.ok()) {
                return Error::internal(
                    fmt::format("{} endpoint {}: {}", frame, ep.name, r.error().message()));
            }
        }
    }
    return Net{std::move(n), std::move(ipam), std::move(ipam6)};
}

unsigned Engine::default_mtu() {
    if (opts_.mtu != 0) return opts_.mtu;
    auto m = kernel_.default_route_mtu();
    if (m.ok() && m->has_value() && **m >= 68) return **m;
    if (!m.ok())
        log::warn("mtu: cannot read the default route's MTU, using 1500: {}", m.error().message());
    return 1500;
}

Result<void> Engine::enable_ip6_forwarding() {
    if (!ip_forward_) return ok();
    return kernel_.write_sysctl("net/ipv6/conf/all/forwarding", "1")
        .context("enable IPv6 forwarding");
}

// ---------------------------------------------------------------------------------------------
// start-up

Result<void> Engine::start(const std::optional<DefaultNetworkSpec>& spec, bool ip_forward) {
    ip_forward_ = ip_forward;
    if (ip_forward) {
        CNETD_TRY(kernel_.write_sysctl("net/ipv4/ip_forward", "1").context("enable ip_forward"));
    }
    CNETD_TRY_ASSIGN(std::vector<Network> saved, store_.load().context("load state"));
    publisher_.load_port_range();
    for (auto& n : saved) {
        auto made = make_net(std::move(n));
        if (!made.ok()) return std::move(made).error().wrap("load state");
        Net net = std::move(made).value();
        for (const auto& [eid, ep] : net.net.endpoints) {
            // Allocations and held host ports as they were (a port taken meanwhile: a warning).
            if (auto c = publisher_.restore(ep); !c.ok()) {
                return Error::internal(fmt::format("load state: network {} endpoint {}: {}",
                                                   net.net.name, ep.name, c.error().message()));
            }
        }
        std::string id = net.net.id;
        nets_.emplace(id, std::move(net));
    }

    // The default network follows the config; a change that would strand endpoints is refused.
    Net* def = nullptr;
    for (auto& [id, n] : nets_)
        if (n.net.is_default) def = &n;
    bool changed = false;
    if (def && !spec) {
        if (!def->net.endpoints.empty()) {
            return Error::invalid(fmt::format(
                "config bridge: none, but the default network has {} endpoint(s); disconnect them "
                "first",
                def->net.endpoints.size()));
        }
        if (!def->net.bridge_adopted) {
            CNETD_TRY(kernel_.delete_link(def->net.bridge).context("remove default bridge"));
        }
        nets_.erase(def->net.id);
        def = nullptr;
        changed = true;
    }
    if (spec) {
        Ipv4Cidr subnet = spec->bip.masked();
        if (spec->bip.prefix() < kMinPrefix || spec->bip.prefix() > kMaxPrefix) {
            return Error::invalid(
                fmt::format("bip: \"{}\": prefix length must be between {} and {}", spec->bip.str(),
                            kMinPrefix, kMaxPrefix));
        }
        if (spec->bip.addr() == subnet.network() || spec->bip.addr() == subnet.broadcast()) {
            return Error::invalid(fmt::format(
                "bip: \"{}\" is the network or broadcast address; give the gateway address, e.g. "
                "{}/{}",
                spec->bip.str(), Ipv4(subnet.network().value() + 1).str(), subnet.prefix()));
        }
        if (spec->fixed_cidr && !(spec->fixed_cidr->prefix() >= subnet.prefix() &&
                                  subnet.contains(spec->fixed_cidr->network()))) {
            return Error::invalid(fmt::format("fixed-cidr: \"{}\" is not inside bip's subnet {}",
                                              spec->fixed_cidr->str(), subnet.str()));
        }
        for (const auto& [id, n] : nets_) {
            if (&n == def) continue;
            if (n.net.subnet.overlaps(subnet)) {
                return Error::invalid(fmt::format("bip: {} overlaps network {} ({})", subnet.str(),
                                                  n.net.name, n.net.subnet.str()));
            }
            if (n.net.bridge == spec->bridge) {
                return Error::invalid(fmt::format("bridge: \"{}\" is already used by network {}",
                                                  spec->bridge, n.net.name));
            }
        }
        std::optional<Ipv4Cidr> range =
            spec->fixed_cidr ? std::optional(spec->fixed_cidr->masked()) : std::nullopt;
        const unsigned mtu = spec->mtu != 0 ? spec->mtu : default_mtu();
        std::optional<Ipv6Cidr> subnet6;
        if (spec->fixed_cidr_v6) {
            if (spec->fixed_cidr_v6->prefix() < kMinPrefix6 ||
                spec->fixed_cidr_v6->prefix() > kMaxPrefix6) {
                return Error::invalid(
                    fmt::format("fixed-cidr-v6: \"{}\": prefix length must be between {} and {}",
                                spec->fixed_cidr_v6->str(), kMinPrefix6, kMaxPrefix6));
            }
            subnet6 = spec->fixed_cidr_v6->masked();
        } else if (spec->ipv6) {
            if (def && def->net.subnet6) {
                subnet6 = def->net.subnet6;
            } else {
                if (!opts_.ula48)
                    return Error::invalid("ipv6: no fixed-cidr-v6 and no daemon ULA prefix");
                std::vector<Ipv6Cidr> used6;
                for (const auto& [id, n] : nets_)
                    if (n.net.subnet6 && &n != def) used6.push_back(*n.net.subnet6);
                CNETD_TRY_ASSIGN(subnet6, choose_subnet6(*opts_.ula48, used6).context("ipv6"));
            }
        }
        if (subnet6) {
            for (const auto& [id, n] : nets_) {
                if (&n != def && n.net.subnet6 && n.net.subnet6->overlaps(*subnet6)) {
                    return Error::invalid(fmt::format("fixed-cidr-v6: {} overlaps network {} ({})",
                                                      subnet6->str(), n.net.name,
                                                      n.net.subnet6->str()));
                }
            }
        }
        const Ipv6 gateway6 = subnet6 ? subnet6->at(1) : Ipv6{};
        bool same = def && def->net.subnet == subnet && def->net.gateway == spec->bip.addr() &&
                    def->net.bridge == spec->bridge && def->net.ip_range == range &&
                    def->net.mtu == mtu && def->net.icc == spec->icc &&
                    def->net.masquerade == spec->masquerade &&
                    def->net.host_binding == spec->host_binding && def->net.subnet6 == subnet6 &&
                    (!subnet6 || def->net.gateway6 == gateway6);
        if (def && !same) {
            bool moved = def->net.subnet != subnet || def->net.gateway != spec->bip.addr() ||
                         def->net.bridge != spec->bridge || def->net.subnet6 != subnet6;
            if (moved && !def->net.endpoints.empty()) {
                return Error::invalid(fmt::format(
                    "the config moves the default network from {} on {} to {} on {}, but it has {} "
                    "endpoint(s); disconnect them or restore the old bip/bridge",
                    def->net.gateway_cidr().str(), def->net.bridge, spec->bip.str(), spec->bridge,
                    def->net.endpoints.size()));
            }
            if (def->net.bridge != spec->bridge && !def->net.bridge_adopted) {
                CNETD_TRY(
                    kernel_.delete_link(def->net.bridge).context("remove old default bridge"));
            }
            Network n = def->net;
            nets_.erase(n.id);
            def = nullptr;
            n.subnet = subnet;
            n.gateway = spec->bip.addr();
            n.ip_range = range;
            n.mtu = mtu;
            n.subnet6 = subnet6;
            n.gateway6 = gateway6;
            if (n.bridge != spec->bridge) {
                CNETD_TRY_ASSIGN(LinkKind kind, kernel_.link_kind(spec->bridge));
                n.bridge_adopted = kind == LinkKind::Bridge;
            }
            n.bridge = spec->bridge;
            n.icc = spec->icc;
            n.masquerade = spec->masquerade;
            n.host_binding = spec->host_binding;
            n.options[kOptBridgeName] = spec->bridge;
            n.options[kOptEnableIcc] = bool_str(spec->icc);
            n.options[kOptEnableMasquerade] = bool_str(spec->masquerade);
            n.options[kOptHostBinding] = spec->host_binding ? spec->host_binding->str() : "0.0.0.0";
            std::string id = n.id;
            CNETD_TRY_ASSIGN(Net net, make_net(std::move(n)));
            def = &nets_.emplace(id, std::move(net)).first->second;
            changed = true;
        }
        if (!def) {
            Network n;
            n.id = random_hex(64);
            n.name = "bridge";
            n.is_default = true;
            n.bridge = spec->bridge;
            n.subnet = subnet;
            n.gateway = spec->bip.addr();
            n.ip_range = range;
            n.mtu = mtu;
            n.subnet6 = subnet6;
            n.gateway6 = gateway6;
            n.icc = spec->icc;
            n.masquerade = spec->masquerade;
            n.host_binding = spec->host_binding;
            n.created = now_rfc3339();
            n.options[kOptBridgeName] = spec->bridge;
            n.options[kOptEnableIcc] = bool_str(spec->icc);
            n.options[kOptEnableMasquerade] = bool_str(spec->masquerade);
            n.options[kOptHostBinding] = spec->host_binding ? spec->host_binding->str() : "0.0.0.0";
            n.options["com.docker.network.bridge.default_bridge"] = "true";
            // A docker0 that predates our state (Docker's, or an admin's) is adopted, not owned.
            CNETD_TRY_ASSIGN(LinkKind kind, kernel_.link_kind(n.bridge));
            n.bridge_adopted = kind == LinkKind::Bridge;
            std::string id = n.id;
            CNETD_TRY_ASSIGN(Net net, make_net(std::move(n)));
            def = &nets_.emplace(id, std::move(net)).first->second;
            changed = true;
        }
    }

    // Bring every bridge to its configured state. Existing veths, addresses in containers and
    // namespaces are left alone: a restart must not disturb running containers.
    for (auto& [id, n] : nets_) {
        CNETD_TRY_ASSIGN(LinkKind kind, kernel_.link_kind(n.net.bridge));
        if (kind == LinkKind::Other) {
            return Error::invalid(
                fmt::format("network {}: bridge name \"{}\" is taken by an interface "
                            "that is not a bridge",
                            n.net.name, n.net.bridge));
        }
        auto r = kernel_.ensure_bridge({n.net.bridge, n.net.gateway_cidr(), n.net.mtu,
                                        n.net.gateway6_cidr(), n.net.inhibit_ipv4});
        if (!r.ok()) return std::move(r).error().wrap(fmt::format("network {}", n.net.name));
        if (n.net.subnet6) CNETD_TRY(enable_ip6_forwarding());
        log::info("network {}: bridge {} {} with {}", n.net.name, n.net.bridge,
                  *r ? "created" : "ready", n.net.gateway_cidr().str());
    }
    if (reconcile_endpoints()) changed = true;  // engine_reconcile.cpp
    if (changed) CNETD_TRY(persist().context("save state"));
    // The whole table from state, in one transaction: a restart never opens a window without
    // NAT or filtering, and leftovers of a crashed run are replaced.
    CNETD_TRY(sync_firewall().context(fmt::format("firewall ({})", fw_.name())));
    return ok();
}

Result<void> Engine::reconfigure(const std::optional<DefaultNetworkSpec>& spec_opt,
                                 const EngineOptions& live, bool ip_forward) {
    if (ip_forward && !ip_forward_) {
        CNETD_TRY(kernel_.write_sysctl("net/ipv4/ip_forward", "1").context("reload: ip-forward"));
        ip_forward_ = true;
        for (const auto& [id, n] : nets_)
            if (n.net.subnet6) CNETD_TRY(enable_ip6_forwarding().context("reload"));
    }
    const EngineOptions old_opts = opts_;
    opts_.mtu = live.mtu;
    opts_.host_binding = live.host_binding;
    opts_.pools = live.pools;
    opts_.pools6 = live.pools6;
    Net* def = nullptr;
    for (auto& [id, n] : nets_)
        if (n.net.is_default) def = &n;
    if (!def || !spec_opt) return ok();  // `bridge: none`: only the options for new networks
    const DefaultNetworkSpec& spec = *spec_opt;
    const Network before = def->net;
    Network& n = def->net;
    n.icc = spec.icc;
    n.masquerade = spec.masquerade;
    n.host_binding = spec.host_binding;
    n.mtu = spec.mtu != 0 ? spec.mtu : default_mtu();
    n.options[kOptEnableIcc] = bool_str(spec.icc);
    n.options[kOptEnableMasquerade] = bool_str(spec.masquerade);
    n.options[kOptHostBinding] = spec.host_binding ? spec.host_binding->str() : "0.0.0.0";
    auto restore = [&] {
        if (def->net.mtu != before.mtu) {
            auto r = kernel_.ensure_bridge({before.bridge, before.gateway_cidr(), before.mtu,
                                            before.gateway6_cidr(), before.inhibit_ipv4});
            if (!r.ok())
                log::error("rollback: restore MTU of {}: {}", before.bridge, r.error().message());
        }
        def->net = before;
        opts_ = old_opts;
    };
    if (n.mtu != before.mtu) {
        auto r = kernel_.ensure_bridge(
            {n.bridge, n.gateway_cidr(), n.mtu, n.gateway6_cidr(), n.inhibit_ipv4});
        if (!r.ok()) {
            restore();
            return std::move(r).error().wrap("reload: mtu");
        }
    }
    if (auto r = sync_firewall(); !r.ok()) {
        restore();
        return std::move(r).error().wrap("reload: firewall");
    }
    if (auto r = persist(); !r.ok()) {
        restore();
        if (auto f = sync_firewall(); !f.ok())
            log::error("rollback: firewall: {}", f.error().message());
        return std::move(r).error().wrap("reload: save state");
    }
    log::info("reload: default network: icc={} ip-masq={} mtu={} ip={}", bool_str(n.icc),
              bool_str(n.masquerade), n.mtu, n.host_binding ? n.host_binding->str() : "0.0.0.0");
    return ok();
}

// ---------------------------------------------------------------------------------------------
// networks

Result<Network> Engine::create_network(const CreateNetworkRequest& req) {
    // 1. Validate everything; nothing changes until all of it passes.
    CNETD_TRY(validate_name("name", req.name));
    for (const auto& [id, n] : nets_) {
        if (n.net.name == req.name) {
            return Error::conflict(fmt::format("network with name {} already exists", req.name));
        }
    }
    std::string id = random_hex(64);
    std::string bridge = "br-" + id.substr(0, 12);
    bool icc = true, masquerade = true, inhibit_ipv4 = false;
    unsigned mtu = 0;
    std::string iface_prefix = "eth";
    auto mode4 = firewall::GatewayMode::Nat, mode6 = firewall::GatewayMode::Nat;
    std::optional<Ipv4> host_ipv4, host_binding;
    for (const auto& [key, value] : req.options) {
        if (key == kOptBridgeName) {
            auto v = validate_ifname(value);
            if (!v) return std::move(v).error().wrap(fmt::format("option {}", key));
            bridge = value;
        } else if (key == kOptEnableIcc || key == kOptEnableMasquerade || key == kOptInhibitIpv4) {
            auto b = parse_bool(value);
            if (!b) {
                return Error::invalid(
                    fmt::format("option {}: \"{}\" is not a boolean (true or false)", key, value));
            }
            (key == kOptEnableIcc          ? icc
             : key == kOptEnableMasquerade ? masquerade
                                           : inhibit_ipv4) = *b;
        } else if (key == kOptHostIpv4 || key == kOptHostBinding) {
            auto a = Ipv4::parse(value);
            if (!a) return std::move(a).error().wrap(fmt::format("option {}", key));
            if (key == kOptHostIpv4) {
                host_ipv4 = *a;
            } else if (a->value() != 0) {  // 0.0.0.0: every address, the default
                host_binding = *a;
            }
        } else if (key == kOptMtu) {
            unsigned v = 0;
            auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
            if (value.empty() || ec != std::errc() || p != value.data() + value.size() || v < 68 ||
                v > 65535) {
                return Error::invalid(
                    fmt::format("option {}: \"{}\" is not an MTU (68-65535)", key, value));
            }
            mtu = v;
        } else if (key == kOptIfacePrefix) {
            // The kernel name is prefix + a number: keep room for up to 4 digits.
            auto v = validate_ifname(value + "0");
            if (!v || value.size() > 11 || value.empty()) {
                return Error::invalid(fmt::format(
                    "option {}: \"{}\" is not a usable interface name prefix (1-11 characters, no "
                    "'/', ':' or whitespace)",
                    key, value));
            }
            iface_prefix = value;
        } else if (key == kOptGatewayMode4 || key == kOptGatewayMode6) {
            CNETD_TRY_ASSIGN(auto m, parse_gateway_mode(key, value));
            (key == kOptGatewayMode4 ? mode4 : mode6) = m;
        } else {
            return Error::invalid(fmt::format(
                "option {}: unknown option (supported: {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                key, kOptBridgeName, kOptEnableIcc, kOptEnableMasquerade, kOptHostIpv4,
                kOptHostBinding, kOptMtu, kOptIfacePrefix, kOptGatewayMode4, kOptGatewayMode6,
                kOptInhibitIpv4));
        }
    }
    for (const auto& [k, v] : req.labels) {
        if (k.empty()) return Error::invalid(fmt::format("label: empty key (value \"{}\")", v));
    }

    // IPv4: the given subnet, else the first free one of the address pools.
    Ipv4Cidr subnet;
    if (!req.subnet.empty()) {
        auto subnet_r = Ipv4Cidr::parse_network(req.subnet);
        if (!subnet_r) return std::move(subnet_r).error().wrap("subnet");
        subnet = *subnet_r;
        if (subnet.prefix() < kMinPrefix || subnet.prefix() > kMaxPrefix) {
            return Error::invalid(
                fmt::format("subnet: \"{}\": prefix length must be between {} and {}", req.subnet,
                            kMinPrefix, kMaxPrefix));
        }
    } else {
        if (!req.gateway.empty() || !req.ip_range.empty()) {
            return Error::invalid(fmt::format("{}: given without subnet",
                                              req.gateway.empty() ? "ip-range" : "gateway"));
        }
        PoolContext ctx;
        for (const auto& [nid, n] : nets_) ctx.used.push_back(n.net.subnet);
        auto routes = kernel_.onlink_routes4();
        if (routes.ok()) {
            ctx.onlink_routes = *routes;
        } else {
            log::warn("address pools: cannot list on-link routes: {}", routes.error().message());
        }
        ctx.nameservers = nameservers_of(opts_.resolv_conf);
        CNETD_TRY_ASSIGN(subnet, choose_subnet(opts_.pools, ctx));
    }
    Ipv4 gateway(subnet.network().value() + 1);
    if (!req.gateway.empty()) {
        auto g = Ipv4::parse(req.gateway);
        if (!g) return std::move(g).error().wrap("gateway");
        if (!subnet.contains(*g)) {
            return Error::invalid(
                fmt::format("gateway: {} is not in subnet {}", req.gateway, subnet.str()));
        }
        if (*g == subnet.network() || *g == subnet.broadcast()) {
            return Error::invalid(fmt::format("gateway: {} is the {} address of {}", req.gateway,
                                              *g == subnet.network() ? "network" : "broadcast",
                                              subnet.str()));
        }
        gateway = *g;
    }
    std::optional<Ipv4Cidr> range;
    if (!req.ip_range.empty()) {
        auto r = Ipv4Cidr::parse_network(req.ip_range);
        if (!r) return std::move(r).error().wrap("ip-range");
        if (r->prefix() < subnet.prefix() || !subnet.contains(r->network())) {
            return Error::invalid(
                fmt::format("ip-range: {} is not inside subnet {}", req.ip_range, subnet.str()));
        }
        range = *r;
    }

    // IPv6 (dual stack): the given /N, else the next free /64 of the daemon's ULA /48.
    const bool ipv6 = req.ipv6 || !req.subnet6.empty();
    std::optional<Ipv6Cidr> subnet6;
    Ipv6 gateway6;
    std::optional<Ipv6Cidr> range6;
    if (!ipv6 && (!req.gateway6.empty() || !req.ip_range6.empty())) {
        return Error::invalid(fmt::format("{}: IPv6 settings need --ipv6 and an IPv6 subnet",
                                          req.gateway6.empty() ? "ip-range" : "gateway"));
    }
    if (ipv6) {
        if (!req.subnet6.empty()) {
            auto r = Ipv6Cidr::parse_network(req.subnet6);
            if (!r) return std::move(r).error().wrap("subnet");
            if (r->prefix() < kMinPrefix6 || r->prefix() > kMaxPrefix6) {
                return Error::invalid(
                    fmt::format("subnet: \"{}\": prefix length must be between {} and {}",
                                req.subnet6, kMinPrefix6, kMaxPrefix6));
            }
            subnet6 = *r;
        } else {
            std::vector<Ipv6Cidr> used6;
            for (const auto& [nid, n] : nets_)
                if (n.net.subnet6) used6.push_back(*n.net.subnet6);
            if (!opts_.pools6.empty()) {
                CNETD_TRY_ASSIGN(subnet6, choose_subnet6(opts_.pools6, used6).context("ipv6"));
            } else {
                if (!opts_.ula48)
                    return Error::invalid("ipv6: no IPv6 subnet given and no ULA prefix");
                CNETD_TRY_ASSIGN(subnet6, choose_subnet6(*opts_.ula48, used6).context("ipv6"));
            }
        }
        gateway6 = subnet6->at(1);
        if (!req.gateway6.empty()) {
            auto g = Ipv6::parse(req.gateway6);
            if (!g) return std::move(g).error().wrap("gateway");
            if (!subnet6->contains(*g) || *g == subnet6->network()) {
                return Error::invalid(fmt::format("gateway: {} is not a host address of subnet {}",
                                                  req.gateway6, subnet6->str()));
            }
            gateway6 = *g;
        }
        if (!req.ip_range6.empty()) {
            auto r = Ipv6Cidr::parse_network(req.ip_range6);
            if (!r) return std::move(r).error().wrap("ip-range");
            if (r->prefix() < subnet6->prefix() || !subnet6->contains(r->network())) {
                return Error::invalid(fmt::format("ip-range: {} is not inside subnet {}",
                                                  req.ip_range6, subnet6->str()));
            }
            range6 = *r;
        }
    }
    // Auxiliary addresses: inside a subnet of the network, not the gateway, never handed out.
    for (const auto& [name, text] : req.aux_addresses) {
        if (name.empty())
            return Error::invalid(fmt::format("aux-address: empty name for {}", text));
        if (auto a4 = Ipv4::parse(text); a4.ok()) {
            if (!subnet.contains(*a4) || *a4 == gateway || *a4 == subnet.network() ||
                *a4 == subnet.broadcast()) {
                return Error::invalid(
                    fmt::format("aux-address: {}={} is not a free host address of "
                                "subnet {}",
                                name, text, subnet.str()));
            }
        } else if (auto a6 = Ipv6::parse(text); a6.ok()) {
            if (!subnet6 || !subnet6->contains(*a6) || *a6 == gateway6 ||
                *a6 == subnet6->network()) {
                return Error::invalid(fmt::format(
                    "aux-address: {}={} is not a free host address of the network's IPv6 subnet{}",
                    name, text, subnet6 ? " " + subnet6->str() : " (IPv6 is not enabled)"));
            }
        } else {
            return Error::invalid(
                fmt::format("aux-address: {}={}: \"{}\" is not an IP address", name, text, text));
        }
    }
    for (const auto& [nid, n] : nets_) {
        if (n.net.subnet.overlaps(subnet)) {
            return Error::conflict(fmt::format("subnet: {} overlaps network {} ({})", subnet.str(),
                                               n.net.name, n.net.subnet.str()));
        }
        if (subnet6 && n.net.subnet6 && n.net.subnet6->overlaps(*subnet6)) {
            return Error::conflict(fmt::format("subnet: {} overlaps network {} ({})",
                                               subnet6->str(), n.net.name, n.net.subnet6->str()));
        }
        if (n.net.bridge == bridge) {
            return Error::conflict(fmt::format("option {}: bridge {} is already used by network {}",
                                               kOptBridgeName, bridge, n.net.name));
        }
    }
    CNETD_TRY_ASSIGN(LinkKind kind, kernel_.link_kind(bridge));
    if (kind == LinkKind::Other) {
        return Error::invalid(
            fmt::format("option {}: {} exists and is not a bridge", kOptBridgeName, bridge));
    }

    // 2. Apply.
    Network n;
    n.id = id;
    n.name = req.name;
    n.bridge = bridge;
    n.subnet = subnet;
    n.gateway = gateway;
    n.ip_range = range;
    n.subnet6 = subnet6;
    n.gateway6 = gateway6;
    n.ip_range6 = range6;
    n.mtu = mtu != 0 ? mtu : default_mtu();
    n.bridge_adopted = kind == LinkKind::Bridge;
    n.created = now_rfc3339();
    n.internal = req.internal;
    n.icc = icc;
    n.masquerade = masquerade;
    n.host_ipv4 = host_ipv4;
    n.mode4 = mode4;
    n.mode6 = mode6;
    n.inhibit_ipv4 = inhibit_ipv4;
    n.iface_prefix = iface_prefix;
    n.labels = req.labels;
    n.aux_addresses = req.aux_addresses;
    // Published ports without an address bind where the network says, else where the daemon says.
    n.host_binding = req.options.count(kOptHostBinding) ? host_binding : opts_.host_binding;
    n.options = req.options;
    n.options[kOptBridgeName] = bridge;

    // Write-ahead: the network is saved before its bridge exists. A crash in between leaves a
    // network whose bridge the next start creates (roll forward); the other order would leave a
    // bridge no state owns, which a restart cannot tell from an admin's (and a retried create
    // would then adopt it and never delete it).
    CNETD_TRY_ASSIGN(Net net, make_net(n));
    nets_.emplace(id, std::move(net));
    if (auto saved = persist(); !saved.ok()) {
        nets_.erase(id);
        return std::move(saved).error().wrap(
            fmt::format("create network {}: save state", req.name));
    }
    Rollback undo;
    undo.add([this, id] {
        nets_.erase(id);
        log_undo_failure(persist(), "save state without network " + id);
    });
    auto created =
        kernel_.ensure_bridge({bridge, n.gateway_cidr(), n.mtu, n.gateway6_cidr(), inhibit_ipv4});
    if (!created.ok()) {
        // ensure_bridge may have failed after creating the link: remove what we made.
        if (kind == LinkKind::Absent) {
            log_undo_failure(kernel_.delete_link(bridge), "delete bridge " + bridge);
        }
        return std::move(created).error().wrap(fmt::format("create network {}", req.name));
    }
    if (*created) {
        undo.add([this, bridge] {
            log_undo_failure(kernel_.delete_link(bridge), "delete bridge " + bridge);
        });
    }
    const firewall::NetworkRules rules = rules_of(n);
    auto fw = fw_.add_network(rules);
    if (!fw.ok()) {
        return std::move(fw).error().wrap(fmt::format("create network {}: firewall", req.name));
    }
    undo.add([this, rules] {
        log_undo_failure(fw_.remove_network(rules), "remove firewall elements of " + rules.bridge);
    });
    undo.commit();
    // After the commit, so a refused request leaves the sysctl as it was; forwarding is never
    // turned off again (other networks may need it), as at start.
    if (subnet6) {
        if (auto f = enable_ip6_forwarding(); !f.ok())
            log::warn("network {}: {}", n.name, f.error().message());
    }
    log::info(
        "network {} created: bridge {}, subnet {}, gateway {}{}", n.name, n.bridge, n.subnet.str(),
        n.gateway.str(),
        subnet6 ? fmt::format(", subnet {}, gateway {}", subnet6->str(), gateway6.str()) : "");
    return n;
}

Result<void> Engine::remove_network(const std::string& key) {
    CNETD_TRY_ASSIGN(Net * n, lookup(key));
    if (n->net.is_default) {
        return Error::invalid(fmt::format(
            "{} is the default network and cannot be removed (set `bridge: none` in the config)",
            n->net.name));
    }
    if (!n->net.endpoints.empty()) {
        std::string names;
        for (const auto& [id, ep] : n->net.endpoints)
            names += (names.empty() ? "" : ", ") + ep.name;
        return Error::conflict(
            fmt::format("network {} has active endpoints ({})", n->net.name, names));
    }
    Network copy = n->net;
    const std::string frame = fmt::format("remove network {}", copy.name);
    // Its MAC, so that an undo can make the bridge again exactly as it was.
    std::optional<Mac> mac;
    if (!copy.bridge_adopted) {
        CNETD_TRY_ASSIGN(auto st, kernel_.link_status(copy.bridge).context(frame));
        if (st) mac = st->mac;
    }
    Rollback undo;
    // The network's firewall elements go first: nothing may filter or NAT for a bridge that is
    // gone. A failure here is logged, not fatal: the backend forgets the network anyway and the
    // next full sync (restart, drift repair) drops any leftover element.
    if (auto fw = fw_.remove_network(rules_of(copy)); !fw.ok()) {
        log::warn("{}: firewall: {}", frame, fw.error().message());
    }
    undo.add([this, copy] {
        log_undo_failure(fw_.add_network(rules_of(copy)), "restore firewall of " + copy.bridge);
    });
    if (mac) {
        CNETD_TRY(kernel_.delete_link(copy.bridge).context(frame));
        undo.add([this, copy, mac] {
            auto r = kernel_.ensure_bridge({copy.bridge, copy.gateway_cidr(), copy.mtu,
                                            copy.gateway6_cidr(), copy.inhibit_ipv4, mac});
            if (!r.ok()) log::error("rollback: make bridge {} again: {}", copy.bridge,
                                    r.error().message());
        });
    }
    // Kernel first, then the state: a crash in between finds the network in the state file and
    // the next start makes its bridge again; a failed save puts the bridge back at once.
    auto node = nets_.extract(copy.id);
    if (auto saved = persist(); !saved.ok()) {
        nets_.insert(std::move(node));
        return std::move(saved).error().wrap(frame + ": save state");
    }
    undo.commit();
    log::info("network {} removed", copy.name);
    return ok();
}

// ---------------------------------------------------------------------------------------------
// endpoints

Result<std::string> Engine::resolve_target(const std::string& target) const {
    return resolve_netns_target(opts_.netns_dir, target);
}

Result<void> Engine::disconnect(const std::string& network, const std::string& target) {
    CNETD_TRY_ASSIGN(Net * n, lookup(network));
    const auto frame = fmt::format("disconnect {} from {}", target, n->net.name);
    auto id = find_target(*n, target);
    if (!id) return std::move(id).error().wrap(frame);
    return detach_endpoints({{n->net.id, *id}}, "disconnected", {}).context(frame);
}

Result<std::string> Engine::find_target(const Net& n, const std::string& target) {
    CNETD_TRY_ASSIGN(std::string path, resolve_target(target));
    std::optional<NetnsId> id;
    if (auto o = kernel_.open_netns(path); o.ok()) id = (*o)->id();
    // One endpoint per namespace (attach refuses a second), but several records may share a path
    // (the namespace there was replaced): identity, when the path opens, says which one is meant.
    const Endpoint* by_id = nullptr;
    const Endpoint* by_name = nullptr;
    std::vector<const Endpoint*> by_path;
    for (const auto& [eid, ep] : n.net.endpoints) {
        if (id && ep.netns_id == *id) by_id = &ep;
        if (ep.netns_path == path) by_path.push_back(&ep);
        // A path never names an endpoint: names cannot contain '/'.
        if (target[0] != '/' && ep.name == target) by_name = &ep;
    }
    std::vector<const Endpoint*> found = by_id ? std::vector{by_id} : by_path;
    if (by_name && std::find(found.begin(), found.end(), by_name) == found.end())
        found.push_back(by_name);
    if (found.empty()) {
        return Error::not_found(fmt::format("no such endpoint on network {}", n.net.name));
    }
    if (found.size() > 1) {
        std::string list;
        for (const Endpoint* ep : found)
            list += fmt::format("{}endpoint {} (netns {})", list.empty() ? "" : ", ", ep->name,
                                ep->netns_path);
        return Error::conflict(fmt::format(
            "target \"{}\" is ambiguous on network {}: it matches {}; give the namespace's path",
            target, n.net.name, list));
    }
    return found[0]->id;
}

Result<void> Engine::detach_endpoints(const std::vector<EndpointRef>& victims, std::string_view why,
                                      DetachHow how) {
    // (a) Write-ahead: out of the state first. A crash from here on finds them gone at the next
    // start, which deletes their orphan veths; the other order brought a removed endpoint back.
    std::vector<std::pair<Net*, EndpointMap::Ptr>> gone;
    for (const auto& [nid, eid] : victims) {
        auto it = nets_.find(nid);
        EndpointMap::Ptr ep = it == nets_.end() ? nullptr : it->second.net.endpoints.ptr(eid);
        if (!ep) continue;
        it->second.net.endpoints.erase(eid);
        gone.emplace_back(&it->second, std::move(ep));
    }
    if (how.save && !gone.empty()) {
        if (auto saved = persist(); !saved.ok()) {
            for (auto& [n, ep] : gone) n->net.endpoints.put(ep);  // as if never asked
            return std::move(saved).error().wrap("save state");
        }
    }
    failpoint::hit("engine.detach.saved");
    // (b) The kernel side.
    for (const auto& [n, ep] : gone) teardown_endpoint(*n, *ep, why, how.firewall);
    return ok();
}

void Engine::teardown_endpoint(Net& n, const Endpoint& ep, std::string_view why, bool firewall) {
    // The container side only in the very namespace the endpoint was made in (a path may now
    // name another one, whose interfaces are not ours).
    std::unique_ptr<Netns> ns;
    if (auto o = kernel_.open_netns(ep.netns_path); o.ok() && (*o)->id() == ep.netns_id)
        ns = std::move(o).value();
    // The pair leaves service now (the container loses the interface, with its address and
    // route) and is deleted soon after in a batch with others (Kernel::retire_veth).
    auto retired = kernel_.retire_veth(ep.host_ifname, ns.get(), ep.ifname);
    publisher_.unpublish(n.net, ep, firewall);  // map elements (with `firewall`), holds, ports
    // `ep` has left the state already: the namespace's default routes go to the endpoints the
    // rule picks now (core/gateway.hpp), e.g. from the one that left to the next in line.
    if (ns) hand_over_gateway(*ns);
    if (!retired.ok()) {
        // The pair may still carry the addresses: keep them reserved until the next start.
        log::error(
            "endpoint {} on network {} removed ({}), but its veth {} could not be: {}; "
            "the next start deletes it and frees {}",
            ep.name, n.net.name, why, ep.host_ifname, retired.error().message(), ep.address.str());
        return;
    }
    n.ipam.release(ep.address.addr());
    if (ep.address6 && n.ipam6) n.ipam6->release(ep.address6->addr());
    log::info("endpoint {} removed from {} ({}): released {}{}{}", ep.name, n.net.name, why,
              ep.address.str(), ep.address6 ? " " + ep.address6->str() : "",
              ep.ports.empty() ? "" : fmt::format(", {} port mapping(s)", ep.ports.size()));
}

// ---------------------------------------------------------------------------------------------
// namespace files

Result<std::string> Engine::create_netns(const std::string& name) {
    CNETD_TRY(validate_name("name", name));
    std::string path = opts_.netns_dir + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        return Error::conflict(fmt::format("netns {} already exists ({})", name, path));
    }
    CNETD_TRY(kernel_.create_netns(path).context(fmt::format("create netns {}", name)));
    log::info("netns {} created at {}", name, path);
    return path;
}

Result<void> Engine::remove_netns(const std::string& name) {
    CNETD_TRY(validate_name("name", name));
    std::string path = opts_.netns_dir + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        return Error::not_found(fmt::format("netns {} not found in {}", name, opts_.netns_dir));
    }
    // Refused before anything is disconnected: open_netns() would follow the link to some other
    // namespace (Kernel::delete_netns refuses symlinks too, but only after that).
    if (S_ISLNK(st.st_mode))
        return Error::invalid(
            fmt::format("remove netns {}: {} is a symbolic link, not a network "
                        "namespace file; left alone",
                        name, path));
    // Its endpoints go too, like `docker rm` does, so nothing is leaked: by namespace identity or
    // recorded path, and by id (a name may be another endpoint's).
    std::unique_ptr<Netns> held;
    if (auto ns = kernel_.open_netns(path); ns.ok()) held = std::move(ns).value();
    std::vector<EndpointRef> victims;
    for (const auto& [nid, n] : nets_) {
        for (const auto& [eid, ep] : n.net.endpoints) {
            if (ep.netns_path == path || (held && ep.netns_id == held->id()))
                victims.emplace_back(nid, eid);
        }
    }
    const auto frame = fmt::format("remove netns {}", name);
    if (!held) {  // not a live namespace (a plain file, a dead mount): nothing to mount back
        CNETD_TRY(detach_endpoints(victims, frame, {}).context(frame));
        CNETD_TRY(kernel_.delete_netns(path).context(frame));
        log::info("netns {} removed", name);
        return ok();
    }
    // The file goes first while `held` keeps the namespace alive: a failed unmount changes
    // nothing, and a failed save of the endpoints' removal mounts the file back.
    CNETD_TRY(kernel_.delete_netns(path).context(frame));
    if (auto r = detach_endpoints(victims, frame, {}); !r.ok()) {
        log_undo_failure(kernel_.restore_netns(path, *held), "mount netns file " + path + " again");
        return std::move(r).error().wrap(frame);
    }
    log::info("netns {} removed", name);
    return ok();
}

std::vector<std::string> Engine::list_netns() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(opts_.netns_dir, ec)) {
        if (e.is_regular_file(ec)) names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace cnetd::core
