// Engine tests against the in-memory fake kernel: validation errors name the field and change
// nothing; every kernel step of connect/create can fail and the fake kernel, the IPAM and the
// persisted state are exactly as before.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "core/engine.hpp"
#include "fakes/fake_kernel.hpp"

namespace engine_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;
using cnetd::test::FakeKernel;
using cnetd::test::FakeStore;
using cnetd::test::FakeState;
using cnetd::test::FakeFirewall;

namespace {

constexpr const char* kNetnsDir = "/run/test/netns";

class EngineTest : public ::testing::Test {
protected:
    void SetUp() override {
        engine = std::make_unique<Engine>(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
        ASSERT_TRUE(engine->start(DefaultNetworkSpec{}, true).ok());
        kernel.state.netns.insert(ns("a"));
        kernel.state.netns.insert(ns("b"));
    }
    static std::string ns(const std::string& n) { return std::string(kNetnsDir) + "/" + n; }
    Endpoint connect(const std::string& target, const std::string& ip = "") {
        auto r = engine->connect({"bridge", target, "", ip});
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
        return r.ok() ? *r : Endpoint{};
    }
    std::string error_of(Result<Endpoint> r) {
        EXPECT_FALSE(r.ok());
        return r.ok() ? "" : r.error().message();
    }

    FakeKernel kernel;
    FakeFirewall fw;
    FakeStore store;
    std::unique_ptr<Engine> engine;
};

TEST_F(EngineTest, StartCreatesDefaultBridgeAndEnablesForwarding) {
    ASSERT_TRUE(kernel.state.links.count("docker0"));
    EXPECT_EQ(kernel.state.links["docker0"].kind, "bridge");
    EXPECT_EQ(kernel.state.links["docker0"].addresses, std::vector<std::string>{"172.17.0.1/16"});
    EXPECT_TRUE(kernel.state.links["docker0"].up);
    EXPECT_EQ(kernel.state.sysctls["net/ipv4/ip_forward"], "1");
    auto nets = engine->networks();
    ASSERT_EQ(nets.size(), 1u);
    EXPECT_EQ(nets[0].name, "bridge");
    EXPECT_TRUE(nets[0].is_default);
    EXPECT_EQ(nets[0].subnet.str(), "172.17.0.0/16");
    EXPECT_EQ(nets[0].options.at(kOptBridgeName), "docker0");
    EXPECT_EQ(nets[0].id.size(), 64u);
    ASSERT_EQ(store.saved.size(), 1u);  // persisted
}

TEST_F(EngineTest, ConnectAssignsLowestAddressesAndBuildsTheVeth) {
    Endpoint a = connect("a");
    Endpoint b = connect("b");
    EXPECT_EQ(a.address.str(), "172.17.0.2/16");
    EXPECT_EQ(b.address.str(), "172.17.0.3/16");
    EXPECT_EQ(a.ifname, "eth0");
    EXPECT_EQ(a.name, "a");
    EXPECT_EQ(a.host_ifname.size(), 11u);
    EXPECT_EQ(a.host_ifname.rfind("veth", 0), 0u);
    EXPECT_EQ(a.mac.bytes()[0] & 0x03, 0x02);  // unicast, locally administered
    const auto& host = kernel.state.links.at(a.host_ifname);
    EXPECT_EQ(host.master, "docker0");
    EXPECT_TRUE(host.up);
    const auto& peer = kernel.state.ns_links.at(ns("a")).at("eth0");
    EXPECT_EQ(peer.addresses, std::vector<std::string>{"172.17.0.2/16"});
    EXPECT_EQ(peer.routes, std::vector<std::string>{"default via 172.17.0.1"});
    EXPECT_TRUE(peer.up);
    EXPECT_TRUE(peer.ipv6_disabled);
    EXPECT_EQ(peer.mac, a.mac.str());
    EXPECT_EQ(store.saved[0].endpoints.size(), 2u);
}

TEST_F(EngineTest, DisconnectFreesTheAddressForReuse) {
    Endpoint a = connect("a");
    connect("b");
    ASSERT_TRUE(engine->disconnect("bridge", "a").ok());
    EXPECT_FALSE(kernel.state.links.count(a.host_ifname));
    EXPECT_TRUE(kernel.state.ns_links[ns("a")].empty());
    Endpoint again = connect("a");
    EXPECT_EQ(again.address.str(), "172.17.0.2/16");
    EXPECT_NE(again.id, a.id);
}

TEST_F(EngineTest, ConnectRollsBackAtEveryKernelStep) {
    connect("b");  // something already there that must survive
    const FakeState before = kernel.state.normalized();
    const auto saved_before = store.saved[0].endpoints.size();
    // Count the steps of a successful attach on a scratch engine state, then fail each one.
    int total = 0;
    {
        kernel.ops.clear();
        int s0 = kernel.steps;
        Endpoint tmp = connect("a");
        total = kernel.steps - s0;
        ASSERT_TRUE(engine->disconnect("bridge", "a").ok());
    }
    ASSERT_GE(total, 6);  // create_veth, disable_ipv6, address, up, host up, route
    for (int k = 1; k <= total; ++k) {
        kernel.fail_step = kernel.steps + k;
        auto r = engine->connect({"bridge", "a", "", ""});
        kernel.fail_step = 0;
        ASSERT_FALSE(r.ok()) << "step " << k;
        EXPECT_NE(r.error().message().find("connect a to bridge: "), std::string::npos)
            << r.error().message();
        EXPECT_EQ(kernel.state.normalized(), before) << "kernel state changed, step " << k;
        EXPECT_EQ(store.saved[0].endpoints.size(), saved_before);
        EXPECT_EQ(engine->networks()[0].endpoints.size(), 1u);
    }
    // The address was released every time: the next attach gets .3 (b holds .2).
    EXPECT_EQ(connect("a").address.str(), "172.17.0.3/16");
}

TEST_F(EngineTest, ConnectRollsBackWhenStateCannotBeSaved) {
    const FakeState before = kernel.state.normalized();
    store.fail_save = true;
    auto r = engine->connect({"bridge", "a", "", ""});
    store.fail_save = false;
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("save state"), std::string::npos);
    EXPECT_EQ(kernel.state.normalized(), before);
    EXPECT_EQ(connect("a").address.str(), "172.17.0.2/16");
}

TEST_F(EngineTest, VethNameCollisionIsRetried) {
    // A create_veth failing with EEXIST (host name taken) is retried under a fresh name.
    kernel.ops.clear();
    kernel.fail_step = kernel.steps + 1;
    kernel.fail_errno = EEXIST;
    Endpoint a = connect("a");
    EXPECT_EQ(a.address.str(), "172.17.0.2/16");
    ASSERT_GE(kernel.ops.size(), 2u);
    EXPECT_EQ(kernel.ops[0].rfind("create_veth", 0), 0u);
    EXPECT_EQ(kernel.ops[1].rfind("create_veth", 0), 0u);
    EXPECT_NE(kernel.ops[0], kernel.ops[1]);
}

TEST_F(EngineTest, StaticAddressValidation) {
    EXPECT_EQ(connect("a", "172.17.0.9").address.str(), "172.17.0.9/16");
    const FakeState before = kernel.state.normalized();
    EXPECT_NE(error_of(engine->connect({"bridge", "b", "", "172.17.0.9"})).find("172.17.0.9 is already in use"),
              std::string::npos);
    EXPECT_NE(error_of(engine->connect({"bridge", "b", "", "10.0.0.1"})).find("not in the network's subnet"),
              std::string::npos);
    EXPECT_NE(error_of(engine->connect({"bridge", "b", "", "172.17.0.1"})).find("gateway"),
              std::string::npos);
    EXPECT_NE(error_of(engine->connect({"bridge", "b", "", "172.17.255.255"})).find("broadcast"),
              std::string::npos);
    EXPECT_NE(error_of(engine->connect({"bridge", "b", "", "172.17.0.300"})).find("ip: \"172.17.0.300\""),
              std::string::npos);
    EXPECT_EQ(kernel.state.normalized(), before);
}

TEST_F(EngineTest, TargetValidation) {
    const FakeState before = kernel.state.normalized();
    kernel.regular_files.insert("/etc/passwd");
    EXPECT_NE(error_of(engine->connect({"bridge", "/etc/passwd", "", ""})).find("not a network namespace"),
              std::string::npos);
    EXPECT_NE(error_of(engine->connect({"bridge", "../a", "", ""})).find("neither a netns name"),
              std::string::npos);
    EXPECT_NE(error_of(engine->connect({"bridge", "zz", "", ""})).find("No such file"),
              std::string::npos);
    EXPECT_NE(error_of(engine->connect({"nope", "a", "", ""})).find("network nope not found"),
              std::string::npos);
    connect("a");
    EXPECT_NE(error_of(engine->connect({"bridge", ns("a"), "", ""})).find("already connected"),
              std::string::npos);
    EXPECT_EQ(kernel.state.normalized().links.size(), before.links.size() + 1);
}

TEST_F(EngineTest, CreateNetworkDefaultsAndValidation) {
    auto r = engine->create_network({"web", "10.10.0.0/24", "", "", {}});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->bridge, "br-" + r->id.substr(0, 12));
    EXPECT_EQ(r->gateway.str(), "10.10.0.1");
    EXPECT_EQ(kernel.state.links.at(r->bridge).addresses, std::vector<std::string>{"10.10.0.1/24"});

