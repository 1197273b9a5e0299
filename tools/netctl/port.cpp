// netctl port ls: every published port of every endpoint (GET /v1/ports).
#include <iostream>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

// ENDPOINT NETWORK PROTO HOST CONTAINER, e.g. `a  bridge  tcp  0.0.0.0:8080  172.17.0.2:80`;
// ranges stay ranges (`0.0.0.0:8000-8002  172.17.0.2:80-82`), one row per mapping.
void print_ports(const json& answer) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : api::read_list<api::PortRow>(answer)) {
        rows.push_back({p.endpoint, p.network, p.proto, p.host_ip + ":" + p.host_port,
                        p.container + ":" + p.container_port});
    }
    print_table({"ENDPOINT", "NETWORK", "PROTO", "HOST", "CONTAINER"}, rows);
}

}  // namespace

void add_port_commands(CLI::App& app, Context& ctx, int& rc) {
    auto* port = app.add_subcommand("port", summary("port"));
    port->require_subcommand(1);
    port->fallthrough();

    auto* ls = port->add_subcommand(
        "ls", "List published ports: endpoint, network, protocol, host and container address:port");
    ls->alias("list");
    ls->fallthrough();
    ls->callback([&] { rc = show(ctx, "/v1/ports", print_ports); });
}

}  // namespace cnetd::netctl
