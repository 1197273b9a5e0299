// netctl network ls|inspect|create|rm|connect|disconnect
#include <iostream>
#include <map>
#include <memory>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

std::string net_path(const std::string& name) {
    return "/v1/networks/" + api::encode_segment(name);
}

// NETWORK ID NAME DRIVER SCOPE SUBNET BRIDGE CONTAINERS; SCOPE is the daemon's "Scope", as
// Docker's: "global" for overlay networks (every node of the cluster has them), else "local".
// CONTAINERS counts this node's endpoints.
void print_networks(const json& answer) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : api::read_list<api::Network>(answer)) {
        std::string subnet;
        for (const auto& c : n.ipam) subnet += (subnet.empty() ? "" : ",") + c.subnet;
        auto bridge = n.options.find(api::kBridgeNameOption);
        rows.push_back({n.id.substr(0, 12), n.name, n.driver,
                        n.scope, subnet,
                        bridge != n.options.end() ? bridge->second : "",
                        std::to_string(n.containers.size())});
    }
    print_table({"NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET", "BRIDGE", "CONTAINERS"}, rows);
}

// Like docker: print what was found, fail (one line naming every miss) if anything was missing.
int cmd_inspect(const Context& ctx, const std::vector<std::string>& names) {
    json out = json::array();
    ErrorList errs;
    auto on_ok = [&](const std::string&, json n) { out.push_back(std::move(n)); };
    if (auto rc = each_name(ctx, names, "GET", net_path, on_ok, errs)) return *rc;
    print_json(out);
    return finish(errs);
}

struct CreateArgs {
    std::string name;
    std::string driver;             // "" bridge
    unsigned host_subnet_size = 0;  // overlay: each node's block prefix; 0 the daemon's default
    // Docker's repeatable flags: one IPv4 and one IPv6 value each, told apart by family.
    std::vector<std::string> subnets, gateways, ip_ranges, aux, labels, opts;
    bool internal = false, ipv6 = false;
};

// "k=v" pairs of a repeatable flag into `out`; a malformed one is a usage error.
Result<void> pairs(const char* flag, const std::vector<std::string>& items,
                   std::map<std::string, std::string>& out) {
    for (const auto& kv : items) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
            return Error::invalid(fmt::format("{} {}: expected key=value", flag, kv));
        out[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return ok();
}

// Puts each value of a repeatable family-typed flag (--subnet fd00::/64 --subnet 10.0.0.0/24)
// into `v4` or `v6`; two of one family is a usage error naming the flag.
Result<void> by_family(const char* flag, const std::vector<std::string>& values, std::string& v4,
                       std::string& v6) {
    for (const auto& v : values) {
        std::string& into = v.find(':') != std::string::npos ? v6 : v4;
        if (!into.empty())
            return Error::invalid(
                fmt::format("{} {}: only one IPv4 and one IPv6 value allowed", flag, v));
        into = v;
    }
    return ok();
}

Result<api::CreateNetworkRequest> create_request(const CreateArgs& a) {
    api::CreateNetworkRequest req;
    req.name = a.name;
    req.driver = a.driver == "bridge" ? std::string() : a.driver;
    CNETD_TRY(by_family("--subnet", a.subnets, req.subnet, req.subnet6));
    CNETD_TRY(by_family("--gateway", a.gateways, req.gateway, req.gateway6));
    CNETD_TRY(by_family("--ip-range", a.ip_ranges, req.ip_range, req.ip_range6));
    req.internal = a.internal;
    req.enable_ipv6 = a.ipv6;
    CNETD_TRY(pairs("-o", a.opts, req.options));
    CNETD_TRY(pairs("--aux-address", a.aux, req.aux_addresses));
    CNETD_TRY(pairs("--label", a.labels, req.labels));
    if (a.host_subnet_size) {
        if (req.driver != "overlay")
            return Error::invalid("--host-subnet-size: only for --driver overlay");
        req.options["cnetd.overlay.host_subnet_size"] = std::to_string(a.host_subnet_size);
    }
    return req;
}

int cmd_create(const Context& ctx, const CreateArgs& a) {
    auto req = create_request(a);
    if (!req) return usage(req.error().message());
    return send(ctx, "POST", "/v1/networks", api::to_json(*req), [](const json& answer) {
        std::cout << api::read<api::Network>(answer).id << '\n';
    });
}

struct ConnectArgs {
    std::string network;
    api::ConnectRequest req;  // -p specs are passed through (the daemon parses them)
};

int cmd_disconnect(const Context& ctx, const std::string& network, const std::string& target) {
    auto r = ctx.client().request("POST", net_path(network) + "/disconnect",
                                  api::to_json(api::DisconnectRequest{target}));
    if (!r) return fail(r.error());
    if (ctx.json) print_json(api::to_json(api::Disconnected{network, target}));
    return kExitOk;
}

void add_create_command(CLI::App& net, Context& ctx, int& rc) {
    auto ca = std::make_shared<CreateArgs>();
    auto* create = net.add_subcommand(
        "create",
        "Create a bridge network (or an overlay network across the cluster); prints its id");
    create->add_option("NAME", ca->name, "network name")->required();
    create->add_option("-d,--driver", ca->driver,
                       "bridge (default): this host only; overlay: every node of the cluster "
                       "(the daemon needs a cluster: config; IPv4 only)");
    create
        ->add_option("--host-subnet-size", ca->host_subnet_size,
                     "overlay: prefix length of the block of --subnet each node leases "
                     "(default 24)")
        ->check(CLI::Range(1, 32));
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
                       "com.docker.network.bridge.inhibit_ipv4=true|false, "
                       "com.docker.network.enable_dns=false (no embedded DNS on it)");
    create->add_flag("--internal", ca->internal,
                     "restrict external access: no traffic to or from outside the subnet, no NAT");
    create->fallthrough();
    create->callback([&, ca] { rc = cmd_create(ctx, *ca); });
}

