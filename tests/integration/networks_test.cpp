// Networks at Docker parity (issue 5) and IPv6 published ports (issue 4), end to end: the real
// cnetd and netctl, kernel state read back with `ip -j`, real TCP/UDP over IPv4 and IPv6.
//
// Each test gets a fresh network namespace (the "host") with a wan namespace routed behind it:
//
//   wan netns: eth0 198.51.100.2/24 2001:db8:1::2/64 --- wan0 198.51.100.1/24 2001:db8:1::1/64
//
// wan has default routes (v4 and v6) via the host, so what a container sends out is seen there
// with the host's address when masqueraded.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "fixture.hpp"
#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

class Networks : public DaemonTest {
protected:
    void SetUp() override {
        DaemonTest::SetUp();
        add_wan(/*ipv6=*/true);
    }
    void TearDown() override {
        servers_.clear();
        DaemonTest::TearDown();
    }

    json endpoint(const std::string& network, const std::string& name) {
        return inspect_endpoint(d, network, name);
    }
    json link(const std::string& ifname, const std::string& netns = "") {
        json j = ip_json({"-d", "addr", "show", "dev", ifname}, netns);
        return j.is_array() && j.size() == 1 ? j[0] : json();
    }
    // Global addresses of `family` ("inet"/"inet6") on a link, with their flags.
    static std::vector<json> addrs(const json& l, const std::string& family) {
        std::vector<json> out;
        if (!l.is_object()) return out;
        for (const auto& a : l["addr_info"])
            if (a["family"] == family && a.value("scope", "") == "global") out.push_back(a);
        return out;
    }
    static std::string bare(const std::string& cidr) { return cidr.substr(0, cidr.find('/')); }
    void serve_tcp(const std::string& netns, const std::string& addr, int port,
                   const std::string& tag) {
        servers_.push_back(
            std::make_unique<TagServer>(netns, TagServer::Proto::Tcp, addr, port, tag));
        ASSERT_TRUE(servers_.back()->ready());
    }
    void serve_udp(const std::string& netns, const std::string& addr, int port,
                   const std::string& tag) {
        servers_.push_back(
            std::make_unique<TagServer>(netns, TagServer::Proto::Udp, addr, port, tag));
        ASSERT_TRUE(servers_.back()->ready());
    }

    std::vector<std::unique_ptr<TagServer>> servers_;
};

TEST_F(Networks, DualStackDefaultNetworkCarriesIpv6BetweenContainersAndToWan) {
    start("ipv6: true\n");
    json br = link("docker0");
    auto v6 = addrs(br, "inet6");
    ASSERT_EQ(v6.size(), 1u) << br.dump();
    EXPECT_FALSE(v6[0].contains("tentative")) << v6[0].dump();
    EXPECT_EQ(v6[0]["prefixlen"], 64);
    EXPECT_EQ(v6[0]["local"].get<std::string>().substr(0, 2), "fd");  // the daemon's ULA

    container("a");
    container("b");
    json a = endpoint("bridge", "a"), b = endpoint("bridge", "b");
    const std::string a6 = bare(a["IPv6Address"]), b6 = bare(b["IPv6Address"]);
    ASSERT_FALSE(a6.empty()) << a.dump();
    // In the container: the address without DAD (usable now), and a v6 default route.
    auto in_a = addrs(link("eth0", ns("a")), "inet6");
    ASSERT_EQ(in_a.size(), 1u);
    EXPECT_EQ(in_a[0]["local"], a6);
    EXPECT_FALSE(in_a[0].contains("tentative"));
    json routes = ip_json({"-6", "route", "show", "default"}, ns("a"));
    ASSERT_EQ(routes.size(), 1u) << routes.dump();
    EXPECT_EQ(routes[0]["gateway"], v6[0]["local"]);

    // Container to container over IPv6, at once.
    serve_tcp(ns("b"), "::", 8000, "b");
    EXPECT_EQ(tcp_whoami(ns("a"), b6, 8000), "b");
    // Out to the wan over IPv6, masqueraded behind the host's wan address.
    WhoAmIServer who(wan_path(), "::", 9000);
    ASSERT_TRUE(who.ready());
    EXPECT_EQ(tcp_whoami(ns("a"), "2001:db8:1::2", 9000), "2001:db8:1::1");
    EXPECT_EQ(tcp_whoami(ns("a"), "198.51.100.2", 9000), "::ffff:198.51.100.1");
}

