// Published ports end to end: the real cnetd and netctl, real TCP and UDP traffic.
//
// Each test gets a fresh network namespace (the "host", where cnetd runs) with two other
// namespaces routed behind it, standing in for the outside world:
//
//   wan netns: eth0 198.51.100.2/24 ---- wan0 198.51.100.1/24 [host netns: cnetd, docker0, ...]
//   lan netns: eth0 203.0.113.2/24  ---- lan0 203.0.113.1/24
//
// Containers run TagServers that answer with their own name, so every cell shows not only that a
// published port answered but which container answered it. Every "must not answer" is paired with
// a path that does answer in the same setup, so a broken topology cannot pass for a protection.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <regex>
#include <thread>

#include "fixture.hpp"
#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* kLanNs = "cnetd-it-plan";
constexpr const char* kHostLan = "203.0.113.1";

using P = TagServer::Proto;

class Ports : public DaemonTest {
protected:
    void SetUp() override {
        DaemonTest::SetUp();
        add_wan();
        add_outside(kLanNs, "lan0", "203.0.113");
    }
    void TearDown() override {
        servers_.clear();
        DaemonTest::TearDown();
    }

    static std::string lan_path() { return netns_path(kLanNs); }

    // TCP and UDP TagServers answering `tag` on `port` in container `name` (kept until TearDown).
    void serve(const std::string& name, int port, const std::string& tag) {
        for (P proto : {P::Tcp, P::Udp}) {
            servers_.push_back(std::make_unique<TagServer>(ns(name), proto, "0.0.0.0", port, tag));
            ASSERT_TRUE(servers_.back()->ready()) << name << ":" << port;
        }
    }
    // Who answers addr:port over TCP and over UDP from `from` ("" = the host): "tcp=a udp=a".
    static std::string ask(const std::string& from, const std::string& addr, int port) {
        return "tcp=" + tcp_whoami(from, addr, port, 1000ms) +
               " udp=" + udp_ask(from, addr, port, 700ms);
    }
    json published_map() {
        CmdResult r = run({"nft", "-j", "list", "map", "inet", "cnetd", "published"});
        if (r.status != 0) return json();
        return json::parse(r.out, nullptr, false);
    }
    // Elements of the published map ([] when empty or missing).
    json published_elems() {
        json m = published_map();
        if (!m.is_object()) return json::array();
        for (const auto& o : m["nftables"])
            if (o.contains("map")) return o["map"].value("elem", json::array());
        return json::array();
    }

    std::vector<std::unique_ptr<TagServer>> servers_;
};

// The reachability matrix of one published port (TCP and UDP), like Docker without its proxy.
TEST_F(Ports, ReachableFromEveryWhereDockerAllows) {
    start();
    ok({"network", "create", "web", "--subnet", "10.20.0.0/24"});
    container("a", "bridge", {"-p", "8080:80", "-p", "8080:80/udp"});
    container("b");
    container("w", "web");
    serve("a", 80, "a");
    const std::string want = "tcp=a udp=a";
    EXPECT_EQ(ask(wan_path(), kHostWan, 8080), want) << "wan -> host wan address";
    EXPECT_EQ(ask(lan_path(), kHostLan, 8080), want) << "lan -> host lan address (0.0.0.0)";
    EXPECT_EQ(ask("", kHostWan, 8080), want) << "host -> own address";
    EXPECT_EQ(ask("", "127.0.0.1", 8080), want) << "host -> 127.0.0.1";
    EXPECT_EQ(ask(ns("b"), kHostWan, 8080), want) << "neighbour -> host address (hairpin)";
    EXPECT_EQ(ask(ns("a"), kHostWan, 8080), want) << "itself -> host address (hairpin)";
    EXPECT_EQ(ask(ns("w"), kHostWan, 8080), want) << "other network -> host address";
    // Controls: an unpublished host port and the container's other ports stay closed.
    serve("a", 81, "a81");
    EXPECT_EQ(ask(wan_path(), kHostWan, 8081), "tcp= udp=") << "nothing published on 8081";
    EXPECT_EQ(ask(wan_path(), kHostWan, 81), "tcp= udp=") << "container port 81 not published";
}

