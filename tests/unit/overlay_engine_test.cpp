// Engine tests for overlay networks (issue 18) against the fake kernel: the local realization of a
// cluster network (bridge on the node's block + VXLAN device + firewall + state), idempotence,
// all-or-nothing at every kernel step, peers, restart, removal, endpoints' overlay route, CNI, and
// the pure plan's errors naming the field and the value.
#include <gtest/gtest.h>

#include "core/engine.hpp"
#include "core/overlay_driver.hpp"
#include "fakes/fake_kernel.hpp"

namespace overlay_engine_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;
using cnetd::test::FakeFirewall;
using cnetd::test::FakeKernel;
using cnetd::test::FakeState;
using cnetd::test::FakeStore;

namespace {

constexpr const char* kNetnsDir = "/run/test/netns";
const std::string kId = std::string(12, 'c') + std::string(52, '1');
const std::string kBridge = "br-cccccccccccc";
const std::string kVx = "vx-cccccccccccc";

Ipv4Cidr cidr(const char* s) {
    return *Ipv4Cidr::parse(s);
}

OverlayPeer peer(const char* node, const char* underlay, const char* block, const char* mac) {
    return {node, *Ipv4::parse(underlay), cidr(block), *Mac::parse(mac)};
}

class OverlayTest : public ::testing::Test {
protected:
    void SetUp() override {
        kernel.host_addresses["192.0.2.1"] = {"eth0", 1500};
        start();
        for (const char* n : {"a", "b"}) kernel.state.netns.insert(ns(n));
    }
    void start() {
        EngineOptions o;
        o.netns_dir = kNetnsDir;
        o.mtu = 1500;
        o.resolv_conf = "/nonexistent/resolv.conf";
        engine = std::make_unique<Engine>(kernel, fw, store, o);
        DefaultNetworkSpec spec;
        auto r = engine->start(spec, true);
        ASSERT_TRUE(r.ok()) << r.error().message();
    }
    static std::string ns(const std::string& n) { return std::string(kNetnsDir) + "/" + n; }
    static OverlayNetworkDef def() {
        OverlayNetworkDef d;
        d.id = kId;
        d.name = "mesh";
        d.subnet = cidr("10.200.0.0/16");
        d.block_prefix = 24;
        d.vni = 4096;
        d.created = "2026-12-04T08:00:00.000000000Z";
        return d;
    }
    static OverlayLocal local(const char* block = "10.200.1.0/24") {
        return {"n1", *Ipv4::parse("192.0.2.1"), 4789, cidr(block)};
    }
    Network add() {
        auto r = engine->add_overlay_network(def(), local());
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
        return r.ok() ? *r : Network{};
    }
    const Network* saved(const std::string& name) const {
        for (const auto& n : store.saved)
            if (n.name == name) return &n;
        return nullptr;
    }
    // Everything an operation may change, for "left as it was" comparisons.
    struct Snapshot {
        FakeState kernel;
        std::vector<std::string> saved_names;
        std::optional<Overlay> saved_overlay;
        std::map<std::string, firewall::NetworkRules> fw;
        size_t networks;
        bool operator==(const Snapshot&) const = default;
    };
    Snapshot snapshot() const {
        Snapshot s{kernel.state.normalized(), {}, std::nullopt, fw.nets, engine->networks().size()};
        for (const auto& n : store.saved) s.saved_names.push_back(n.name);
        if (const Network* m = saved("mesh")) s.saved_overlay = m->overlay;
        return s;
    }

