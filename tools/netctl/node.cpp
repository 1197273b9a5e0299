// netctl node ls: the nodes of this daemon's overlay cluster (GET /v1/nodes, docs/overlay.md).
#include <iostream>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

// "59m12s"-like, short: how long a node's lease has left.
std::string duration(int64_t s) {
    if (s < 0) return "-";
    if (s < 60) return fmt::format("{}s", s);
    if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
    return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
}

// NAME ADDRESS BLOCKS TTL LAST SEEN; the answering node is marked "*" after its name (docker
// node ls marks itself the same way); one node's blocks joined by ", ".
void print_nodes(const json& answer) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : api::read_list<api::NodeStatus>(answer)) {
        std::string blocks;
        for (const auto& b : n.blocks) blocks += (blocks.empty() ? "" : ", ") + b;
        rows.push_back({n.name + (n.self ? " *" : ""), n.address, blocks.empty() ? "-" : blocks,
                        duration(n.ttl), n.last_seen.empty() ? "-" : n.last_seen});
    }
    print_table({"NAME", "ADDRESS", "BLOCKS", "TTL", "LAST SEEN"}, rows);
}

}  // namespace

void add_node_commands(CLI::App& app, Context& ctx, int& rc) {
    auto* node = app.add_subcommand("node", summary("node"));
    node->require_subcommand(1);
    node->fallthrough();

    auto* ls = node->add_subcommand(
        "ls",
        "List the cluster's nodes: name (* = this one), underlay address, leased blocks, "
        "lease TTL left, last renewal");
    ls->alias("list");
    ls->fallthrough();
    ls->callback([&] { rc = show(ctx, "/v1/nodes", print_nodes); });
}

}  // namespace cnetd::netctl