// 127.0.0.1:9090:80 serves the host and nobody else, even with a crafted route to 127.0.0.1.
TEST_F(Ports, LoopbackMappingIsNotReachableFromOutside) {
    // The crafted route: wan sends 127.0.0.1 to the host (route_localnet lets it leave eth0; a
    // rule ahead of the local table sends it to the host), and the host accepts 127/8 on wan0.
    wan({"sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"});
    wan({"ip", "rule", "del", "pref", "0", "lookup", "local"});
    wan({"ip", "rule", "add", "pref", "1000", "lookup", "local"});
    wan({"ip", "rule", "add", "pref", "10", "to", "127.0.0.1", "lookup", "100"});
    wan({"ip", "route", "add", "127.0.0.1", "via", kHostWan, "dev", "eth0", "table", "100"});
    sh({"sysctl", "-qw", "net.ipv4.conf.wan0.route_localnet=1"});
    sh({"sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"});
    // Control: without cnetd's table the crafted route does reach a host service on 127.0.0.1.
    TagServer host_lo("", P::Tcp, "127.0.0.1", 7171, "host");
    ASSERT_TRUE(host_lo.ready());
    const bool route_works = tcp_whoami(wan_path(), "127.0.0.1", 7171, 1000ms) == "host";

    start();
    container("a", "bridge", {"-p", "127.0.0.1:9090:80", "-p", "127.0.0.1:9090:80/udp"});
    serve("a", 80, "a");
    EXPECT_EQ(ask("", "127.0.0.1", 9090), "tcp=a udp=a") << "host -> 127.0.0.1";
    EXPECT_EQ(ask("", kHostWan, 9090), "tcp= udp=") << "bound to 127.0.0.1 only";
    EXPECT_EQ(ask(wan_path(), kHostWan, 9090), "tcp= udp=") << "wan -> host address";
    EXPECT_EQ(ask(ns("a"), kHostWan, 9090), "tcp= udp=") << "container -> host address";
    EXPECT_TRUE(route_works) << "the crafted route to 127.0.0.1 did not work even without cnetd";
    if (route_works) {
        EXPECT_EQ(ask(wan_path(), "127.0.0.1", 9090), "tcp= udp=") << "wan -> 127.0.0.1 (crafted)";
    }
    // A 127.0.0.1 destination from a container's bridge is dropped too (route_localnet is on
    // for docker0 so that host -> 127.0.0.1 works).
    container("b");
    sh({"nsenter", "--net=" + ns("b"), "ip", "route", "add", "127.0.0.1/32", "via", "172.17.0.1"});
    EXPECT_EQ(ask(ns("b"), "127.0.0.1", 9090), "tcp= udp=") << "neighbour -> 127.0.0.1 via gw";
}

// A mapping bound to 198.51.100.1 answers there and not on the host's other address.
TEST_F(Ports, HostIpMappingAnswersOnlyOnThatAddress) {
    start();
    container("a", "bridge",
              {"-p", std::string(kHostWan) + ":8181:80", "-p",
               std::string(kHostWan) + ":8181:80/udp", "-p", "8282:80", "-p", "8282:80/udp"});
    serve("a", 80, "a");
    EXPECT_EQ(ask(wan_path(), kHostWan, 8181), "tcp=a udp=a") << "wan -> bound address";
    EXPECT_EQ(ask(lan_path(), kHostWan, 8181), "tcp=a udp=a") << "lan -> bound address";
    EXPECT_EQ(ask("", kHostWan, 8181), "tcp=a udp=a") << "host -> bound address";
    EXPECT_EQ(ask(lan_path(), kHostLan, 8181), "tcp= udp=") << "lan -> other host address";
    EXPECT_EQ(ask("", kHostLan, 8181), "tcp= udp=") << "host -> other host address";
    EXPECT_EQ(ask("", "127.0.0.1", 8181), "tcp= udp=") << "host -> 127.0.0.1";
    EXPECT_EQ(ask(lan_path(), kHostLan, 8282), "tcp=a udp=a") << "control: 0.0.0.0 mapping";
}

// 8000-8002:80-82 maps port by port.
TEST_F(Ports, RangeMapsOneToOne) {
    start();
    container("a", "bridge", {"-p", "8000-8002:80-82", "-p", "8000-8002:80-82/udp"});
    for (int i = 0; i < 3; ++i) serve("a", 80 + i, "p" + std::to_string(80 + i));
    for (int i = 0; i < 3; ++i) {
        const std::string tag = "p" + std::to_string(80 + i);
        EXPECT_EQ(ask(wan_path(), kHostWan, 8000 + i), "tcp=" + tag + " udp=" + tag);
        EXPECT_EQ(ask("", "127.0.0.1", 8000 + i), "tcp=" + tag + " udp=" + tag);
    }
    EXPECT_EQ(ask(wan_path(), kHostWan, 8003), "tcp= udp=");
    json insp = d.netctl_json({"network", "inspect", "bridge"});
    ASSERT_TRUE(insp.is_array() && insp.size() == 1) << insp.dump();
    json ports = insp[0]["Containers"].begin().value()["Ports"];
    EXPECT_EQ(ports["81/tcp"], json::parse(R"([{"HostIp":"0.0.0.0","HostPort":"8001"}])"))
        << ports.dump();
    EXPECT_EQ(ports["82/udp"], json::parse(R"([{"HostIp":"0.0.0.0","HostPort":"8002"}])"))
        << ports.dump();
}