    FakeKernel kernel;
    FakeFirewall fw;
    FakeStore store;
    std::unique_ptr<Engine> engine;
};

TEST_F(OverlayTest, AddMakesBridgeOnTheBlockVxlanFirewallAndState) {
    const Network n = add();
    EXPECT_EQ(n.driver, "overlay");
    EXPECT_STREQ(n.scope(), "global");
    EXPECT_EQ(n.subnet.str(), "10.200.1.0/24");
    EXPECT_EQ(n.gateway.str(), "10.200.1.1");
    EXPECT_EQ(n.mtu, 1450u);  // underlay 1500 - 50: endpoints fit in one VXLAN frame
    ASSERT_TRUE(n.overlay);
    EXPECT_EQ(n.overlay->vxlan, kVx);
    EXPECT_EQ(n.overlay->mac, overlay_vtep_mac("n1", kId));
    EXPECT_EQ(n.overlay->subnet.str(), "10.200.0.0/16");
    EXPECT_EQ(n.overlay->vni, 4096u);

    const auto& br = kernel.state.links.at(kBridge);
    EXPECT_EQ(br.kind, "bridge");
    EXPECT_EQ(br.addresses, std::vector<std::string>{"10.200.1.1/24"});
    EXPECT_EQ(br.mtu, 1450u);
    const auto& vx = kernel.state.links.at(kVx);
    EXPECT_EQ(vx.kind, "vxlan");
    EXPECT_EQ(vx.vxlan, "vni 4096 local 192.0.2.1 port 4789 dev eth0");
    EXPECT_EQ(vx.mtu, 1450u);
    EXPECT_EQ(vx.mac, overlay_vtep_mac("n1", kId).str());
    EXPECT_EQ(vx.addresses, std::vector<std::string>{"10.200.1.0/32"});
    EXPECT_TRUE(vx.up);

    ASSERT_TRUE(fw.nets.count(kId));
    EXPECT_EQ(fw.nets[kId].tunnel, kVx);
    EXPECT_EQ(fw.nets[kId].bridge, kBridge);
    EXPECT_EQ(fw.nets[kId].subnet.str(), "10.200.1.0/24");
    ASSERT_NE(saved("mesh"), nullptr);
    EXPECT_EQ(saved("mesh")->overlay, n.overlay);
}

TEST_F(OverlayTest, VtepMacIsStableUnicastLocalAndPerNodeAndNetwork) {
    const Mac m = overlay_vtep_mac("n1", kId);
    EXPECT_EQ(m, overlay_vtep_mac("n1", kId));
    EXPECT_FALSE(m.is_multicast());
    EXPECT_EQ(m.bytes()[0] & 0x02, 0x02);
    EXPECT_NE(m, overlay_vtep_mac("n2", kId));
    EXPECT_NE(m, overlay_vtep_mac("n1", std::string(64, 'd')));
    EXPECT_NE(overlay_vtep_mac("ab", "c"), overlay_vtep_mac("a", "bc"));
}

TEST_F(OverlayTest, AddIsIdempotentAndRefusesAnotherBlock) {
    const Network n = add();
    const Snapshot before = snapshot();
    const int steps = kernel.steps, saves = store.saves;
    auto again = engine->add_overlay_network(def(), local());
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(again->subnet, n.subnet);
    EXPECT_EQ(kernel.steps, steps);
    EXPECT_EQ(store.saves, saves);
    auto other = engine->add_overlay_network(def(), local("10.200.7.0/24"));
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.error().kind(), ErrorKind::Conflict);
    EXPECT_EQ(other.error().message(),
              "add overlay network mesh: this node has block 10.200.1.0/24 of it, not "
              "10.200.7.0/24");
    EXPECT_EQ(snapshot(), before);
}

TEST_F(OverlayTest, AddRollsBackAtEveryKernelStep) {
    const Snapshot before = snapshot();
    int total = 0;
    {
        const int s0 = kernel.steps;
        add();
        total = kernel.steps - s0;
        ASSERT_TRUE(engine->remove_network("mesh").ok());
        ASSERT_EQ(snapshot(), before);
    }
    ASSERT_GE(total, 2);  // ensure_bridge, ensure_vxlan
    for (int k = 1; k <= total; ++k) {
        kernel.fail_step = kernel.steps + k;
        auto r = engine->add_overlay_network(def(), local());
        kernel.fail_step = 0;
        ASSERT_FALSE(r.ok()) << "step " << k;
        EXPECT_EQ(r.error().message().rfind("add overlay network mesh: ", 0), 0u)
            << r.error().message();
        EXPECT_EQ(snapshot(), before) << "step " << k;
    }
    store.fail_save = true;
    auto r = engine->add_overlay_network(def(), local());
    store.fail_save = false;
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("save state"), std::string::npos);
    EXPECT_EQ(snapshot(), before);
    fw.fail_add = true;
    r = engine->add_overlay_network(def(), local());
    fw.fail_add = false;
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find(": firewall: "), std::string::npos);
    EXPECT_EQ(snapshot(), before);
    add();  // and then it works
}

