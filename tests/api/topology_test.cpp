// netctl topology's builders (tools/netctl/topology.hpp) without a daemon: a hand-made Topology
// (two networks, one of them overlay, a namespace in both, published ports, cluster nodes) turned
// into text and dot; the dot is also rendered by Graphviz when installed (CI installs it), names
// with quotes and backslashes included.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "topology.hpp"

namespace cnetd::netctl {
namespace {

bool has_dot() {
    return std::system("command -v dot >/dev/null 2>&1") == 0;
}

size_t count(const std::string& hay, const std::string& needle) {
    size_t n = 0;
    for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
}

api::Endpoint endpoint(const std::string& id, const std::string& name, const std::string& ip,
                       const std::string& key, const std::string& ifname, const std::string& veth) {
    api::Endpoint e;
    e.endpoint_id = id;
    e.name = name;
    e.ipv4_address = ip;
    e.sandbox_key = key;
    e.interface = ifname;
    e.host_interface = veth;
    return e;
}

// bridge (docker0): endpoint a in netns a with two published ports; mesh (overlay, VXLAN vx-mesh,
// peer n2): endpoint b, also in netns a; netns idle without endpoints; nodes n1 (self), n2, n3.
Topology sample() {
    Topology t;
    api::Network br;
    br.name = "bridge";
    br.ipam = {{"172.17.0.0/16", "172.17.0.1", "", {}}};
    br.options = {{api::kBridgeNameOption, "docker0"}};
    br.containers["e1"] = endpoint("e1", "a", "172.17.0.2/16", "/run/ns/a", "eth0", "veth1");
    api::Network mesh;
    mesh.name = "mesh";
    mesh.driver = "overlay";
    mesh.scope = "global";
    mesh.ipam = {{"10.200.0.0/16", "10.200.1.1", "", {}}};
    mesh.options = {{api::kBridgeNameOption, "br-mesh"}};
    mesh.containers["e2"] = endpoint("e2", "b", "10.200.1.2/24", "/run/ns/a", "eth1", "veth2");
    mesh.overlay = api::OverlayInfo{"10.200.0.0/16",
                                    24,
                                    "10.200.1.0/24",
                                    4097,
                                    "vx-mesh",
                                    "n1",
                                    {{"n2", "192.0.2.2", "10.200.2.0/24", "02:00:00:00:00:02"}}};
    t.networks = {br, mesh};
    t.netns = {{"a", "/run/ns/a"}, {"idle", "/run/ns/idle"}};
    t.ports = {{"bridge", "a", "e1", "172.17.0.2", "tcp", "0.0.0.0", "8080", "80"},
               {"bridge", "a", "e1", "172.17.0.2", "udp", "::1", "53", "53"}};
    t.nodes = {{"n1", "192.0.2.1", {"mesh 10.200.1.0/24"}, 60, "", true},
               {"n2", "192.0.2.2", {"mesh 10.200.2.0/24"}, 55, "", false},
               {"n3", "192.0.2.3", {}, -1, "", false}};
    t.node = "n1";
    return t;
}

TEST(Topology, TextIsAnIndentedTree) {
    EXPECT_EQ(topology_text(sample()),
              "network bridge (bridge, local)  bridge docker0  subnet 172.17.0.0/16  gateway "
              "172.17.0.1\n"
              "  endpoint a  172.17.0.2/16  netns a  eth0 (host veth1)\n"
              "    port tcp 0.0.0.0:8080 -> 80\n"
              "    port udp [::1]:53 -> 53\n"
              "network mesh (overlay, global)  bridge br-mesh  subnet 10.200.0.0/16  gateway "
              "10.200.1.1\n"
              "  vxlan vx-mesh  VNI 4097  block 10.200.1.0/24\n"
              "    peer n2  192.0.2.2  block 10.200.2.0/24\n"
              "  endpoint b  10.200.1.2/24  netns a  eth1 (host veth2)\n"
              "netns without endpoints: idle\n"
              "node n1 (this node)  192.0.2.1  blocks mesh 10.200.1.0/24\n"
              "node n2  192.0.2.2  blocks mesh 10.200.2.0/24\n"
              "node n3  192.0.2.3  blocks -\n");
    EXPECT_EQ(topology_text(Topology{}), "no networks\n");
}

TEST(Topology, DotHasEveryPartAndLink) {
    const std::string dot = topology_dot(sample());
    EXPECT_EQ(dot.rfind("graph cnetd {\n", 0), 0u) << dot;
    EXPECT_NE(dot.find("label=\"cnetd topology, node n1\""), std::string::npos) << dot;
    // One cluster per network, its bridge and endpoints inside; the veth on the bridge edge.
    EXPECT_NE(dot.find("subgraph \"cluster_0\" {\n    label=\"network bridge\\nbridge, local\\n"
                       "172.17.0.0/16\";"),
              std::string::npos)
        << dot;
    EXPECT_NE(dot.find("\"br:bridge\" [label=\"bridge docker0\\n172.17.0.1\", shape=box3d];"),
              std::string::npos);
    EXPECT_NE(dot.find("\"ep:bridge/e1\" [label=\"a\\n172.17.0.2/16\\neth0\""), std::string::npos);
    EXPECT_NE(dot.find("\"br:bridge\" -- \"ep:bridge/e1\" [label=\"veth1\"];"), std::string::npos);
    // The namespace in both networks is one node with an edge from each endpoint; idle alone.
    EXPECT_EQ(count(dot, "\"ns:/run/ns/a\" ["), 1u) << dot;
    EXPECT_NE(dot.find("\"ep:bridge/e1\" -- \"ns:/run/ns/a\";"), std::string::npos);
    EXPECT_NE(dot.find("\"ep:mesh/e2\" -- \"ns:/run/ns/a\";"), std::string::npos);
    EXPECT_NE(dot.find("\"ns:/run/ns/idle\" [label=\"netns idle\""), std::string::npos);
    // Ports hang off their endpoint.
    EXPECT_NE(dot.find("\"ep:bridge/e1\" -- \"port:e1 tcp 0.0.0.0:8080 -> 80\";"),
              std::string::npos)
        << dot;
    EXPECT_NE(dot.find("[label=\"udp [::1]:53 -> 53\", shape=cds"), std::string::npos);
    // Overlay: the VXLAN device on the bridge, a dashed edge to the peer; n3 (no block) alone,
    // this node (n1) not drawn as a remote one.
    EXPECT_NE(dot.find("\"vx:mesh\" [label=\"vxlan vx-mesh\\nVNI 4097\\nblock 10.200.1.0/24\""),
              std::string::npos)
        << dot;
    EXPECT_NE(dot.find("\"br:mesh\" -- \"vx:mesh\";"), std::string::npos);
    EXPECT_NE(dot.find("\"vx:mesh\" -- \"node:n2\" [style=dashed, label=\"10.200.2.0/24\"];"),
              std::string::npos);
    EXPECT_NE(dot.find("\"node:n3\" [label=\"node n3\\n192.0.2.3\""), std::string::npos);
    EXPECT_EQ(dot.find("\"node:n1\""), std::string::npos);
    EXPECT_EQ(dot.substr(dot.size() - 2), "}\n");
}

TEST(Topology, GraphvizRendersItAndEveryName) {
    if (!has_dot()) GTEST_SKIP() << "graphviz (dot) not installed";
    auto image = svg(topology_dot(sample()));
    ASSERT_TRUE(image.ok()) << image.error().message();
    EXPECT_NE(image->find("<svg"), std::string::npos);
    for (const char* text :
         {">a</text>", ">b</text>", ">netns a</text>", ">netns idle</text>",
          ">vxlan vx&#45;mesh</text>", ">node n3</text>", ">tcp 0.0.0.0:8080 &#45;&gt; 80</text>"})
        EXPECT_NE(image->find(text), std::string::npos) << text << "\n" << *image;
    auto empty = svg(topology_dot(Topology{}));
    EXPECT_TRUE(empty.ok()) << empty.error().message();
}

// Names are user text: quotes, backslashes ("\N" would be dot's node-name escape) and control
// characters must not break the graph or change what it shows.
TEST(Topology, HostileNamesStayValidDot) {
    Topology t = sample();
    t.networks[0].name = "we\"b\\N";
    t.networks[0].containers["e1"].name = "q\"uo\\te\tx";
    t.ports[0].network = t.ports[1].network = t.networks[0].name;
    const std::string dot = topology_dot(t);
    EXPECT_NE(dot.find("label=\"q\\\"uo\\\\te x\\n"), std::string::npos) << dot;
    EXPECT_NE(dot.find("\"br:we\\\"b\\\\N\" -- \"ep:we\\\"b\\\\N/e1\""), std::string::npos) << dot;
    if (!has_dot()) GTEST_SKIP() << "graphviz (dot) not installed";
    auto image = svg(dot);
    ASSERT_TRUE(image.ok()) << image.error().message() << "\n" << dot;
    EXPECT_NE(image->find(">q&quot;uo\\te x</text>"), std::string::npos) << *image;
    EXPECT_NE(image->find(">network we&quot;b\\N</text>"), std::string::npos) << *image;
}

TEST(Topology, SvgErrorsNameTheMissingPackageOrDotsFailure) {
    const char* old = std::getenv("PATH");
    const std::string saved = old ? old : "";
    setenv("PATH", "/nonexistent", 1);
    auto missing = svg("graph {}");
    setenv("PATH", saved.c_str(), 1);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().message(),
              "--format svg needs Graphviz's `dot`, which is not in PATH: install the Debian "
              "package graphviz (apt install graphviz), or print the graph with --format dot");
    if (!has_dot()) GTEST_SKIP() << "graphviz (dot) not installed";
    auto broken = svg("graph {");  // dot reports the syntax error on stderr and exits 1
    ASSERT_FALSE(broken.ok());
    EXPECT_EQ(broken.error().message(),
              "dot -Tsvg failed (exit status 1); the graph it was given: netctl topology "
              "--format dot");
}

}  // namespace
}  // namespace cnetd::netctl
