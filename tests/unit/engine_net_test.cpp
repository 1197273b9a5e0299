// Engine tests for Docker-parity networks (issue 5) against the fake kernel: dual stack, driver
// options, default address pools, static IP/MAC, the bridge port limit, announcements and live
// reconfiguration. Errors name the field and value and change nothing.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/engine.hpp"
#include "core/ula.hpp"
#include "fakes/fake_kernel.hpp"

namespace engine_net_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;
using cnetd::test::FakeFirewall;
using cnetd::test::FakeKernel;
using cnetd::test::FakeState;
using cnetd::test::FakeStore;

namespace {

constexpr const char* kNetnsDir = "/run/test/netns";

class NetTest : public ::testing::Test {
protected:
    void SetUp() override {
        kernel.uplink_mtu = 1450;
        EngineOptions o;
        o.netns_dir = kNetnsDir;
        o.mtu = 0;  // follow the uplink
        o.ula48 = ula48_from_id(std::string(64, 'a'));
        o.resolv_conf = "/nonexistent/resolv.conf";
        engine = std::make_unique<Engine>(kernel, fw, store, o);
        DefaultNetworkSpec spec;
        spec.ipv6 = true;
        ASSERT_TRUE(engine->start(spec, true).ok());
        for (const char* n : {"a", "b", "c"}) kernel.state.netns.insert(ns(n));
    }
    static std::string ns(const std::string& n) { return std::string(kNetnsDir) + "/" + n; }
    Network create(CreateNetworkRequest req) {
        auto r = engine->create_network(req);
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
        return r.ok() ? *r : Network{};
    }
    std::string create_error(CreateNetworkRequest req) {
        const FakeState before = kernel.state.normalized();
        const int saves = store.saves;
        auto r = engine->create_network(req);
        EXPECT_FALSE(r.ok());
        EXPECT_EQ(kernel.state.normalized(), before);
        EXPECT_EQ(store.saves, saves);
        return r.ok() ? "" : r.error().message();
    }
    std::string connect_error(ConnectRequest req) {
        const FakeState before = kernel.state.normalized();
        const int saves = store.saves;
        auto r = engine->connect(req);
        EXPECT_FALSE(r.ok());
        EXPECT_EQ(kernel.state.normalized(), before);
        EXPECT_EQ(store.saves, saves);
        return r.ok() ? "" : r.error().message();
    }