TEST_F(OverlayTest, AddErrorsNameTheFieldAndChangeNothing) {
    ASSERT_TRUE(engine->create_network({.name = "local", .subnet = "10.200.1.0/24"}).ok());
    const Snapshot before = snapshot();
    auto err = [&](OverlayNetworkDef d, OverlayLocal l) {
        auto r = engine->add_overlay_network(d, l);
        EXPECT_FALSE(r.ok());
        EXPECT_EQ(snapshot(), before);
        return r.ok() ? std::string() : r.error().message();
    };
    EXPECT_EQ(err(def(), local()),
              "add overlay network mesh: block: 10.200.1.0/24 overlaps network local "
              "(10.200.1.0/24)");
    auto d = def();
    d.vni = 0;
    EXPECT_EQ(err(d, local("10.200.2.0/24")),
              "add overlay network mesh: vni: 0 is not 1..16777215");
    EXPECT_EQ(err(def(), local("10.201.2.0/24")),
              "add overlay network mesh: block: 10.201.2.0/24 is not a /24 block of 10.200.0.0/16");
    d = def();
    d.name = "local";
    EXPECT_EQ(err(d, local("10.200.2.0/24")).find("add overlay network local: name: network local"),
              0u);
    auto l = local("10.200.2.0/24");
    l.local = *Ipv4::parse("198.51.100.9");
    EXPECT_EQ(err(def(), l),
              "add overlay network mesh: advertise-address 198.51.100.9: no link has address "
              "198.51.100.9");
    d = def();
    d.id = "xyz";
    EXPECT_EQ(err(d, local("10.200.2.0/24")),
              "add overlay network mesh: id: \"xyz\" is not 64 hex");
}

TEST_F(OverlayTest, CreateNetworkRefusesTheOverlayDriver) {
    const Snapshot before = snapshot();
    auto r = engine->create_network({.name = "m", .subnet = "10.9.0.0/16", .driver = "overlay"});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(r.error().message(),
              "driver overlay: overlay networks are created through the cluster (config "
              "`cluster:`)");
    EXPECT_EQ(snapshot(), before);
}

