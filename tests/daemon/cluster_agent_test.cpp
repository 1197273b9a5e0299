// The cluster agent (daemon/cluster_agent.hpp) against a real etcd 3.4 (Debian's etcd-server),
// started by each test inside this binary's private namespaces (net, mount, pid: meson's unshare
// wrapper and sandbox_main.cpp), on 127.0.0.1 with its data dir on the private /run tmpfs, and
// killed by PID. Two or three agents with different node names against one etcd are a cluster
// without kernels: their backends (OverlayBackend) record what the agent asked the engine for.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.hpp"
#include "cluster/records.hpp"
#include "daemon/cluster_agent.hpp"
#include "daemon/dns_server.hpp"
#include "daemon/worker.hpp"
#include "etcd/client.hpp"
#include "etcd_server.hpp"
#include "fake_backend.hpp"

namespace cnetd::daemon {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The engine's overlay half, in memory: overlay networks as plain Network values (subnet = the
// block, overlay->peers = what set_overlay_peers gave); connect/disconnect for endpoints.
class OverlayBackend final : public Backend {
public:
    Result<core::OverlayNetworkDef> plan_overlay_network(
        const core::CreateNetworkRequest& req) override {
        auto subnet = Ipv4Cidr::parse_network(req.subnet);
        if (!subnet) return subnet.error();
        core::OverlayNetworkDef d;
        d.id = random_hex(64);
        d.name = req.name;
        d.subnet = *subnet;
        d.block_prefix = 24;
        d.dns = !req.options.count(core::kOptEnableDns);  // only ever given as "false" here
        d.created = now_rfc3339();
        return d;
    }
    Result<core::Network> add_overlay_network(const core::OverlayNetworkDef& def,
                                              const core::OverlayLocal& local) override {
        if (auto it = nets_.find(def.id); it != nets_.end()) {
            if (it->second.subnet == local.block) return it->second;
            return Error::conflict("another block");
        }
        core::Network n;
        n.id = def.id;
        n.name = def.name;
        n.subnet = local.block;
        n.gateway = Ipv4(local.block.network().value() + 1);
        n.dns = def.dns;
        n.overlay = core::Overlay{def.subnet,
                                  def.block_prefix,
                                  def.vni,
                                  "vx-" + def.id.substr(0, 12),
                                  cluster::vtep_mac(local.node, def.id),
                                  local.node,
                                  local.local,
                                  local.port,
                                  {}};
        ++adds;
        return nets_[def.id] = n;
    }
    Result<void> set_overlay_peers(const std::string& net_id,
                                   std::vector<core::OverlayPeer> peers) override {
        auto it = nets_.find(net_id);
        if (it == nets_.end()) return Error::not_found(net_id);
        std::sort(peers.begin(), peers.end());
        it->second.overlay->peers = std::move(peers);
        return ok();
    }
    Result<void> remove_network(const std::string& id) override {
        auto it = nets_.find(id);
        if (it == nets_.end()) return Error::not_found(id);
        if (!it->second.endpoints.empty()) return Error::conflict("network has active endpoints");
        nets_.erase(it);
        return ok();
    }
    Result<core::Endpoint> connect(const core::ConnectRequest& req) override {
        auto it = nets_.find(req.network);
        if (it == nets_.end()) return Error::not_found(req.network);
        core::Endpoint ep;
        ep.id = random_hex(64);
        ep.name = req.name;
        ep.address = {Ipv4(it->second.subnet.network().value() + 2 + it->second.endpoints.size()),
                      it->second.subnet.prefix()};
        it->second.endpoints.put(ep);
        return ep;
    }
    Result<void> disconnect(const std::string& network, const std::string& name) override {
        auto it = nets_.find(network);
        if (it == nets_.end()) return Error::not_found(network);
        for (const auto& [id, ep] : it->second.endpoints)
            if (ep.name == name) {
                it->second.endpoints.erase(std::string(id));
                return ok();
            }
        return Error::not_found(name);
    }
    std::vector<core::Network> networks() const override {
        std::vector<core::Network> v;
        for (const auto& [id, n] : nets_) v.push_back(n);
        return v;
    }
    Result<core::Network> create_network(const core::CreateNetworkRequest&) override {
        return Error::internal("not here");
    }
    Result<std::string> create_netns(const std::string&) override { return Error::internal("-"); }
    Result<void> remove_netns(const std::string&) override { return ok(); }
    firewall::Backend& firewall() override { return fw_; }
    std::string firewall_table() const override { return ""; }
    Result<std::vector<std::string>> check_coexistence() override {
        return std::vector<std::string>{};
    }
    Result<core::Endpoint> cni_add(const core::CreateNetworkRequest&,
                                   const core::ConnectRequest&) override {
        return Error::internal("-");
    }
    Result<bool> cni_del(const std::string&, const std::string&, const std::string&) override {
        return false;
    }
    Result<core::Endpoint> cni_check(const std::string&, const std::string&, const std::string&,
                                     const std::string&) override {
        return Error::internal("-");
    }
    Result<std::vector<std::string>> cni_gc(
        const std::string&, const std::vector<std::pair<std::string, std::string>>&) override {
        return std::vector<std::string>{};
    }
    std::vector<std::string> cni_status(const std::string&) override { return {}; }
    Result<std::vector<std::string>> collect_garbage() override {
        return std::vector<std::string>{};
    }
    Result<void> reconfigure(const std::optional<core::DefaultNetworkSpec>&,
                             const core::EngineOptions&, bool) override {
        return ok();
    }
    std::vector<core::LoopbackRelay> loopback_relays() const override { return {}; }