    const FakeState before = kernel.state.normalized();
    auto err = [&](CreateNetworkRequest req) {
        auto x = engine->create_network(req);
        EXPECT_FALSE(x.ok());
        return x.ok() ? std::string() : x.error().message();
    };
    EXPECT_EQ(err({"web", "10.11.0.0/24", "", "", {}}), "network with name web already exists");
    EXPECT_EQ(err({"web2", "10.10.0.0/16", "", "", {}}),
              "subnet: 10.10.0.0/16 overlaps network web (10.10.0.0/24)");
    EXPECT_EQ(err({"web2", "172.17.5.0/24", "", "", {}}),
              "subnet: 172.17.5.0/24 overlaps network bridge (172.17.0.0/16)");
    EXPECT_EQ(err({"web2", "10.20.0.0/24", "10.21.0.1", "", {}}),
              "gateway: 10.21.0.1 is not in subnet 10.20.0.0/24");
    EXPECT_EQ(err({"web2", "10.20.0.0/24", "10.20.0.255", "", {}}),
              "gateway: 10.20.0.255 is the broadcast address of 10.20.0.0/24");
    EXPECT_EQ(err({"web2", "10.20.0.5/24", "", "", {}}),
              "subnet: \"10.20.0.5/24\" has host bits set (did you mean 10.20.0.0/24?)");
    EXPECT_EQ(err({"web2", "10.20.0.0/33", "", "", {}}), "subnet: \"10.20.0.0/33\": prefix length 33 > 32");
    EXPECT_EQ(err({"web2", "10.20.0.0/24", "", "10.30.0.0/25", {}}),
              "ip-range: 10.30.0.0/25 is not inside subnet 10.20.0.0/24");
    EXPECT_NE(err({"web2", "10.20.0.0/24", "", "", {{kOptBridgeName, "a-very-long-bridge-name"}}})
                  .find("is 23 characters long (the limit is 15)"),
              std::string::npos);
    EXPECT_NE(err({"web2", "10.20.0.0/24", "", "", {{"com.example.x", "1"}}}).find("com.example.x: unknown option"),
              std::string::npos);
    EXPECT_NE(err({"bad name", "10.20.0.0/24", "", "", {}}).find("name: \"bad name\" is invalid"),
              std::string::npos);
    EXPECT_EQ(err({"web2", "", "10.20.0.1", "", {}}), "gateway: given without subnet");
    kernel.state.links["eth9"] = test::FakeLink{"dummy", "", "", true, 1500, {}};
    EXPECT_NE(err({"web2", "10.20.0.0/24", "", "", {{kOptBridgeName, "eth9"}}}).find("not a bridge"),
              std::string::npos);
    kernel.state.links.erase("eth9");
    EXPECT_EQ(kernel.state.normalized(), before);
    EXPECT_EQ(engine->networks().size(), 2u);
}