TEST_F(OverlayTest, PlanValidatesWithoutChangingAnything) {
    const Snapshot before = snapshot();
    const int reads = kernel.reads;
    auto plan = [&](CreateNetworkRequest req) {
        req.driver = "overlay";
        return engine->plan_overlay_network(req);
    };
    auto err = [&](CreateNetworkRequest req) {
        auto r = plan(std::move(req));
        EXPECT_FALSE(r.ok());
        return r.ok() ? std::string() : r.error().message();
    };
    auto ok = plan({.name = "mesh", .subnet = "10.200.0.0/16", .internal = true});
    ASSERT_TRUE(ok.ok()) << ok.error().message();
    EXPECT_EQ(ok->id.size(), 64u);
    EXPECT_EQ(ok->block_prefix, 24u);
    EXPECT_EQ(ok->vni, 0u);
    EXPECT_TRUE(ok->internal);
    EXPECT_TRUE(ok->dns);
    EXPECT_FALSE(ok->created.empty());
    auto sized = plan({.name = "mesh",
                       .subnet = "10.200.0.0/16",
                       .options = {{kOptHostSubnetSize, "26"}, {kOptEnableDns, "false"}}});
    ASSERT_TRUE(sized.ok()) << sized.error().message();
    EXPECT_EQ(sized->block_prefix, 26u);
    EXPECT_FALSE(sized->dns);

    EXPECT_EQ(err({.name = "mesh"}), "subnet: required for overlay networks");
    EXPECT_EQ(err({.name = "mesh", .subnet = "10.200.0.0/31"}),
              "subnet: \"10.200.0.0/31\": prefix length must be between 8 and 29");
    EXPECT_EQ(err({.name = "mesh", .subnet = "10.200.0.0/16", .ipv6 = true}),
              "ipv6: overlay networks are IPv4 only");
    EXPECT_EQ(err({.name = "mesh", .subnet = "10.200.0.0/16", .gateway = "10.200.0.1"})
                  .rfind("gateway: \"10.200.0.1\": overlay networks take none", 0),
              0u);
    EXPECT_EQ(err({.name = "mesh", .subnet = "10.200.0.0/16", .ip_range = "10.200.1.0/24"})
                  .rfind("ip-range: \"10.200.1.0/24\"", 0),
              0u);
    EXPECT_EQ(
        err({.name = "mesh", .subnet = "10.200.0.0/16", .options = {{kOptHostSubnetSize, "16"}}}),
        "option cnetd.overlay.host_subnet_size: \"16\" is not a block size for subnet "
        "10.200.0.0/16 (17-30)");
    EXPECT_EQ(
        err({.name = "mesh", .subnet = "10.200.0.0/16", .options = {{kOptHostSubnetSize, "31"}}}),
        "option cnetd.overlay.host_subnet_size: \"31\" is not a block size for subnet "
        "10.200.0.0/16 (17-30)");
    EXPECT_EQ(
        err({.name = "mesh", .subnet = "10.200.0.0/16", .options = {{kOptEnableIcc, "false"}}}),
        "option com.docker.network.bridge.enable_icc: not supported on overlay networks "
        "(supported: cnetd.overlay.host_subnet_size, com.docker.network.enable_dns)");
    EXPECT_EQ(err({.name = "bridge", .subnet = "10.200.0.0/16"}),
              "network with name bridge already exists");
    EXPECT_EQ(err({.name = "mesh", .subnet = "172.16.0.0/12"}),
              "subnet: 172.16.0.0/12 overlaps network bridge (172.17.0.0/16)");
    EXPECT_EQ(err({.name = "bad name", .subnet = "10.200.0.0/16"}).rfind("name: \"bad name\"", 0),
              0u);
    EXPECT_EQ(snapshot(), before);
    EXPECT_EQ(kernel.reads, reads);  // pure: not even a read
}

TEST_F(OverlayTest, EndpointsGetTheOverlayRouteAndTheTunnelMtu) {
    add();
    auto ep = engine->connect({"mesh", "a", "", ""});
    ASSERT_TRUE(ep.ok()) << ep.error().message();
    EXPECT_EQ(ep->address.str(), "10.200.1.2/24");
    const auto& l = kernel.state.ns_links.at(ns("a")).at("eth0");
    EXPECT_EQ(l.routes,
              (std::vector<std::string>{"10.200.0.0/16 via 10.200.1.1", "default via 10.200.1.1"}));
    EXPECT_EQ(kernel.state.links.at(ep->host_ifname).mtu, 1450u);
    EXPECT_EQ(kernel.state.links.at(ep->host_ifname).master, kBridge);
    ASSERT_TRUE(engine->disconnect("mesh", "a").ok());
    EXPECT_TRUE(kernel.state.ns_links[ns("a")].empty());
}

TEST_F(OverlayTest, InternalOverlayEndpointsGetTheOverlayRouteButNoDefault) {
    auto d = def();
    d.internal = true;
    ASSERT_TRUE(engine->add_overlay_network(d, local()).ok());
    ASSERT_TRUE(engine->connect({"mesh", "a", "", ""}).ok());
    EXPECT_EQ(kernel.state.ns_links.at(ns("a")).at("eth0").routes,
              std::vector<std::string>{"10.200.0.0/16 via 10.200.1.1"});
}