    int adds = 0;  // worker thread

private:
    std::map<std::string, core::Network> nets_;
    testing::FakeFirewall fw_{false};
};

// Failpoints armed at run time (base/failpoint.hpp): the environment is read at the first hit.
constexpr const char* kFailpointRules = "/run/cluster-agent-failpoints";
constexpr const char* kFailpointLog = "/run/cluster-agent-failpoints.log";
const bool failpoints_set = [] {
    ::setenv("CNETD_FAILPOINTS_FILE", kFailpointRules, 1);
    ::setenv("CNETD_FAILPOINTS_LOG", kFailpointLog, 1);
    ::setenv("CNETD_FAILPOINTS_TRACE", "1", 1);
    return true;
}();

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
}

int count_lines(const std::string& path, const std::string& needle) {
    std::ifstream in(path);
    int n = 0;
    for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
    return n;
}

uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 15s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return cond();
}

// One etcd member on 127.0.0.1, data on the private /run tmpfs (tests/etcd/etcd_server.hpp);
// start() after kill() restarts it on the same data dir.
class Etcd {
public:
    std::string url() const { return server_.url(); }
    void start() {
        if (!first_) server_.restart();
        first_ = false;
        ASSERT_TRUE(server_.wait_ready()) << "etcd did not start: " << server_.log();
    }
    void kill() { server_.kill(); }
    // etcdctl compact <current revision>: the history before it is gone.
    void compact() {
        etcd::Client c({{url()}, std::nullopt, 2000ms});
        auto r = c.range("x");
        ASSERT_TRUE(r.ok());
        const std::string cmd = "ETCDCTL_API=3 etcdctl --endpoints=" + url() + " compact " +
                                std::to_string(r->revision) + " >/dev/null";
        ASSERT_EQ(std::system(cmd.c_str()), 0);
    }

private:
    etcd::testing::EtcdServer server_{free_port()};
    bool first_ = true;
};

