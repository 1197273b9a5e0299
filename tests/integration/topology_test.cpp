// netctl topology against the real daemon (issue 19): several networks, endpoints (one namespace
// on two networks), published ports and an idle namespace; the dot output piped through Graphviz
// (`dot -Tsvg`), --format svg and --format text must show every endpoint, network, address,
// namespace and port the daemon reports. Overlay peers: tests/integration/overlay_test.cpp
// (Overlay.Topology) and the builders' unit test (tests/api/topology_test.cpp).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;

namespace {

bool has_dot() {
    return run({"sh", "-c", "command -v dot"}).status == 0;
}

// Graphviz writes "-" and ">" in SVG text as entities.
std::string svg_text(std::string s) {
    std::string out;
    for (char c : s) {
        if (c == '-')
            out += "&#45;";
        else if (c == '>')
            out += "&gt;";
        else
            out += c;
    }
    return ">" + out + "</text>";
}

class Topology : public DaemonTest {
protected:
    // web (10.10.0.0/24): a (-p 8080:80 and a UDP port on 127.0.0.1), b; db (internal): b again;
    // bridge: c (-p 8000-8002:80-82); netns idle without endpoints.
    void SetUp() override {
        DaemonTest::SetUp();
        start();
        ok({"network", "create", "web", "--subnet", "10.10.0.0/24"});
        ok({"network", "create", "db", "--internal", "--subnet", "10.20.0.0/24"});
        container("a", "web", {"-p", "8080:80", "-p", "127.0.0.1:5353:53/udp"});
        container("b", "web");
        ok({"network", "connect", "db", "b"});
        container("c", "bridge", {"-p", "8000-8002:80-82"});
        ok({"netns", "create", "idle"});
    }

    // What an SVG of this setup must show: every endpoint name, its address (from inspect), the
    // networks, the namespaces and the ports.
    void expect_complete_svg(const std::string& svg) {
        ASSERT_NE(svg.find("<svg"), std::string::npos) << svg;
        std::vector<std::string> texts;
        for (auto [net, names] : std::vector<std::pair<std::string, std::vector<std::string>>>{
                 {"web", {"a", "b"}}, {"db", {"b"}}, {"bridge", {"c"}}}) {
            texts.push_back("network " + net);
            for (const auto& name : names) {
                json ep = inspect_endpoint(d, net, name);
                ASSERT_TRUE(ep.is_object()) << net << "/" << name;
                texts.push_back(name);
                texts.push_back(ep.value("IPv4Address", "?"));
                texts.push_back(ep.value("HostInterface", "?"));
            }
        }
        for (const char* s :
             {"netns a", "netns b", "netns c", "netns idle", "tcp 0.0.0.0:8080 -> 80",
              "udp 127.0.0.1:5353 -> 53", "tcp 0.0.0.0:8000-8002 -> 80-82"})
            texts.push_back(s);
        for (const auto& t : texts)
            EXPECT_NE(svg.find(svg_text(t)), std::string::npos) << t << " not in the SVG";
    }
};

// `netctl topology --format dot | dot -Tsvg` (the default format is dot).
TEST_F(Topology, DotRendersThroughGraphviz) {
    if (!has_dot()) GTEST_SKIP() << "graphviz (dot) not installed";
    const std::string netctl = std::getenv("NETCTL_BIN");
    CmdResult r = run({"bash", "-o", "pipefail", "-c",
                       netctl + " --socket " + d.socket() + " topology | dot -Tsvg"});
    ASSERT_EQ(r.status, 0) << r.err;
    expect_complete_svg(r.out);
    // One endpoint node per endpoint the daemon has (node lines inside a network's cluster).
    const std::string dot = ok({"topology", "--format", "dot"});
    size_t nodes = 0;
    for (size_t at = dot.find("\n    \"ep:"); at != std::string::npos;
         at = dot.find("\n    \"ep:", at + 1))
        ++nodes;
    EXPECT_EQ(nodes, 4u) << dot;
}

TEST_F(Topology, SvgFormat) {
    if (!has_dot()) GTEST_SKIP() << "graphviz (dot) not installed";
    expect_complete_svg(ok({"topology", "--format", "svg"}));
}

// Without Graphviz: a clear error naming the package, nothing on stdout, exit 1; dot and text
// still work.
TEST_F(Topology, SvgWithoutGraphvizNamesThePackage) {
    CmdResult r = run({"env", "PATH=/nonexistent", std::getenv("NETCTL_BIN"), "--socket",
                       d.socket(), "topology", "--format", "svg"});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err,
              "netctl: --format svg needs Graphviz's `dot`, which is not in PATH: install the "
              "Debian package graphviz (apt install graphviz), or print the graph with --format "
              "dot\n");
    r = run({"env", "PATH=/nonexistent", std::getenv("NETCTL_BIN"), "--socket", d.socket(),
             "topology", "--format", "text"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(fails({"topology", "--format", "png"}).find("--format: png not in {dot,svg,text}"),
              std::string::npos);
}

TEST_F(Topology, Text) {
    auto ip = [&](const std::string& net, const std::string& name) {
        return inspect_endpoint(d, net, name).value("IPv4Address", "?");
    };
    auto veth = [&](const std::string& net, const std::string& name) {
        return inspect_endpoint(d, net, name).value("HostInterface", "?");
    };
    const std::string text = ok({"topology", "--format", "text"});
    const std::string expected =
        "network bridge (bridge, local)  bridge docker0  subnet 172.17.0.0/16  gateway "
        "172.17.0.1\n"
        "  endpoint c  " +
        ip("bridge", "c") + "  netns c  eth0 (host " + veth("bridge", "c") +
        ")\n"
        "    port tcp 0.0.0.0:8000-8002 -> 80-82\n"
        "network db (bridge, local)  bridge " +
        json::parse(ok({"network", "inspect", "db"}))[0]["Options"].value(
            "com.docker.network.bridge.name", "?") +
        "  subnet 10.20.0.0/24  gateway 10.20.0.1  internal\n"
        "  endpoint b  " +
        ip("db", "b") + "  netns b  eth1 (host " + veth("db", "b") + ")\n";
    EXPECT_EQ(text.substr(0, expected.size()), expected) << text;
    const std::string web = "  endpoint a  " + ip("web", "a") + "  netns a  eth0 (host " +
                            veth("web", "a") + ")\n" +
                            "    port tcp 0.0.0.0:8080 -> 80\n    port udp 127.0.0.1:5353 -> 53\n" +
                            "  endpoint b  " + ip("web", "b") + "  netns b  eth0 (host " +
                            veth("web", "b") + ")\nnetns without endpoints: idle\n";
    EXPECT_NE(text.find(web), std::string::npos) << web << "\nnot in\n" << text;
    // --json: the reads the picture is built from.
    json raw = d.netctl_json({"topology"});
    EXPECT_EQ(raw["Networks"].size(), 3u);
    EXPECT_EQ(raw["Netns"].size(), 4u);
    EXPECT_EQ(raw["Ports"].size(), 3u);
    EXPECT_EQ(raw["Nodes"], json::array());
}

TEST_F(Topology, DaemonUnreachable) {
    d.kill(SIGTERM);
    CmdResult r = d.netctl({"topology"});
    EXPECT_EQ(r.status, 3) << r.out << r.err;
    EXPECT_NE(r.err.find("cannot connect to cnetd at"), std::string::npos) << r.err;
}

}  // namespace