TEST_F(OverlayTest, ConnectRollsBackAtEveryKernelStep) {
    add();
    const Snapshot before = snapshot();
    int total = 0;
    {
        const int s0 = kernel.steps;
        ASSERT_TRUE(engine->connect({"mesh", "a", "", ""}).ok());
        total = kernel.steps - s0;
        ASSERT_TRUE(engine->disconnect("mesh", "a").ok());
        ASSERT_EQ(snapshot(), before);
    }
    ASSERT_GE(total, 7);  // veth, disable_ipv6, address, up, host up, overlay route, default
    for (int k = 1; k <= total; ++k) {
        kernel.fail_step = kernel.steps + k;
        auto r = engine->connect({"mesh", "a", "", ""});
        kernel.fail_step = 0;
        ASSERT_FALSE(r.ok()) << "step " << k;
        EXPECT_EQ(snapshot(), before) << "step " << k << ": " << r.error().message();
    }
    EXPECT_EQ(engine->connect({"mesh", "a", "", ""})->address.str(), "10.200.1.2/24");
}

TEST_F(OverlayTest, StartRepairsAMissingOverlayRoute) {
    add();
    auto ep = engine->connect({"mesh", "a", "", ""});
    ASSERT_TRUE(ep.ok());
    auto& routes = kernel.state.ns_links.at(ns("a")).at("eth0").routes;
    std::erase(routes, "10.200.0.0/16 via 10.200.1.1");
    // A restart repairs it.
    start();
    EXPECT_EQ(kernel.state.ns_links.at(ns("a")).at("eth0").routes,
              (std::vector<std::string>{"default via 10.200.1.1", "10.200.0.0/16 via 10.200.1.1"}));
}

TEST_F(OverlayTest, PeersAreDiffedProgrammedAndPersisted) {
    add();
    const auto p2 = peer("n2", "192.0.2.2", "10.200.2.0/24", "02:00:00:00:00:02");
    const auto p3 = peer("n3", "192.0.2.3", "10.200.3.0/24", "02:00:00:00:00:03");
    ASSERT_TRUE(engine->set_overlay_peers(kId, {p3, p2}).ok());
    ASSERT_EQ(kernel.state.vxlan_peers[kVx].size(), 2u);
    EXPECT_EQ(kernel.state.vxlan_peers[kVx]["10.200.2.0/24"].underlay.str(), "192.0.2.2");
    EXPECT_EQ(saved("mesh")->overlay->peers, (std::vector<OverlayPeer>{p2, p3}));  // by node
    EXPECT_EQ(engine->find_network("mesh").value()->overlay->peers,
              (std::vector<OverlayPeer>{p2, p3}));

    // The same set again: nothing to do.
    const int steps = kernel.steps, saves = store.saves;
    ASSERT_TRUE(engine->set_overlay_peers(kId, {p2, p3}).ok());
    EXPECT_EQ(kernel.steps, steps);
    EXPECT_EQ(store.saves, saves);

    // n3 gone, n2 moved to another VTEP (replaced in place), n4 new.
    auto p2b = p2;
    p2b.underlay = *Ipv4::parse("192.0.2.22");
    const auto p4 = peer("n4", "192.0.2.4", "10.200.4.0/24", "02:00:00:00:00:04");
    kernel.ops.clear();
    ASSERT_TRUE(engine->set_overlay_peers(kId, {p4, p2b}).ok());
    EXPECT_EQ(kernel.ops, (std::vector<std::string>{"remove_vxlan_peer " + kVx + " 10.200.3.0/24",
                                                    "add_vxlan_peer " + kVx + " 10.200.2.0/24",
                                                    "add_vxlan_peer " + kVx + " 10.200.4.0/24"}));
    EXPECT_EQ(kernel.state.vxlan_peers[kVx].size(), 2u);
    EXPECT_EQ(kernel.state.vxlan_peers[kVx]["10.200.2.0/24"].underlay.str(), "192.0.2.22");
    EXPECT_EQ(saved("mesh")->overlay->peers, (std::vector<OverlayPeer>{p2b, p4}));

    // A new MAC: the old entries leave first.
    auto p4b = p4;
    p4b.mac = *Mac::parse("02:00:00:00:00:44");
    kernel.ops.clear();
    ASSERT_TRUE(engine->set_overlay_peers(kId, {p4b, p2b}).ok());
    EXPECT_EQ(kernel.ops, (std::vector<std::string>{"remove_vxlan_peer " + kVx + " 10.200.4.0/24",
                                                    "add_vxlan_peer " + kVx + " 10.200.4.0/24"}));
    EXPECT_EQ(kernel.state.vxlan_peers[kVx]["10.200.4.0/24"].mac, p4b.mac);

    ASSERT_TRUE(engine->set_overlay_peers(kId, {}).ok());
    EXPECT_FALSE(kernel.state.vxlan_peers.count(kVx));
    EXPECT_TRUE(saved("mesh")->overlay->peers.empty());
}