// A "node": a worker with an OverlayBackend and an agent on its own state dir.
struct Node {
    Node(const std::string& name, int n, const std::string& etcd, unsigned ttl = 60,
         bool with_dns = false)
        : state_dir("/run/state-" + name + "-" + random_hex(6)) {
        if (with_dns) {
            DnsOptions o;
            o.resolv_dir = state_dir + "/resolv";
            dns = std::make_unique<DnsServer>(o);
        }
        fs::create_directories(state_dir);
        cfg.etcd = {etcd};
        cfg.node_name = name;
        cfg.advertise_address = Ipv4(0xC0000200u + static_cast<uint32_t>(n));  // 192.0.2.n
        cfg.lease_ttl = ttl;
        cfg.lease_renew_margin = ttl / 2;
        EXPECT_TRUE(worker
                        .start([]() -> Result<std::unique_ptr<Backend>> {
                            return std::unique_ptr<Backend>(std::make_unique<OverlayBackend>());
                        })
                        .ok());
        start_agent();
    }
    ~Node() {
        worker.set_snapshot_hook({});
        agent.reset();
        worker.stop();
    }
    void start_agent() {
        agent = std::make_unique<ClusterAgent>(cfg, state_dir, worker, dns.get());
        ClusterAgent* a = agent.get();
        DnsServer* d = dns.get();
        worker.set_snapshot_hook([a, d](const Snapshot& snap, Backend&) {  // as daemon.cpp does
            if (d) d->sync(snap.networks, {});
            a->notify();
        });
        worker.post([](Backend&) {});  // a first snapshot through the hook
        agent->start();
    }
    void stop_agent() {
        worker.set_snapshot_hook({});
        agent.reset();
    }
    std::optional<core::Network> net(const std::string& id) const {
        for (const auto& n : worker.snapshot()->networks)
            if (n.id == id) return n;
        return std::nullopt;
    }
    std::vector<std::string> peer_nodes(const std::string& id) const {
        std::vector<std::string> v;
        if (auto n = net(id))
            for (const auto& p : n->overlay->peers) v.push_back(p.node);
        return v;
    }
    template <class T>
    Result<T> job(std::function<Result<T>(Backend&)> fn) {
        std::promise<Result<T>> p;
        auto f = p.get_future();
        worker.post([&](Backend& b) { p.set_value(fn(b)); });
        return f.get();
    }
    Result<core::Endpoint> connect(const std::string& id, const std::string& name) {
        return job<core::Endpoint>([&](Backend& b) {
            core::ConnectRequest r;
            r.network = id;
            r.name = name;
            return b.connect(r);
        });
    }
    Result<void> disconnect(const std::string& id, const std::string& name) {
        return job<void>([&](Backend& b) { return b.disconnect(id, name); });
    }

    std::string state_dir;
    config::ClusterConfig cfg;
    std::unique_ptr<DnsServer> dns;  // before the worker: its hook uses it
    Worker worker;
    std::unique_ptr<ClusterAgent> agent;
};

core::CreateNetworkRequest mesh(const std::string& name = "mesh",
                                const std::string& subnet = "10.200.0.0/16") {
    core::CreateNetworkRequest r;
    r.name = name;
    r.subnet = subnet;
    r.driver = "overlay";
    return r;
}

class ClusterAgentTest : public ::testing::Test {
protected:
    // etcd listens on 127.0.0.1: sandbox_main.cpp brings lo up in the binary's fresh namespace.
    void SetUp() override { etcd.start(); }
    etcd::Client client() { return etcd::Client({{etcd.url()}, std::nullopt, 2000ms}); }
    Etcd etcd;
};

TEST_F(ClusterAgentTest, TwoAgentsShareANetworkWithDistinctBlocksAndPeerEachOther) {
    Node a("a", 1, etcd.url()), b("b", 2, etcd.url());
    auto made = a.agent->create_network(mesh(), 10s);
    ASSERT_TRUE(made.ok()) << made.error().message();
    ASSERT_TRUE(made->overlay);
    EXPECT_GE(made->overlay->vni, 4096u);
    const std::string id = made->id;
    ASSERT_TRUE(eventually([&] { return b.net(id).has_value(); }));
    EXPECT_NE(a.net(id)->subnet, b.net(id)->subnet);
    ASSERT_TRUE(eventually([&] { return a.peer_nodes(id) == std::vector<std::string>{"b"}; }));
    ASSERT_TRUE(eventually([&] { return b.peer_nodes(id) == std::vector<std::string>{"a"}; }));
    const auto pa = b.net(id)->overlay->peers.at(0);
    EXPECT_EQ(pa.block, a.net(id)->subnet);
    EXPECT_EQ(pa.underlay, a.cfg.advertise_address);
    EXPECT_EQ(pa.mac, cluster::vtep_mac("a", id));
    // A second create of the name is refused cluster-wide, from the other node too.
    auto again = b.agent->create_network(mesh("mesh", "10.201.0.0/16"), 5s);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().kind(), ErrorKind::Conflict);
    auto overlap = b.agent->create_network(mesh("mesh2", "10.200.128.0/17"), 5s);
    ASSERT_FALSE(overlap.ok());
    EXPECT_EQ(overlap.error().kind(), ErrorKind::Conflict);
    // nodes(): both, with their blocks; status(): reachable, one network, one peer.
    auto nodes = a.agent->nodes();
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_TRUE(nodes[0].self);
    EXPECT_EQ(nodes[1].name, "b");
    EXPECT_EQ(nodes[1].blocks, std::vector<std::string>{"mesh " + b.net(id)->subnet.str()});
    EXPECT_TRUE(eventually([&] { return a.agent->nodes()[1].ttl_left > 0; }));
    auto st = a.agent->status();
    EXPECT_TRUE(st.etcd_reachable);
    EXPECT_EQ(st.networks, 1u);
    EXPECT_EQ(st.peers, 1u);
    EXPECT_NE(st.lease_id, 0);
}

