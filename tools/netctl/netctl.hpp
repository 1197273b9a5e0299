// netctl's shared pieces: the command context, exit codes, error reporting and table output.
// netctl talks only to cnetd's control socket through api::Client (docs/netctl.md), and builds
// requests and reads answers only through lib/api's messages (api/messages.hpp, api/codec.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "api/client.hpp"
#include "api/codec.hpp"
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
// "warning: <line>" for each (the daemon's firewall coexistence warnings).
void print_warnings(const std::vector<std::string>& warnings);

// GETs `path`: with --json prints the answer as it came, else hands it to `print` (which reads
// it through lib/api's messages). Returns the exit code (a failure reported on stderr).
int show(const Context& ctx, const std::string& path,
         const std::function<void(const json&)>& print);
// Sends `body` (an api message's to_json) to `path`: with --json prints the answer, else hands it
// to `print` when given. Returns the exit code.
int send(const Context& ctx, const char* method, const std::string& path, const json& body,
         const std::function<void(const json&)>& print = {});
// Sends `method` path_of(name) for each name, handing each answer to on_ok. A refused request is
// added to `errs` and the next name is tried; an unreachable daemon stops at once: its exit code
// (reported) is returned then, else nullopt.
std::optional<int> each_name(const Context& ctx, const std::vector<std::string>& names,
                             const char* method,
                             const std::function<std::string(const std::string&)>& path_of,
                             const std::function<void(const std::string&, json)>& on_ok,
                             ErrorList& errs);
// kExitOk when `errs` is empty, else every failure reported in one line (exit 1).
int finish(const ErrorList& errs);
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
void add_dns_command(CLI::App& app, Context& ctx, int& rc);
void add_node_commands(CLI::App& app, Context& ctx, int& rc);
void add_topology_command(CLI::App& app, Context& ctx, int& rc);  // topology.cpp

// The one-line summary of top-level command `name` (main.cpp's table, which `netctl --help`
// lists without building the commands); "" for an unknown name.
const char* summary(std::string_view name);

// Shell completion (etc/completion/netctl.bash, docs/netctl.md "Completion"): the hidden command
// `netctl __complete ...`.
inline constexpr const char* kCompleteCommand = "__complete";
// Sets ctx.socket from `--socket S` / `--socket=S` in argv (completion parses no CLI11).
void socket_from_args(Context& ctx, int argc, char** argv);
// Printed alone by `netctl __complete` when the word is a file name (--socket's value).
inline constexpr const char* kCompleteFiles = "__files__";
// `netctl [--socket S] __complete WORD... CUR` (`root` built for the command WORDs name): prints
// the candidates for CUR given the words before it, one per line: subcommands and aliases, options
// (when CUR starts with '-'), network or namespace names live from the daemon where the positional
// takes one, or kCompleteFiles. An unreachable or slow daemon (500 ms) gives no names and no
// message: a completion must never print errors or hang.
int complete_words(CLI::App& root, Context& ctx, const std::vector<std::string>& words);
void add_events_command(CLI::App& app, Context& ctx, int& rc);

}  // namespace cnetd::netctl
