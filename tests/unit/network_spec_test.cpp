// Pure network planning (core/network_spec.hpp) and the driver seam (core/driver.hpp): every
// refusal names the field and the value; a refused create makes no kernel call at all (the fake
// kernel counts reads and logs changes); networks record their driver and unknown drivers are
// refused by name.
#include <gtest/gtest.h>

#include <functional>

#include "core/bridge_driver.hpp"
#include "core/engine.hpp"
#include "core/network_spec.hpp"
#include "core/ula.hpp"
#include "fakes/fake_kernel.hpp"

namespace network_spec_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;
using cnetd::test::FakeFirewall;
using cnetd::test::FakeKernel;
using cnetd::test::FakeState;
using cnetd::test::FakeStore;

namespace {

constexpr const char* kIcc = "com.docker.network.bridge.enable_icc";

// One existing network the requests can collide with.
Network taken() {
    Network n;
    n.id = std::string(64, 'e');
    n.name = "taken";
    n.bridge = "br-taken";
    n.subnet = *Ipv4Cidr::parse_network("10.9.0.0/16");
    n.gateway = *Ipv4::parse("10.9.0.1");
    n.subnet6 = *Ipv6Cidr::parse_network("fd00:9::/64");
    n.gateway6 = *Ipv6::parse("fd00:9::1");
    return n;
}

class SpecTest : public ::testing::Test {
protected:
    FakeKernel kernel;  // the driver's; pure planning must never touch it
    BridgeDriver driver{kernel};
    Network other = taken();
    PlanInputs in;
    void SetUp() override {
        in.existing = {&other};
        in.pools = default_address_pools();
        in.ula48 = ula48_from_id(std::string(64, 'a'));
    }
    Result<Network> plan(const CreateNetworkRequest& req) {
        auto spec = parse_network_request(req, std::string(64, 'c'), driver, in);
        if (!spec) return std::move(spec).error();
        return plan_network(std::move(spec).value(), in, driver);
    }
    static CreateNetworkRequest base() {
        CreateNetworkRequest r;
        r.name = "web";
        r.subnet = "10.1.0.0/24";
        return r;
    }
};

struct Refusal {
    const char* what;
    std::function<void(CreateNetworkRequest&)> edit;
    ErrorKind kind;
    std::vector<const char*> says;  // the field and the value, at least
};

TEST_F(SpecTest, EveryRefusalNamesTheFieldAndTheValue) {
    using R = CreateNetworkRequest&;
    const ErrorKind inval = ErrorKind::InvalidArgument, conflict = ErrorKind::Conflict;
    const std::vector<Refusal> table = {
        {"empty name", [](R r) { r.name = ""; }, inval, {"name: must not be empty"}},
        {"bad name", [](R r) { r.name = "a/b"; }, inval, {"name: \"a/b\" is invalid"}},
        {"name taken", [](R r) { r.name = "taken"; }, conflict, {"name taken already exists"}},
        {"icc not bool",
         [](R r) { r.options[kIcc] = "maybe"; },
         inval,
         {"option com.docker.network.bridge.enable_icc: \"maybe\" is not a boolean"}},
        {"masquerade not bool",
         [](R r) { r.options[kOptEnableMasquerade] = "2"; },
         inval,
         {"option com.docker.network.bridge.enable_ip_masquerade: \"2\""}},
        {"mtu too small",
         [](R r) { r.options[kOptMtu] = "67"; },
         inval,
         {"option com.docker.network.driver.mtu: \"67\" is not an MTU"}},
        {"mtu not a number",
         [](R r) { r.options[kOptMtu] = "9k"; },
         inval,
         {"option com.docker.network.driver.mtu: \"9k\""}},
        {"unknown option",
         [](R r) { r.options["x.y"] = "1"; },
         inval,
         {"option x.y: unknown option"}},
        {"bridge name",
         [](R r) { r.options[kOptBridgeName] = "a b"; },
         inval,
         {"option com.docker.network.bridge.name"}},
        {"host ipv4",
         [](R r) { r.options[kOptHostIpv4] = "nope"; },
         inval,
         {"option com.docker.network.host_ipv4", "nope"}},
        {"gateway mode",
         [](R r) { r.options[kOptGatewayMode4] = "bogus"; },
         inval,
         {"option com.docker.network.bridge.gateway_mode_ipv4: \"bogus\" is not a gateway mode"}},
        {"iface prefix",
         [](R r) { r.options[kOptIfacePrefix] = "averylongprefix"; },
         inval,
         {"option com.docker.network.container_iface_prefix: \"averylongprefix\""}},
        {"empty label key",
         [](R r) { r.labels[""] = "v"; },
         inval,
         {"label: empty key (value \"v\")"}},
        {"subnet text", [](R r) { r.subnet = "10.1.0.0/33"; }, inval, {"subnet", "10.1.0.0/33"}},
        {"subnet host bits",
         [](R r) { r.subnet = "10.1.0.1/24"; },
         inval,
         {"subnet", "10.1.0.1/24"}},
        {"subnet too small",
         [](R r) { r.subnet = "10.1.0.0/31"; },
         inval,
         {"subnet: \"10.1.0.0/31\": prefix length must be between 8 and 30"}},
        {"gateway without subnet",
         [](R r) {
             r.subnet = "";
             r.gateway = "10.1.0.1";
         },
         inval,
         {"gateway: given without subnet"}},
        {"ip-range without subnet",
         [](R r) {
             r.subnet = "";
             r.ip_range = "10.1.0.0/25";
         },
         inval,
         {"ip-range: given without subnet"}},
        {"gateway text", [](R r) { r.gateway = "10.1.0.x"; }, inval, {"gateway", "10.1.0.x"}},
        {"gateway outside",
         [](R r) { r.gateway = "10.2.0.1"; },
         inval,
         {"gateway: 10.2.0.1 is not in subnet 10.1.0.0/24"}},
        {"gateway network address",
         [](R r) { r.gateway = "10.1.0.0"; },
         inval,
         {"gateway: 10.1.0.0 is the network address of 10.1.0.0/24"}},
        {"gateway broadcast",
         [](R r) { r.gateway = "10.1.0.255"; },
         inval,
         {"gateway: 10.1.0.255 is the broadcast address of 10.1.0.0/24"}},
        {"ip-range outside",
         [](R r) { r.ip_range = "10.2.0.0/25"; },
         inval,
         {"ip-range: 10.2.0.0/25 is not inside subnet 10.1.0.0/24"}},
        {"ip-range wider",
         [](R r) { r.ip_range = "10.0.0.0/8"; },
         inval,
         {"ip-range: 10.0.0.0/8 is not inside subnet 10.1.0.0/24"}},
        {"v6 gateway without ipv6",
         [](R r) { r.gateway6 = "fd00:1::1"; },
         inval,
         {"gateway: IPv6 settings need --ipv6"}},
        {"v6 range without ipv6",
         [](R r) { r.ip_range6 = "fd00:1::/80"; },
         inval,
         {"ip-range: IPv6 settings need --ipv6"}},
        {"subnet6 too wide",
         [](R r) { r.subnet6 = "fd00::/40"; },
         inval,
         {"subnet: \"fd00::/40\": prefix length must be between 48 and 124"}},
        {"gateway6 outside",
         [](R r) {
             r.subnet6 = "fd00:1::/64";
             r.gateway6 = "fd01::1";
         },
         inval,
         {"gateway: fd01::1 is not a host address of subnet fd00:1::/64"}},
        {"ip-range6 outside",
         [](R r) {
             r.subnet6 = "fd00:1::/64";
             r.ip_range6 = "fd00:2::/80";
         },
         inval,
         {"ip-range: fd00:2::/80 is not inside subnet fd00:1::/64"}},
        {"aux empty name",
         [](R r) { r.aux_addresses[""] = "10.1.0.5"; },
         inval,
         {"aux-address: empty name for 10.1.0.5"}},
        {"aux not an address",
         [](R r) { r.aux_addresses["h"] = "zzz"; },
         inval,
         {"aux-address: h=zzz: \"zzz\" is not an IP address"}},
        {"aux outside",
         [](R r) { r.aux_addresses["h"] = "10.2.0.5"; },
         inval,
         {"aux-address: h=10.2.0.5 is not a free host address of subnet 10.1.0.0/24"}},
        {"aux is the gateway",
         [](R r) { r.aux_addresses["h"] = "10.1.0.1"; },
         inval,
         {"aux-address: h=10.1.0.1"}},
        {"aux v6 on a v4 network",
         [](R r) { r.aux_addresses["h"] = "fd00:1::5"; },
         inval,
         {"aux-address: h=fd00:1::5", "(IPv6 is not enabled)"}},
        {"subnet overlaps",
         [](R r) { r.subnet = "10.9.1.0/24"; },
         conflict,
         {"subnet: 10.9.1.0/24 overlaps network taken (10.9.0.0/16)"}},
        {"subnet6 overlaps",
         [](R r) { r.subnet6 = "fd00:9::/80"; },
         conflict,
         {"subnet: fd00:9::/80 overlaps network taken (fd00:9::/64)"}},
        {"bridge taken",
         [](R r) { r.options[kOptBridgeName] = "br-taken"; },
         conflict,
         {"option com.docker.network.bridge.name: bridge br-taken is already used by network "
          "taken"}},
    };
    for (const auto& c : table) {
        CreateNetworkRequest req = base();
        c.edit(req);
        auto r = plan(req);
        ASSERT_FALSE(r.ok()) << c.what;
        EXPECT_EQ(r.error().kind(), c.kind) << c.what << ": " << r.error().message();
        for (const char* s : c.says)
            EXPECT_NE(r.error().message().find(s), std::string::npos)
                << c.what << ": \"" << r.error().message() << "\" lacks \"" << s << "\"";
    }
    EXPECT_EQ(kernel.reads, 0);
    EXPECT_TRUE(kernel.ops.empty());
}

TEST_F(SpecTest, DefaultsAndOptionsAreDerivedWithoutTheKernel) {
    CreateNetworkRequest req = base();
    req.options[kIcc] = "false";
    req.options[kOptMtu] = "1400";
    req.options[kOptGatewayMode6] = "routed";
    req.ipv6 = true;
    req.labels["team"] = "a";
    in.host_binding = *Ipv4::parse("127.0.0.1");
    auto r = plan(req);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->name, "web");
    EXPECT_EQ(r->driver, "bridge");
    EXPECT_EQ(r->bridge, "br-" + std::string(12, 'c'));
    EXPECT_EQ(r->options.at(kOptBridgeName), r->bridge);
    EXPECT_EQ(r->gateway.str(), "10.1.0.1");
    EXPECT_FALSE(r->icc);
    EXPECT_TRUE(r->masquerade);
    EXPECT_EQ(r->mtu, 1400u);
    EXPECT_EQ(r->mode6, firewall::GatewayMode::Routed);
    EXPECT_EQ(r->host_binding, in.host_binding);  // the daemon's, no option given
    ASSERT_TRUE(r->subnet6);
    EXPECT_TRUE(in.ula48->contains(r->subnet6->network()));  // a /64 of the ULA
    EXPECT_EQ(r->gateway6, r->subnet6->at(1));
    // No MTU option: 0, "the daemon's default", which the engine resolves (a kernel read).
    auto plain = plan(base());
    ASSERT_TRUE(plain.ok());
    EXPECT_EQ(plain->mtu, 0u);
    // host_binding_ipv4=0.0.0.0 means every address, even when the daemon has a default.
    CreateNetworkRequest every = base();
    every.options[kOptHostBinding] = "0.0.0.0";
    EXPECT_EQ(plan(every)->host_binding, std::nullopt);
    EXPECT_EQ(kernel.reads, 0);
}

