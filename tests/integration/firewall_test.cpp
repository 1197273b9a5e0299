// The firewall end to end: the real cnetd and netctl, real packets between namespaces.
//
// Each test gets a fresh network namespace (the "host", where cnetd runs) and a "wan" namespace
// routed behind it, standing in for the outside world:
//
//   wan netns: eth0 198.51.100.2/24 ---- wan0 198.51.100.1/24 [host netns: cnetd, docker0, br-...]
//
// wan has no route to the container subnets unless a test adds one, so a container reaching wan
// at all proves masquerade (and the WhoAmI server shows which source address it saw). Tests that
// expect "blocked" always also show the same path working in the configuration that allows it,
// so a broken topology cannot pass for a working firewall.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "fixture.hpp"
#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr int kWhoPort = 8080;

class Firewall : public DaemonTest {
protected:
    void SetUp() override {
        DaemonTest::SetUp();
        // /run is the test binary's private tmpfs (see main() in spine_test.cpp).
        add_wan(/*ipv6=*/false, /*default_route=*/false);
        who_ = std::make_unique<WhoAmIServer>(wan_path(), "0.0.0.0", kWhoPort);
        ASSERT_TRUE(who_->ready());
    }
    void TearDown() override {
        who_.reset();
        DaemonTest::TearDown();
    }

    // A command inside a container namespace (by its daemon name).
    void in(const std::string& name, std::vector<std::string> argv) {
        in_ns(ns(name), std::move(argv));
    }

    std::string ip_of(const std::string& name, const std::string& ifname = "eth0") {
        json j = ip_json({"-4", "addr", "show", "dev", ifname}, ns(name));
        if (!j.is_array() || j.size() != 1 || j[0]["addr_info"].empty()) return "";
        return j[0]["addr_info"][0]["local"];
    }
    // Who the wan server thinks `name` is; "" when it cannot be reached.
    std::string who(const std::string& name, std::chrono::milliseconds t = 1500ms) {
        return tcp_whoami(ns(name), kWanIp, kWhoPort, t);
    }
    // TCP echo from container `from` to an echo server in container `to` (bounded ~1 s).
    bool reach(const std::string& from, const std::string& to, int port) {
        return tcp_echo(ns(from), ip_of(to), port, 1000ms);
    }
    json nft_table() {
        CmdResult r = run({"nft", "-j", "list", "table", "inet", "cnetd"});
        if (r.status != 0) return json();
        return json::parse(r.out, nullptr, false);
    }
    static size_t count(const json& j, const char* kind) {
        size_t n = 0;
        if (j.is_object())
            for (const auto& o : j["nftables"])
                if (o.contains(kind)) ++n;
        return n;
    }
    uint64_t repairs() {
        json info = d.netctl_json({"info"});
        if (!info.contains("Firewall") || !info["Firewall"].contains("Repairs")) return 0;
        return info["Firewall"]["Repairs"].get<uint64_t>();
    }
    // Polls every 50 ms until `name` reaches wan masqueraded; returns how long it took.
    std::chrono::milliseconds time_until_wan(const std::string& name,
                                             std::chrono::milliseconds limit) {
        const auto t0 = std::chrono::steady_clock::now();
        for (;;) {
            auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - t0);
            if (spent > limit) return spent;
            // Short attempts: a SYN lost before the repair is retransmitted only after 1 s.
            if (who(name, 100ms) == "198.51.100.1") return spent;
            std::this_thread::sleep_for(50ms);
        }
    }

    std::unique_ptr<WhoAmIServer> who_;
};

// (a) Outbound through docker0 is masqueraded to the host's wan address.
TEST_F(Firewall, DefaultBridgeReachesWanMasqueraded) {
    start();
    container("a");
    EXPECT_EQ(who("a"), "198.51.100.1");
}

// (b) icc: false cuts docker0's containers from each other; by default they talk.
TEST_F(Firewall, IccDefaultAllowsContainersToTalk) {
    start();
    container("a");
    container("b");
    EchoServer sb(ns("b"), "0.0.0.0", 7000);
    ASSERT_TRUE(sb.ready());
    EXPECT_TRUE(reach("a", "b", 7000));
}

TEST_F(Firewall, IccFalseBlocksDefaultBridge) {
    start("icc: false\n");
    container("a");
    container("b");
    EchoServer sb(ns("b"), "0.0.0.0", 7000);
    ASSERT_TRUE(sb.ready());
    EXPECT_FALSE(reach("a", "b", 7000));
    EXPECT_TRUE(tcp_echo("", ip_of("b"), 7000));  // the host still reaches it: the server is up
    EXPECT_EQ(who("a"), "198.51.100.1");          // and the way out is still open
}