TEST_F(EngineTest, CreateNetworkRollsBackTheBridgeWhenSaveFails) {
    const FakeState before = kernel.state.normalized();
    store.fail_save = true;
    auto r = engine->create_network({"web", "10.10.0.0/24", "", "", {}});
    store.fail_save = false;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(kernel.state.normalized(), before);
    EXPECT_EQ(engine->networks().size(), 1u);
}

TEST_F(EngineTest, CreateNetworkRemovesAHalfMadeBridge) {
    const FakeState before = kernel.state.normalized();
    kernel.fail_step = kernel.steps + 1;  // ensure_bridge fails
    auto r = engine->create_network({"web", "10.10.0.0/24", "", "", {}});
    kernel.fail_step = 0;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message().rfind("create network web: ", 0), 0u) << r.error().message();
    EXPECT_EQ(kernel.state.normalized(), before);
}

TEST_F(EngineTest, AdoptedBridgeIsLeftInPlaceOnRemove) {
    kernel.state.links["mybr"] = test::FakeLink{"bridge", "", "", true, 1500, {}};
    auto r = engine->create_network({"lan", "10.50.0.0/24", "", "", {{kOptBridgeName, "mybr"}}});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(r->bridge_adopted);
    ASSERT_TRUE(engine->remove_network("lan").ok());
    EXPECT_TRUE(kernel.state.links.count("mybr"));
    auto own = engine->create_network({"own", "10.60.0.0/24", "", "", {}});
    ASSERT_TRUE(own.ok());
    ASSERT_TRUE(engine->remove_network(own->id.substr(0, 12)).ok());  // by id prefix
    EXPECT_FALSE(kernel.state.links.count(own->bridge));
}

TEST_F(EngineTest, RemoveNetworkRefusals) {
    auto r = engine->remove_network("bridge");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("default network and cannot be removed"), std::string::npos);
    ASSERT_TRUE(engine->create_network({"web", "10.10.0.0/24", "", "", {}}).ok());
    ASSERT_TRUE(engine->connect({"web", "a", "", ""}).ok());
    auto busy = engine->remove_network("web");
    ASSERT_FALSE(busy.ok());
    EXPECT_EQ(busy.error().kind(), ErrorKind::Conflict);
    EXPECT_EQ(busy.error().message(), "network web has active endpoints (a)");
    EXPECT_EQ(engine->remove_network("nope").error().kind(), ErrorKind::NotFound);
}

TEST(EngineNetns, RemoveNetnsDisconnectsItsEndpointsFirst) {
    // remove_netns checks the file in the netns dir, so use a real (temporary) directory.
    char tmpl[] = "/tmp/cnetd-engine-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    std::string dir = tmpl;
    FakeKernel kernel;
    FakeFirewall fw;
    FakeStore store;
    Engine e(kernel, fw, store, EngineOptions{dir, 1500});
    ASSERT_TRUE(e.start(DefaultNetworkSpec{}, true).ok());
    ASSERT_TRUE(e.create_network({"web", "10.10.0.0/24", "", "", {}}).ok());
    auto path = e.create_netns("a");
    ASSERT_TRUE(path.ok());
    EXPECT_EQ(*path, dir + "/a");
    FILE* f = fopen(path->c_str(), "w");  // the fake kernel does not make the file
    ASSERT_NE(f, nullptr);
    fclose(f);
    EXPECT_EQ(e.list_netns(), std::vector<std::string>{"a"});
    EXPECT_EQ(e.create_netns("a").error().kind(), ErrorKind::Conflict);
    auto e1 = e.connect({"bridge", "a", "", ""});
    auto e2 = e.connect({"web", "a", "", ""});
    ASSERT_TRUE(e1.ok() && e2.ok());
    ASSERT_TRUE(e.remove_netns("a").ok());
    EXPECT_FALSE(kernel.state.links.count(e1->host_ifname));
    EXPECT_FALSE(kernel.state.links.count(e2->host_ifname));
    EXPECT_FALSE(kernel.state.netns.count(dir + "/a"));
    for (const auto& n : e.networks()) EXPECT_TRUE(n.endpoints.empty()) << n.name;
    unlink((dir + "/a").c_str());  // the real kernel unlinks it; the fake does not
    EXPECT_EQ(e.remove_netns("a").error().kind(), ErrorKind::NotFound);
    EXPECT_EQ(e.create_netns("../x").error().kind(), ErrorKind::InvalidArgument);
    rmdir(dir.c_str());
}

TEST_F(EngineTest, RestartKeepsEndpointsAndAllocations) {
    Endpoint a = connect("a");
    const FakeState before = kernel.state.normalized();
    // A second engine on the same store and kernel: like a daemon restart.
    Engine again(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
    ASSERT_TRUE(again.start(DefaultNetworkSpec{}, true).ok());
    EXPECT_EQ(kernel.state.normalized().links, before.links);  // nothing torn down
    auto nets = again.networks();
    ASSERT_EQ(nets[0].endpoints.size(), 1u);
    auto b = again.connect({"bridge", "b", "", ""});
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->address.str(), "172.17.0.3/16");  // .2 is still a's
}

TEST_F(EngineTest, ConfigMovingTheDefaultNetworkWithEndpointsIsRefused) {
    connect("a");
    Engine again(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
    DefaultNetworkSpec moved;
    moved.bip = *Ipv4Cidr::parse("10.200.0.1/24");
    auto r = again.start(moved, true);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("has 1 endpoint(s)"), std::string::npos) << r.error().message();
}

