// Reconciliation at start and netns GC (lib/core/engine_reconcile.cpp) against the fake kernel:
// a restarted engine repairs drift, recreates vanished veths with the same names/MAC/IP, drops
// endpoints whose namespace is gone (releasing IP and ports) and deletes orphan veths; GC while
// running does the same for namespaces that die later, firewall elements included.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/engine.hpp"
#include "fakes/fake_kernel.hpp"

namespace reconcile_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;
using cnetd::test::FakeFirewall;
using cnetd::test::FakeKernel;
using cnetd::test::FakeStore;

namespace {

constexpr const char* kNetnsDir = "/run/test/netns";

class ReconcileTest : public ::testing::Test {
protected:
    void SetUp() override {
        kernel.state.netns.insert(ns("a"));
        kernel.state.netns.insert(ns("b"));
        restart();
    }
    // A new engine on the same kernel and store: what a daemon restart does.
    void restart() {
        engine.reset();
        fw = std::make_unique<FakeFirewall>();
        engine = std::make_unique<Engine>(kernel, *fw, store, EngineOptions{kNetnsDir, 1500});
        auto r = engine->start(DefaultNetworkSpec{}, true);
        ASSERT_TRUE(r.ok()) << r.error().message();
    }
    static std::string ns(const std::string& n) { return std::string(kNetnsDir) + "/" + n; }
    Endpoint connect(const std::string& target, std::vector<std::string> publish = {}) {
        ConnectRequest req{"bridge", target, "", ""};
        req.publish = std::move(publish);
        auto r = engine->connect(req);
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
        return r.ok() ? *r : Endpoint{};
    }
    size_t endpoints() { return engine->networks()[0].endpoints.size(); }

    FakeKernel kernel;
    std::unique_ptr<FakeFirewall> fw;
    FakeStore store;
    std::unique_ptr<Engine> engine;
};

TEST_F(ReconcileTest, RestartWithoutDriftChangesNothing) {
    connect("a", {"8080:80"});
    connect("b");
    auto before = kernel.state;
    int saves = store.saves;
    restart();
    EXPECT_EQ(kernel.state, before);
    EXPECT_EQ(store.saves, saves);  // nothing changed: nothing saved
    EXPECT_EQ(endpoints(), 2u);
    EXPECT_EQ(fw->ports.size(), 1u);  // the one-transaction sync carries the mapping
}

TEST_F(ReconcileTest, GoneNamespaceReleasesAddressPortsAndVeth) {
    Endpoint a = connect("a", {"8080:80"});
    connect("b");
    // The container died while the daemon was down: namespace (and its veth pair) gone, but the
    // host side lingers as if a process still held it.
    kernel.state.netns.erase(ns("a"));
    kernel.state.ns_links.erase(ns("a"));
    ASSERT_TRUE(kernel.state.links.count(a.host_ifname));
    restart();
    EXPECT_EQ(endpoints(), 1u);
    EXPECT_FALSE(kernel.state.links.count(a.host_ifname));
    EXPECT_TRUE(fw->ports.empty());
    EXPECT_EQ(kernel.held.count("tcp/0.0.0.0:8080"), 0u);
    EXPECT_EQ(store.saved[0].endpoints.size(), 1u);  // persisted
    // The address and the host port are free again.
    kernel.state.netns.insert(ns("c"));
    Endpoint c = connect("c", {"8080:80"});
    EXPECT_EQ(c.address, a.address);
}

TEST_F(ReconcileTest, ReplacedNamespaceIsGoneToo) {
    Endpoint a = connect("a");
    // Same path, new namespace (different identity): the fake derives identity from the path, so
    // persist a different one to simulate it.
    Endpoint moved = store.saved[0].endpoints.begin()->second;
    moved.netns_id.ino ^= 1;
    store.saved[0].endpoints.put(moved);
    restart();
    EXPECT_EQ(endpoints(), 0u);
    EXPECT_FALSE(kernel.state.links.count(a.host_ifname));
}

TEST_F(ReconcileTest, DriftIsRepaired) {
    Endpoint a = connect("a");
    auto good = kernel.state;
    kernel.state.links.at(a.host_ifname).up = false;
    kernel.state.links.at(a.host_ifname).master = "";
    auto& peer = kernel.state.ns_links.at(ns("a")).at("eth0");
    peer.addresses.clear();
    peer.routes.clear();
    peer.up = false;
    restart();
    EXPECT_EQ(kernel.state, good);
    EXPECT_EQ(endpoints(), 1u);
}

TEST_F(ReconcileTest, VanishedVethIsRecreatedWithTheSameIdentity) {
    Endpoint a = connect("a");
    auto good = kernel.state;
    ASSERT_TRUE(kernel.delete_link(a.host_ifname).ok());  // takes the container side too
    restart();
    EXPECT_EQ(kernel.state, good);  // same host name, peer name, MAC, address, route
    EXPECT_EQ(endpoints(), 1u);
}

TEST_F(ReconcileTest, OrphanVethOfAnInterruptedConnectIsDeleted) {
    connect("a");
    // A crash after create_veth, before the state was saved.
    auto ns_b = kernel.open_netns(ns("b"));
    ASSERT_TRUE(ns_b.ok());
    ASSERT_TRUE(
        kernel.create_veth({"veth00000ab", "docker0", "eth0", Mac::random_local(), 1500}, **ns_b)
            .ok());
    kernel.state.links["vethforeign"] = {"veth", "docker0", "", true, 1500, {}};  // not our name
    restart();
    EXPECT_FALSE(kernel.state.links.count("veth00000ab"));
    EXPECT_TRUE(kernel.state.ns_links[ns("b")].empty());
    EXPECT_TRUE(kernel.state.links.count("vethforeign"));
    EXPECT_EQ(endpoints(), 1u);
}

TEST_F(ReconcileTest, GarbageCollectionWhileRunning) {
    Endpoint a = connect("a", {"8080:80", "9000:90/udp"});
    Endpoint b = connect("b");
    auto none = engine->collect_garbage();
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->empty());
    ASSERT_TRUE(kernel.delete_netns(ns("a")).ok());  // the container's runtime removed it
    auto removed = engine->collect_garbage();
    ASSERT_TRUE(removed.ok()) << removed.error().message();
    EXPECT_EQ(*removed, std::vector<std::string>{"bridge/a"});
    EXPECT_EQ(endpoints(), 1u);
    EXPECT_TRUE(fw->ports.empty());  // both mappings left the firewall
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_EQ(store.saved[0].endpoints.size(), 1u);
    kernel.state.netns.insert(ns("c"));
    Endpoint c = connect("c", {"8080:80"});
    EXPECT_EQ(c.address, a.address);  // the IP is reused at once
    EXPECT_TRUE(engine->collect_garbage()->empty());
}