TEST_F(SpecTest, PoolChoiceTakesHostRoutesAndNetworksAsValues) {
    CreateNetworkRequest req = base();
    req.subnet = "";
    in.pools = {{*Ipv4Cidr::parse_network("10.8.0.0/15"), 16}};
    auto spec = parse_network_request(req, std::string(64, 'c'), driver, in);
    ASSERT_TRUE(spec.ok());
    EXPECT_TRUE(spec->needs_pool4());
    // 10.9.0.0/16 is taken's; with an on-link route over 10.8.0.0/16 nothing is left.
    in.pool_context.onlink_routes = {*Ipv4Cidr::parse_network("10.8.0.0/16")};
    auto none = plan_network(*spec, in, driver);
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().kind(), ErrorKind::Conflict);
    in.pool_context.onlink_routes.clear();
    auto r = plan_network(*spec, in, driver);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->subnet.str(), "10.8.0.0/16");
    EXPECT_EQ(kernel.reads, 0);
}

TEST_F(SpecTest, DefaultNetworkAddressingIsCheckedByConfigKey) {
    struct Case {
        const char* what;
        std::function<void(DefaultNetworkSpec&)> edit;
        const char* says;
    };
    const std::vector<Case> table = {
        {"bip prefix", [](DefaultNetworkSpec& s) { s.bip = *Ipv4Cidr::parse("10.1.0.1/31"); },
         "bip: \"10.1.0.1/31\": prefix length"},
        {"bip network address",
         [](DefaultNetworkSpec& s) { s.bip = *Ipv4Cidr::parse("10.1.0.0/24"); },
         "bip: \"10.1.0.0/24\" is the network or broadcast address"},
        {"fixed-cidr outside",
         [](DefaultNetworkSpec& s) { s.fixed_cidr = *Ipv4Cidr::parse("10.2.0.0/24"); },
         "fixed-cidr: \"10.2.0.0/24\" is not inside bip's subnet 172.17.0.0/16"},
        {"bip overlaps", [](DefaultNetworkSpec& s) { s.bip = *Ipv4Cidr::parse("10.9.0.1/24"); },
         "bip: 10.9.0.0/24 overlaps network taken (10.9.0.0/16)"},
        {"bridge taken", [](DefaultNetworkSpec& s) { s.bridge = "br-taken"; },
         "bridge: \"br-taken\" is already used by network taken"},
        {"fixed-cidr-v6 prefix",
         [](DefaultNetworkSpec& s) { s.fixed_cidr_v6 = *Ipv6Cidr::parse("fd00::/40"); },
         "fixed-cidr-v6: \"fd00::/40\": prefix length"},
        {"fixed-cidr-v6 overlaps",
         [](DefaultNetworkSpec& s) { s.fixed_cidr_v6 = *Ipv6Cidr::parse("fd00:9::/64"); },
         "fixed-cidr-v6: fd00:9::/64 overlaps network taken"},
    };
    for (const auto& c : table) {
        DefaultNetworkSpec spec;
        c.edit(spec);
        auto r = plan_default_addressing(spec, nullptr, in);
        ASSERT_FALSE(r.ok()) << c.what;
        EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument) << c.what;
        EXPECT_NE(r.error().message().find(c.says), std::string::npos)
            << c.what << ": " << r.error().message();
    }
    DefaultNetworkSpec v6;
    v6.ipv6 = true;
    in.ula48.reset();
    auto no_ula = plan_default_addressing(v6, nullptr, in);
    ASSERT_FALSE(no_ula.ok());
    EXPECT_NE(no_ula.error().message().find("ipv6: no fixed-cidr-v6"), std::string::npos);
    // The default network keeps the IPv6 subnet it has.
    Network current = taken();
    current.name = "bridge";
    current.bridge = "docker0";
    current.subnet = *Ipv4Cidr::parse_network("172.17.0.0/16");
    current.subnet6 = *Ipv6Cidr::parse_network("fd00:8::/64");
    in.existing.push_back(&current);
    auto kept = plan_default_addressing(v6, &current, in);
    ASSERT_TRUE(kept.ok()) << kept.error().message();
    EXPECT_EQ(kept->subnet6, current.subnet6);
}