TEST_F(EngineTest, ConfigMovesAnEmptyDefaultNetwork) {
    Engine again(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
    DefaultNetworkSpec moved;
    moved.bip = *Ipv4Cidr::parse("10.200.0.1/24");
    ASSERT_TRUE(again.start(moved, true).ok());
    EXPECT_EQ(kernel.state.links.at("docker0").addresses, std::vector<std::string>{"10.200.0.1/24"});
    EXPECT_EQ(again.networks()[0].subnet.str(), "10.200.0.0/24");
    EXPECT_EQ(again.networks()[0].id, engine->networks()[0].id);  // same network, new address
}

TEST(EngineStart, BridgeNoneMeansNoDefaultNetwork) {
    FakeKernel kernel;
    FakeFirewall fw;
    FakeStore store;
    Engine e(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
    ASSERT_TRUE(e.start(std::nullopt, false).ok());
    EXPECT_TRUE(e.networks().empty());
    EXPECT_FALSE(kernel.state.links.count("docker0"));
    EXPECT_FALSE(kernel.state.sysctls.count("net/ipv4/ip_forward"));
}

TEST(EngineStart, DefaultBridgeNameTakenByANonBridgeIsAnError) {
    FakeKernel kernel;
    FakeFirewall fw;
    FakeStore store;
    kernel.state.links["docker0"] = test::FakeLink{"dummy", "", "", true, 1500, {}};
    Engine e(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
    auto r = e.start(DefaultNetworkSpec{}, true);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("not a bridge"), std::string::npos) << r.error().message();
}

}  // namespace

namespace {

TEST_F(EngineTest, FirewallGetsEveryNetworksIntent) {
    ASSERT_EQ(fw.syncs, 1);  // start: one full replace
    ASSERT_EQ(fw.nets.size(), 1u);
    const auto& def = fw.nets.begin()->second;
    EXPECT_EQ(def.bridge, "docker0");
    EXPECT_EQ(def.subnet.str(), "172.17.0.0/16");
    EXPECT_TRUE(def.icc && def.masquerade && !def.internal);

    auto web = engine->create_network({"web", "10.10.0.0/24", "", "",
                                       {{kOptEnableIcc, "false"}, {kOptHostIpv4, "192.0.2.10"}}});
    ASSERT_TRUE(web.ok()) << web.error().message();
    const auto& r = fw.nets.at(web->id);
    EXPECT_FALSE(r.icc);
    EXPECT_TRUE(r.masquerade);
    EXPECT_EQ(r.snat_source->str(), "192.0.2.10");
    EXPECT_EQ(web->options.at(kOptEnableIcc), "false");

    auto internal = engine->create_network({"int", "10.11.0.0/24", "", "", {}, true});
    ASSERT_TRUE(internal.ok());
    EXPECT_TRUE(fw.nets.at(internal->id).internal);
    EXPECT_FALSE(fw.nets.at(internal->id).masquerade);  // internal networks are never NATed
    // An internal network's containers get no default route.
    ASSERT_TRUE(engine->connect({"int", "a", "", ""}).ok());
    EXPECT_TRUE(kernel.state.ns_links.at(ns("a")).at("eth0").routes.empty());

    ASSERT_TRUE(engine->remove_network("web").ok());
    EXPECT_FALSE(fw.nets.count(web->id));
    EXPECT_EQ(fw.nets.size(), 2u);
}

TEST_F(EngineTest, FirewallFailureRollsTheNetworkBack) {
    const FakeState before = kernel.state.normalized();
    fw.fail_add = true;
    auto r = engine->create_network({"web", "10.10.0.0/24", "", "", {}});
    fw.fail_add = false;
    ASSERT_FALSE(r.ok());
    const std::string& m = r.error().message();
    EXPECT_EQ(m.rfind("create network web: firewall: add element inet cnetd nets { br-", 0), 0u) << m;
    EXPECT_NE(m.find(": Operation not permitted"), std::string::npos) << m;
    EXPECT_EQ(kernel.state.normalized(), before);  // the new bridge is gone again
    EXPECT_EQ(engine->networks().size(), 1u);
    EXPECT_EQ(fw.nets.size(), 1u);
}

TEST_F(EngineTest, BadDriverOptionValues) {
    const FakeState before = kernel.state.normalized();
    auto err = [&](std::map<std::string, std::string> o) {
        auto x = engine->create_network({"web", "10.10.0.0/24", "", "", o});
        EXPECT_FALSE(x.ok());
        return x.ok() ? std::string() : x.error().message();
    };
    EXPECT_EQ(err({{kOptEnableIcc, "maybe"}}),
              "option com.docker.network.bridge.enable_icc: \"maybe\" is not a boolean (true or false)");
    EXPECT_EQ(err({{kOptEnableMasquerade, "yes please"}}),
              "option com.docker.network.bridge.enable_ip_masquerade: \"yes please\" is not a boolean "
              "(true or false)");
    EXPECT_EQ(err({{kOptHostIpv4, "300.1.1.1"}}),
              "option com.docker.network.host_ipv4: \"300.1.1.1\" is not an IPv4 address");
    EXPECT_EQ(kernel.state.normalized(), before);
    EXPECT_EQ(fw.nets.size(), 1u);
}

TEST_F(EngineTest, ConfigIccChangeUpdatesTheDefaultNetworkInPlace) {
    connect("a");
    Engine again(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
    DefaultNetworkSpec spec;
    spec.icc = false;
    ASSERT_TRUE(again.start(spec, true).ok());  // allowed with endpoints: nothing moves
    EXPECT_FALSE(again.networks()[0].icc);
    EXPECT_EQ(again.networks()[0].endpoints.size(), 1u);
    EXPECT_FALSE(fw.nets.begin()->second.icc);
    EXPECT_EQ(again.networks()[0].options.at(kOptEnableIcc), "false");
}

}  // namespace

namespace {

ConnectRequest with_ports(std::string net, std::string target, std::vector<std::string> p) {
    ConnectRequest r{std::move(net), std::move(target), "", ""};
    r.publish = std::move(p);
    return r;
}

TEST_F(EngineTest, PublishedPortsAreHeldAndForwarded) {
    auto a = engine->connect(with_ports("bridge", "a", {"8080:80", "127.0.0.1::53/udp", "9000-9002:80-82"}));
    ASSERT_TRUE(a.ok()) << a.error().message();
    ASSERT_EQ(a->ports.size(), 3u);
    EXPECT_EQ(a->ports[0].str(), "0.0.0.0:8080->80/tcp");
    EXPECT_EQ(a->ports[1].host_ip->str(), "127.0.0.1");
    EXPECT_GE(a->ports[1].host.first, 32768);  // ephemeral
    EXPECT_EQ(a->ports[2].str(), "0.0.0.0:9000-9002->80-82/tcp");
    EXPECT_EQ(kernel.held.count("tcp/0.0.0.0:8080"), 1u);
    EXPECT_EQ(kernel.held.count("tcp/0.0.0.0:9001"), 1u);
    EXPECT_EQ(kernel.held.size(), 5u);
    ASSERT_EQ(fw.ports.size(), 3u);
    EXPECT_EQ(fw.ports[0].container_ip.str(), "172.17.0.2");
    EXPECT_EQ(fw.ports[0].host_first, 8080);
    EXPECT_EQ(fw.ports[0].container_first, 80);
    EXPECT_EQ(fw.ports[0].bridge, "docker0");
    EXPECT_EQ(fw.ports[2].host_last, 9002);
    EXPECT_EQ(store.saved[0].endpoints.begin()->second.ports.size(), 3u);  // persisted

    ASSERT_TRUE(engine->disconnect("bridge", "a").ok());
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_TRUE(fw.ports.empty());
    EXPECT_TRUE(engine->connect(with_ports("bridge", "b", {"8080:80"})).ok());  // free again
}

TEST_F(EngineTest, PortConflictsChangeNothing) {
    ASSERT_TRUE(engine->connect(with_ports("bridge", "a", {"8080:80"})).ok());
    const FakeState before = kernel.state.normalized();
    const auto held = kernel.held;
    const auto fwports = fw.ports;
    auto check_unchanged = [&](const char* what) {
        EXPECT_EQ(kernel.state.normalized(), before) << what;
        EXPECT_EQ(kernel.held, held) << what;
        EXPECT_EQ(fw.ports, fwports) << what;
        EXPECT_EQ(engine->networks()[0].endpoints.size(), 1u) << what;
    };
    auto dup = engine->connect(with_ports("bridge", "b", {"127.0.0.1:8080:80"}));
    ASSERT_FALSE(dup.ok());
    EXPECT_EQ(dup.error().message(),
              "connect b to bridge: Bind for 127.0.0.1:8080 failed: port is already allocated");
    check_unchanged("dup");

    kernel.taken.insert("tcp/0.0.0.0:9090");  // another process listens there
    auto foreign = engine->connect(with_ports("bridge", "b", {"7070:70", "9090:90"}));
    ASSERT_FALSE(foreign.ok());
    EXPECT_EQ(foreign.error().message(),
              "connect b to bridge: Bind for 0.0.0.0:9090 failed: Address already in use");
    check_unchanged("foreign");
    EXPECT_TRUE(engine->connect(with_ports("bridge", "b", {"7070:70"})).ok());  // 7070 was released
}

TEST_F(EngineTest, PortForwardFailureRollsBackTheWholeAttach) {
    const FakeState before = kernel.state.normalized();
    fw.fail_ports = true;
    auto r = engine->connect(with_ports("bridge", "a", {"8080:80"}));
    fw.fail_ports = false;
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("publish ports: add element inet cnetd published"),
              std::string::npos)
        << r.error().message();
    EXPECT_EQ(kernel.state.normalized(), before);
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_EQ(connect("a").address.str(), "172.17.0.2/16");
    EXPECT_TRUE(engine->connect(with_ports("bridge", "b", {"8080:80"})).ok());
}

TEST_F(EngineTest, PublishValidation) {
    auto bad = engine->connect(with_ports("bridge", "a", {"8080:80", "99999:80"}));
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message(),
              "connect a to bridge: publish[1]: port spec \"99999:80\": \"99999\" is not a port (1-65535)");
    ASSERT_TRUE(engine->create_network({"int", "10.11.0.0/24", "", "", {}, true}).ok());
    auto internal = engine->connect(with_ports("int", "a", {"8080:80"}));
    ASSERT_FALSE(internal.ok());
    EXPECT_NE(internal.error().message().find("network int is internal"), std::string::npos);
    EXPECT_TRUE(kernel.held.empty());
}

TEST_F(EngineTest, RestartReclaimsAndReholdsPorts) {
    ASSERT_TRUE(engine->connect(with_ports("bridge", "a", {"8080:80", "5353:53/udp"})).ok());
    auto saved = kernel.held;
    engine.reset();  // the daemon dies: its sockets close
    EXPECT_TRUE(kernel.held.empty());
    FakeFirewall fw2;
    Engine again(kernel, fw2, store, EngineOptions{kNetnsDir, 1500});
    ASSERT_TRUE(again.start(DefaultNetworkSpec{}, true).ok());
    EXPECT_EQ(kernel.held, saved);
    EXPECT_EQ(fw2.ports.size(), 2u);  // restored in the one full sync
    auto dup = again.connect(with_ports("bridge", "b", {"8080:80"}));
    ASSERT_FALSE(dup.ok());
    EXPECT_NE(dup.error().message().find("port is already allocated"), std::string::npos);
}

TEST_F(EngineTest, EphemeralRangeComesFromTheKernel) {
    kernel.state.sysctls["net/ipv4/ip_local_port_range"] = "40000\t40010";
    kernel.state.sysctls["net/ipv4/ip_local_reserved_ports"] = "40000-40002,40004";
    engine.reset();
    Engine again(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
    ASSERT_TRUE(again.start(DefaultNetworkSpec{}, true).ok());
    auto a = again.connect(with_ports("bridge", "a", {"80", "81"}));
    ASSERT_TRUE(a.ok()) << a.error().message();
    EXPECT_EQ(a->ports[0].host.first, 40003);
    EXPECT_EQ(a->ports[1].host.first, 40005);
}

}  // namespace

namespace {

TEST(EnginePorts, DefaultHostAddressFromNetworkOptionOrConfig) {
    FakeKernel kernel;
    FakeFirewall fw;
    FakeStore store;
    EngineOptions opts{kNetnsDir, 1500};
    opts.host_binding = *Ipv4::parse("192.0.2.10");  // config `ip`
    Engine e(kernel, fw, store, opts);
    DefaultNetworkSpec spec;
    spec.host_binding = opts.host_binding;
    ASSERT_TRUE(e.start(spec, true).ok());
    kernel.state.netns = {std::string(kNetnsDir) + "/a", std::string(kNetnsDir) + "/b",
                          std::string(kNetnsDir) + "/c"};
    EXPECT_EQ(e.networks()[0].options.at(kOptHostBinding), "192.0.2.10");

    auto a = e.connect(with_ports("bridge", "a", {"8080:80", "0.0.0.0:8081:81"}));
    ASSERT_TRUE(a.ok()) << a.error().message();
    EXPECT_EQ(a->ports[0].str(), "192.0.2.10:8080->80/tcp");  // the config's default
    EXPECT_EQ(a->ports[1].str(), "0.0.0.0:8081->81/tcp");     // an explicit address wins

    auto lo = e.create_network({"lo", "10.20.0.0/24", "", "", {{kOptHostBinding, "127.0.0.1"}}});
    ASSERT_TRUE(lo.ok()) << lo.error().message();
    auto b = e.connect(with_ports("lo", "b", {"9090:90"}));
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->ports[0].str(), "127.0.0.1:9090->90/tcp");  // the network's option wins
    EXPECT_EQ(fw.ports.back().host_ip->str(), "127.0.0.1");

    auto plain = e.create_network({"plain", "10.21.0.0/24", "", "", {}});
    ASSERT_TRUE(plain.ok());
    auto c = e.connect(with_ports("plain", "c", {"7070:70"}));
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->ports[0].str(), "192.0.2.10:7070->70/tcp");

    auto bad = e.create_network({"x", "10.22.0.0/24", "", "", {{kOptHostBinding, "nope"}}});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message(),
              "option com.docker.network.bridge.host_binding_ipv4: \"nope\" is not an IPv4 address");
}

