// The Publisher (core/publish.hpp) on its own, with the unit fakes: host ports reserved from the
// allocator and checked by the firewall, held by sockets, published as map elements, and every
// step undone by the undo log or by unpublish().
#include <gtest/gtest.h>

#include "core/engine_detail.hpp"
#include "core/publish.hpp"
#include "fakes/fake_kernel.hpp"

namespace publish_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;
using cnetd::test::FakeFirewall;
using cnetd::test::FakeKernel;

namespace {

PortPlan port(uint16_t host, uint16_t cont, bool dual = false) {
    PortPlan p;
    p.req.host = {host, host};
    p.req.container = {cont, cont};
    p.dual = dual;
    return p;
}

PortPlan loopback6(uint16_t host, uint16_t cont) {
    PortPlan p = port(host, cont);
    p.req.ipv6 = true;
    p.req.host_ip6 = *Ipv6::parse("::1");
    return p;
}

class PublishTest : public ::testing::Test {
protected:
    void SetUp() override {
        net.id = "n1";
        net.name = "web";
        net.bridge = "br-web";
        net.subnet = *Ipv4Cidr::parse_network("10.9.0.0/24");
        net.subnet6 = *Ipv6Cidr::parse_network("fd00:9::/64");
    }
    Endpoint endpoint(const std::string& id, uint32_t host) {
        Endpoint ep;
        ep.id = id;
        ep.name = "ep-" + id;
        ep.address = Ipv4Cidr(Ipv4(net.subnet.network().value() + host), 24);
        ep.address6 = Ipv6Cidr(net.subnet6->at(host), 64);
        return ep;
    }
    // reserve + hold + publish under one undo log, committed when all went well.
    Result<void> connect(Endpoint& ep, const std::vector<PortPlan>& ports) {
        Rollback undo;
        CNETD_TRY(pub.reserve(net, ep, ports, undo));
        CNETD_TRY(pub.hold(ep, undo));
        CNETD_TRY(pub.publish(net, ep, undo));
        undo.commit();
        return ok();
    }

    FakeKernel kernel;
    FakeFirewall fw;
    Publisher pub{kernel, fw};
    Network net;
};

TEST_F(PublishTest, ReserveTakesHostPortsAndAsksTheFirewallMemoryOnly) {
    Endpoint ep = endpoint("a", 2);
    {
        Rollback undo;
        ASSERT_TRUE(pub.reserve(net, ep, {port(8080, 80), port(0, 90)}, undo).ok());
        ASSERT_EQ(ep.ports.size(), 2u);
        EXPECT_EQ(ep.ports[0].str(), "0.0.0.0:8080->80/tcp");
        EXPECT_EQ(ep.ports[1].host.first, 32768);  // the default ephemeral range
        EXPECT_TRUE(pub.in_use(Proto::Tcp, std::nullopt, 8080));
        EXPECT_EQ(fw.port_checks, 1);
        EXPECT_TRUE(kernel.ops.empty());
        EXPECT_TRUE(kernel.held.empty());
        EXPECT_TRUE(fw.ports.empty());
    }  // not committed: the undo log releases the ports
    EXPECT_FALSE(pub.in_use(Proto::Tcp, std::nullopt, 8080));
    EXPECT_FALSE(pub.in_use(Proto::Tcp, std::nullopt, 32768));
}

TEST_F(PublishTest, ReserveRefusesAPortTakenByAnotherEndpointAndOneTheFirewallRefuses) {
    Endpoint a = endpoint("a", 2);
    ASSERT_TRUE(connect(a, {port(8080, 80)}).ok());
    Endpoint b = endpoint("b", 3);
    {
        Rollback undo;
        auto r = pub.reserve(net, b, {port(9090, 90), port(8080, 80)}, undo);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
        EXPECT_EQ(r.error().message(), "Bind for 0.0.0.0:8080 failed: port is already allocated");
    }
    EXPECT_FALSE(pub.in_use(Proto::Tcp, std::nullopt, 9090));  // the first one given back

    fw.refuse_ports = Error::conflict("published port tcp 0.0.0.0:7070 conflicts with x");
    Endpoint c = endpoint("c", 4);
    {
        Rollback undo;
        auto r = pub.reserve(net, c, {port(7070, 70)}, undo);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().message(),
                  "publish ports: published port tcp 0.0.0.0:7070 conflicts with x");
    }
    EXPECT_FALSE(pub.in_use(Proto::Tcp, std::nullopt, 7070));
    EXPECT_TRUE(kernel.ops.empty());
}