TEST_F(ReconcileTest, UnmountedNetnsFileCountsAsGone) {
    connect("a");
    kernel.regular_files.insert(ns("a"));  // the file is now a plain file: not a namespace
    auto removed = engine->collect_garbage();
    ASSERT_TRUE(removed.ok());
    EXPECT_EQ(removed->size(), 1u);  // unmounted netns file: the namespace is gone for us
}

}  // namespace

// The host's neighbour entry of a reused address still names the previous owner's MAC (the new
// owner's gratuitous ARP goes out before the bridge forwards on its port and is dropped):
// connect forgets it, so the host resolves the address afresh instead of sending into the void.
TEST_F(ReconcileTest, ReusedAddressForgetsThePreviousOwnersNeighbourEntry) {
    Endpoint a = connect("a");
    const std::string key = "docker0 " + a.address.addr().str();
    kernel.neighbours[key] = a.mac.str();  // the host talked to a
    ASSERT_TRUE(engine->disconnect("bridge", "a").ok());
    Endpoint b = connect("b");
    ASSERT_EQ(b.address, a.address);  // lowest free first: reused at once
    EXPECT_FALSE(kernel.neighbours.count(key));
}

// A crash between the reuse of an address and the forgetting (or an older daemon that never
// forgot) leaves a stale entry: the restart resolves every surviving endpoint afresh.
TEST_F(ReconcileTest, RestartForgetsStaleNeighbourEntriesOfSurvivors) {
    Endpoint a = connect("a");
    Endpoint b = connect("b");
    kernel.neighbours["docker0 " + a.address.addr().str()] = "02:00:00:00:00:99";
    kernel.neighbours["docker0 " + b.address.addr().str()] = "02:00:00:00:00:98";
    kernel.neighbours["docker0 172.17.0.200"] = "02:00:00:00:00:97";  // no endpoint: left alone
    restart();
    EXPECT_EQ(kernel.neighbours.size(), 1u);
    EXPECT_TRUE(kernel.neighbours.count("docker0 172.17.0.200"));
    EXPECT_EQ(endpoints(), 2u);
}

// create_network saves the network before it makes the bridge: a crash in between leaves a
// network whose bridge the next start creates, never a bridge no state owns (which a restart
// could not tell from an admin's, and a retried create would adopt and never delete).
TEST_F(ReconcileTest, NetworkIsSavedBeforeItsBridgeIsCreated) {
    CreateNetworkRequest req;
    req.name = "n1";
    req.options["com.docker.network.bridge.name"] = "brn1";
    // The "crash": the kernel refuses the bridge, and the store is inspected at that moment.
    kernel.fail_step = kernel.steps + 1;
    const int saves = store.saves;
    auto r = engine->create_network(req);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(std::find(kernel.ops.begin(), kernel.ops.end(), "ensure_bridge brn1"),
              kernel.ops.end());
    // The network was saved before the bridge (write-ahead), then removed again by the rollback.
    EXPECT_EQ(store.saves, saves + 2);
    EXPECT_EQ(store.saved.size(), 1u);
    EXPECT_FALSE(kernel.state.links.count("brn1"));
    // Roll forward: a saved network whose bridge is missing gets it at the next start.
    kernel.fail_step = 0;
    auto made = engine->create_network(req);
    ASSERT_TRUE(made.ok()) << made.error().message();
    kernel.state.links.erase("brn1");  // as if the daemon died right after the save
    restart();
    EXPECT_TRUE(kernel.state.links.count("brn1"));
    EXPECT_EQ(engine->networks().size(), 2u);
}

// GC of a dead namespace whose save fails keeps everything (memory, ports, firewall) as the saved
// state has it, and the next sweep removes it.
TEST_F(ReconcileTest, GarbageCollectionWhoseSaveFailsKeepsEverything) {
    Endpoint a = connect("a", {"8080:80"});
    ASSERT_TRUE(kernel.delete_netns(ns("a")).ok());
    store.fail_save = true;
    auto failed = engine->collect_garbage();
    store.fail_save = false;
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(endpoints(), 1u);
    EXPECT_EQ(fw->ports.size(), 1u);
    EXPECT_EQ(kernel.held.size(), 1u);
    auto removed = engine->collect_garbage();
    ASSERT_TRUE(removed.ok());
    EXPECT_EQ(*removed, std::vector<std::string>{"bridge/a"});
    EXPECT_EQ(endpoints(), 0u);
    EXPECT_TRUE(fw->ports.empty());
    EXPECT_TRUE(kernel.held.empty());
    EXPECT_TRUE(store.saved[0].endpoints.empty());
}

}  // namespace reconcile_test