// A CNI ADD's attachment to network "pods" publishing host:ctr/tcp, as daemon/handlers_cni.cpp
// builds it.
ConnectRequest cni_att(std::string target, std::string cid, uint16_t host, uint16_t ctr) {
    ConnectRequest r{"pods", std::move(target), "", ""};
    r.container_id = std::move(cid);
    r.ifname = "eth0";
    PortRequest p;
    p.host = {host, host};
    p.container = {ctr, ctr};
    p.host_ip = Ipv4(0);  // a portMapping without hostIP: every host address
    r.ports = {p};
    return r;
}

// CNI attachments (docs/cni.md, "Host ports"): the runtime owns the host-port reservation (Podman
// binds every published port itself right after ADD), so their ports are allocated and forwarded
// but no socket of cnetd's holds them, at ADD or after a restart; the allocator still refuses a
// CNI mapping and a netctl mapping on the same port, both ways round, changing nothing.
TEST_F(EngineTest, CniAttachmentPortsAreForwardedButNotHeldAndStillConflict) {
    const CreateNetworkRequest pods{"pods", "10.88.0.0/16"};
    kernel.state.netns.insert(ns("c"));
    auto a = engine->cni_add(pods, cni_att(ns("a"), "ctr-a", 8080, 80));
    ASSERT_TRUE(a.ok()) << a.error().message();
    ASSERT_EQ(a->ports.size(), 1u);
    EXPECT_EQ(a->ports[0].str(), "0.0.0.0:8080->80/tcp");
    EXPECT_TRUE(kernel.held.empty());  // the runtime's own bind of 8080 must succeed
    ASSERT_EQ(fw.ports.size(), 1u);
    EXPECT_EQ(fw.ports[0].host_first, 8080);
    EXPECT_EQ(fw.ports[0].container_ip.str(), "10.88.0.2");

    // netctl asks for the CNI mapping's port: refused by the allocator, nothing changed.
    const FakeState before = kernel.state.normalized();
    auto dup = engine->connect(with_ports("bridge", "b", {"8080:80"}));
    ASSERT_FALSE(dup.ok());
    EXPECT_EQ(dup.error().message(),
              "connect b to bridge: Bind for 0.0.0.0:8080 failed: port is already allocated");
    EXPECT_EQ(kernel.state.normalized(), before);
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_EQ(fw.ports.size(), 1u);
    // The other way round: netctl's mapping (held) first, then a CNI ADD asking for its port.
    ASSERT_TRUE(engine->connect(with_ports("bridge", "b", {"9090:90"})).ok());
    const auto held = kernel.held;
    EXPECT_EQ(held, std::multiset<std::string>{"tcp/0.0.0.0:9090"});
    const FakeState before2 = kernel.state.normalized();
    auto c = engine->cni_add(pods, cni_att(ns("c"), "ctr-c", 9090, 90));
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.error().message().find("Bind for 0.0.0.0:9090 failed: port is already allocated"),
              std::string::npos)
        << c.error().message();
    EXPECT_EQ(kernel.state.normalized(), before2);
    EXPECT_EQ(kernel.held, held);
    EXPECT_EQ(fw.ports.size(), 2u);

    // A restart re-holds netctl's port only, and the allocator still knows the CNI one.
    engine.reset();
    FakeFirewall fw2;
    Engine again(kernel, fw2, store, EngineOptions{kNetnsDir, 1500});
    ASSERT_TRUE(again.start(DefaultNetworkSpec{}, true).ok());
    EXPECT_EQ(kernel.held, held);
    EXPECT_EQ(fw2.ports.size(), 2u);
    EXPECT_FALSE(again.connect(with_ports("bridge", "c", {"8080:80"})).ok());
    // DEL releases the allocation: the port is netctl's to take now.
    ASSERT_TRUE(again.cni_del("pods", "ctr-a", "eth0").ok());
    EXPECT_TRUE(again.connect(with_ports("bridge", "c", {"8080:80"})).ok());
}