// The same UDP client socket follows the mapping from A to B: conntrack entries are flushed.
TEST_F(Ports, UdpFlowFollowsTheMappingToANewContainer) {
    start();
    container("A", "bridge", {"-p", "5353:53/udp"});
    servers_.push_back(std::make_unique<TagServer>(ns("A"), P::Udp, "0.0.0.0", 53, "A"));
    ASSERT_TRUE(servers_.back()->ready());
    UdpClient client(wan_path());
    ASSERT_TRUE(client.ready());
    ASSERT_EQ(client.ask(kHostWan, 5353), "A");
    ok({"network", "disconnect", "bridge", "A"});
    // B gets another address, so a stale flow (DNAT to A's address) could not reach B by luck.
    ok({"netns", "create", "B"});
    ok({"network", "connect", "bridge", "B", "--ip", "172.17.0.9", "-p", "5353:53/udp"});
    servers_.push_back(std::make_unique<TagServer>(ns("B"), P::Udp, "0.0.0.0", 53, "B"));
    ASSERT_TRUE(servers_.back()->ready());
    EXPECT_EQ(client.ask(kHostWan, 5353), "B") << d.log();
}

// Datagrams sent while nothing is published must not pin the flow to the host either.
TEST_F(Ports, UdpFlowSentWhileUnpublishedStillReachesTheNextMapping) {
    start();
    container("A", "bridge", {"-p", "5353:53/udp"});
    servers_.push_back(std::make_unique<TagServer>(ns("A"), P::Udp, "0.0.0.0", 53, "A"));
    ASSERT_TRUE(servers_.back()->ready());
    UdpClient client(wan_path());
    ASSERT_TRUE(client.ready());
    ASSERT_EQ(client.ask(kHostWan, 5353), "A");
    ok({"network", "disconnect", "bridge", "A"});
    EXPECT_EQ(client.ask(kHostWan, 5353, 500ms), "");  // nobody serves it now
    ok({"netns", "create", "B"});
    ok({"network", "connect", "bridge", "B", "--ip", "172.17.0.9", "-p", "5353:53/udp"});
    servers_.push_back(std::make_unique<TagServer>(ns("B"), P::Udp, "0.0.0.0", 53, "B"));
    ASSERT_TRUE(servers_.back()->ready());
    EXPECT_EQ(client.ask(kHostWan, 5353), "B") << d.log();
}

// Disconnect removes the mapping from the kernel: no answer, empty map, the port is free.
TEST_F(Ports, DisconnectRemovesTheMapping) {
    start();
    container("a", "bridge", {"-p", "8080:80", "-p", "8080:80/udp"});
    serve("a", 80, "a");
    ASSERT_EQ(ask(wan_path(), kHostWan, 8080), "tcp=a udp=a");
    EXPECT_EQ(published_elems().size(), 2u) << published_map().dump();
    EXPECT_EQ(try_bind(true, "0.0.0.0", 8080), EADDRINUSE);
    ok({"network", "disconnect", "bridge", "a"});
    EXPECT_EQ(ask(wan_path(), kHostWan, 8080), "tcp= udp=");
    EXPECT_EQ(ask("", "127.0.0.1", 8080), "tcp= udp=");
    EXPECT_TRUE(published_map().is_object()) << "map published is gone altogether";
    EXPECT_EQ(published_elems(), json::array()) << published_map().dump();
    EXPECT_EQ(try_bind(true, "0.0.0.0", 8080), 0);
    EXPECT_EQ(try_bind(false, "0.0.0.0", 8080), 0);
    EXPECT_EQ(d.netctl_json({"port", "ls"}), json::array());
}

