// The engine's embedded-resolver sandboxes (engine.hpp: DnsSandbox, dns_sandboxes(); docs/dns.md)
// against the fake kernel: one listener + DNAT per namespace with endpoints on dns networks,
// opened by the first such attach, closed by the last detach (or GC), all or nothing, reopened by
// start(); com.docker.network.enable_dns and the default network; --alias checked and persisted.
#include <gtest/gtest.h>

#include "core/engine.hpp"
#include "fakes/fake_kernel.hpp"

namespace dns_engine_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;
using cnetd::test::FakeFirewall;
using cnetd::test::FakeKernel;
using cnetd::test::FakeState;
using cnetd::test::FakeStore;

namespace {

constexpr const char* kNetnsDir = "/run/test/netns";

class DnsEngineTest : public ::testing::Test {
protected:
    void SetUp() override {
        restart();
        kernel.state.netns.insert(ns("a"));
        kernel.state.netns.insert(ns("b"));
        create("front", "10.10.0.0/24");
        create("back", "10.20.0.0/24");
    }
    // A new engine on the same kernel and store, as after a daemon restart.
    void restart() {
        engine.reset();
        engine = std::make_unique<Engine>(kernel, fw, store, EngineOptions{kNetnsDir, 1500});
        auto r = engine->start(DefaultNetworkSpec{}, true);
        ASSERT_TRUE(r.ok()) << r.error().message();
    }
    static std::string ns(const std::string& n) { return std::string(kNetnsDir) + "/" + n; }
    Network create(const std::string& name, const std::string& subnet,
                   std::map<std::string, std::string> options = {}) {
        CreateNetworkRequest req;
        req.name = name;
        req.subnet = subnet;
        req.options = std::move(options);
        auto r = engine->create_network(req);
        EXPECT_TRUE(r.ok()) << r.error().message();
        return r.ok() ? *r : Network{};
    }
    Result<Endpoint> connect(const std::string& net, const std::string& target,
                             std::vector<std::string> aliases = {}) {
        ConnectRequest req{net, target, "", ""};
        req.aliases = std::move(aliases);
        return engine->connect(req);
    }
    std::string id_of(const std::string& net) { return (*engine->find_network(net))->id; }
    int listeners(const std::string& n) {
        auto it = kernel.state.dns_listeners.find(ns(n));
        return it == kernel.state.dns_listeners.end() ? 0 : it->second;
    }
    int count_ops(const std::string& prefix) {
        int n = 0;
        for (const auto& op : kernel.ops) n += op.rfind(prefix, 0) == 0;
        return n;
    }

    FakeKernel kernel;
    FakeFirewall fw;
    FakeStore store;
    std::unique_ptr<Engine> engine;
};

TEST_F(DnsEngineTest, OneListenerPerNamespaceForTwoNetworksClosedAfterTheLastDetach) {
    ASSERT_TRUE(connect("front", "a").ok());
    ASSERT_TRUE(connect("back", "a").ok());
    EXPECT_EQ(count_ops("open_dns_listener"), 1);
    EXPECT_EQ(listeners("a"), 1);
    EXPECT_EQ(kernel.state.dns_nat.at(ns("a")), "udp 40001 tcp 40002");
    auto sb = engine->dns_sandboxes();
    ASSERT_EQ(sb.size(), 1u);
    EXPECT_EQ(sb[0].netns_path, ns("a"));
    auto nets = sb[0].networks;
    std::sort(nets.begin(), nets.end());
    std::vector<std::string> want{id_of("front"), id_of("back")};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(nets, want);

    ASSERT_TRUE(engine->disconnect("front", "a").ok());
    EXPECT_EQ(listeners("a"), 1) << "still on back";
    EXPECT_EQ(engine->dns_sandboxes().at(0).networks, std::vector<std::string>{id_of("back")});
    ASSERT_TRUE(engine->disconnect("back", "a").ok());
    EXPECT_EQ(listeners("a"), 0);
    EXPECT_FALSE(kernel.state.dns_nat.count(ns("a")));
    EXPECT_TRUE(engine->dns_sandboxes().empty());
}

TEST_F(DnsEngineTest, AFailedSetDnsNatLeavesNothing) {
    const FakeState before = kernel.state.normalized();
    kernel.fail_ops = {"set_dns_nat"};
    auto r = connect("front", "a");
    kernel.fail_ops.clear();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("embedded DNS: DNAT 127.0.0.11:53"), std::string::npos)
        << r.error().message();
    EXPECT_EQ(kernel.state.normalized(), before);
    EXPECT_TRUE(engine->dns_sandboxes().empty());
    EXPECT_TRUE((*engine->find_network("front"))->endpoints.empty());
    ASSERT_TRUE(connect("front", "a").ok());  // and nothing blocks the next try
    EXPECT_EQ(listeners("a"), 1);
}

TEST_F(DnsEngineTest, EveryStepOfTheFirstDnsAttachRollsBack) {
    ASSERT_TRUE(connect("front", "b").ok());  // another sandbox, which must survive
    const FakeState before = kernel.state.normalized();
    for (int step = 1;; ++step) {
        kernel.steps = 0;
        kernel.fail_step = step;
        auto r = connect("front", "a");
        kernel.fail_step = 0;
        if (r.ok()) break;
        EXPECT_EQ(kernel.state.normalized(), before)
            << "step " << step << ": " << r.error().message();
        EXPECT_EQ(engine->dns_sandboxes().size(), 1u) << "step " << step;
    }
    EXPECT_EQ(engine->dns_sandboxes().size(), 2u);
    // A failed save after the sandbox was opened: closed again.
    ASSERT_TRUE(engine->disconnect("front", "a").ok());
    store.fail_save = true;
    EXPECT_FALSE(connect("front", "a").ok());
    store.fail_save = false;
    EXPECT_EQ(kernel.state.normalized(), before);
}