TEST_F(ClusterAgentTest, RestartedAgentKeepsItsLeaseAndBlock) {
    Node a("a", 1, etcd.url()), b("b", 2, etcd.url());
    auto made = a.agent->create_network(mesh(), 10s);
    ASSERT_TRUE(made.ok()) << made.error().message();
    const std::string id = made->id;
    const Ipv4Cidr block = made->subnet;
    ASSERT_TRUE(eventually([&] { return b.peer_nodes(id) == std::vector<std::string>{"a"}; }));
    const int64_t lease = a.agent->status().lease_id;
    a.stop_agent();  // the lease is not revoked
    ASSERT_TRUE(fs::exists(a.state_dir + "/cluster.json"));
    a.start_agent();
    ASSERT_TRUE(eventually([&] { return a.agent->status().lease_id != 0; }));
    EXPECT_EQ(a.agent->status().lease_id, lease);
    ASSERT_TRUE(eventually([&] { return a.agent->status().peers == 1; }));
    EXPECT_EQ(a.net(id)->subnet, block);
    EXPECT_EQ(b.net(id)->overlay->peers.at(0).block, block);
    auto blocks = client().range_prefix(cluster::blocks_prefix(id));
    ASSERT_TRUE(blocks.ok());
    EXPECT_EQ(blocks->kvs.size(), 2u);
}

// Its lease revoked under it (what a long absence from etcd does): the agent notices at its next
// write, takes a new lease and puts its keys again, with the same block.
TEST_F(ClusterAgentTest, LostLeaseIsReplacedAndTheSameBlockClaimedAgain) {
    Node a("a", 1, etcd.url()), b("b", 2, etcd.url());
    auto made = a.agent->create_network(mesh(), 10s);
    ASSERT_TRUE(made.ok()) << made.error().message();
    const std::string id = made->id;
    ASSERT_TRUE(eventually([&] { return b.peer_nodes(id) == std::vector<std::string>{"a"}; }));
    const int64_t old = a.agent->status().lease_id;
    ASSERT_TRUE(client().revoke(old).ok());
    ASSERT_TRUE(eventually([&] {
        const int64_t now = a.agent->status().lease_id;
        return now != 0 && now != old;
    }));
    EXPECT_TRUE(eventually([&] {
        auto k = client().range(cluster::block_key(id, made->subnet));
        return k.ok() && k->kvs.size() == 1 && k->kvs[0].lease == a.agent->status().lease_id;
    }));
    EXPECT_TRUE(eventually([&] {
        auto k = client().range(cluster::node_key("a"));
        return k.ok() && k->kvs.size() == 1;
    }));
    EXPECT_EQ(a.net(id)->subnet, made->subnet);
    EXPECT_TRUE(eventually([&] { return b.peer_nodes(id) == std::vector<std::string>{"a"}; }));
}

