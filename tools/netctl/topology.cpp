// netctl topology [--format dot|svg|text]: networks, bridges, endpoints, namespaces, published
// ports and overlay peers as a Graphviz graph, an SVG or an indented tree (topology.hpp).
#include "topology.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "netctl.hpp"

extern char** environ;

namespace cnetd::netctl {
namespace {

// --- shared facts -----------------------------------------------------------------------------

// What a network shows in both formats, read once.
struct NetFacts {
    std::string bridge, subnets, gateways;
};

NetFacts facts(const api::Network& n) {
    NetFacts f;
    auto b = n.options.find(api::kBridgeNameOption);
    if (b != n.options.end()) f.bridge = b->second;
    for (const auto& c : n.ipam) {
        if (!c.subnet.empty()) f.subnets += (f.subnets.empty() ? "" : ", ") + c.subnet;
        if (!c.gateway.empty()) f.gateways += (f.gateways.empty() ? "" : ", ") + c.gateway;
    }
    return f;
}

// "172.17.0.2/16", "172.17.0.2/16, fd00::2/64", or "-" (an endpoint has at least one in practice).
std::string addresses(const api::Endpoint& e) {
    std::string out = e.ipv4_address;
    if (!e.ipv6_address.empty()) out += (out.empty() ? "" : ", ") + e.ipv6_address;
    return out.empty() ? "-" : out;
}

// Endpoints of a network sorted by name (Containers is keyed by endpoint id).
std::vector<const api::Endpoint*> endpoints(const api::Network& n) {
    std::vector<const api::Endpoint*> out;
    for (const auto& [id, e] : n.containers) out.push_back(&e);
    std::sort(out.begin(), out.end(), [](auto* a, auto* b) {
        return a->name != b->name ? a->name < b->name : a->endpoint_id < b->endpoint_id;
    });
    return out;
}

// "tcp 0.0.0.0:8080 -> 80", "udp [::1]:53 -> 53", ranges as ranges.
std::string port_text(const api::PortRow& p) {
    const std::string host =
        p.host_ip.find(':') != std::string::npos ? "[" + p.host_ip + "]" : p.host_ip;
    return fmt::format("{} {}:{} -> {}", p.proto.empty() ? "tcp" : p.proto, host, p.host_port,
                       p.container_port);
}

// Name lookups over one Topology.
class Index {
public:
    explicit Index(const Topology& t) {
        for (const auto& n : t.netns) ns_by_path_[n.path] = n.name;
        for (const auto& p : t.ports) ports_[p.endpoint_id].push_back(&p);
        for (const auto& n : t.networks)
            for (const auto& [id, e] : n.containers) used_keys_.insert(e.sandbox_key);
    }
    // "a" for a namespace of the netns dir, else the path the endpoint was connected with.
    std::string ns_name(const std::string& key) const {
        auto it = ns_by_path_.find(key);
        return it != ns_by_path_.end() ? it->second : key;
    }
    const std::vector<const api::PortRow*>& ports(const std::string& endpoint_id) const {
        static const std::vector<const api::PortRow*> none;
        auto it = ports_.find(endpoint_id);
        return it != ports_.end() ? it->second : none;
    }
    bool has_endpoints(const api::Netns& n) const { return used_keys_.count(n.path) != 0; }

private:
    std::map<std::string, std::string> ns_by_path_;
    std::map<std::string, std::vector<const api::PortRow*>> ports_;
    std::set<std::string> used_keys_;
};

// --- dot --------------------------------------------------------------------------------------

// `s` as a dot quoted string: quotes and backslashes escaped (dot reads "\N", "\G", "\l" in
// labels as escapes), control characters turned into spaces.
std::string q(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
    }
    return out + '"';
}

// A multi-line label: each line escaped, joined by dot's "\n".
std::string lines(const std::vector<std::string>& ls) {
    std::string out = "\"";
    for (size_t i = 0; i < ls.size(); ++i) {
        std::string one = q(ls[i]);
        out += (i ? "\\n" : "") + one.substr(1, one.size() - 2);
    }
    return out + '"';
}

std::string ep_id(const api::Network& n, const api::Endpoint& e) {
    return q("ep:" + n.name + "/" + e.endpoint_id);
}

// The overlay part of a network's cluster: its VXLAN device linked to the bridge, and a dashed
// edge to each remote node (the nodes are drawn once, outside every cluster, by topology_dot).
void dot_overlay(const api::Network& n, const std::string& br, std::string& out,
                 std::string& edges) {
    const api::OverlayInfo& o = *n.overlay;
    const std::string vx = q("vx:" + n.name);
    out +=
        fmt::format("    {} [label={}, shape=component];\n", vx,
                    lines({"vxlan " + o.device, fmt::format("VNI {}", o.vni), "block " + o.block}));
    out += fmt::format("    {} -- {};\n", br, vx);
    for (const auto& p : o.peers)
        edges += fmt::format("  {} -- {} [style=dashed, label={}];\n", vx, q("node:" + p.node),
                             q(p.block));
}

// One network as a cluster; edges leaving it (to namespaces, ports, nodes) go to `edges`.
void dot_network(const api::Network& n, size_t i, const Index& idx, std::string& out,
                 std::string& edges) {
    const NetFacts f = facts(n);
    std::vector<std::string> label{"network " + n.name, n.driver + ", " + n.scope};
    if (!f.subnets.empty()) label.push_back(f.subnets);
    if (n.internal) label.push_back("internal");
    out += fmt::format("  subgraph \"cluster_{}\" {{\n    label={};\n    style=rounded;\n", i,
                       lines(label));
    const std::string br = q("br:" + n.name);
    out += fmt::format("    {} [label={}, shape=box3d];\n", br,
                       lines({"bridge " + (f.bridge.empty() ? "-" : f.bridge),
                              f.gateways.empty() ? "no gateway" : f.gateways}));
    for (const api::Endpoint* e : endpoints(n)) {
        const std::string id = ep_id(n, *e);
        out += fmt::format("    {} [label={}, style=\"rounded,filled\", fillcolor=\"#e8f0fe\"];\n",
                           id, lines({e->name, addresses(*e), e->interface}));
        out += fmt::format("    {} -- {} [label={}];\n", br, id, q(e->host_interface));
        edges += fmt::format("  {} -- {};\n", id, q("ns:" + e->sandbox_key));
        for (const api::PortRow* p : idx.ports(e->endpoint_id)) {
            if (p->network != n.name) continue;
            const std::string port = q("port:" + e->endpoint_id + " " + port_text(*p));
            edges += fmt::format(
                "  {} [label={}, shape=cds, style=filled, fillcolor=\"#fff4d6\"];\n  {} -- {};\n",
                port, q(port_text(*p)), id, port);
        }
    }
    if (n.overlay) dot_overlay(n, br, out, edges);
    out += "  }\n";
}

// Every namespace an endpoint lives in or the netns dir holds, once each.
void dot_namespaces(const Topology& t, const Index& idx, std::string& out) {
    std::set<std::string> keys;
    for (const auto& n : t.networks)
        for (const auto& [id, e] : n.containers) keys.insert(e.sandbox_key);
    for (const auto& n : t.netns) keys.insert(n.path);
    for (const auto& k : keys)
        out += fmt::format("  {} [label={}, shape=folder];\n", q("ns:" + k),
                           q("netns " + idx.ns_name(k)));
}

// The cluster's remote nodes: overlay peers and the nodes GET /v1/nodes lists, once each.
void dot_nodes(const Topology& t, std::string& out) {
    std::map<std::string, std::string> nodes;  // name -> underlay address
    for (const auto& n : t.networks)
        if (n.overlay)
            for (const auto& p : n.overlay->peers) nodes[p.node] = p.address;
    for (const auto& n : t.nodes)
        if (!n.self) nodes[n.name] = n.address;
    for (const auto& [name, address] : nodes)
        out += fmt::format("  {} [label={}, shape=box3d, style=dashed];\n", q("node:" + name),
                           lines({"node " + name, address}));
}

// --- text -------------------------------------------------------------------------------------

void text_network(const api::Network& n, const Index& idx, std::string& out) {
    const NetFacts f = facts(n);
    out +=
        fmt::format("network {} ({}, {})  bridge {}  subnet {}  gateway {}{}\n", n.name, n.driver,
                    n.scope, f.bridge.empty() ? "-" : f.bridge, f.subnets.empty() ? "-" : f.subnets,
                    f.gateways.empty() ? "-" : f.gateways, n.internal ? "  internal" : "");
    if (n.overlay) {
        const api::OverlayInfo& o = *n.overlay;
        out += fmt::format("  vxlan {}  VNI {}  block {}\n", o.device, o.vni, o.block);
        for (const auto& p : o.peers)
            out += fmt::format("    peer {}  {}  block {}\n", p.node, p.address, p.block);
    }
    for (const api::Endpoint* e : endpoints(n)) {
        out += fmt::format("  endpoint {}  {}  netns {}  {} (host {})\n", e->name, addresses(*e),
                           idx.ns_name(e->sandbox_key), e->interface, e->host_interface);
        for (const api::PortRow* p : idx.ports(e->endpoint_id))
            if (p->network == n.name) out += "    port " + port_text(*p) + "\n";
    }
}

// --- fetching and rendering -------------------------------------------------------------------

// GET `path` into `into` (lib/api's reading) and raw[key].
template <class T>
Result<void> get_list(const api::Client& c, const char* path, const char* key, std::vector<T>& into,
                      api::json* raw) {
    auto r = c.request("GET", path);
    if (!r) return r.error();
    into = api::read_list<T>(*r);
    if (raw) (*raw)[key] = std::move(*r);
    return ok();
}

// The child's stdin: `data` in a memory file, so that dot can read it whole before writing
// anything and neither side can block on a full pipe.
Result<int> memory_file(const std::string& data) {
    int fd = memfd_create("netctl-topology.dot", MFD_CLOEXEC);
    if (fd < 0) return Error::sys(errno, "memfd_create");
    for (size_t off = 0; off < data.size();) {
        ssize_t n = write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            Error e = Error::sys(errno, "write to memfd");
            close(fd);
            return e;
        }
        off += static_cast<size_t>(n);
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

// Reads `fd` to EOF.
std::string read_all(int fd) {
    std::string out;
    char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

int cmd_topology(const Context& ctx, const std::string& format) {
    api::json raw = api::json::object();
    auto t = fetch_topology(ctx.client(), ctx.json ? &raw : nullptr);
    if (!t) return fail(t.error());
    if (ctx.json) {
        print_json(raw);
        return kExitOk;
    }
    if (format == "text") {
        std::cout << topology_text(*t);
        return kExitOk;
    }
    const std::string dot = topology_dot(*t);
    if (format == "dot") {
        std::cout << dot;
        return kExitOk;
    }
    auto image = svg(dot);
    if (!image) return fail(image.error());
    std::cout << *image;
    return kExitOk;
}

}  // namespace

Result<Topology> fetch_topology(const api::Client& client, api::json* raw) {
    Topology t;
    auto info = client.request("GET", "/v1/info");
    if (!info) return info.error();
    const auto i = api::read<api::Info>(*info);
    CNETD_TRY(get_list(client, "/v1/networks", "Networks", t.networks, raw));
    CNETD_TRY(get_list(client, "/v1/netns", "Netns", t.netns, raw));
    CNETD_TRY(get_list(client, "/v1/ports", "Ports", t.ports, raw));
    if (i.cluster) {  // outside a cluster /v1/nodes answers 400
        t.node = i.cluster->node;
        CNETD_TRY(get_list(client, "/v1/nodes", "Nodes", t.nodes, raw));
    } else if (raw) {
        (*raw)["Nodes"] = api::json::array();
    }
    return t;
}

std::string topology_dot(const Topology& t) {
    const Index idx(t);
    std::string out = "graph cnetd {\n";
    out += fmt::format(
        "  graph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", fontsize=12, label={}];\n"
        "  node [fontname=\"Helvetica\", fontsize=10, shape=box, style=rounded];\n"
        "  edge [fontname=\"Helvetica\", fontsize=9];\n",
        q(t.node.empty() ? "cnetd topology" : "cnetd topology, node " + t.node));
    std::string edges;
    for (size_t i = 0; i < t.networks.size(); ++i) dot_network(t.networks[i], i, idx, out, edges);
    dot_namespaces(t, idx, out);
    dot_nodes(t, out);
    return out + edges + "}\n";
}

std::string topology_text(const Topology& t) {
    const Index idx(t);
    std::string out;
    for (const auto& n : t.networks) text_network(n, idx, out);
    std::string lone;
    for (const auto& n : t.netns)
        if (!idx.has_endpoints(n)) lone += (lone.empty() ? "" : ", ") + n.name;
    if (!lone.empty()) out += "netns without endpoints: " + lone + "\n";
    for (const auto& n : t.nodes) {
        std::string blocks;
        for (const auto& b : n.blocks) blocks += (blocks.empty() ? "" : ", ") + b;
        out += fmt::format("node {}{}  {}  blocks {}\n", n.name, n.self ? " (this node)" : "",
                           n.address, blocks.empty() ? "-" : blocks);
    }
    if (out.empty()) out = "no networks\n";
    return out;
}

Result<std::string> svg(const std::string& dot) {
    auto in = memory_file(dot);
    if (!in) return in.error();
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        Error e = Error::sys(errno, "pipe");
        close(*in);
        return e;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, *in, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    char arg0[] = "dot", arg1[] = "-Tsvg";
    char* argv[] = {arg0, arg1, nullptr};
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, "dot", &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(*in);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        if (rc == ENOENT)
            return Error::not_found(
                "--format svg needs Graphviz's `dot`, which is not in PATH: install the Debian "
                "package graphviz (apt install graphviz), or print the graph with --format dot");
        return Error::sys(rc, "cannot run dot -Tsvg");
    }
    std::string image = read_all(out[0]);
    close(out[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return Error::internal(fmt::format(
            "dot -Tsvg failed ({}); the graph it was given: netctl topology --format dot",
            WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                              : fmt::format("signal {}", WTERMSIG(status))));
    return image;
}

void add_topology_command(CLI::App& app, Context& ctx, int& rc) {
    auto format = std::make_shared<std::string>("dot");
    auto* topo = app.add_subcommand("topology", kTopologySummary);
    topo->add_option("--format", *format,
                     "dot: Graphviz text (e.g. | dot -Tpng > t.png); svg: rendered by Graphviz's "
                     "dot; text: an indented tree")
        ->check(CLI::IsMember({"dot", "svg", "text"}))
        ->capture_default_str();
    topo->fallthrough();
    topo->callback([&, format] { rc = cmd_topology(ctx, *format); });
}

}  // namespace cnetd::netctl
