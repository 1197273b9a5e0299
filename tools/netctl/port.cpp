// netctl port ls: every published port of every endpoint (GET /v1/ports).
#include <iostream>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

std::string text_at(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// ENDPOINT NETWORK PROTO HOST CONTAINER, e.g. `a  bridge  tcp  0.0.0.0:8080  172.17.0.2:80`;
// ranges stay ranges (`0.0.0.0:8000-8002  172.17.0.2:80-82`), one row per mapping.
int cmd_ls(const Context& ctx) {
    auto r = ctx.client().request("GET", "/v1/ports");
    if (!r) return fail(r.error());
    if (ctx.json) {
        print_json(*r);
        return kExitOk;
    }
    std::vector<std::vector<std::string>> rows;
    if (r->is_array()) {
        for (const auto& p : *r) {
            rows.push_back({text_at(p, "Endpoint"), text_at(p, "Network"), text_at(p, "Proto"),
                            text_at(p, "HostIp") + ":" + text_at(p, "HostPort"),
                            text_at(p, "Container") + ":" + text_at(p, "ContainerPort")});
        }
    }
    print_table({"ENDPOINT", "NETWORK", "PROTO", "HOST", "CONTAINER"}, rows);
    return kExitOk;
}

}  // namespace

void add_port_commands(CLI::App& app, Context& ctx, int& rc) {
    auto* port = app.add_subcommand("port", "Show published ports");
    port->require_subcommand(1);
    port->fallthrough();

    auto* ls = port->add_subcommand(
        "ls", "List published ports: endpoint, network, protocol, host and container address:port");
    ls->alias("list");
    ls->fallthrough();
    ls->callback([&] { rc = cmd_ls(ctx); });
}

}  // namespace cnetd::netctl
