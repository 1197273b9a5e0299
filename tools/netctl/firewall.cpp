// netctl firewall show
#include <iostream>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

// GET /v1/firewall runs on the daemon's kernel worker (it reads the kernel's table), so it may
// take as long as a mutation in flight; no special handling needed in a one-shot CLI.
void print_firewall(const json& answer) {
    const auto f = api::read<api::FirewallShow>(answer);
    std::string text = f.text;
    if (!text.empty() && text.back() != '\n') text += '\n';
    std::cout << text;
    std::cout << "in sync: " << (f.in_sync ? "yes" : "no") << '\n';
    std::cout << "repairs: " << f.repairs << '\n';
    print_warnings(f.warnings);
}

}  // namespace

void add_firewall_commands(CLI::App& app, Context& ctx, int& rc) {
    auto* fw = app.add_subcommand("firewall", summary("firewall"));
    fw->require_subcommand(1);
    fw->fallthrough();

    auto* show_cmd = fw->add_subcommand(
        "show",
        "Print the intended table, whether the kernel matches it, the drift repair count and "
        "coexistence warnings");
    show_cmd->fallthrough();
    show_cmd->callback([&] { rc = show(ctx, "/v1/firewall", print_firewall); });
}

}  // namespace cnetd::netctl
