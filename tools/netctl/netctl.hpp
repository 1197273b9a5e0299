// netctl's shared pieces: the command context, exit codes, error reporting and table output.
// netctl talks only to cnetd's control socket through api::Client (docs/netctl.md).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "api/client.hpp"
#include "base/error.hpp"

namespace cnetd::netctl {

using json = api::json;

// Exit codes (documented in docs/netctl.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRequest = 1;      // the daemon refused or failed the request
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnreachable = 3;  // cannot talk to the daemon, or no answer in time

struct Context {
    std::string socket;
    bool json = false;
    // --timeout: seconds each request may take, connect to answer (then exit 3, the time waited
    // in the message).
    double timeout_s = std::chrono::duration<double>(api::kDefaultTimeout).count();
    api::Client client() const {
        return api::Client(socket, std::chrono::milliseconds(static_cast<long>(timeout_s * 1000)));
    }
};

// Prints "netctl: <message>" on stderr and returns the exit code for `e`.
int fail(const Error& e);
// A usage error found after parsing (e.g. `-o foo`): "netctl: <message>", exit 2.
int usage(const std::string& message);

// Prints rows as aligned columns (3 spaces between columns, like docker).
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);
void print_json(const json& j);
// DELETEs path_of(name) for each name, printing each removed name (or a JSON list); keeps going
// after a failure and reports every failure in one line. An unreachable daemon stops at once.
int remove_each(const Context& ctx, const std::vector<std::string>& names,
                const std::function<std::string(const std::string&)>& path_of);

// Each registers its subcommands on `app`; the callbacks store the exit code in `rc`.
void add_network_commands(CLI::App& app, Context& ctx, int& rc);
void add_netns_commands(CLI::App& app, Context& ctx, int& rc);
void add_info_command(CLI::App& app, Context& ctx, int& rc);
void add_firewall_commands(CLI::App& app, Context& ctx, int& rc);
void add_port_commands(CLI::App& app, Context& ctx, int& rc);

}  // namespace cnetd::netctl