    FakeKernel kernel;
    FakeFirewall fw;
    FakeStore store;
    std::unique_ptr<Engine> engine;
};

TEST_F(NetTest, DefaultNetworkIsDualStackFromTheUlaAndFollowsTheUplinkMtu) {
    auto nets = engine->networks();
    ASSERT_EQ(nets.size(), 1u);
    ASSERT_TRUE(nets[0].subnet6.has_value());
    const Ipv6Cidr ula = ula48_from_id(std::string(64, 'a'));
    EXPECT_TRUE(ula.contains(nets[0].subnet6->network()));
    EXPECT_EQ(nets[0].subnet6->prefix(), 64);
    EXPECT_EQ(nets[0].gateway6, nets[0].subnet6->at(1));
    EXPECT_EQ(nets[0].mtu, 1450u);
    EXPECT_EQ(kernel.state.links["docker0"].mtu, 1450u);
    EXPECT_EQ(kernel.state.links["docker0"].addresses,
              (std::vector<std::string>{"172.17.0.1/16", nets[0].gateway6_cidr()->str()}));
    EXPECT_EQ(kernel.state.sysctls["net/ipv6/conf/all/forwarding"], "1");
    ASSERT_TRUE(fw.nets.begin()->second.subnet6.has_value());
    EXPECT_EQ(*fw.nets.begin()->second.subnet6, *nets[0].subnet6);
}

TEST_F(NetTest, DualStackEndpointGetsBothFamiliesAndAnnounces) {
    auto r = engine->connect({"bridge", "a", "", ""});
    ASSERT_TRUE(r.ok()) << r.error().message();
    const Network net = engine->networks()[0];
    ASSERT_TRUE(r->address6.has_value());
    EXPECT_EQ(r->address6->addr(), net.subnet6->at(2));
    const auto& peer = kernel.state.ns_links.at(ns("a")).at("eth0");
    EXPECT_FALSE(peer.ipv6_disabled);
    EXPECT_TRUE(peer.ipv6_enabled);
    EXPECT_EQ(peer.addresses, (std::vector<std::string>{"172.17.0.2/16", r->address6->str()}));
    EXPECT_EQ(peer.routes, (std::vector<std::string>{"default via 172.17.0.1",
                                                     "default via " + net.gateway6.str()}));
    ASSERT_EQ(kernel.announcements.size(), 1u);
    EXPECT_EQ(kernel.announcements[0],
              fmt::format("eth0 {} 172.17.0.2 {}", r->mac.str(), r->address6->addr().str()));
    // A failed announcement is logged, never fatal.
    kernel.fail_announce = true;
    EXPECT_TRUE(engine->connect({"bridge", "b", "", ""}).ok());
}

TEST_F(NetTest, StaticIpv6AndMacAndIfname) {
    const Network net = engine->networks()[0];
    const Ipv6 want = net.subnet6->at(0x99);
    ConnectRequest req{"bridge", "a", "", "172.17.0.50"};
    req.ipv6 = want.str();
    req.mac = "02:42:ac:11:00:99";
    req.ifname = "net1";
    auto r = engine->connect(req);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->address6->addr(), want);
    EXPECT_EQ(r->mac.str(), "02:42:ac:11:00:99");
    EXPECT_EQ(r->ifname, "net1");
    EXPECT_EQ(kernel.state.ns_links.at(ns("a")).at("net1").mac, "02:42:ac:11:00:99");
    // The same IPv6 address again: taken.
    ConnectRequest again{"bridge", "b", "", ""};
    again.ipv6 = want.str();
    EXPECT_NE(connect_error(again).find("ip6: "), std::string::npos);
    ConnectRequest bad_mac{"bridge", "b", "", ""};
    bad_mac.mac = "01:00:5e:00:00:01";
    EXPECT_EQ(connect_error(bad_mac),
              "connect b to bridge: mac: 01:00:5e:00:00:01 is not a unicast address");
    ConnectRequest bad6{"bridge", "b", "", ""};
    bad6.ipv6 = "fd00::zz";
    EXPECT_EQ(connect_error(bad6), "connect b to bridge: ip6: \"fd00::zz\" is not an IPv6 address");
}

TEST_F(NetTest, Ipv6OnAnIpv4OnlyNetworkIsRefused) {
    create({.name = "v4", .subnet = "10.10.0.0/24"});
    ConnectRequest req{"v4", "a", "", ""};
    req.ipv6 = "fd00::5";
    EXPECT_EQ(connect_error(req),
              "connect a to v4: ip6: fd00::5 given, but network v4 is IPv4 only");
    ConnectRequest pub{"v4", "a", "", ""};
    pub.publish = {"[::1]:8080:80"};
    EXPECT_EQ(connect_error(pub),
              "connect a to v4: publish: IPv6 host address [::1] needs a "
              "dual-stack network; v4 is IPv4 only");
}