TEST_F(Networks, PublishedPortAnswersOnIpv4AndIpv6AndOnOneHostAddressOnly) {
    // A second host address on the wan side, to bind one mapping to it alone.
    sh({"ip", "-6", "addr", "add", "2001:db8:1::100/64", "dev", "wan0", "nodad"});
    start("ipv6: true\n");
    container("web", "bridge", {"-p", "8080:80", "-p", "[2001:db8:1::100]:9090:90/tcp"});
    serve_tcp(ns("web"), "::", 80, "web80");
    serve_tcp(ns("web"), "::", 90, "web90");
    json ep = endpoint("bridge", "web");
    ASSERT_TRUE(ep["Ports"].contains("80/tcp")) << ep.dump();
    json p80 = ep["Ports"]["80/tcp"];
    ASSERT_EQ(p80.size(), 2u) << p80.dump();
    EXPECT_EQ(p80[0]["HostIp"], "0.0.0.0");
    EXPECT_EQ(p80[1]["HostIp"], "::");
    EXPECT_EQ(ep["Ports"]["90/tcp"][0]["HostIp"], "2001:db8:1::100");
    // From outside over both families.
    EXPECT_EQ(tcp_whoami(wan_path(), "198.51.100.1", 8080), "web80");
    EXPECT_EQ(tcp_whoami(wan_path(), "2001:db8:1::1", 8080), "web80");
    // From the host itself, to its own v6 address.
    EXPECT_EQ(tcp_whoami("", "2001:db8:1::1", 8080), "web80");
    // The specific-address mapping answers there only.
    EXPECT_EQ(tcp_whoami(wan_path(), "2001:db8:1::100", 9090), "web90");
    EXPECT_EQ(tcp_whoami(wan_path(), "2001:db8:1::1", 9090, 700ms), "");
    // The host port is held for both families: nobody else can bind it.
    EXPECT_EQ(try_bind(true, "0.0.0.0", 8080), EADDRINUSE);
    EXPECT_EQ(try_bind(true, "::", 8080), EADDRINUSE);
    // [::1] is relayed in userland (tests/integration/relay_test.cpp), tcp and udp only: sctp
    // there is refused by name, nothing changes.
    ok({"netns", "create", "lo6"});
    const std::string before = kernel_snapshot(d);
    std::string err = fails({"network", "connect", "bridge", "lo6", "-p", "[::1]:7070:70/sctp"});
    EXPECT_NE(err.find("proto sctp cannot be published on [::1]"), std::string::npos) << err;
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    // Disconnect removes both families' mappings.
    ok({"network", "disconnect", "bridge", "web"});
    EXPECT_EQ(tcp_whoami(wan_path(), "2001:db8:1::1", 8080, 700ms), "");
    EXPECT_EQ(try_bind(true, "::", 8080), 0);
}

TEST_F(Networks, Ipv6PublishOnAnIpv4OnlyNetworkIsAPreciseError) {
    start();
    ok({"netns", "create", "c"});
    const std::string before = kernel_snapshot(d);
    std::string err = fails({"network", "connect", "bridge", "c", "-p", "[::1]:8080:80"});
    EXPECT_NE(err.find("IPv6 host address [::1] needs a dual-stack network; bridge is IPv4 only"),
              std::string::npos)
        << err;
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
}