TEST_F(ClusterAgentTest, AgentGoneForGoodIsDroppedWhenItsLeaseGoes) {
    Node a("a", 1, etcd.url()), b("b", 2, etcd.url()), c("c", 3, etcd.url());
    auto made = a.agent->create_network(mesh(), 10s);
    ASSERT_TRUE(made.ok()) << made.error().message();
    const std::string id = made->id;
    ASSERT_TRUE(eventually([&] { return a.peer_nodes(id).size() == 2; }));
    const int64_t lease_c = c.agent->status().lease_id;
    c.stop_agent();
    ASSERT_TRUE(client().revoke(lease_c).ok());  // what its TTL would do, at once
    EXPECT_TRUE(eventually([&] { return a.peer_nodes(id) == std::vector<std::string>{"b"}; }));
    EXPECT_TRUE(eventually([&] { return b.peer_nodes(id) == std::vector<std::string>{"a"}; }));
    EXPECT_TRUE(eventually([&] { return a.agent->nodes().size() == 2; }));
}

TEST_F(ClusterAgentTest, CompactionThenRelistConverges) {
    Node a("a", 1, etcd.url()), b("b", 2, etcd.url());
    auto one = a.agent->create_network(mesh("one", "10.200.0.0/16"), 10s);
    ASSERT_TRUE(one.ok()) << one.error().message();
    etcd.compact();
    auto two = b.agent->create_network(mesh("two", "10.201.0.0/16"), 10s);
    ASSERT_TRUE(two.ok()) << two.error().message();
    EXPECT_NE(one->overlay->vni, two->overlay->vni);
    Node c("c", 3, etcd.url());  // lists after the compaction
    for (const Node* n : {&a, &b, &c})
        for (const auto& id : {one->id, two->id})
            EXPECT_TRUE(eventually([&] { return n->peer_nodes(id).size() == 2; }))
                << n->cfg.node_name;
}

// The watch starts from a revision compacted away (a failpoint stalls the agents between their
// list and their watch while the test changes and compacts etcd): they list again and see the
// change they would otherwise have missed.
TEST_F(ClusterAgentTest, WatchFromACompactedRevisionListsAgain) {
    Node a("a", 1, etcd.url()), b("b", 2, etcd.url());
    auto made = a.agent->create_network(mesh(), 10s);
    ASSERT_TRUE(made.ok()) << made.error().message();
    const std::string id = made->id;
    ASSERT_TRUE(eventually([&] { return a.peer_nodes(id).size() == 1; }));
    ASSERT_TRUE(eventually([&] { return b.peer_nodes(id).size() == 1; }));
    write_file(kFailpointLog, "");
    write_file(kFailpointRules, "cluster.watch.listed.after=sleep(3000)\n");
    etcd.kill();  // both watches break, and list again once etcd is back
    etcd.start();
    ASSERT_TRUE(eventually([] { return count_lines(kFailpointLog, "cluster.watch.listed") >= 2; }));
    write_file(kFailpointRules, "");
    // A third node's block, then the history up to it compacted away.
    auto c = client();
    auto lease = c.grant(60);
    ASSERT_TRUE(lease.ok());
    const cluster::BlockRecord z{"z", Ipv4(0xC0000209u), cluster::vtep_mac("z", id)};
    ASSERT_TRUE(c.put(cluster::block_key(id, *Ipv4Cidr::parse("10.200.250.0/24")),
                      cluster::encode(z), lease->id)
                    .ok());
    ASSERT_TRUE(c.put("/cnetd/test/after", "x").ok());  // compact past the block's revision
    etcd.compact();
    EXPECT_TRUE(eventually([&] { return a.peer_nodes(id).size() == 2; }));
    EXPECT_TRUE(eventually([&] { return b.peer_nodes(id).size() == 2; }));
}