TEST_F(NetTest, PublishWithoutAddressCoversBothFamiliesOnDualStack) {
    ConnectRequest req{"bridge", "a", "", ""};
    req.publish = {"8080:80", "[fd00:99::1]:9090:90/udp"};
    auto r = engine->connect(req);
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(r->ports.size(), 3u);
    EXPECT_EQ(r->ports[0].str(), "0.0.0.0:8080->80/tcp");
    EXPECT_EQ(r->ports[1].str(), "[::]:8080->80/tcp");
    EXPECT_EQ(r->ports[2].str(), "[fd00:99::1]:9090->90/udp");
    ASSERT_EQ(fw.ports.size(), 3u);
    EXPECT_EQ(fw.ports[0].family, firewall::Family::V4);
    EXPECT_EQ(fw.ports[1].family, firewall::Family::V6);
    EXPECT_EQ(fw.ports[1].container_ip6, r->address6->addr());
    EXPECT_EQ(fw.ports[2].host_ip6, Ipv6::parse("fd00:99::1").value());
    EXPECT_TRUE(kernel.held.count("tcp/0.0.0.0:8080"));
    EXPECT_TRUE(kernel.held.count("tcp/[::]:8080"));
    EXPECT_TRUE(kernel.held.count("udp/[fd00:99::1]:9090"));
    // [::1]: sctp is refused by name (the userland relay has no SCTP) and changes nothing...
    ConnectRequest sctp{"bridge", "b", "", ""};
    sctp.publish = {"[::1]:7070:70/sctp"};
    EXPECT_EQ(connect_error(sctp),
              "connect b to bridge: publish: [::1]:7070->70/sctp: proto sctp cannot be published "
              "on [::1] (IPv6 loopback is relayed in userland, for tcp and udp only); publish sctp "
              "on [::], a host IPv6 address or 127.0.0.1");
    EXPECT_EQ(kernel.held.size(), 3u);
    // ...tcp and udp are held and handed to the daemon's relay, with no map element.
    ConnectRequest lo{"bridge", "b", "", ""};
    lo.publish = {"[::1]:7070:70", "[::1]:7100-7101:100-101/udp"};
    auto l = engine->connect(lo);
    ASSERT_TRUE(l.ok()) << l.error().message();
    EXPECT_EQ(l->ports[0].str(), "[::1]:7070->70/tcp");
    EXPECT_TRUE(kernel.held.count("tcp/[::1]:7070"));
    EXPECT_TRUE(kernel.held.count("udp/[::1]:7101"));
    EXPECT_EQ(fw.ports.size(), 3u);
    auto relays = engine->loopback_relays();
    ASSERT_EQ(relays.size(), 3u);
    EXPECT_EQ(relays[0].proto, Proto::Tcp);
    EXPECT_EQ(relays[0].host_port, 7070);
    EXPECT_EQ(relays[0].container_port, 70);
    EXPECT_EQ(relays[0].container_ip, l->address6->addr());
    EXPECT_EQ(relays[2].proto, Proto::Udp);
    EXPECT_EQ(relays[2].host_port, 7101);
    EXPECT_EQ(relays[2].container_port, 101);
    ConnectRequest again{"bridge", "c", "", ""};
    again.publish = {"[::]:7070:70"};
    EXPECT_EQ(connect_error(again),
              "connect c to bridge: Bind for [::]:7070 failed: port is already allocated");
    ASSERT_TRUE(engine->disconnect("bridge", "b").ok());
    EXPECT_TRUE(engine->loopback_relays().empty());
    ASSERT_TRUE(engine->disconnect("bridge", "a").ok());
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_TRUE(fw.ports.empty());
}

TEST_F(NetTest, CreateWithEveryOption) {
    Network n = create({.name = "full",
                        .subnet = "10.20.0.0/24",
                        .gateway = "10.20.0.254",
                        .ip_range = "10.20.0.128/25",
                        .options = {{"com.docker.network.bridge.name", "br-full"},
                                    {"com.docker.network.driver.mtu", "1400"},
                                    {"com.docker.network.container_iface_prefix", "cnet"},
                                    {"com.docker.network.bridge.gateway_mode_ipv4", "routed"},
                                    {"com.docker.network.bridge.gateway_mode_ipv6", "isolated"},
                                    {"com.docker.network.bridge.enable_icc", "false"}},
                        .ipv6 = true,
                        .subnet6 = "fd99:1::/64",
                        .gateway6 = "fd99:1::fe",
                        .ip_range6 = "fd99:1::100/120",
                        .aux_addresses = {{"router", "10.20.0.129"}, {"r6", "fd99:1::100"}},
                        .labels = {{"team", "net"}}});
    EXPECT_EQ(n.mtu, 1400u);
    EXPECT_EQ(kernel.state.links["br-full"].mtu, 1400u);
    EXPECT_EQ(n.mode4, firewall::GatewayMode::Routed);
    EXPECT_EQ(n.mode6, firewall::GatewayMode::Isolated);
    EXPECT_EQ(fw.nets[n.id].mode4, firewall::GatewayMode::Routed);
    EXPECT_FALSE(fw.nets[n.id].icc);
    EXPECT_EQ(n.labels.at("team"), "net");
    auto r = engine->connect({"full", "a", "", ""});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->ifname, "cnet0");
    EXPECT_EQ(r->address.str(), "10.20.0.128/24");  // the range's first address
    auto r2 = engine->connect({"full", "b", "", ""});
    ASSERT_TRUE(r2.ok()) << r2.error().message();
    EXPECT_EQ(r2->address.str(), "10.20.0.130/24");   // .129 is an aux address
    EXPECT_EQ(r->address6->str(), "fd99:1::101/64");  // ::100 is an aux address
    EXPECT_EQ(r2->address6->str(), "fd99:1::102/64");
    const auto& peer = kernel.state.ns_links.at(ns("a")).at("cnet0");
    EXPECT_EQ(peer.routes,
              (std::vector<std::string>{"default via 10.20.0.254", "default via fd99:1::fe"}));
}