TEST_F(Networks, MtuFollowsTheDefaultRouteInterface) {
    // The "uplink": a dummy with MTU 1450 carrying the default route.
    // (A veth pair: this kernel may have no dummy driver.)
    sh({"ip", "link", "add", "up0", "mtu", "1450", "type", "veth", "peer", "name", "up0p", "mtu",
        "1450"});
    sh({"ip", "link", "set", "up0p", "up"});
    sh({"ip", "addr", "add", "192.0.2.10/24", "dev", "up0"});
    sh({"ip", "link", "set", "up0", "up"});
    sh({"ip", "route", "add", "default", "via", "192.0.2.1", "dev", "up0"});
    start();
    EXPECT_EQ(link("docker0")["mtu"], 1450);
    container("a");
    json ep = endpoint("bridge", "a");
    EXPECT_EQ(link(ep["HostInterface"])["mtu"], 1450);
    EXPECT_EQ(link("eth0", ns("a"))["mtu"], 1450);
}

TEST_F(Networks, EveryCreateOptionReachesTheKernelAndInspect) {
    start();
    ok({"network",
        "create",
        "full",
        "--subnet",
        "10.77.0.0/24",
        "--gateway",
        "10.77.0.254",
        "--ip-range",
        "10.77.0.128/25",
        "--aux-address",
        "router=10.77.0.129",
        "--ipv6",
        "--subnet",
        "fd77:1::/64",
        "--label",
        "team=net",
        "-o",
        "com.docker.network.bridge.name=br-full",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "-o",
        "com.docker.network.container_iface_prefix=cnet",
        "-o",
        "com.docker.network.bridge.enable_icc=false"});
    json br = link("br-full");
    ASSERT_TRUE(br.is_object());
    EXPECT_EQ(br["mtu"], 1400);
    auto v4 = addrs(br, "inet");
    ASSERT_EQ(v4.size(), 1u);
    EXPECT_EQ(v4[0]["local"], "10.77.0.254");
    auto v6 = addrs(br, "inet6");
    ASSERT_EQ(v6.size(), 1u);
    EXPECT_EQ(v6[0]["local"], "fd77:1::1");

    container("a", "full", {"--mac", "02:42:0a:4d:00:99"});
    json ep = endpoint("full", "a");
    EXPECT_EQ(ep["Interface"], "cnet0");
    EXPECT_EQ(ep["IPv4Address"], "10.77.0.128/24");  // the range's first address
    EXPECT_EQ(ep["MacAddress"], "02:42:0a:4d:00:99");
    json in = link("cnet0", ns("a"));
    ASSERT_TRUE(in.is_object());
    EXPECT_EQ(in["address"], "02:42:0a:4d:00:99");
    EXPECT_EQ(in["mtu"], 1400);
    EXPECT_EQ(addrs(in, "inet6").size(), 1u);

    json n = d.netctl_json({"network", "inspect", "full"})[0];
    EXPECT_TRUE(n["EnableIPv6"].get<bool>());
    EXPECT_EQ(n["Labels"]["team"], "net");
    ASSERT_EQ(n["IPAM"]["Config"].size(), 2u);
    EXPECT_EQ(n["IPAM"]["Config"][0]["AuxiliaryAddresses"]["router"], "10.77.0.129");
    EXPECT_EQ(n["IPAM"]["Config"][1]["Subnet"], "fd77:1::/64");
    EXPECT_EQ(n["Options"]["com.docker.network.driver.mtu"], "1400");
    EXPECT_EQ(n["Options"]["com.docker.network.bridge.enable_icc"], "false");

    // --ip6 on connect.
    container("b", "full", {"--ip6", "fd77:1::beef"});
    EXPECT_EQ(endpoint("full", "b")["IPv6Address"], "fd77:1::beef/64");
}

