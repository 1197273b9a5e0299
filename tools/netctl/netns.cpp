// netctl netns create|ls|rm, and netctl info
#include <iostream>
#include <memory>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

int cmd_create(const Context& ctx, const std::string& name) {
    return send(
        ctx, "POST", "/v1/netns", api::to_json(api::CreateNetnsRequest{name}),
        [](const json& answer) { std::cout << api::read<api::Netns>(answer).path << '\n'; });
}

void print_netns(const json& answer) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : api::read_list<api::Netns>(answer)) rows.push_back({n.name, n.path});
    print_table({"NAME", "PATH"}, rows);
}

int cmd_rm(const Context& ctx, const std::vector<std::string>& names) {
    return remove_each(ctx, names,
                       [](const std::string& n) { return "/v1/netns/" + api::encode_segment(n); });
}

// The "Cluster" part of info: this node, etcd's reachability, its lease.
void print_cluster(const api::ClusterStatus& c) {
    std::string etcd;
    for (const auto& e : c.etcd) etcd += (etcd.empty() ? "" : ", ") + e;
    std::cout << "Cluster node: " << c.node << " (" << c.advertise_address << ")\n"
              << "Cluster etcd: " << etcd << '\n';
    if (c.etcd_reachable) {
        std::cout << "Cluster etcd reachable: yes\n";
    } else {
        std::cout << "Cluster etcd reachable: NO"
                  << (c.unreachable_since.empty() ? "" : " since " + c.unreachable_since)
                  << (c.etcd_error.empty() ? "" : ": " + c.etcd_error)
                  << " (local attach/detach go on; changes sync when it answers)\n";
    }
    // etcdctl prints lease ids in hex.
    std::cout << fmt::format(
                     "Cluster lease: {:x}, TTL {}\n", static_cast<uint64_t>(c.lease_id),
                     c.lease_ttl < 0 ? std::string("unknown") : std::to_string(c.lease_ttl) + "s")
              << "Cluster pending: " << c.pending << '\n'
              << "Cluster networks: " << c.networks << '\n'
              << "Cluster peers: " << c.peers << '\n';
}

void print_info(const json& answer) {
    const auto i = api::read<api::Info>(answer);
    std::cout << "Version: " << i.version << '\n'
              << "Socket: " << i.socket << '\n'
              << "StateDir: " << i.state_dir << '\n'
              << "NetnsDir: " << i.netns_dir << '\n'
              << "Networks: " << i.networks << '\n'
              << "Endpoints: " << i.endpoints << '\n'
              << "StartedAt: " << i.started_at << '\n';
    std::cout << "Firewall: " << i.firewall.backend << '\n';
    std::cout << "Firewall repairs: " << i.firewall.repairs << '\n';
    if (!i.firewall.last_repair.empty())
        std::cout << "Firewall last repair: " << i.firewall.last_repair << '\n';
    print_warnings(i.firewall.warnings);
    if (!i.last_reload.empty()) std::cout << "LastReload: " << i.last_reload << '\n';
    if (!i.state_read_only.empty())
        std::cout << "state: READ-ONLY (mutations refused until restart): " << i.state_read_only
                  << '\n';
    for (const auto& line : i.pending_restart) std::cout << "pending restart: " << line << '\n';
    if (i.cluster) print_cluster(*i.cluster);
}

}  // namespace

void add_netns_commands(CLI::App& app, Context& ctx, int& rc) {
    auto* ns = app.add_subcommand("netns", summary("netns"));
    ns->require_subcommand(1);
    ns->fallthrough();

    auto name = std::make_shared<std::string>();
    auto* create =
        ns->add_subcommand("create", "Create a named network namespace; prints its path");
    create->add_option("NAME", *name, "namespace name (a file name in the netns dir)")->required();
    create->fallthrough();
    create->callback([&, name] { rc = cmd_create(ctx, *name); });

    auto* ls = ns->add_subcommand("ls", "List the network namespaces in the netns dir");
    ls->alias("list");
    ls->fallthrough();
    ls->callback([&] { rc = show(ctx, "/v1/netns", print_netns); });

    auto names = std::make_shared<std::vector<std::string>>();
    auto* rm =
        ns->add_subcommand("rm", "Remove network namespaces (disconnecting their endpoints first)");
    rm->add_option("NAME", *names, "namespace name")->required();
    rm->fallthrough();
    rm->callback([&, names] { rc = cmd_rm(ctx, *names); });
}

void add_info_command(CLI::App& app, Context& ctx, int& rc) {
    auto* info = app.add_subcommand("info", summary("info"));
    info->fallthrough();
    info->callback([&] { rc = show(ctx, "/v1/info", print_info); });
}

}  // namespace cnetd::netctl