TEST_F(NetTest, InhibitIpv4LeavesTheBridgeWithoutIpv4) {
    Network n = create({.name = "noip",
                        .subnet = "10.30.0.0/24",
                        .options = {{"com.docker.network.bridge.inhibit_ipv4", "true"}}});
    EXPECT_TRUE(kernel.state.links[n.bridge].addresses.empty());
    auto r = engine->connect({"noip", "a", "", ""});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(kernel.state.ns_links.at(ns("a")).at("eth0").routes.empty());
}

TEST_F(NetTest, BadOptionsNameTheOptionAndChangeNothing) {
    EXPECT_EQ(
        create_error({.name = "x", .subnet = "10.40.0.0/24", .options = {{"com.example.foo", "1"}}})
            .rfind("option com.example.foo: unknown option (supported: ", 0),
        0u);
    EXPECT_EQ(create_error({.name = "x",
                            .subnet = "10.40.0.0/24",
                            .options = {{"com.docker.network.driver.mtu", "20"}}}),
              "option com.docker.network.driver.mtu: \"20\" is not an MTU (68-65535)");
    EXPECT_EQ(create_error({.name = "x",
                            .subnet = "10.40.0.0/24",
                            .options = {{"com.docker.network.bridge.gateway_mode_ipv4", "open"}}}),
              "option com.docker.network.bridge.gateway_mode_ipv4: \"open\" is not a gateway mode "
              "(nat, nat-unprotected, routed, isolated)");
    EXPECT_EQ(create_error({.name = "x",
                            .subnet = "10.40.0.0/24",
                            .options = {{"com.docker.network.container_iface_prefix", "a/b"}}})
                  .rfind("option com.docker.network.container_iface_prefix: \"a/b\"", 0),
              0u);
    EXPECT_EQ(create_error(
                  {.name = "x", .subnet = "10.40.0.0/24", .aux_addresses = {{"r", "10.41.0.1"}}}),
              "aux-address: r=10.41.0.1 is not a free host address of subnet 10.40.0.0/24");
    EXPECT_EQ(
        create_error({.name = "x", .subnet = "10.40.0.0/24", .ipv6 = true, .subnet6 = "fd00::/40"}),
        "subnet: \"fd00::/40\": prefix length must be between 48 and 124");
    EXPECT_EQ(create_error({.name = "x", .subnet = "10.40.0.0/24", .gateway6 = "fd00::1"}),
              "gateway: IPv6 settings need --ipv6 and an IPv6 subnet");
    const Network def = engine->networks()[0];
    EXPECT_EQ(create_error({.name = "x", .subnet = "10.40.0.0/24", .subnet6 = def.subnet6->str()}),
              fmt::format("subnet: {} overlaps network bridge ({})", def.subnet6->str(),
                          def.subnet6->str()));
}