// --- the engine: refusals before any kernel call, drivers by name -----------------------------

class DriverSeamTest : public ::testing::Test {
protected:
    FakeKernel kernel;
    FakeFirewall fw;
    FakeStore store;
    std::unique_ptr<Engine> engine;
    void start() {
        EngineOptions o;
        o.netns_dir = "/run/test/netns";
        o.resolv_conf = "/nonexistent/resolv.conf";
        engine = std::make_unique<Engine>(kernel, fw, store, o);
        auto r = engine->start(DefaultNetworkSpec{}, false);
        ASSERT_TRUE(r.ok()) << r.error().message();
    }
};

TEST_F(DriverSeamTest, ARefusedCreateMakesZeroKernelCalls) {
    start();
    const FakeState before = kernel.state.normalized();
    const int saves = store.saves;
    auto refuse = [&](CreateNetworkRequest req, const char* says) {
        kernel.ops.clear();
        kernel.reads = 0;
        auto r = engine->create_network(req);
        ASSERT_FALSE(r.ok()) << says;
        EXPECT_NE(r.error().message().find(says), std::string::npos) << r.error().message();
        EXPECT_EQ(kernel.reads, 0) << says;  // not even a read
        EXPECT_TRUE(kernel.ops.empty()) << says;
        EXPECT_EQ(kernel.state.normalized(), before);
        EXPECT_EQ(store.saves, saves);
    };
    CreateNetworkRequest req;
    req.name = "web";
    req.options[kIcc] = "maybe";  // no subnet: would need the pools, but the option fails first
    refuse(req, "option com.docker.network.bridge.enable_icc: \"maybe\"");
    req.options.clear();
    req.subnet = "172.17.1.0/24";  // the default network's
    refuse(req, "subnet: 172.17.1.0/24 overlaps network bridge");
    req.subnet = "10.1.0.0/24";
    req.options[kOptBridgeName] = "docker0";
    refuse(req, "bridge docker0 is already used by network bridge");
    req.options.clear();
    req.aux_addresses["h"] = "10.2.0.1";
    refuse(req, "aux-address: h=10.2.0.1");
    req.aux_addresses.clear();
    req.driver = "macvlan";
    refuse(req, "driver: \"macvlan\" is not a network driver (known: bridge, overlay)");
    // Overlay networks are the cluster's to make (engine_overlay.cpp), never a node's alone.
    req.driver = "overlay";
    refuse(req, "driver overlay: overlay networks are created through the cluster");
    // And the same request passes once it is right (the refusals left nothing behind).
    req.driver = "bridge";
    auto ok = engine->create_network(req);
    ASSERT_TRUE(ok.ok()) << ok.error().message();
    EXPECT_EQ(ok->driver, "bridge");
}