// (c) enable_icc=false on a user network blocks its own containers only.
TEST_F(Firewall, NetworkIccOptionIsPerNetwork) {
    start();
    ok({"network", "create", "web", "--subnet", "10.20.0.0/24", "-o",
        "com.docker.network.bridge.enable_icc=false"});
    container("w1", "web");
    container("w2", "web");
    container("d1");
    container("d2");
    EchoServer s_w2(ns("w2"), "0.0.0.0", 7000), s_d2(ns("d2"), "0.0.0.0", 7000);
    ASSERT_TRUE(s_w2.ready() && s_d2.ready());
    EXPECT_FALSE(reach("w1", "w2", 7000));
    EXPECT_TRUE(reach("d1", "d2", 7000));
    EXPECT_TRUE(tcp_echo("", ip_of("w2"), 7000));
    EXPECT_EQ(who("w1"), "198.51.100.1");
}

// (d) Two networks are isolated from each other, both ways, and both reach wan.
TEST_F(Firewall, NetworksAreIsolatedButBothReachWan) {
    start();
    ok({"network", "create", "web", "--subnet", "10.20.0.0/24"});
    container("a");
    container("w", "web");
    EchoServer sa(ns("a"), "0.0.0.0", 7000), sw(ns("w"), "0.0.0.0", 7000);
    ASSERT_TRUE(sa.ready() && sw.ready());
    EXPECT_FALSE(reach("a", "w", 7000));
    EXPECT_FALSE(reach("w", "a", 7000));
    EXPECT_TRUE(tcp_echo("", ip_of("a"), 7000));
    EXPECT_TRUE(tcp_echo("", ip_of("w"), 7000));
    EXPECT_EQ(who("a"), "198.51.100.1");
    EXPECT_EQ(who("w"), "198.51.100.1");
}

// (e) An internal network has no default route, and adding one by hand does not get out.
TEST_F(Firewall, InternalNetworkCannotReachWan) {
    start();
    ok({"network", "create", "int", "--subnet", "10.30.0.0/24", "--internal"});
    json insp = d.netctl_json({"network", "inspect", "int"});
    ASSERT_TRUE(insp.is_array() && insp.size() == 1) << insp.dump();
    EXPECT_EQ(insp[0]["Internal"], true);
    container("i", "int");
    ASSERT_EQ(ip_of("i"), "10.30.0.2");
    EXPECT_EQ(ip_json({"route", "show", "default"}, ns("i")).size(), 0u);
    // Give it every chance: a default route in the container and a route back on wan (so even
    // un-NATed packets would be answered). Only the firewall stands in the way.
    in("i", {"ip", "route", "add", "default", "via", "10.30.0.1"});
    wan({"ip", "route", "add", "10.30.0.0/24", "via", "198.51.100.1"});
    EXPECT_EQ(who("i", 1000ms), "");
    container("a");  // a normal container on the same host still gets out
    EXPECT_EQ(who("a"), "198.51.100.1");
}

// (f) Direct routing: wan has a route to 172.17.0.0/16 via the host and still cannot connect.
TEST_F(Firewall, WanCannotRouteToContainers) {
    start();
    container("a");
    EchoServer sa(ns("a"), "0.0.0.0", 7000);
    ASSERT_TRUE(sa.ready());
    wan({"ip", "route", "add", "172.17.0.0/16", "via", "198.51.100.1"});
    EXPECT_FALSE(tcp_echo(wan_path(), ip_of("a"), 7000, 1000ms));
    EXPECT_TRUE(tcp_echo("", ip_of("a"), 7000));  // the server is there; the host reaches it
}

// (g) Someone flushes the ruleset or deletes our table: repaired within a second, no restart.
TEST_F(Firewall, FlushRulesetAndDeleteTableAreRepaired) {
    start();
    container("a");
    ASSERT_EQ(who("a"), "198.51.100.1");
    ASSERT_EQ(repairs(), 0u);
    const pid_t pid = d.pid();
    const auto rules_before = count(nft_table(), "rule");
    ASSERT_GT(rules_before, 0u);

    ASSERT_EQ(run({"nft", "flush", "ruleset"}).status, 0);  // this test's netns = cnetd's
    auto took = time_until_wan("a", 3000ms);
    EXPECT_LT(took.count(), 1000) << "no masqueraded way out " << took.count() << " ms after flush";
    EXPECT_GE(repairs(), 1u) << d.log();
    EXPECT_EQ(count(nft_table(), "rule"), rules_before);  // the whole table is back

    const uint64_t before = repairs();
    ASSERT_EQ(run({"nft", "delete", "table", "inet", "cnetd"}).status, 0);
    took = time_until_wan("a", 3000ms);
    EXPECT_LT(took.count(), 1000) << "no masqueraded way out " << took.count()
                                  << " ms after delete table";
    EXPECT_GE(repairs(), before + 1) << d.log();
    json info = d.netctl_json({"info"});
    EXPECT_NE(info["Firewall"]["LastRepair"], "") << info.dump();
    EXPECT_EQ(d.pid(), pid);  // the same daemon did it
    EXPECT_EQ(kill(pid, 0), 0);
}