TEST_F(OverlayTest, PeerFailuresLeaveThatPeerOutAndAreRetried) {
    add();
    const auto p2 = peer("n2", "192.0.2.2", "10.200.2.0/24", "02:00:00:00:00:02");
    const auto p3 = peer("n3", "192.0.2.3", "10.200.3.0/24", "02:00:00:00:00:03");
    const auto own = peer("n5", "192.0.2.5", "10.200.1.0/24", "02:00:00:00:00:05");
    // The second add fails; the bad peer (our own block) is refused; the rest is done.
    kernel.fail_step = kernel.steps + 2;
    auto r = engine->set_overlay_peers(kId, {p2, p3, own});
    kernel.fail_step = 0;
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("network mesh: peers: "), std::string::npos);
    EXPECT_NE(r.error().message().find("program peer n3"), std::string::npos);
    EXPECT_NE(r.error().message().find("peer n5 (10.200.1.0/24): this node's own block"),
              std::string::npos)
        << r.error().message();
    EXPECT_EQ(saved("mesh")->overlay->peers, std::vector<OverlayPeer>{p2});
    EXPECT_EQ(kernel.state.vxlan_peers[kVx].size(), 1u);
    // The next call retries n3.
    ASSERT_TRUE(engine->set_overlay_peers(kId, {p2, p3}).ok());
    EXPECT_EQ(saved("mesh")->overlay->peers, (std::vector<OverlayPeer>{p2, p3}));
    // A failed removal keeps the peer recorded (its entries are still there).
    kernel.fail_ops = {"remove_vxlan_peer"};
    r = engine->set_overlay_peers(kId, {p2});
    kernel.fail_ops.clear();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(saved("mesh")->overlay->peers, (std::vector<OverlayPeer>{p2, p3}));
    ASSERT_TRUE(engine->set_overlay_peers(kId, {p2}).ok());
    EXPECT_EQ(kernel.state.vxlan_peers[kVx].size(), 1u);

    auto unknown = engine->set_overlay_peers(std::string(64, 'e'), {});
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().kind(), ErrorKind::NotFound);
}

TEST_F(OverlayTest, RestartReprogramsDeviceAndPeersWithoutTheCluster) {
    add();
    const auto p2 = peer("n2", "192.0.2.2", "10.200.2.0/24", "02:00:00:00:00:02");
    ASSERT_TRUE(engine->set_overlay_peers(kId, {p2}).ok());
    ASSERT_TRUE(engine->connect({"mesh", "a", "", ""}).ok());
    // A restart with everything in place changes nothing on the device.
    kernel.ops.clear();
    start();
    for (const auto& op : kernel.ops) EXPECT_EQ(op.find("vxlan_peer"), std::string::npos) << op;
    // A reboot: the device and its peers are gone (the bridge too); the state has them.
    kernel.state.links.erase(kVx);
    kernel.state.vxlan_peers.clear();
    kernel.state.links.erase(kBridge);
    start();
    ASSERT_TRUE(kernel.state.links.count(kVx));
    EXPECT_EQ(kernel.state.links.at(kVx).mac, overlay_vtep_mac("n1", kId).str());
    ASSERT_EQ(kernel.state.vxlan_peers[kVx].size(), 1u);
    EXPECT_EQ(kernel.state.vxlan_peers[kVx]["10.200.2.0/24"], OverlayDriver::vxlan_peer(p2));
    EXPECT_EQ(fw.nets[kId].tunnel, kVx);
    // A stray entry nobody recorded is removed at start.
    kernel.state.vxlan_peers[kVx]["10.200.9.0/24"] =
        OverlayDriver::vxlan_peer(peer("x", "192.0.2.9", "10.200.9.0/24", "02:00:00:00:00:09"));
    start();
    EXPECT_EQ(kernel.state.vxlan_peers[kVx].size(), 1u);
}

