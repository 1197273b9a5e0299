// netctl firewall show
#include <iostream>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

// GET /v1/firewall runs on the daemon's kernel worker (it reads the kernel's table), so it may
// take as long as a mutation in flight; no special handling needed in a one-shot CLI.
int cmd_show(const Context& ctx) {
    auto r = ctx.client().request("GET", "/v1/firewall");
    if (!r) return fail(r.error());
    if (ctx.json) {
        print_json(*r);
        return kExitOk;
    }
    std::string text = r->value("Text", "");
    if (!text.empty() && text.back() != '\n') text += '\n';
    std::cout << text;
    std::cout << "in sync: " << (r->value("InSync", false) ? "yes" : "no") << '\n';
    std::cout << "repairs: " << r->value("Repairs", uint64_t{0}) << '\n';
    if (auto w = r->find("Warnings"); w != r->end() && w->is_array())
        for (const auto& line : *w)
            if (line.is_string()) std::cout << "warning: " << line.get<std::string>() << '\n';
    return kExitOk;
}

}  // namespace

void add_firewall_commands(CLI::App& app, Context& ctx, int& rc) {
    auto* fw =
        app.add_subcommand("firewall", "Inspect cnetd's firewall (nftables table inet cnetd)");
    fw->require_subcommand(1);
    fw->fallthrough();

    auto* show = fw->add_subcommand(
        "show",
        "Print the intended table, whether the kernel matches it, the drift repair count and "
        "coexistence warnings");
    show->fallthrough();
    show->callback([&] { rc = cmd_show(ctx); });
}

}  // namespace cnetd::netctl