// A taken host port is refused with Docker's message and nothing changes.
TEST_F(Ports, ConflictsAreRefusedAndChangeNothing) {
    start();
    container("a", "bridge", {"-p", "8080:80"});
    ok({"netns", "create", "b"});
    const std::string before = kernel_snapshot(d);
    const json map_before = published_elems();
    CmdResult r = d.netctl({"network", "connect", "bridge", "b", "-p", "9000:90", "-p", "8080:80"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("Bind for 0.0.0.0:8080 failed: port is already allocated"),
              std::string::npos)
        << r.err;
    // A specific address collides with 0.0.0.0 too.
    r = d.netctl({"network", "connect", "bridge", "b", "-p", "127.0.0.1:8080:80"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("port is already allocated"), std::string::npos) << r.err;
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    EXPECT_EQ(published_elems(), map_before);
    EXPECT_EQ(try_bind(true, "0.0.0.0", 9000), 0) << "9000 must not stay held";

    // A port a host process already listens on (TCP) or has bound (UDP).
    TagServer tcp_user("", P::Tcp, "0.0.0.0", 7070, "host");
    TagServer udp_user("", P::Udp, "0.0.0.0", 7071, "host");
    ASSERT_TRUE(tcp_user.ready() && udp_user.ready());
    for (const char* spec : {"7070:80", "7071:80/udp"}) {
        r = d.netctl({"network", "connect", "bridge", "b", "-p", spec});
        EXPECT_EQ(r.status, 1) << spec << ": " << r.out << r.err;
        EXPECT_NE(r.err.find("ddress already in use"), std::string::npos) << spec << ": " << r.err;
    }
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    EXPECT_EQ(published_elems(), map_before);
    EXPECT_EQ(tcp_whoami("", "127.0.0.1", 7070), "host");  // the host's own service is untouched
    EXPECT_EQ(udp_ask("", "127.0.0.1", 7071), "host");
}

// While published, the host port is held: no other process can bind it, on any address.
TEST_F(Ports, PublishedPortsAreHeld) {
    start();
    ASSERT_EQ(try_bind(true, "0.0.0.0", 8080), 0);  // control: free before
    container("a", "bridge", {"-p", "8080:80", "-p", "8080:80/udp", "-p", "127.0.0.1:9090:80"});
    EXPECT_EQ(try_bind(true, "0.0.0.0", 8080), EADDRINUSE);
    EXPECT_EQ(try_bind(true, kHostWan, 8080), EADDRINUSE);
    EXPECT_EQ(try_bind(false, "0.0.0.0", 8080), EADDRINUSE);
    EXPECT_EQ(try_bind(true, "127.0.0.1", 9090), EADDRINUSE);
}

// inspect, the connect answer and `port ls` show the bindings.
TEST_F(Ports, InspectAndPortLsShowTheBindings) {
    start();
    ok({"netns", "create", "a"});
    json ep = d.netctl_json({"network", "connect", "bridge", "a", "-p", "8080:80", "--publish",
                             "127.0.0.1:5353:53/udp"});
    EXPECT_EQ(ep["Ports"], json::parse(R"({"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}],
                                           "53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}]})"))
        << ep.dump();
    json insp = d.netctl_json({"network", "inspect", "bridge"});
    ASSERT_TRUE(insp.is_array() && insp.size() == 1) << insp.dump();
    EXPECT_EQ(insp[0]["Containers"][ep.value("EndpointID", "")]["Ports"], ep["Ports"]);

    CmdResult ls = d.netctl({"port", "ls"});
    ASSERT_EQ(ls.status, 0) << ls.err;
    // Columns are padded: compare with runs of spaces squeezed.
    std::string table = std::regex_replace(ls.out, std::regex(" +"), " ");
    EXPECT_EQ(table,
              "ENDPOINT NETWORK PROTO HOST CONTAINER\n"
              "a bridge tcp 0.0.0.0:8080 172.17.0.2:80\n"
              "a bridge udp 127.0.0.1:5353 172.17.0.2:53\n")
        << ls.out;
    json rows = d.netctl_json({"port", "ls"});
    ASSERT_TRUE(rows.is_array() && rows.size() == 2) << rows.dump();
    EXPECT_EQ(rows[0]["Network"], "bridge");
    EXPECT_EQ(rows[0]["Container"], "172.17.0.2");
    EXPECT_EQ(rows[1]["Proto"], "udp");

    CmdResult bad = d.netctl({"network", "connect", "bridge", "a", "-p", "80:x"});
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.err.find("publish[0]"), std::string::npos) << bad.err;
}

// kill -9 and a restart: the mapping keeps answering throughout and is held again afterwards.
TEST_F(Ports, MappingSurvivesKillAndRestart) {
    start();
    container("a", "bridge", {"-p", "8080:80", "-p", "8080:80/udp"});
    serve("a", 80, "a");
    ASSERT_EQ(ask(wan_path(), kHostWan, 8080), "tcp=a udp=a");
    d.kill(SIGKILL);
    EXPECT_EQ(ask(wan_path(), kHostWan, 8080), "tcp=a udp=a") << "while cnetd is dead";
    start();
    EXPECT_EQ(ask(wan_path(), kHostWan, 8080), "tcp=a udp=a") << "after restart";
    EXPECT_EQ(ask("", "127.0.0.1", 8080), "tcp=a udp=a") << "after restart, localhost";
    EXPECT_EQ(published_elems().size(), 2u) << published_map().dump();
    EXPECT_EQ(try_bind(true, "0.0.0.0", 8080), EADDRINUSE) << "held again after restart";
    json rows = d.netctl_json({"port", "ls"});
    ASSERT_TRUE(rows.is_array()) << rows.dump();
    EXPECT_EQ(rows.size(), 2u) << rows.dump();
    // And the allocation survived too: the port is still taken for a newcomer.
    ok({"netns", "create", "b"});
    CmdResult r = d.netctl({"network", "connect", "bridge", "b", "-p", "8080:80"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("port is already allocated"), std::string::npos) << r.err;
}

}  // namespace
