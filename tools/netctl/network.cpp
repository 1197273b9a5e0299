// netctl network ls|inspect|create|rm|connect|disconnect
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

std::string net_path(const std::string& name) {
    return "/v1/networks/" + api::encode_segment(name);
}

std::string str_at(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int cmd_ls(const Context& ctx) {
    auto r = ctx.client().request("GET", "/v1/networks");
    if (!r) return fail(r.error());
    if (ctx.json) {
        print_json(*r);
        return kExitOk;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : *r) {
        std::string subnet;
        if (auto ipam = n.find("IPAM"); ipam != n.end() && ipam->contains("Config")) {
            for (const auto& c : (*ipam)["Config"]) {
                if (!subnet.empty()) subnet += ",";
                subnet += str_at(c, "Subnet");
            }
        }
        std::string bridge;
        if (auto o = n.find("Options"); o != n.end())
            bridge = str_at(*o, "com.docker.network.bridge.name");
        size_t containers = n.contains("Containers") ? n["Containers"].size() : 0;
        rows.push_back({str_at(n, "Id").substr(0, 12), str_at(n, "Name"), str_at(n, "Driver"),
                        subnet, bridge, std::to_string(containers)});
    }
    print_table({"NETWORK ID", "NAME", "DRIVER", "SUBNET", "BRIDGE", "CONTAINERS"}, rows);
    return kExitOk;
}

// Like docker: print what was found, fail (one line naming every miss) if anything was missing.
int cmd_inspect(const Context& ctx, const std::vector<std::string>& names) {
    json out = json::array();
    ErrorList errs;
    auto client = ctx.client();
    for (const auto& name : names) {
        auto r = client.request("GET", net_path(name));
        if (!r) {
            if (r.error().kind() == ErrorKind::Unavailable && r.error().error_number() != 0)
                return fail(r.error());
            errs.add(r.error());
            continue;
        }
        out.push_back(std::move(r).value());
    }
    print_json(out);
    return errs.empty() ? kExitOk : fail(errs.combined(""));
}

struct CreateArgs {
    std::string name;
    // Docker's repeatable flags: one IPv4 and one IPv6 value each, told apart by family.
    std::vector<std::string> subnets, gateways, ip_ranges, aux, labels, opts;
    bool internal = false, ipv6 = false;
};

// "k=v" pairs of a repeatable flag into a JSON object; a malformed one is a usage error.
Result<json> pairs(const char* flag, const std::vector<std::string>& items) {
    json o = json::object();
    for (const auto& kv : items) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
            return Error::invalid(fmt::format("{} {}: expected key=value", flag, kv));
        o[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return o;
}

// Puts each value of a repeatable family-typed flag (--subnet fd00::/64 --subnet 10.0.0.0/24)
// into `v4_key` or `v6_key`; two of one family is a usage error naming the flag.
Result<void> by_family(json& body, const char* flag, const std::vector<std::string>& values,
                       const char* v4_key, const char* v6_key) {
    for (const auto& v : values) {
        const char* key = v.find(':') != std::string::npos ? v6_key : v4_key;
        if (body.contains(key))
            return Error::invalid(fmt::format("{} {}: only one IPv4 and one IPv6 value allowed", flag, v));
        body[key] = v;
    }
    return ok();
}

int cmd_create(const Context& ctx, const CreateArgs& a) {
    json body = {{"Name", a.name}};
    for (auto [flag, vals, k4, k6] :
         {std::tuple{"--subnet", &a.subnets, "Subnet", "Subnet6"},
          std::tuple{"--gateway", &a.gateways, "Gateway", "Gateway6"},
          std::tuple{"--ip-range", &a.ip_ranges, "IPRange", "IPRange6"}}) {
        if (auto r = by_family(body, flag, *vals, k4, k6); !r) return usage(r.error().message());
    }
    if (a.internal) body["Internal"] = true;
    if (a.ipv6) body["EnableIPv6"] = true;
    for (auto [flag, vals, key] : {std::tuple{"-o", &a.opts, "Options"},
                                   std::tuple{"--aux-address", &a.aux, "AuxAddresses"},
                                   std::tuple{"--label", &a.labels, "Labels"}}) {
        if (vals->empty()) continue;
        auto o = pairs(flag, *vals);
        if (!o) return usage(o.error().message());
        body[key] = *o;
    }
    auto r = ctx.client().request("POST", "/v1/networks", body);
    if (!r) return fail(r.error());
    if (ctx.json)
        print_json(*r);
    else
        std::cout << str_at(*r, "Id") << '\n';
    return kExitOk;
}

// Removes each; keeps going after a failure and reports every failure in one line.
int cmd_rm(const Context& ctx, const std::vector<std::string>& names) {
    return remove_each(ctx, names, [](const std::string& n) { return net_path(n); });
}

struct ConnectArgs {
    std::string network, target, name, ip, ip6, mac;
    std::vector<std::string> publish;  // -p specs, passed through (the daemon parses them)
    std::optional<int> gw_priority;
};

int cmd_connect(const Context& ctx, const ConnectArgs& a) {
    json body = {{"Target", a.target}};
    if (!a.name.empty()) body["Name"] = a.name;
    if (!a.ip.empty()) body["IPv4Address"] = a.ip;
    if (!a.ip6.empty()) body["IPv6Address"] = a.ip6;
    if (a.gw_priority) body["GwPriority"] = *a.gw_priority;
    if (!a.mac.empty()) body["MacAddress"] = a.mac;
    if (!a.publish.empty()) body["Publish"] = a.publish;
    auto r = ctx.client().request("POST", net_path(a.network) + "/connect", body);
    if (!r) return fail(r.error());
    if (ctx.json) print_json(*r);
    return kExitOk;
}

int cmd_disconnect(const Context& ctx, const std::string& network, const std::string& target) {
    auto r =
        ctx.client().request("POST", net_path(network) + "/disconnect", json{{"Target", target}});
    if (!r) return fail(r.error());
    if (ctx.json) print_json({{"Network", network}, {"Target", target}});
    return kExitOk;
}

}  // namespace

void add_network_commands(CLI::App& app, Context& ctx, int& rc) {
    auto* net = app.add_subcommand("network", "Manage networks");
    net->require_subcommand(1);
    net->fallthrough();

    auto* ls = net->add_subcommand("ls", "List networks");
    ls->alias("list");
    ls->fallthrough();
    ls->callback([&] { rc = cmd_ls(ctx); });

    auto names = std::make_shared<std::vector<std::string>>();
    auto* inspect = net->add_subcommand(
        "inspect", "Show networks as JSON (an array, like `docker network inspect`)");
    inspect->add_option("NETWORK", *names, "network name, id or unique id prefix")->required();
    inspect->fallthrough();
    inspect->callback([&, names] { rc = cmd_inspect(ctx, *names); });

    auto ca = std::make_shared<CreateArgs>();
    auto* create = net->add_subcommand("create", "Create a bridge network; prints its id");
    create->add_option("NAME", ca->name, "network name")->required();
    create->add_option("--subnet", ca->subnets,
                       "subnet in CIDR form, e.g. 172.18.0.0/16; once more for IPv6 "
                       "(fd00:1::/64). Default: the next free subnet of the address pools");
    create->add_option("--gateway", ca->gateways,
                       "gateway address per family (default: first host of the subnet)");
    create->add_option("--ip-range", ca->ip_ranges,
                       "allocate container addresses from this sub-range (CIDR), per family");
    create->add_option("--aux-address", ca->aux,
                       "name=IP: an address of the subnet never given to a container (repeatable)");
    create->add_flag("--ipv6", ca->ipv6,
                     "dual stack: IPv6 too (a /64 of the daemon's ULA prefix unless --subnet "
                     "gives one)");
    create->add_option("--label", ca->labels, "key=value metadata (repeatable)");
    create->add_option("-o,--opt", ca->opts,
                       "driver option key=value (repeatable): com.docker.network.bridge.name=NAME, "
                       "com.docker.network.bridge.enable_icc=true|false, "
                       "com.docker.network.bridge.enable_ip_masquerade=true|false, "
                       "com.docker.network.host_ipv4=IP (SNAT source), "
                       "com.docker.network.bridge.host_binding_ipv4=IP (default -p address), "
                       "com.docker.network.driver.mtu=N, "
                       "com.docker.network.container_iface_prefix=PREFIX, "
                       "com.docker.network.bridge.gateway_mode_ipv4|_ipv6="
                       "nat|nat-unprotected|routed|isolated, "
                       "com.docker.network.bridge.inhibit_ipv4=true|false");
    create->add_flag("--internal", ca->internal,
                     "restrict external access: no traffic to or from outside the subnet, no NAT");
    create->fallthrough();
    create->callback([&, ca] { rc = cmd_create(ctx, *ca); });

    auto rm_names = std::make_shared<std::vector<std::string>>();
    auto* rm = net->add_subcommand("rm", "Remove networks (must have no endpoints)");
    rm->alias("remove");
    rm->add_option("NETWORK", *rm_names, "network name, id or unique id prefix")->required();
    rm->fallthrough();
    rm->callback([&, rm_names] { rc = cmd_rm(ctx, *rm_names); });

    auto co = std::make_shared<ConnectArgs>();
    auto* connect = net->add_subcommand("connect", "Connect a network namespace to a network");
    connect->add_option("NETWORK", co->network, "network name or id")->required();
    connect
        ->add_option("TARGET", co->target,
                     "netns name in the netns dir, or an absolute path to a netns file")
        ->required();
    connect->add_option("--name", co->name, "endpoint (container) name (default: the netns name)");
    connect->add_option("--ip", co->ip, "static IPv4 address, without prefix");
    connect->add_option("--ip6", co->ip6, "static IPv6 address (dual-stack networks)");
    connect->add_option("--gw-priority", co->gw_priority,
                        "default-gateway priority (Docker 28): of a namespace's endpoints the "
                        "highest provides the default route (default 0; ties: dual stack first, "
                        "then network name)");
    connect->add_option("--mac", co->mac,
                        "static MAC address (default: random, locally administered)");
    connect->add_option(
        "-p,--publish", co->publish,
        "publish container ports on the host (repeatable), Docker's -p forms: 8080:80, "
        "8080:80/udp, 127.0.0.1:8080:80, 127.0.0.1::80 (ephemeral host port), 80, "
        "8000-8010:80 (a free port of the range), 8000-8002:80-82 (1:1), [::1]:8080:80 (IPv6)");
    connect->fallthrough();
    connect->callback([&, co] { rc = cmd_connect(ctx, *co); });

    auto dc = std::make_shared<ConnectArgs>();
    auto* disconnect =
        net->add_subcommand("disconnect", "Disconnect a network namespace from a network");
    disconnect->add_option("NETWORK", dc->network, "network name or id")->required();
    disconnect->add_option("TARGET", dc->target, "netns name or path, as given to connect")
        ->required();
    disconnect->fallthrough();
    disconnect->callback([&, dc] { rc = cmd_disconnect(ctx, dc->network, dc->target); });
}

}  // namespace cnetd::netctl