TEST_F(ClusterAgentTest, EtcdDownThenBackSyncsPendingPublications) {
    Node a("a", 1, etcd.url()), b("b", 2, etcd.url());
    auto made = a.agent->create_network(mesh(), 10s);
    ASSERT_TRUE(made.ok()) << made.error().message();
    const std::string id = made->id;
    ASSERT_TRUE(eventually([&] { return a.peer_nodes(id) == std::vector<std::string>{"b"}; }));
    ASSERT_TRUE(eventually([&] { return a.agent->nodes().size() == 2; }));
    etcd.kill();
    // Local attach goes on; the publication waits.
    ASSERT_TRUE(a.connect(id, "web").ok());
    EXPECT_TRUE(eventually([&] { return a.agent->status().pending == 1; }));
    auto st = a.agent->status();
    EXPECT_FALSE(st.etcd_reachable);
    EXPECT_FALSE(st.unreachable_since.empty());
    EXPECT_FALSE(st.etcd_error.empty());
    auto refused = a.agent->create_network(mesh("other", "10.201.0.0/16"), 5s);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().kind(), ErrorKind::Unavailable) << refused.error().message();
    // Nothing flushed: the network and its peer stay.
    EXPECT_EQ(a.peer_nodes(id), std::vector<std::string>{"b"});
    EXPECT_EQ(a.agent->nodes().size(), 2u);  // from the view, no round trip
    etcd.start();                            // same data dir
    EXPECT_TRUE(eventually([&] { return a.agent->status().pending == 0; }));
    EXPECT_TRUE(a.agent->status().etcd_reachable);
    auto eps = client().range_prefix(cluster::endpoints_prefix(id));
    ASSERT_TRUE(eps.ok());
    ASSERT_EQ(eps->kvs.size(), 1u);
    EXPECT_NE(eps->kvs[0].key.find("/a/"), std::string::npos);
}

TEST_F(ClusterAgentTest, RemoveRefusedWhileAnotherNodeHasEndpoints) {
    Node a("a", 1, etcd.url()), b("b", 2, etcd.url());
    auto made = a.agent->create_network(mesh(), 10s);
    ASSERT_TRUE(made.ok()) << made.error().message();
    const std::string id = made->id;
    ASSERT_TRUE(eventually([&] { return b.net(id).has_value(); }));
    ASSERT_TRUE(b.connect(id, "db").ok());
    ASSERT_TRUE(eventually([&] {
        auto eps = client().range_prefix(cluster::endpoints_prefix(id));
        return eps.ok() && eps->kvs.size() == 1;
    }));
    auto refused = a.agent->remove_network("mesh", 5s);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().kind(), ErrorKind::Conflict);
    EXPECT_NE(refused.error().message().find("b"), std::string::npos) << refused.error().message();
    ASSERT_TRUE(b.net(id).has_value());
    ASSERT_TRUE(b.disconnect(id, "db").ok());
    ASSERT_TRUE(eventually([&] { return b.agent->status().pending == 0; }));
    ASSERT_TRUE(eventually([&] {
        auto eps = client().range_prefix(cluster::endpoints_prefix(id));
        return eps.ok() && eps->kvs.empty();
    }));
    auto removed = a.agent->remove_network(id.substr(0, 12), 10s);
    ASSERT_TRUE(removed.ok()) << removed.error().message();
    EXPECT_FALSE(a.net(id).has_value());
    EXPECT_TRUE(eventually([&] { return !b.net(id).has_value(); }));
    auto left = client().range_prefix(cluster::kPrefix);
    ASSERT_TRUE(left.ok());
    for (const auto& kv : left->kvs) EXPECT_EQ(kv.key.find(id), std::string::npos) << kv.key;
}

