// netctl netns create|ls|rm, and netctl info
#include <iostream>
#include <memory>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

int cmd_create(const Context& ctx, const std::string& name) {
    auto r = ctx.client().request("POST", "/v1/netns", json{{"Name", name}});
    if (!r) return fail(r.error());
    if (ctx.json)
        print_json(*r);
    else
        std::cout << r->value("Path", "") << '\n';
    return kExitOk;
}

int cmd_ls(const Context& ctx) {
    auto r = ctx.client().request("GET", "/v1/netns");
    if (!r) return fail(r.error());
    if (ctx.json) {
        print_json(*r);
        return kExitOk;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : *r) rows.push_back({n.value("Name", ""), n.value("Path", "")});
    print_table({"NAME", "PATH"}, rows);
    return kExitOk;
}

int cmd_rm(const Context& ctx, const std::vector<std::string>& names) {
    return remove_each(ctx, names,
                       [](const std::string& n) { return "/v1/netns/" + api::encode_segment(n); });
}

int cmd_info(const Context& ctx) {
    auto r = ctx.client().request("GET", "/v1/info");
    if (!r) return fail(r.error());
    if (ctx.json) {
        print_json(*r);
        return kExitOk;
    }
    for (const char* k :
         {"Version", "Socket", "StateDir", "NetnsDir", "Networks", "Endpoints", "StartedAt"}) {
        if (!r->contains(k)) continue;
        const json& v = (*r)[k];
        std::cout << k << ": " << (v.is_string() ? v.get<std::string>() : v.dump()) << '\n';
    }
    if (auto fw = r->find("Firewall"); fw != r->end() && fw->is_object()) {
        std::cout << "Firewall: " << fw->value("Backend", "") << '\n';
        std::cout << "Firewall repairs: " << fw->value("Repairs", uint64_t{0}) << '\n';
        if (std::string last = fw->value("LastRepair", ""); !last.empty())
            std::cout << "Firewall last repair: " << last << '\n';
        if (auto w = fw->find("Warnings"); w != fw->end() && w->is_array())
            for (const auto& line : *w)
                if (line.is_string()) std::cout << "warning: " << line.get<std::string>() << '\n';
    }
    if (std::string at = r->value("LastReload", ""); !at.empty()) std::cout << "LastReload: " << at << '\n';
    if (auto ro = r->find("StateReadOnly"); ro != r->end() && ro->is_string() && *ro != "")
        std::cout << "state: READ-ONLY (mutations refused until restart): "
                  << ro->get<std::string>() << '\n';
    if (auto p = r->find("PendingRestart"); p != r->end() && p->is_array())
        for (const auto& line : *p)
            if (line.is_string())
                std::cout << "pending restart: " << line.get<std::string>() << '\n';
    return kExitOk;
}

}  // namespace

void add_netns_commands(CLI::App& app, Context& ctx, int& rc) {
    auto* ns =
        app.add_subcommand("netns", "Manage network namespace files in the daemon's netns dir");
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
    ls->callback([&] { rc = cmd_ls(ctx); });

    auto names = std::make_shared<std::vector<std::string>>();
    auto* rm =
        ns->add_subcommand("rm", "Remove network namespaces (disconnecting their endpoints first)");
    rm->add_option("NAME", *names, "namespace name")->required();
    rm->fallthrough();
    rm->callback([&, names] { rc = cmd_rm(ctx, *names); });
}

void add_info_command(CLI::App& app, Context& ctx, int& rc) {
    auto* info = app.add_subcommand(
        "info",
        "Show the daemon's version, paths, counts and firewall state (backend, drift repairs, "
        "coexistence warnings)");
    info->fallthrough();
    info->callback([&] { rc = cmd_info(ctx); });
}

}  // namespace cnetd::netctl