// [::1] is the exception: cnetd serves it itself (daemon/relay.hpp) on the socket it holds, so an
// endpoint with a container_id keeps that hold while its other ports are not held.
TEST_F(EngineTest, CniAttachmentKeepsItsLoopback6HoldForTheRelay) {
    CreateNetworkRequest ds{"ds", "10.30.0.0/24"};
    ds.ipv6 = true;
    ds.subnet6 = "fd00:30::/64";
    ASSERT_TRUE(engine->create_network(ds).ok());
    ConnectRequest r{"ds", ns("a"), "", ""};
    r.container_id = "ctr-a";
    r.ifname = "eth0";
    r.publish = {"[::1]:7070:70", "8081:81"};
    auto a = engine->connect(r);
    ASSERT_TRUE(a.ok()) << a.error().message();
    ASSERT_EQ(a->ports.size(), 3u);  // [::1]:7070, 0.0.0.0:8081, [::]:8081
    EXPECT_EQ(kernel.held, std::multiset<std::string>{"tcp/[::1]:7070"});
    ASSERT_EQ(engine->loopback_relays().size(), 1u);
    EXPECT_EQ(engine->loopback_relays()[0].host_port, 7070);
}

}  // namespace

// --- issue 15: one detach path (by endpoint id, write-ahead), targets, CNI ADD retries ---
namespace {

// Endpoint `y` lives in netns x, endpoint `z` in netns y: the bare target "y" names both (one by
// its name, the other by its namespace). The API must not pick one: 409 listing both.
TEST_F(EngineTest, TargetNamingTwoEndpointsIsAConflictListingThem) {
    kernel.state.netns.insert(ns("x"));
    kernel.state.netns.insert(ns("y"));
    ASSERT_TRUE(engine->connect({"bridge", "x", "y", ""}).ok());
    ASSERT_TRUE(engine->connect({"bridge", "y", "z", ""}).ok());
    const FakeState before = kernel.state;
    auto r = engine->disconnect("bridge", "y");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
    EXPECT_NE(r.error().message().find("endpoint y (netns " + ns("x") + ")"), std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find("endpoint z (netns " + ns("y") + ")"), std::string::npos)
        << r.error().message();
    EXPECT_EQ(kernel.state, before);
    EXPECT_EQ(engine->networks()[0].endpoints.size(), 2u);
    // A path is never a name: it means the namespace (z). "x" is unambiguous (y lives there).
    ASSERT_TRUE(engine->disconnect("bridge", ns("y")).ok());
    auto left = engine->networks()[0].endpoints;
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left.begin()->second.name, "y");
    ASSERT_TRUE(engine->disconnect("bridge", "x").ok());
    EXPECT_TRUE(engine->networks()[0].endpoints.empty());
    EXPECT_EQ(engine->disconnect("bridge", "x").error().kind(), ErrorKind::NotFound);
}