TEST_F(PublishTest, DualPlanTakesTheSamePortOnBothFamilies) {
    Endpoint ep = endpoint("a", 2);
    ASSERT_TRUE(connect(ep, {port(8080, 80, true)}).ok());
    ASSERT_EQ(ep.ports.size(), 2u);
    EXPECT_EQ(ep.ports[0].str(), "0.0.0.0:8080->80/tcp");
    EXPECT_EQ(ep.ports[1].str(), "[::]:8080->80/tcp");
    EXPECT_EQ(kernel.held, (std::multiset<std::string>{"tcp/0.0.0.0:8080", "tcp/[::]:8080"}));
    ASSERT_EQ(fw.ports.size(), 2u);
    EXPECT_EQ(fw.ports[1].family, firewall::Family::V6);
    EXPECT_EQ(fw.ports[1].container_ip6, ep.address6->addr());
}

TEST_F(PublishTest, HoldBindsEveryHostPortAndTheUndoLogClosesThem) {
    Endpoint ep = endpoint("a", 2);
    {
        Rollback undo;
        ASSERT_TRUE(pub.reserve(net, ep, {port(8080, 80), port(8081, 81)}, undo).ok());
        ASSERT_TRUE(pub.hold(ep, undo).ok());
        EXPECT_EQ(kernel.held,
                  (std::multiset<std::string>{"tcp/0.0.0.0:8080", "tcp/0.0.0.0:8081"}));
        EXPECT_EQ(pub.held("a"), 2u);
    }
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_EQ(pub.held("a"), 0u);
}

TEST_F(PublishTest, APortAnotherProcessHoldsFailsTheHoldAndHoldsNothing) {
    kernel.taken.insert("tcp/0.0.0.0:8081");
    Endpoint ep = endpoint("a", 2);
    auto r = connect(ep, {port(8080, 80), port(8081, 81)});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().error_number(), EADDRINUSE);
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_FALSE(pub.in_use(Proto::Tcp, std::nullopt, 8080));
    EXPECT_TRUE(fw.ports.empty());
}

TEST_F(PublishTest, CniAttachmentsAreNotHeldExceptOnIpv6Loopback) {
    Endpoint ep = endpoint("a", 2);
    ep.container_id = "c0ffee";
    ASSERT_TRUE(connect(ep, {port(8080, 80), loopback6(7070, 70)}).ok());
    // The runtime binds 8080 itself (docs/cni.md, "Host ports"); [::1] is served by the relay.
    EXPECT_EQ(kernel.held, (std::multiset<std::string>{"tcp/[::1]:7070"}));
    EXPECT_EQ(pub.held("a"), 1u);
    EXPECT_TRUE(pub.in_use(Proto::Tcp, std::nullopt, 8080));  // still allocated
}

TEST_F(PublishTest, PublishAddsTheForwardsAndUnpublishTakesEverythingBack) {
    Endpoint ep = endpoint("a", 2);
    ASSERT_TRUE(connect(ep, {port(8080, 80), loopback6(7070, 70)}).ok());
    // [::1] has no map element: the daemon relays it.
    ASSERT_EQ(fw.ports.size(), 1u);
    EXPECT_EQ(fw.ports[0], Publisher::forwards_of(net, ep)[0]);
    EXPECT_EQ(fw.ports[0].bridge, "br-web");
    EXPECT_EQ(fw.ports[0].container_ip, ep.address.addr());
    EXPECT_EQ(fw.ports[0].host_first, 8080);
    EXPECT_EQ(fw.ports[0].container_first, 80);

    // Start-up teardown: the firewall is left to the full sync that follows.
    pub.unpublish(net, ep, /*firewall=*/false);
    EXPECT_EQ(fw.ports.size(), 1u);
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_FALSE(pub.in_use(Proto::Tcp, std::nullopt, 8080));

    Endpoint b = endpoint("b", 3);
    fw.ports.clear();
    ASSERT_TRUE(connect(b, {port(8080, 80)}).ok());  // the port was free again
    pub.unpublish(net, b, /*firewall=*/true);
    EXPECT_TRUE(fw.ports.empty());
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_FALSE(pub.in_use(Proto::Tcp, std::nullopt, 8080));
}

TEST_F(PublishTest, AFailedPublishLeavesNothingBehind) {
    fw.fail_ports = true;
    Endpoint ep = endpoint("a", 2);
    auto r = connect(ep, {port(8080, 80)});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message().rfind("publish ports: ", 0), 0u) << r.error().message();
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_FALSE(pub.in_use(Proto::Tcp, std::nullopt, 8080));
}

