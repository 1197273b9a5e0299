// The default gateway of a namespace on several networks (core/gateway.hpp, Docker 28's rule) and
// "a refused or failed connect changes nothing, the namespace's routes included" (issue 15
// items 2-4), against the fake kernel, which keeps one default route per family and metric in a
// namespace like the real one (adding replaces).
#include <gtest/gtest.h>

#include "core/engine.hpp"
#include "core/gateway.hpp"
#include "fakes/fake_kernel.hpp"

namespace gateway_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;
using cnetd::test::FakeFirewall;
using cnetd::test::FakeKernel;
using cnetd::test::FakeState;
using cnetd::test::FakeStore;

namespace {

constexpr const char* kNetnsDir = "/run/test/netns";

class GatewayTest : public ::testing::Test {
protected:
    void SetUp() override {
        engine = std::make_unique<Engine>(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
        ASSERT_TRUE(engine->start(DefaultNetworkSpec{}, true).ok());
        kernel.state.netns.insert(ns("c"));
        kernel.state.netns.insert(ns("d"));
    }
    static std::string ns(const std::string& n) { return std::string(kNetnsDir) + "/" + n; }
    void create(const std::string& name, const std::string& subnet, bool internal = false) {
        CreateNetworkRequest req;
        req.name = name;
        req.subnet = subnet;
        req.internal = internal;
        auto r = engine->create_network(req);
        ASSERT_TRUE(r.ok()) << r.error().message();
    }
    Result<Endpoint> connect(const std::string& net, const std::string& target, int prio = 0,
                             std::vector<std::string> publish = {}) {
        ConnectRequest req;
        req.network = net;
        req.target = target;
        req.gw_priority = prio;
        req.publish = std::move(publish);
        return engine->connect(req);
    }
    // The namespace's default routes, by interface: "eth0: default via 172.17.0.1".
    std::vector<std::string> routes(const std::string& n) {
        std::vector<std::string> out;
        for (const auto& [ifname, l] : kernel.state.ns_links[ns(n)])
            for (const auto& r : l.routes) out.push_back(ifname + ": " + r);
        return out;
    }

    FakeKernel kernel;
    FakeFirewall fw;
    FakeStore store;
    std::unique_ptr<Engine> engine;
};

TEST(GatewayElection, DockerOrder) {
    Network a, b, internal, v6;
    a.name = "alpha";
    b.name = "bravo";
    internal.name = "aaa-internal";
    internal.internal = true;
    v6.name = "zulu";
    v6.subnet6 = *Ipv6Cidr::parse("fd00:1::/64");
    Endpoint ea, eb, ei, e6;
    ea.id = "1";
    eb.id = "2";
    ei.id = "3";
    e6.id = "4";
    e6.address6 = *Ipv6Cidr::parse("fd00:1::2/64");
    std::vector<GatewayCandidate> c{{&b, &eb}, {&a, &ea}, {&internal, &ei}};
    // Same priority: network name ascending; internal networks never.
    EXPECT_EQ(elect_gateway(c, IpFamily::V4)->ep, &ea);
    EXPECT_FALSE(elect_gateway(c, IpFamily::V6));
    // Dual stack before IPv4 only (Docker's join score), for both families.
    c.push_back({&v6, &e6});
    EXPECT_EQ(elect_gateway(c, IpFamily::V4)->ep, &e6);
    EXPECT_EQ(elect_gateway(c, IpFamily::V6)->ep, &e6);
    // gw-priority first.
    eb.gw_priority = 1;
    EXPECT_EQ(elect_gateway(c, IpFamily::V4)->ep, &eb);
    EXPECT_EQ(elect_gateway(c, IpFamily::V6)->ep, &e6);  // the only IPv6-capable one
    ei.gw_priority = 100;                                // internal: still never
    EXPECT_EQ(elect_gateway(c, IpFamily::V4)->ep, &eb);
    // inhibit_ipv4: no IPv4 gateway to route through.
    b.inhibit_ipv4 = true;
    EXPECT_EQ(elect_gateway(c, IpFamily::V4)->ep, &e6);
}

TEST_F(GatewayTest, SecondNetworkKeepsOrTakesTheRouteByTheRuleAndDisconnectHandsItOver) {
    create("zeta", "10.50.0.0/24");   // after "bridge" by name
    create("alpha", "10.60.0.0/24");  // before "bridge"
    ASSERT_TRUE(connect("bridge", "c").ok());
    EXPECT_EQ(routes("c"), std::vector<std::string>{"eth0: default via 172.17.0.1"});
    ASSERT_TRUE(connect("zeta", "c").ok());  // loses to "bridge": the route stays
    EXPECT_EQ(routes("c"), std::vector<std::string>{"eth0: default via 172.17.0.1"});
    ASSERT_TRUE(connect("alpha", "c").ok());  // wins by name: takes it over
    EXPECT_EQ(routes("c"), std::vector<std::string>{"eth2: default via 10.60.0.1"});
    ASSERT_TRUE(engine->disconnect("alpha", "c").ok());  // hands it back to the next in line
    EXPECT_EQ(routes("c"), std::vector<std::string>{"eth0: default via 172.17.0.1"});
    ASSERT_TRUE(engine->disconnect("bridge", "c").ok());
    EXPECT_EQ(routes("c"), std::vector<std::string>{"eth1: default via 10.50.0.1"});
    ASSERT_TRUE(engine->disconnect("zeta", "c").ok());
    EXPECT_TRUE(routes("c").empty());
}

TEST_F(GatewayTest, HighestGwPriorityWinsAndInternalNeverProvidesTheRoute) {
    create("zeta", "10.50.0.0/24");
    create("inside", "10.70.0.0/24", /*internal=*/true);
    ASSERT_TRUE(connect("inside", "c", 1000).ok());  // internal: no default route at all
    EXPECT_TRUE(routes("c").empty());
    ASSERT_TRUE(connect("bridge", "c").ok());
    ASSERT_TRUE(connect("zeta", "c", 10).ok());  // "zeta" > "bridge", but priority 10 > 0
    EXPECT_EQ(routes("c"), std::vector<std::string>{"eth2: default via 10.50.0.1"});
    auto roles = gateway_roles(engine->networks());
    int carriers = 0;
    for (const auto& [id, role] : roles) carriers += role.v4;
    EXPECT_EQ(carriers, 1);
    ASSERT_TRUE(engine->disconnect("zeta", "c").ok());
    EXPECT_EQ(routes("c"), std::vector<std::string>{"eth1: default via 172.17.0.1"});
}

TEST_F(GatewayTest, RefusedConnectTouchesNoKernelObjectAndKeepsTheRoute) {
    ASSERT_TRUE(connect("bridge", "d", 0, {"8080:80"}).ok());
    create("web", "10.80.0.0/24");
    ASSERT_TRUE(connect("bridge", "c").ok());
    const FakeState before = kernel.state.normalized();
    const auto saved = store.saves;
    kernel.ops.clear();
    // The case: the port is taken; the second network would win the route ("web" has
    // priority 5). Refused before any kernel change: no op at all, the route is still there.
    auto r = connect("web", "c", 5, {"8080:80"});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("port is already allocated"), std::string::npos)
        << r.error().message();
    EXPECT_TRUE(kernel.ops.empty()) << kernel.ops.front();
    EXPECT_EQ(kernel.state.normalized(), before);
    EXPECT_EQ(store.saves, saved);
    // A mapping only the firewall refuses: asked before the first link too.
    fw.refuse_ports = Error::conflict("published port tcp 0.0.0.0:7070 conflicts with ...");
    auto fr = connect("web", "c", 5, {"7070:70"});
    fw.refuse_ports.reset();
    ASSERT_FALSE(fr.ok());
    EXPECT_NE(fr.error().message().find("publish ports: published port tcp 0.0.0.0:7070"),
              std::string::npos)
        << fr.error().message();
    EXPECT_GT(fw.port_checks, 0);
    EXPECT_TRUE(kernel.ops.empty()) << kernel.ops.front();
    EXPECT_EQ(kernel.state.normalized(), before);
    ASSERT_TRUE(connect("web", "d", 0, {"7070:70"}).ok());  // its port was released again
    ASSERT_TRUE(engine->disconnect("web", "d").ok());
    kernel.ops.clear();
    // A port another process holds: also before the first link.
    kernel.taken.insert("tcp/0.0.0.0:9090");
    ASSERT_FALSE(connect("web", "c", 5, {"9090:90"}).ok());
    EXPECT_TRUE(kernel.ops.empty()) << kernel.ops.front();
    EXPECT_EQ(kernel.state.normalized(), before);
}

TEST_F(GatewayTest, AFailureAfterTheRouteWasTakenPutsThePreviousRouteBack) {
    create("web", "10.80.0.0/24");
    ASSERT_TRUE(connect("bridge", "c").ok());
    const FakeState before = kernel.state.normalized();
    // Walk a failure over every step of a connect that takes the route over.
    for (int step = 1;; ++step) {
        kernel.steps = 0;
        kernel.fail_step = step;
        auto r = connect("web", "c", 5);
        kernel.fail_step = 0;
        if (r.ok()) {
            EXPECT_GT(step, 6);  // veth, sysctl, address, up, up, route at least
            break;
        }
        EXPECT_EQ(kernel.state.normalized(), before)
            << "step " << step << ": " << r.error().message();
        EXPECT_EQ(routes("c"), std::vector<std::string>{"eth0: default via 172.17.0.1"});
    }
    EXPECT_EQ(routes("c"), std::vector<std::string>{"eth1: default via 10.80.0.1"});
    // And a failed save after the route was taken.
    ASSERT_TRUE(engine->disconnect("web", "c").ok());
    const FakeState before2 = kernel.state.normalized();
    store.fail_save = true;
    ASSERT_FALSE(connect("web", "c", 5).ok());
    store.fail_save = false;
    EXPECT_EQ(kernel.state.normalized(), before2);
    EXPECT_EQ(routes("c"), std::vector<std::string>{"eth0: default via 172.17.0.1"});
}

TEST_F(GatewayTest, TheHostsOwnNamespaceIsRefusedBeforeAnyChange) {
    auto ns_c = kernel.open_netns(ns("c"));
    ASSERT_TRUE(ns_c.ok());
    kernel.host_ids = {(*ns_c)->id()};
    const FakeState before = kernel.state.normalized();
    kernel.ops.clear();
    auto r = connect("bridge", "c");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(r.error().message().find("is the host's own network namespace"), std::string::npos)
        << r.error().message();
    EXPECT_TRUE(kernel.ops.empty());
    EXPECT_EQ(kernel.state.normalized(), before);
    EXPECT_TRUE(connect("bridge", "d").ok());  // other namespaces are fine
}

// Found by the rollback fault test: a network removal whose save failed left the network on
// record with its bridge gone. Now the bridge comes back as it was (same MAC), with its firewall.
TEST_F(GatewayTest, NetworkRemovalWhoseSaveFailsPutsTheBridgeBackAsItWas) {
    create("web", "10.80.0.0/24");
    const FakeState before = kernel.state.normalized();
    const auto fw_before = fw.nets;
    store.fail_save = true;
    auto r = engine->remove_network("web");
    store.fail_save = false;
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("remove network web: save state"), std::string::npos)
        << r.error().message();
    EXPECT_EQ(kernel.state.normalized(), before);  // the bridge with its MAC, addresses, MTU
    EXPECT_EQ(fw.nets.size(), fw_before.size());
    ASSERT_EQ(engine->networks().size(), 2u);
    ASSERT_TRUE(engine->remove_network("web").ok());  // and it can be retried
    EXPECT_EQ(engine->networks().size(), 1u);
}

}  // namespace

}  // namespace gateway_test