// `netns rm x` detaches what lives in x, never endpoint z of netns y that the name "y" of x's
// endpoint also matches. Ids are random, so the old by-name path failed about half the runs:
// repeat.
TEST(EngineNetns, RemoveNetnsDetachesItsOwnEndpointsById) {
    char tmpl[] = "/tmp/cnetd-engine-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    for (int round = 0; round < 16; ++round) {
        FakeKernel kernel;
        FakeFirewall fw;
        FakeStore store;
        Engine e(kernel, fw, store, EngineOptions{dir, 1500});
        ASSERT_TRUE(e.start(DefaultNetworkSpec{}, true).ok());
        for (const char* n : {"x", "y"}) {
            auto p = e.create_netns(n);
            ASSERT_TRUE(p.ok());
            FILE* f = fopen(p->c_str(), "w");  // the fake kernel does not make the file
            ASSERT_NE(f, nullptr);
            fclose(f);
        }
        auto y = e.connect({"bridge", "x", "y", ""});
        auto z = e.connect({"bridge", "y", "z", ""});
        ASSERT_TRUE(y.ok() && z.ok());
        ASSERT_TRUE(e.remove_netns("x").ok());
        EXPECT_FALSE(kernel.state.links.count(y->host_ifname)) << "round " << round;
        ASSERT_TRUE(kernel.state.links.count(z->host_ifname)) << "round " << round;
        EXPECT_EQ(kernel.state.ns_links[dir + "/y"].count("eth0"), 1u);
        auto eps = e.networks()[0].endpoints;
        ASSERT_EQ(eps.size(), 1u);
        EXPECT_EQ(eps.begin()->second.name, "z");
        EXPECT_EQ(store.saved[0].endpoints.size(), 1u);
        unlink((dir + "/x").c_str());
        unlink((dir + "/y").c_str());
    }
    rmdir(dir.c_str());
}