// (h) The table's shape does not grow with the number of containers.
TEST_F(Firewall, RuleCountIsIndependentOfContainers) {
    start();
    container("c0");
    const json one = nft_table();
    ASSERT_TRUE(one.is_object()) << "no table inet cnetd";
    for (int i = 1; i < 50; ++i) container("c" + std::to_string(i));
    ASSERT_EQ(ip_of("c49"), "172.17.0.51");
    const json fifty = nft_table();
    EXPECT_EQ(count(one, "rule"), count(fifty, "rule"));
    EXPECT_EQ(count(one, "chain"), count(fifty, "chain"));
    EXPECT_EQ(count(one, "set") + count(one, "map"), count(fifty, "set") + count(fifty, "map"));
    EXPECT_GT(count(fifty, "rule"), 0u);
    EXPECT_EQ(who("c49"), "198.51.100.1");
}

// (i) firewall: none leaves nftables alone: no table, no NAT, no direct-routing protection.
TEST_F(Firewall, FirewallNoneCreatesNoTable) {
    start("firewall: none\n");
    container("a");
    EXPECT_TRUE(nft_table().is_null());
    CmdResult tables = run({"nft", "-j", "list", "tables"});
    ASSERT_EQ(tables.status, 0) << tables.err;
    EXPECT_EQ(tables.out.find("\"cnetd\""), std::string::npos) << tables.out;
    // The same traffic the nftables tests block or NAT: here it is plainly routed.
    wan({"ip", "route", "add", "172.17.0.0/16", "via", "198.51.100.1"});
    EXPECT_EQ(who("a"), ip_of("a"));  // not masqueraded
    EchoServer sa(ns("a"), "0.0.0.0", 7000);
    ASSERT_TRUE(sa.ready());
    EXPECT_TRUE(tcp_echo(wan_path(), ip_of("a"), 7000, 1000ms));
    json info = d.netctl_json({"info"});
    EXPECT_EQ(info["Firewall"]["Backend"], "none") << info.dump();
}

// (j) firewall show: the intended table and whether the kernel matches.
TEST_F(Firewall, FirewallShowIsInSync) {
    start();
    container("a");
    CmdResult r = d.netctl({"firewall", "show"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("in sync: yes"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("table inet cnetd"), std::string::npos) << r.out;
    json j = d.netctl_json({"firewall", "show"});
    EXPECT_EQ(j["Backend"], "nftables") << j.dump();
    EXPECT_EQ(j["Table"], "inet cnetd") << j.dump();
    EXPECT_EQ(j["InSync"], true) << j.dump();
}

// Coexistence: an iptables-style FORWARD policy drop really blocks the containers, the daemon
// says so (naming the chain and the fix), and the suggested allow rules really fix it.
TEST_F(Firewall, ForeignForwardDropIsReportedAndTheFixWorks) {
    sh({"nft", "add", "table", "ip", "filter"});
    sh({"nft", "add", "chain", "ip", "filter", "FORWARD",
        "{ type filter hook forward priority 0; policy drop; }"});
    start();
    container("a");
    EXPECT_EQ(who("a", 1000ms), "");
    json warnings = d.netctl_json({"info"})["Firewall"]["Warnings"];
    ASSERT_TRUE(warnings.is_array()) << warnings.dump();
    ASSERT_EQ(warnings.size(), 1u) << warnings.dump();
    const std::string w = warnings[0];
    EXPECT_NE(w.find("table ip filter chain FORWARD (hook forward, policy drop)"),
              std::string::npos)
        << w;
    EXPECT_NE(w.find("iptables -I FORWARD -i docker0 -j ACCEPT"), std::string::npos) << w;
    // The nft spelling of the suggested iptables rules.
    sh({"nft", "insert", "rule", "ip", "filter", "FORWARD", "iifname", "docker0", "accept"});
    sh({"nft", "insert", "rule", "ip", "filter", "FORWARD", "oifname", "docker0", "ct", "state",
        "related,established", "accept"});
    EXPECT_EQ(who("a"), "198.51.100.1");
}

}  // namespace