TEST_F(DriverSeamTest, UnknownDriverIsInvalidArgumentNamingFieldAndValue) {
    start();
    CreateNetworkRequest req;
    req.name = "ov";
    req.subnet = "10.5.0.0/24";
    req.driver = "macvlan";
    auto r = engine->create_network(req);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(r.error().message().find("driver: \"macvlan\""), std::string::npos)
        << r.error().message();
}

TEST_F(DriverSeamTest, StateWithAnUnknownDriverIsRefusedAtStartNamingIt) {
    start();
    CreateNetworkRequest req;
    req.name = "web";
    req.subnet = "10.5.0.0/24";
    ASSERT_TRUE(engine->create_network(req).ok());
    for (auto& n : store.saved)
        if (n.name == "web") n.driver = "macvlan";
    FakeKernel k2;
    Engine again(k2, fw, store, engine->options());
    auto r = again.start(DefaultNetworkSpec{}, false);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("load state: network web: driver: \"macvlan\""),
              std::string::npos)
        << r.error().message();
    EXPECT_TRUE(k2.ops.empty());
}

TEST_F(DriverSeamTest, TheBridgeDriverDoesTheKernelPartOfCreateAndRemove) {
    start();
    CreateNetworkRequest req;
    req.name = "web";
    req.subnet = "10.5.0.0/24";
    kernel.ops.clear();
    auto n = engine->create_network(req);
    ASSERT_TRUE(n.ok()) << n.error().message();
    EXPECT_EQ(kernel.ops, std::vector<std::string>{"ensure_bridge " + n->bridge});
    EXPECT_EQ(fw.nets.at(n->id).bridge, n->bridge);  // its rules() reached the firewall
    kernel.ops.clear();
    ASSERT_TRUE(engine->remove_network("web").ok());
    EXPECT_EQ(kernel.ops, std::vector<std::string>{"delete_link " + n->bridge});
    EXPECT_EQ(fw.nets.count(n->id), 0u);
}

}  // namespace

}  // namespace network_spec_test