// A disconnect whose save fails is not applied at all: the kernel, the ports, the memory and the
// saved state are as before; a restart (state from the store) keeps the endpoint, like the API
// said (the disconnect failed).
TEST_F(EngineTest, DisconnectWhoseSaveFailsChangesNothing) {
    kernel.state.netns.insert(ns("c"));
    auto a = engine->connect(with_ports("bridge", "a", {"8080:80"}));
    ASSERT_TRUE(a.ok());
    const FakeState before = kernel.state;
    const auto held = kernel.held;
    const auto fw_ports = fw.ports;
    store.fail_save = true;
    auto r = engine->disconnect("bridge", "a");
    store.fail_save = false;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(),
              "disconnect a from bridge: save state: write state.json: No space left on device");
    EXPECT_EQ(kernel.state, before);
    EXPECT_EQ(kernel.held, held);
    EXPECT_EQ(fw.ports, fw_ports);
    ASSERT_EQ(engine->networks()[0].endpoints.size(), 1u);
    EXPECT_EQ(store.saved[0].endpoints.size(), 1u);
    // The address and the host port are still taken.
    EXPECT_EQ(connect("b").address.str(), "172.17.0.3/16");
    EXPECT_EQ(engine->connect(with_ports("bridge", "c", {"8080:80"})).error().kind(),
              ErrorKind::Conflict);
    // Restart: the endpoint is there, and disconnecting it now works.
    engine = std::make_unique<Engine>(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
    ASSERT_TRUE(engine->start(DefaultNetworkSpec{}, true).ok());
    EXPECT_EQ(engine->networks()[0].endpoints.size(), 2u);
    EXPECT_EQ(kernel.state.links.count(a->host_ifname), 1u);
    ASSERT_TRUE(engine->disconnect("bridge", "a").ok());
    EXPECT_FALSE(kernel.state.links.count(a->host_ifname));
    EXPECT_TRUE(fw.ports.empty());
    EXPECT_TRUE(kernel.held.empty());
}

// The kernel refuses to delete the veth after the removal was saved: the endpoint is gone (the
// state says so), its ports are unpublished and released at once, its address stays reserved
// while the pair may still carry it, and the next start deletes the orphan and frees the address.
TEST_F(EngineTest, VethThatCannotBeDeletedAfterTheSaveIsCleanedAtTheNextStart) {
    kernel.state.netns.insert(ns("c"));
    auto a = engine->connect(with_ports("bridge", "a", {"8080:80"}));
    ASSERT_TRUE(a.ok());
    kernel.fail_step = kernel.steps + 1;  // the next kernel step: deleting the veth
    ASSERT_TRUE(engine->disconnect("bridge", "a").ok());
    kernel.fail_step = 0;
    EXPECT_TRUE(engine->networks()[0].endpoints.empty());
    EXPECT_TRUE(store.saved[0].endpoints.empty());
    EXPECT_TRUE(kernel.state.links.count(a->host_ifname));  // left behind
    EXPECT_TRUE(fw.ports.empty());
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_EQ(connect("b").address.str(), "172.17.0.3/16");  // .2 may still be on the old pair
    EXPECT_TRUE(engine->connect(with_ports("bridge", "c", {"8080:80"})).ok());  // port is free
    engine = std::make_unique<Engine>(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
    ASSERT_TRUE(engine->start(DefaultNetworkSpec{}, true).ok());
    EXPECT_FALSE(kernel.state.links.count(a->host_ifname));  // the orphan veth is deleted
    kernel.state.netns.insert(ns("d"));
    EXPECT_EQ(connect("d").address.str(), "172.17.0.2/16");
}

TEST_F(EngineTest, CniDelWhoseSaveFailsChangesNothing) {
    ConnectRequest att{"", ns("a"), "", ""};
    att.container_id = "ctr-a";
    att.ifname = "eth0";
    ASSERT_TRUE(engine->cni_add({"pods", "10.88.0.0/16"}, att).ok());
    const FakeState before = kernel.state;
    store.fail_save = true;
    auto r = engine->cni_del("pods", "ctr-a", "eth0");
    store.fail_save = false;
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("save state"), std::string::npos);
    EXPECT_EQ(kernel.state, before);
    EXPECT_TRUE(engine->cni_check("pods", "ctr-a", "eth0", ns("a")).ok());
    auto del = engine->cni_del("pods", "ctr-a", "eth0");
    ASSERT_TRUE(del.ok());
    EXPECT_TRUE(*del);
    EXPECT_TRUE(kernel.state.ns_links[ns("a")].empty());
}

// Runtimes retry ADD: the same key in the same namespace, intact, answers with the recorded
// attachment and changes nothing; another namespace, another address or a broken attachment
// stays a Conflict.
TEST_F(EngineTest, CniAddRetryOfARecordedAttachmentIsIdempotent) {
    ConnectRequest att{"", ns("a"), "", ""};
    att.container_id = "ctr-a";
    att.ifname = "eth0";
    const CreateNetworkRequest net{"pods", "10.88.0.0/16"};
    auto first = engine->cni_add(net, att);
    ASSERT_TRUE(first.ok()) << first.error().message();
    const FakeState before = kernel.state;
    const int saves = store.saves;
    auto again = engine->cni_add(net, att);
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(again->id, first->id);
    EXPECT_EQ(again->address, first->address);
    EXPECT_EQ(again->mac, first->mac);
    EXPECT_EQ(kernel.state, before);
    EXPECT_EQ(store.saves, saves);

    ConnectRequest elsewhere = att;
    elsewhere.target = ns("b");
    auto other = engine->cni_add(net, elsewhere);
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.error().kind(), ErrorKind::Conflict);
    EXPECT_NE(other.error().message().find("another namespace"), std::string::npos)
        << other.error().message();
    ConnectRequest other_ip = att;
    other_ip.ipv4 = "10.88.9.9";
    EXPECT_EQ(engine->cni_add(net, other_ip).error().kind(), ErrorKind::Conflict);
    // Broken: the address is gone from the container side.
    kernel.state.ns_links[ns("a")]["eth0"].addresses.clear();
    auto broken = engine->cni_add(net, att);
    ASSERT_FALSE(broken.ok());
    EXPECT_EQ(broken.error().kind(), ErrorKind::Conflict);
    EXPECT_NE(broken.error().message().find("DEL it first"), std::string::npos);
    EXPECT_EQ(engine->networks().size(), 2u);
}

}  // namespace

}  // namespace engine_test