// Without the resolver a network needs no names in etcd, only "node b has endpoints" (for rm):
// one record stands for all of b's endpoints, so attaches after the first write nothing.
TEST_F(ClusterAgentTest, IpOnlyNetworkKeepsOneRecordPerNode) {
    Node a("a", 1, etcd.url()), b("b", 2, etcd.url());
    auto req = mesh();
    req.options[core::kOptEnableDns] = "false";
    auto made = a.agent->create_network(req, 10s);
    ASSERT_TRUE(made.ok()) << made.error().message();
    const std::string id = made->id;
    ASSERT_TRUE(eventually([&] { return b.net(id).has_value(); }));
    auto records = [&]() -> std::vector<std::string> {
        auto eps = client().range_prefix(cluster::endpoints_prefix(id));
        std::vector<std::string> keys;
        if (eps.ok())
            for (const auto& kv : eps->kvs) keys.push_back(kv.key);
        return keys;
    };
    ASSERT_TRUE(b.connect(id, "c1").ok());
    ASSERT_TRUE(eventually([&] { return records().size() == 1; }));
    const auto first = records();
    auto before = client().range_prefix(cluster::kPrefix);
    ASSERT_TRUE(before.ok());
    for (const char* n : {"c2", "c3", "c4"}) ASSERT_TRUE(b.connect(id, n).ok());
    std::this_thread::sleep_for(500ms);
    ASSERT_TRUE(eventually([&] { return b.agent->status().pending == 0; }));
    EXPECT_EQ(records(), first);
    // No write at all for those three attaches: etcd's revision stood still (the lease keepalive
    // is not a write).
    auto after = client().range_prefix(cluster::kPrefix);
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->revision, before->revision);
    // rm is still refused while b has endpoints, naming b.
    auto refused = a.agent->remove_network("mesh", 5s);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message().find("b"), std::string::npos) << refused.error().message();
    // The representative leaves: another endpoint stands in; the last one leaves: none.
    ASSERT_TRUE(b.disconnect(id, "c1").ok());
    ASSERT_TRUE(eventually([&] { auto r = records(); return r.size() == 1 && r != first; }));
    for (const char* n : {"c2", "c3", "c4"}) ASSERT_TRUE(b.disconnect(id, n).ok());
    ASSERT_TRUE(eventually([&] { return records().empty(); }));
}

TEST_F(ClusterAgentTest, StartsWithEtcdDownAndJoinsWhenItAnswers) {
    etcd.kill();
    const auto t0 = std::chrono::steady_clock::now();
    Node a("a", 1, etcd.url());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);  // start() never waits for etcd
    std::this_thread::sleep_for(300ms);
    auto st = a.agent->status();
    EXPECT_FALSE(st.etcd_reachable);
    EXPECT_FALSE(st.unreachable_since.empty());
    EXPECT_EQ(st.lease_id, 0);
    etcd.start();
    EXPECT_TRUE(eventually([&] { return a.agent->status().lease_id != 0; }));
    EXPECT_TRUE(a.agent->status().etcd_reachable);
    EXPECT_TRUE(eventually([&] { return a.agent->nodes().size() == 1; }));
}

TEST_F(ClusterAgentTest, LeaseIsKeptAliveBeforeItExpires) {
    Node a("a", 1, etcd.url(), /*ttl=*/5);  // renewed when 2 s are left
    ASSERT_TRUE(eventually([&] { return a.agent->status().lease_id != 0; }));
    const int64_t lease = a.agent->status().lease_id;
    auto node = client().range(cluster::node_key("a"));
    ASSERT_TRUE(node.ok() && node->kvs.size() == 1);
    std::this_thread::sleep_for(8s);  // longer than the TTL
    EXPECT_EQ(a.agent->status().lease_id, lease);
    auto left = client().time_to_live(lease);
    ASSERT_TRUE(left.ok()) << left.error().message();
    EXPECT_GT(*left, 0);
    auto again = client().range(cluster::node_key("a"));
    ASSERT_TRUE(again.ok() && again->kvs.size() == 1);
    EXPECT_GT(again->kvs[0].mod_revision, node->kvs[0].mod_revision);  // last_seen re-put
}

TEST_F(ClusterAgentTest, RemoteEndpointNamesReachTheDnsServer) {
    Node a("a", 1, etcd.url(), 60, /*with_dns=*/true), b("b", 2, etcd.url());
    auto made = a.agent->create_network(mesh(), 10s);
    ASSERT_TRUE(made.ok()) << made.error().message();
    const std::string id = made->id;
    ASSERT_TRUE(eventually([&] { return b.net(id).has_value(); }));
    EXPECT_EQ(a.dns->status().names, 0u);
    ASSERT_TRUE(b.connect(id, "db").ok());
    // "db" and its endpoint id's 12-character prefix, in network mesh's zone on node a.
    EXPECT_TRUE(eventually([&] { return a.dns->status().names == 2; }));
    ASSERT_TRUE(b.disconnect(id, "db").ok());
    EXPECT_TRUE(eventually([&] { return a.dns->status().names == 0; }));
}

}  // namespace
}  // namespace cnetd::daemon