void add_connect_command(CLI::App& net, Context& ctx, int& rc) {
    auto co = std::make_shared<ConnectArgs>();
    auto* connect = net.add_subcommand("connect", "Connect a network namespace to a network");
    connect->add_option("NETWORK", co->network, "network name or id")->required();
    connect
        ->add_option("TARGET", co->req.target,
                     "netns name in the netns dir, or an absolute path to a netns file")
        ->required();
    connect->add_option("--name", co->req.name,
                        "endpoint (container) name (default: the netns name)");
    connect->add_option("--ip", co->req.ipv4, "static IPv4 address, without prefix");
    connect->add_option("--ip6", co->req.ipv6, "static IPv6 address (dual-stack networks)");
    connect->add_option("--gw-priority", co->req.gw_priority,
                        "default-gateway priority (Docker 28): of a namespace's endpoints the "
                        "highest provides the default route (default 0; ties: dual stack first, "
                        "then network name)");
    connect->add_option("--mac", co->req.mac,
                        "static MAC address (default: random, locally administered)");
    connect
        ->add_option("--alias", co->req.aliases,
                     "another name the embedded DNS (127.0.0.11) answers for this endpoint on "
                     "this network (repeatable), like Docker's --network-alias")
        ->allow_extra_args(false);  // one NAME per --alias: `--alias db NETWORK TARGET` works
    connect->add_option(
        "-p,--publish", co->req.publish,
        "publish container ports on the host (repeatable), Docker's -p forms: 8080:80, "
        "8080:80/udp, 127.0.0.1:8080:80, 127.0.0.1::80 (ephemeral host port), 80, "
        "8000-8010:80 (a free port of the range), 8000-8002:80-82 (1:1), [::1]:8080:80 (IPv6)");
    connect->fallthrough();
    connect->callback([&, co] {
        rc = send(ctx, "POST", net_path(co->network) + "/connect", api::to_json(co->req));
    });

    auto dc = std::make_shared<ConnectArgs>();
    auto* disconnect =
        net.add_subcommand("disconnect", "Disconnect a network namespace from a network");
    disconnect->add_option("NETWORK", dc->network, "network name or id")->required();
    disconnect->add_option("TARGET", dc->req.target, "netns name or path, as given to connect")
        ->required();
    disconnect->fallthrough();
    disconnect->callback([&, dc] { rc = cmd_disconnect(ctx, dc->network, dc->req.target); });
}

}  // namespace

void add_network_commands(CLI::App& app, Context& ctx, int& rc) {
    auto* net = app.add_subcommand("network", summary("network"));
    net->require_subcommand(1);
    net->fallthrough();

    auto* ls = net->add_subcommand("ls", "List networks");
    ls->alias("list");
    ls->fallthrough();
    ls->callback([&] { rc = show(ctx, "/v1/networks", print_networks); });

    auto names = std::make_shared<std::vector<std::string>>();
    auto* inspect = net->add_subcommand(
        "inspect", "Show networks as JSON (an array, like `docker network inspect`)");
    inspect->add_option("NETWORK", *names, "network name, id or unique id prefix")->required();
    inspect->fallthrough();
    inspect->callback([&, names] { rc = cmd_inspect(ctx, *names); });

    add_create_command(*net, ctx, rc);

    auto rm_names = std::make_shared<std::vector<std::string>>();
    auto* rm = net->add_subcommand("rm", "Remove networks (must have no endpoints)");
    rm->alias("remove");
    rm->add_option("NETWORK", *rm_names, "network name, id or unique id prefix")->required();
    rm->fallthrough();
    rm->callback([&, rm_names] { rc = remove_each(ctx, *rm_names, net_path); });

    add_connect_command(*net, ctx, rc);
}

}  // namespace cnetd::netctl