TEST_F(DnsEngineTest, EnableDnsFalseAndTheDefaultNetworkGetNone) {
    Network off = create("quiet", "10.30.0.0/24", {{kOptEnableDns, "false"}});
    EXPECT_FALSE(off.dns);
    EXPECT_EQ(off.options.at(kOptEnableDns), "false");
    EXPECT_TRUE((*engine->find_network("front"))->dns);
    EXPECT_FALSE((*engine->find_network("bridge"))->dns);
    ASSERT_TRUE(connect("quiet", "a").ok());
    ASSERT_TRUE(connect("bridge", "b").ok());
    EXPECT_EQ(count_ops("open_dns_listener"), 0);
    EXPECT_TRUE(engine->dns_sandboxes().empty());
    // On a dns network as well: the namespace gets one, listing only the dns network.
    ASSERT_TRUE(connect("front", "a").ok());
    ASSERT_EQ(engine->dns_sandboxes().size(), 1u);
    EXPECT_EQ(engine->dns_sandboxes()[0].networks, std::vector<std::string>{id_of("front")});
    Network on = create("loud", "10.40.0.0/24", {{kOptEnableDns, "true"}});
    EXPECT_TRUE(on.dns);
}

TEST_F(DnsEngineTest, ABadEnableDnsValueIsRefusedNamingFieldAndValue) {
    CreateNetworkRequest req;
    req.name = "odd";
    req.subnet = "10.50.0.0/24";
    req.options = {{kOptEnableDns, "maybe"}};
    kernel.ops.clear();
    auto r = engine->create_network(req);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(r.error().message().find("com.docker.network.enable_dns: \"maybe\""),
              std::string::npos)
        << r.error().message();
    EXPECT_TRUE(kernel.ops.empty());
    EXPECT_FALSE(engine->find_network("odd").ok());
}

TEST_F(DnsEngineTest, AliasesAreValidatedDeduplicatedAndPersisted) {
    auto bad = connect("front", "a", {"db", "no space"});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(bad.error().message().find("Aliases[1]: \"no space\""), std::string::npos)
        << bad.error().message();
    EXPECT_TRUE(kernel.ops.empty() || count_ops("create_veth") == 0);
    EXPECT_FALSE(connect("front", "a", {std::string(64, 'x')}).ok());
    EXPECT_FALSE(connect("front", "a", {"a..b"}).ok());
    EXPECT_FALSE(connect("front", "a", {""}).ok());

    auto ep = connect("front", "a", {"db", "primary", "DB", "db.internal", "primary"});
    ASSERT_TRUE(ep.ok()) << ep.error().message();
    const std::vector<std::string> want{"db", "primary", "db.internal"};
    EXPECT_EQ(ep->aliases, want);
    // In the state the store got, and back after a restart.
    const auto& saved = *std::find_if(store.saved.begin(), store.saved.end(),
                                      [](const Network& n) { return n.name == "front"; });
    EXPECT_EQ(saved.endpoints.at(ep->id).aliases, want);
    restart();
    EXPECT_EQ((*engine->find_network("front"))->endpoints.at(ep->id).aliases, want);
}

TEST_F(DnsEngineTest, RestartReopensEverySandboxWithNewPorts) {
    ASSERT_TRUE(connect("front", "a").ok());
    ASSERT_TRUE(connect("back", "b").ok());
    const std::string nat_a = kernel.state.dns_nat.at(ns("a"));
    kernel.ops.clear();
    restart();  // the old engine's sockets close with it (the daemon died)
    EXPECT_EQ(count_ops("open_dns_listener"), 2);
    EXPECT_EQ(count_ops("set_dns_nat"), 2);
    EXPECT_EQ(engine->dns_sandboxes().size(), 2u);
    EXPECT_EQ(listeners("a"), 1);
    EXPECT_NE(kernel.state.dns_nat.at(ns("a")), nat_a) << "the DNAT follows the new ports";
}

TEST_F(DnsEngineTest, RestartSkipsDeadNamespacesAndALiveOneThatFailsIsNotFatal) {
    ASSERT_TRUE(connect("front", "a").ok());
    ASSERT_TRUE(connect("front", "b").ok());
    engine.reset();
    ASSERT_TRUE(kernel.delete_netns(ns("b")).ok());
    kernel.fail_ops = {"open_dns_listener"};
    restart();
    kernel.fail_ops.clear();
    EXPECT_TRUE(engine->dns_sandboxes().empty());
    EXPECT_EQ((*engine->find_network("front"))->endpoints.size(), 1u) << "b was reconciled away";
}

TEST_F(DnsEngineTest, GarbageCollectionClosesTheSandboxOfADeadNamespace) {
    ASSERT_TRUE(connect("front", "a").ok());
    ASSERT_TRUE(kernel.delete_netns(ns("a")).ok());
    auto removed = engine->collect_garbage();
    ASSERT_TRUE(removed.ok());
    EXPECT_EQ(removed->size(), 1u);
    EXPECT_EQ(listeners("a"), 0);
    EXPECT_TRUE(engine->dns_sandboxes().empty());
}

}  // namespace

}  // namespace dns_engine_test