TEST_F(OverlayTest, RemoveTakesVxlanAndBridgeAndRollsBack) {
    add();
    const auto p2 = peer("n2", "192.0.2.2", "10.200.2.0/24", "02:00:00:00:00:02");
    ASSERT_TRUE(engine->set_overlay_peers(kId, {p2}).ok());
    ASSERT_TRUE(engine->connect({"mesh", "a", "", ""}).ok());
    auto busy = engine->remove_network("mesh");
    ASSERT_FALSE(busy.ok());
    EXPECT_EQ(busy.error().kind(), ErrorKind::Conflict);
    ASSERT_TRUE(engine->disconnect("mesh", "a").ok());
    // Every kernel step of the removal fails in turn: all of it comes back.
    const Snapshot before = snapshot();
    for (int k = 1; k <= 2; ++k) {
        kernel.fail_step = kernel.steps + k;
        auto r = engine->remove_network("mesh");
        kernel.fail_step = 0;
        ASSERT_FALSE(r.ok()) << "step " << k;
        EXPECT_EQ(snapshot(), before) << "step " << k << ": " << r.error().message();
    }
    ASSERT_TRUE(engine->remove_network("mesh").ok());
    EXPECT_FALSE(kernel.state.links.count(kVx));
    EXPECT_FALSE(kernel.state.links.count(kBridge));
    EXPECT_FALSE(kernel.state.vxlan_peers.count(kVx));
    EXPECT_FALSE(fw.nets.count(kId));
    EXPECT_EQ(saved("mesh"), nullptr);
}

TEST_F(OverlayTest, CniAttachesToAnOverlayNetworkButCannotCreateOne) {
    add();
    ConnectRequest att{"", "a", "", ""};
    att.container_id = "pod1";
    att.ifname = "eth0";
    auto r = engine->cni_add({.name = "mesh"}, att);  // subnet left out
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->address.str(), "10.200.1.2/24");
    att.target = "b";
    att.container_id = "pod2";
    r = engine->cni_add({.name = "mesh", .subnet = "10.200.0.0/16"}, att);
    ASSERT_TRUE(r.ok()) << r.error().message();
    // A retry of the first is answered with it (the overlay route is part of "intact").
    att.target = "a";
    att.container_id = "pod1";
    r = engine->cni_add({.name = "mesh"}, att);
    ASSERT_TRUE(r.ok()) << r.error().message();
    std::erase(kernel.state.ns_links.at(ns("a")).at("eth0").routes, "10.200.0.0/16 via 10.200.1.1");
    r = engine->cni_add({.name = "mesh"}, att);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("route 10.200.0.0/16 via 10.200.1.1 dev eth0 is missing"),
              std::string::npos)
        << r.error().message();

    const Snapshot before = snapshot();
    att.container_id = "pod3";
    r = engine->cni_add({.name = "mesh", .subnet = "10.200.1.0/24"}, att);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
    r = engine->cni_add({.name = "other", .subnet = "10.9.0.0/16", .driver = "overlay"}, att);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("a CNI config cannot create one"), std::string::npos);
    EXPECT_EQ(snapshot(), before);
}

}  // namespace

}  // namespace overlay_engine_test