TEST_F(Networks, BadOptionsAreRefusedByNameAndChangeNothing) {
    start();
    sh({"ip", "link", "add", "notabridge", "type", "veth", "peer", "name", "notabridgep"});
    const std::string before = kernel_snapshot(d);
    EXPECT_NE(fails({"network", "create", "x", "-o", "com.example.nope=1"})
                  .find("option com.example.nope: unknown option"),
              std::string::npos);
    EXPECT_NE(fails({"network", "create", "x", "-o", "com.docker.network.bridge.name=notabridge"})
                  .find("notabridge exists and is not a bridge"),
              std::string::npos);
    EXPECT_NE(
        fails({"network", "create", "x", "--subnet", "10.1.0.0/24", "--ip-range", "10.2.0.0/25"})
            .find("ip-range: 10.2.0.0/25 is not inside subnet 10.1.0.0/24"),
        std::string::npos);
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
}

TEST_F(Networks, DefaultPoolsSkipAnOnLinkRouteOfTheHost) {
    // The host's LAN happens to be 172.18.0.0/16: the pool must not take it.
    sh({"ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan0p"});
    sh({"ip", "link", "set", "lan0p", "up"});
    sh({"ip", "addr", "add", "172.18.0.10/16", "dev", "lan0"});
    sh({"ip", "link", "set", "lan0", "up"});
    start();
    ok({"network", "create", "auto1"});
    ok({"network", "create", "auto2"});
    json n1 = d.netctl_json({"network", "inspect", "auto1"})[0];
    json n2 = d.netctl_json({"network", "inspect", "auto2"})[0];
    EXPECT_EQ(n1["IPAM"]["Config"][0]["Subnet"], "172.19.0.0/16");
    EXPECT_EQ(n2["IPAM"]["Config"][0]["Subnet"], "172.20.0.0/16");
}

TEST_F(Networks, PoolsFromConfigAndTheirExhaustionError) {
    start("default-address-pools:\n  - base: 10.99.0.0/23\n    size: 24\n");
    ok({"network", "create", "p1"});
    ok({"network", "create", "p2"});
    std::string err = fails({"network", "create", "p3"});
    EXPECT_NE(err.find("10.99.0.0/23"), std::string::npos) << err;
    EXPECT_NE(err.find("2 used by networks"), std::string::npos) << err;
}

TEST_F(Networks, ReloadAppliesIccLiveAndReportsBipAsPendingRestart) {
    start("icc: true\n");
    container("a");
    container("b");
    serve_tcp(ns("b"), "0.0.0.0", 7000, "b");
    const std::string b4 = bare(endpoint("bridge", "b")["IPv4Address"]);
    ASSERT_EQ(tcp_whoami(ns("a"), b4, 7000), "b");
    d.write_config("icc: false\nbip: 10.123.0.1/24\n");
    ::kill(d.pid(), SIGHUP);
    // Applied live: containers on the default bridge no longer talk to each other.
    bool blocked = false;
    for (int i = 0; i < 50 && !blocked; ++i) {
        std::this_thread::sleep_for(100ms);
        blocked = tcp_whoami(ns("a"), b4, 7000, 300ms).empty();
    }
    EXPECT_TRUE(blocked) << d.log();
    json info = d.netctl_json({"info"});
    ASSERT_TRUE(info["PendingRestart"].is_array()) << info.dump();
    ASSERT_EQ(info["PendingRestart"].size(), 1u) << info.dump();
    EXPECT_NE(info["PendingRestart"][0].get<std::string>().find("bip"), std::string::npos);
    // Nothing was renumbered.
    EXPECT_EQ(addrs(link("docker0"), "inet")[0]["local"], "172.17.0.1");
    // A config that does not parse changes nothing.
    d.write_config("icc: maybe\n");
    ::kill(d.pid(), SIGHUP);
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(tcp_whoami(ns("a"), b4, 7000, 300ms).empty());
    EXPECT_NE(d.log().find("reload: "), std::string::npos);
}

}  // namespace
