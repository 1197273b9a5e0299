// netctl: command-line client for cnetd (docs/netctl.md). Talks only to the control socket.
#include <cstdio>
#include <cstdlib>

#include "netctl.hpp"

int main(int argc, char** argv) {
    using namespace cnetd::netctl;
    Context ctx;
    const char* env = std::getenv(cnetd::api::kSocketEnv);
    ctx.socket = env && *env ? env : cnetd::api::kDefaultSocket;

    CLI::App app{"netctl: manage cnetd's bridge networks and network namespaces", "netctl"};
    app.require_subcommand(1);
    app.fallthrough();
    app.add_option("--socket", ctx.socket, "cnetd control socket (env CNETD_SOCKET)")
        ->capture_default_str();
    app.add_flag("--json", ctx.json, "print JSON instead of tables/text");
    app.add_option("--timeout", ctx.timeout_s,
                   "seconds to wait for cnetd per request, connect to answer (then exit 3)")
        ->check(CLI::Range(0.001, 86400.0))
        ->capture_default_str();
    app.set_version_flag("--version", "netctl 0.1.0");
    app.footer(
        "Exit status: 0 success, 1 the request failed, 2 usage error, 3 cnetd unreachable or no "
        "answer within --timeout.");

    int rc = kExitOk;
    add_network_commands(app, ctx, rc);
    add_netns_commands(app, ctx, rc);
    add_firewall_commands(app, ctx, rc);
    add_port_commands(app, ctx, rc);
    add_dns_command(app, ctx, rc);
    add_node_commands(app, ctx, rc);
    add_events_command(app, ctx, rc);
    add_info_command(app, ctx, rc);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        return usage(e.what());
    }
    return rc;
}
