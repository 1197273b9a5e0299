// netctl: command-line client for cnetd (docs/netctl.md). Talks only to the control socket.
//
// Start-up (issue 20): CLI11 objects are costly to build (~15,000 instructions per subcommand,
// ~6,000 per option), so only the invoked top-level command is built in full; `netctl --help`
// and usage errors build one bare entry per command (name and summary). tools/bench.sh
// --startup measures it against a trivial C++ program.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "netctl.hpp"
#include "topology.hpp"

namespace cnetd::netctl {
namespace {

using AddCommand = void (*)(CLI::App&, Context&, int&);
struct Command {
    const char* name;
    const char* summary;  // what `netctl --help` lists; the add_* function reads it (summary())
    AddCommand add;
};

// Every top-level command, one line each: adding a command is adding its line here.
constexpr Command kCommands[] = {
    {"network", "Manage networks", add_network_commands},
    {"netns", "Manage network namespace files in the daemon's netns dir", add_netns_commands},
    {"firewall", "Inspect cnetd's firewall (nftables table inet cnetd)", add_firewall_commands},
    {"port", "Show published ports", add_port_commands},
    {"dns",
     "Show the embedded DNS resolver (127.0.0.11): the host's upstream servers and the file they "
     "come from, namespaces served, local names, queries in flight, and counters since cnetd "
     "started (docs/dns.md)",
     add_dns_command},
    {"node", "Show the nodes of the overlay cluster", add_node_commands},
    {"topology", kTopologySummary, add_topology_command},
    {"events", "Stream cnetd's events as they happen (docker events format; Ctrl-C ends it)",
     add_events_command},
    {"info",
     "Show the daemon's version, paths, counts, firewall state (backend, drift repairs, "
     "coexistence warnings) and cluster state (etcd, lease)",
     add_info_command},
};

// The global options that take a value (their value is not the command word).
bool takes_value(std::string_view arg) {
    return arg == "--socket" || arg == "--timeout";
}

// The index in argv of the first word that is not a global option or its value: the command
// invoked; 0 when none, or when `--help` comes before it (the top-level help lists every command).
int command_index(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help" || arg == "--") return 0;
        if (takes_value(arg)) {
            ++i;
            continue;
        }
        if (!arg.empty() && arg[0] == '-') continue;
        return i;
    }
    return 0;
}

// The global options, then `word`'s command in full when it is one, else every command bare.
void configure(CLI::App& app, Context& ctx, int& rc, const char* word) {
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
    for (const auto& c : kCommands) {
        if (word && std::strcmp(word, c.name) == 0) {
            c.add(app, ctx, rc);
            return;
        }
    }
    for (const auto& c : kCommands) app.add_subcommand(c.name, c.summary);
}

constexpr const char* kAbout = "netctl: manage cnetd's bridge networks and network namespaces";

// `netctl [--socket S] __complete WORD... CUR`: see complete_words().
int run_complete(Context& ctx, int argc, char** argv, int at) {
    std::vector<std::string> words(argv + at + 1, argv + argc);
    std::vector<char*> rest{argv[0]};
    for (int i = at + 1; i < argc; ++i) rest.push_back(argv[i]);
    const int cmd = command_index(static_cast<int>(rest.size()) - 1, rest.data());
    CLI::App app{kAbout, "netctl"};
    int rc = kExitOk;
    configure(app, ctx, rc, cmd ? rest[static_cast<size_t>(cmd)] : nullptr);
    return complete_words(app, ctx, words);
}

}  // namespace

const char* summary(std::string_view name) {
    for (const auto& c : kCommands)
        if (name == c.name) return c.summary;
    return "";
}

}  // namespace cnetd::netctl

int main(int argc, char** argv) {
    using namespace cnetd::netctl;
    Context ctx;
    const char* env = std::getenv(cnetd::api::kSocketEnv);
    ctx.socket = env && *env ? env : cnetd::api::kDefaultSocket;
    const int at = command_index(argc, argv);
    const char* word = at ? argv[at] : nullptr;
    // Shell completion's entry point: before any CLI11 parsing.
    if (word && std::strcmp(word, kCompleteCommand) == 0) {
        socket_from_args(ctx, argc, argv);
        return run_complete(ctx, argc, argv, at);
    }

    // Never destroyed: tearing the parser down at exit costs ~35,000 instructions (1.5% of a
    // start-up) for nothing. Held by a static, so leak checkers see it reachable.
    static CLI::App* const app = new CLI::App{kAbout, "netctl"};
    int rc = kExitOk;
    configure(*app, ctx, rc, word);
    try {
        app->parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app->exit(e);  // --help, --version
        return usage(e.what());
    }
    return rc;
}