TEST_F(NetTest, NoSubnetTakesTheNextFreePoolSkippingRoutesAndUsedOnes) {
    kernel.onlink = {*Ipv4Cidr::parse("172.18.0.0/16")};
    Network a = create({.name = "p1"});
    EXPECT_EQ(a.subnet.str(), "172.19.0.0/16");  // 172.17 docker0, 172.18 on-link route
    Network b = create({.name = "p2"});
    EXPECT_EQ(b.subnet.str(), "172.20.0.0/16");
    Network v6 = create({.name = "p3", .ipv6 = true});
    ASSERT_TRUE(v6.subnet6.has_value());
    EXPECT_NE(*v6.subnet6, *engine->networks()[0].subnet6);  // the next /64 of the ULA
    EXPECT_EQ(v6.subnet6->prefix(), 64);
}

TEST_F(NetTest, BridgePortLimitIsAClearError) {
    // An adopted bridge full of foreign ports: the kernel's EXFULL becomes the clear error.
    kernel.extra_ports["docker0"] = 1023;
    ConnectRequest req{"bridge", "a", "", ""};
    kernel.fail_errno = EXFULL;
    kernel.fail_step = kernel.steps + 1;  // create_veth
    EXPECT_EQ(connect_error(req),
              "connect a to bridge: bridge docker0 already has 1023 ports, the Linux limit per "
              "bridge; use another network");
    kernel.fail_step = 0;
    kernel.fail_errno = EIO;
}

TEST_F(NetTest, BridgePortLimitIsCheckedBeforeTheKernelNearTheLimit) {
    // 959 endpoints of our own (the threshold for asking the kernel), and the bridge is full.
    for (int i = 0; i < 959; ++i) {
        const std::string name = fmt::format("n{}", i);
        kernel.state.netns.insert(ns(name));
        ASSERT_TRUE(engine->connect({"bridge", name, "", ""}).ok()) << i;
    }
    kernel.extra_ports["docker0"] = 1023 - 959;
    const int steps = kernel.steps;
    EXPECT_EQ(connect_error({"bridge", "a", "", ""}),
              "connect a to bridge: bridge docker0 already has 1023 ports, the Linux limit per "
              "bridge; use another network");
    EXPECT_EQ(kernel.steps, steps);  // refused before any kernel change
}

TEST_F(NetTest, ReconfigureAppliesLiveKeysAtomically) {
    DefaultNetworkSpec spec;
    spec.ipv6 = true;
    spec.icc = false;
    spec.masquerade = false;
    spec.mtu = 1300;
    EngineOptions live;
    live.mtu = 1300;
    ASSERT_TRUE(engine->reconfigure(spec, live, true).ok());
    const Network n = engine->networks()[0];
    EXPECT_FALSE(n.icc);
    EXPECT_FALSE(n.masquerade);
    EXPECT_EQ(n.mtu, 1300u);
    EXPECT_FALSE(fw.nets[n.id].icc);
    EXPECT_FALSE(fw.nets[n.id].masquerade);
    EXPECT_EQ(kernel.state.links["docker0"].mtu, 1300u);
    EXPECT_EQ(store.saved[0].icc, false);
    // New networks take the new MTU.
    Network u = create({.name = "after", .subnet = "10.50.0.0/24"});
    EXPECT_EQ(u.mtu, 1300u);
    // A failing save undoes everything: options, the bridge MTU, the firewall intent.
    store.fail_save = true;
    spec.icc = true;
    spec.mtu = 1200;
    live.mtu = 1200;
    EXPECT_FALSE(engine->reconfigure(spec, live, true).ok());
    store.fail_save = false;
    const Network back = **engine->find_network("bridge");
    EXPECT_FALSE(back.icc);
    EXPECT_EQ(back.mtu, 1300u);
    EXPECT_EQ(kernel.state.links["docker0"].mtu, 1300u);
    EXPECT_FALSE(fw.nets[back.id].icc);
    EXPECT_EQ(create({.name = "after2", .subnet = "10.51.0.0/24"}).mtu, 1300u);
}

}  // namespace

}  // namespace engine_net_test