TEST_F(PublishTest, ForwardsOfHostRangesAndIpv6) {
    Endpoint ep = endpoint("a", 2);
    PortBinding range;
    range.proto = Proto::Udp;
    range.host_ip = *Ipv4::parse("127.0.0.1");
    range.host = {9000, 9002};
    range.container = {90, 92};
    PortBinding v6;
    v6.ipv6 = true;
    v6.host_ip6 = *Ipv6::parse("fd00::1");
    v6.host = {8443, 8443};
    v6.container = {443, 443};
    ep.ports = {range, v6};
    auto f = Publisher::forwards_of(net, ep);
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f[0].proto, firewall::L4::Udp);
    EXPECT_EQ(f[0].host_ip, range.host_ip);
    EXPECT_EQ(f[0].host_first, 9000);
    EXPECT_EQ(f[0].host_last, 9002);  // one element for the whole range
    EXPECT_EQ(f[0].container_first, 90);
    EXPECT_EQ(f[0].family, firewall::Family::V4);
    EXPECT_EQ(f[1].family, firewall::Family::V6);
    EXPECT_EQ(f[1].host_ip6, v6.host_ip6);
    EXPECT_EQ(f[1].container_ip6, ep.address6->addr());
}

TEST_F(PublishTest, RestoreClaimsAndHoldsAgainAndToleratesAPortTakenMeanwhile) {
    Endpoint ep = endpoint("a", 2);
    PortBinding b;
    b.host = {8080, 8080};
    b.container = {80, 80};
    PortBinding c = b;
    c.host = {8081, 8081};
    ep.ports = {b, c};
    kernel.taken.insert("tcp/0.0.0.0:8081");
    ASSERT_TRUE(pub.restore(ep).ok());
    EXPECT_EQ(kernel.held, (std::multiset<std::string>{"tcp/0.0.0.0:8080"}));
    EXPECT_EQ(pub.held("a"), 1u);
    EXPECT_TRUE(pub.in_use(Proto::Tcp, std::nullopt, 8081));  // allocated all the same
    EXPECT_TRUE(fw.ports.empty());                            // the start's sync does that

    Endpoint twin = endpoint("b", 3);
    twin.ports = {b};
    auto r = pub.restore(twin);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "Bind for 0.0.0.0:8080 failed: port is already allocated");
}

TEST_F(PublishTest, LoadPortRangeFollowsTheKernelsEphemeralRangeAndReservedPorts) {
    kernel.state.sysctls["net/ipv4/ip_local_port_range"] = "40000\t40002";
    kernel.state.sysctls["net/ipv4/ip_local_reserved_ports"] = "40000,40002";
    pub.load_port_range();
    Endpoint ep = endpoint("a", 2);
    ASSERT_TRUE(connect(ep, {port(0, 80)}).ok());
    EXPECT_EQ(ep.ports[0].host.first, 40001);
    Endpoint b = endpoint("b", 3);
    Rollback undo;
    auto r = pub.reserve(net, b, {port(0, 80)}, undo);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "no free host port left in 40000-40002 for tcp");

    // Unreadable: the kernel's default range, nothing reserved.
    kernel.state.sysctls.clear();
    pub.load_port_range();
    Endpoint c = endpoint("c", 4);
    ASSERT_TRUE(connect(c, {port(0, 80)}).ok());
    EXPECT_EQ(c.ports[0].host.first, 32768);
}

TEST_F(PublishTest, LoopbackRelaysListEveryIpv6LoopbackPort) {
    Endpoint ep = endpoint("a", 2);
    PortPlan range = loopback6(7070, 70);
    range.req.host = {7070, 7071};
    range.req.container = {70, 71};
    range.req.proto = Proto::Udp;
    ASSERT_TRUE(connect(ep, {port(8080, 80), range}).ok());
    net.endpoints.put(ep);
    auto relays = pub.loopback_relays({&net});
    ASSERT_EQ(relays.size(), 2u);
    EXPECT_EQ(relays[0].endpoint, "ep-a");
    EXPECT_EQ(relays[0].proto, Proto::Udp);
    EXPECT_EQ(relays[0].host_port, 7070);
    EXPECT_EQ(relays[1].host_port, 7071);
    EXPECT_EQ(relays[1].container_port, 71);
    EXPECT_EQ(relays[1].container_ip, ep.address6->addr());
    EXPECT_EQ(relays[0].fd, -1);  // the fake's holds have no sockets

    pub.unpublish(net, ep, true);
    net.endpoints.erase(ep.id);
    EXPECT_TRUE(pub.loopback_relays({&net}).empty());
}

}  // namespace

}  // namespace publish_test
