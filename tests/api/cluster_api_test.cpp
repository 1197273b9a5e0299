// The cluster's part of the control API (docs/api.md, docs/overlay.md): POST /v1/networks with
// "Driver": "overlay", DELETE of a global network, GET /v1/nodes, GET /v1/info "Cluster"; end to
// end through the real server, handlers and worker with FakeBackend and a FakeCluster (the
// daemon::Cluster interface the ClusterAgent implements), and through the real netctl. Without a
// cluster (no `cluster:` config): 400s naming the config section, nothing forwarded.
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api_server.hpp"
#include "daemon/cluster.hpp"
#include "proc.hpp"

namespace cnetd {
namespace {

using api::json;
using testing::bin;
using testing::Proc;

// Forwards like the agent does: makes the network through the worker (FakeBackend's
// add_overlay_network) and answers once the snapshot with it is published. Records every call
// and the thread it ran on; `hold` keeps create_network waiting until released.
class FakeCluster final : public daemon::Cluster {
public:
    explicit FakeCluster(daemon::Worker& w) : worker_(w) {}

    Result<core::Network> create_network(const core::CreateNetworkRequest& req,
                                         std::chrono::milliseconds timeout) override {
        std::string opts;
        for (const auto& [k, v] : req.options) opts += " " + k + "=" + v;
        record("create " + req.name + " " + req.driver + " " + req.subnet + opts);
        if (hold) hold->get_future().wait();
        if (fail) return *fail;
        core::OverlayNetworkDef def;
        def.id = std::string(64, 'a');
        def.name = req.name;
        def.subnet = *Ipv4Cidr::parse_network(req.subnet);
        def.vni = 4096;
        def.options = req.options;
        core::OverlayLocal local{"n1", *Ipv4::parse("192.0.2.1"), 4789,
                                 *Ipv4Cidr::parse_network("10.200.7.0/24")};
        return through_worker<core::Network>(
            [def, local](daemon::Backend& b) { return b.add_overlay_network(def, local); },
            timeout);
    }
    Result<void> remove_network(const std::string& name,
                                std::chrono::milliseconds timeout) override {
        record("remove " + name);
        if (fail) return *fail;
        return through_worker<void>([name](daemon::Backend& b) { return b.remove_network(name); },
                                    timeout);
    }
    std::vector<daemon::NodeStatus> nodes() const override {
        return {{"n1", "192.0.2.1", {"mesh 10.200.7.0/24"}, 3541, "2026-12-04T08:00:00Z", true},
                {"n2", "192.0.2.2", {}, -1, "", false}};
    }
    daemon::ClusterStatus status() const override {
        return {"n1",
                "192.0.2.1",
                {"http://192.0.2.1:2379", "http://192.0.2.2:2379"},
                false,
                "connect: Connection refused",
                "2026-12-04T08:01:00Z",
                0x694d7a2b1c3e4f10,
                1200,
                2,
                1,
                1};
    }

    std::vector<std::string> calls() const {
        std::lock_guard lk(mu_);
        return calls_;
    }
    std::thread::id call_thread() const {
        std::lock_guard lk(mu_);
        return thread_;
    }
    std::optional<Error> fail;
    std::optional<std::promise<void>> hold;

private:
    void record(std::string call) {
        std::lock_guard lk(mu_);
        calls_.push_back(std::move(call));
        thread_ = std::this_thread::get_id();
    }
    template <class T>
    Result<T> through_worker(std::function<Result<T>(daemon::Backend&)> job,
                             std::chrono::milliseconds timeout) {
        auto p = std::make_shared<std::promise<Result<T>>>();
        auto f = p->get_future();
        daemon::Worker* w = &worker_;
        worker_.post([p, job, w](daemon::Backend& b) {
            auto r = std::make_shared<Result<T>>(job(b));
            w->after_publish([p, r] { p->set_value(std::move(*r)); });
        });
        if (f.wait_for(timeout) != std::future_status::ready)
            return Error(ErrorKind::Unavailable, "timed out");
        return f.get();
    }
    daemon::Worker& worker_;
    mutable std::mutex mu_;
    std::vector<std::string> calls_;
    std::thread::id thread_;
};

class ClusterApi : public ApiServer {
protected:
    void join() {
        cluster_.emplace(worker_);
        handlers_->set_cluster(&*cluster_);
    }
    const json mesh_ = {{"Name", "mesh"}, {"Driver", "overlay"}, {"Subnet", "10.200.0.0/16"}};
    void TearDown() override {
        ApiServer::TearDown();
        handlers_.reset();  // they borrow the cluster (and join their cluster thread)
        cluster_.reset();
    }
    std::optional<FakeCluster> cluster_;
};

TEST_F(ClusterApi, WithoutAClusterOverlayCreateIs400NamingTheConfigSection) {
    auto [status, body] = call("POST", "/v1/networks", mesh_);
    EXPECT_EQ(status, 400);
    EXPECT_EQ(body, json({{"message", "overlay networks need a `cluster:` section in the config"},
                          {"kind", "invalid-argument"}}));
    auto [ls, nets] = call("GET", "/v1/networks", nullptr);
    ASSERT_EQ(ls, 200);
    EXPECT_EQ(nets.size(), 1u) << nets.dump();  // the default network only: nothing made
    auto [ns, nodes] = call("GET", "/v1/nodes", nullptr);
    EXPECT_EQ(ns, 400);
    EXPECT_EQ(nodes["message"], "this node is in no cluster: the config has no `cluster:` section");
    auto [is, info] = call("GET", "/v1/info", nullptr);
    ASSERT_EQ(is, 200);
    EXPECT_FALSE(info.contains("Cluster")) << info.dump();
    // The real netctl says the same, exit 1.
    Proc p = netctl({"network", "create", "--driver", "overlay", "--subnet", "10.200.0.0/16", "m"});
    EXPECT_EQ(p.status, 1);
    EXPECT_EQ(p.err, "netctl: overlay networks need a `cluster:` section in the config\n");
}

TEST_F(ClusterApi, OverlayCreateGoesToTheClusterOffTheIoThread) {
    join();
    cluster_->hold.emplace();
    auto pending = std::async(std::launch::async, [&] {
        return call("POST", "/v1/networks",
                    {{"Name", "mesh"},
                     {"Driver", "overlay"},
                     {"Subnet", "10.200.0.0/16"},
                     {"Options", {{"cnetd.overlay.host_subnet_size", "26"}}}});
    });
    // While the cluster call waits (for etcd, in the real agent), the io thread still answers.
    for (int i = 0; i < 500 && cluster_->calls().empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(cluster_->calls(), std::vector<std::string>{"create mesh overlay 10.200.0.0/16 "
                                                          "cnetd.overlay.host_subnet_size=26"});
    auto [ps, pong] = call("GET", "/v1/ping", nullptr);
    EXPECT_EQ(ps, 200);
    EXPECT_EQ(pending.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
    cluster_->hold->set_value();
    auto [status, net] = pending.get();
    ASSERT_EQ(status, 201) << net.dump();
    EXPECT_EQ(net["Name"], "mesh");
    EXPECT_EQ(net["Driver"], "overlay");
    EXPECT_NE(cluster_->call_thread(), worker_thread_);           // neither the worker...
    auto [ls, nets] = call("GET", "/v1/networks/mesh", nullptr);  // ...and published
    EXPECT_EQ(ls, 200) << nets.dump();
    // A bridge network is still the backend's, the cluster never hears of it.
    auto [bs, bridge] = call("POST", "/v1/networks", {{"Name", "web"}, {"Subnet", "10.1.0.0/24"}});
    EXPECT_EQ(bs, 201) << bridge.dump();
    EXPECT_EQ(cluster_->calls().size(), 1u);
}

TEST_F(ClusterApi, ClusterErrorsPassThroughWithTheirStatus) {
    join();
    cluster_->fail = Error::conflict("network mesh: subnet 10.200.0.0/16 overlaps network old");
    auto [status, body] = call("POST", "/v1/networks", mesh_);
    EXPECT_EQ(status, 409);
    EXPECT_EQ(body["message"], "network mesh: subnet 10.200.0.0/16 overlaps network old");
    // A malformed request never reaches the cluster.
    auto [bs, bad] = call("POST", "/v1/networks", {{"Name", "m"}, {"Driver", 7}});
    EXPECT_EQ(bs, 400);
    EXPECT_EQ(bad["message"], "\"Driver\": expected a string, got number");
    EXPECT_EQ(cluster_->calls().size(), 1u);
}

TEST_F(ClusterApi, DeleteOfAGlobalNetworkGoesToTheClusterOthersToTheBackend) {
    join();
    ASSERT_EQ(call("POST", "/v1/networks", mesh_).first, 201);
    ASSERT_EQ(call("POST", "/v1/networks", {{"Name", "web"}, {"Subnet", "10.1.0.0/24"}}).first,
              201);
    // By id prefix too: the cluster gets the name.
    EXPECT_EQ(call("DELETE", "/v1/networks/aaaaaa", nullptr).first, 204);
    EXPECT_EQ(call("DELETE", "/v1/networks/web", nullptr).first, 204);
    EXPECT_EQ(cluster_->calls(),
              (std::vector<std::string>{"create mesh overlay 10.200.0.0/16", "remove mesh"}));
    EXPECT_EQ(call("GET", "/v1/networks/mesh", nullptr).first, 404);
    // Refused by the cluster (endpoints on another node): its Conflict, nothing removed here.
    ASSERT_EQ(call("POST", "/v1/networks", mesh_).first, 201);
    cluster_->fail = Error::conflict("network mesh has endpoints on n2");
    auto [status, body] = call("DELETE", "/v1/networks/mesh", nullptr);
    EXPECT_EQ(status, 409);
    EXPECT_EQ(body["message"], "network mesh has endpoints on n2");
    EXPECT_EQ(call("GET", "/v1/networks/mesh", nullptr).first, 200);
}

TEST_F(ClusterApi, NodesAndInfoShowTheClusterInOneWireFormat) {
    join();
    auto [ns, nodes] = call("GET", "/v1/nodes", nullptr);
    ASSERT_EQ(ns, 200);
    EXPECT_EQ(nodes, json::parse(R"([
        {"Name":"n1","Address":"192.0.2.1","Blocks":["mesh 10.200.7.0/24"],"TTL":3541,
         "LastSeen":"2026-12-04T08:00:00Z","Self":true},
        {"Name":"n2","Address":"192.0.2.2","Blocks":[],"TTL":-1,"LastSeen":"","Self":false}])"));
    auto [is, info] = call("GET", "/v1/info", nullptr);
    ASSERT_EQ(is, 200);
    EXPECT_EQ(info["Cluster"], json::parse(R"({"Node":"n1","AdvertiseAddress":"192.0.2.1",
        "Etcd":["http://192.0.2.1:2379","http://192.0.2.2:2379"],"EtcdReachable":false,
        "EtcdError":"connect: Connection refused","UnreachableSince":"2026-12-04T08:01:00Z",
        "LeaseID":7587855272765181712,"LeaseTTL":1200,"Pending":2,"Networks":1,"Peers":1})"));
}

TEST_F(ClusterApi, NetctlNodeLsInfoCreateAndScope) {
    join();
    Proc ls = netctl({"node", "ls"});
    ASSERT_EQ(ls.status, 0) << ls.err;
    EXPECT_EQ(ls.out,
              "NAME   ADDRESS     BLOCKS               TTL      LAST SEEN\n"
              "n1 *   192.0.2.1   mesh 10.200.7.0/24   59m01s   2026-12-04T08:00:00Z\n"
              "n2     192.0.2.2   -                    -        -\n");
    Proc js = netctl({"--json", "node", "ls"});
    ASSERT_EQ(js.status, 0) << js.err;
    EXPECT_EQ(json::parse(js.out)[0]["TTL"], 3541);

    Proc info = netctl({"info"});
    ASSERT_EQ(info.status, 0) << info.err;
    EXPECT_NE(info.out.find("Cluster node: n1 (192.0.2.1)\n"
                            "Cluster etcd: http://192.0.2.1:2379, http://192.0.2.2:2379\n"
                            "Cluster etcd reachable: NO since 2026-12-04T08:01:00Z: connect: "
                            "Connection refused (local attach/detach go on; changes sync when it "
                            "answers)\n"
                            "Cluster lease: 694d7a2b1c3e4f10, TTL 1200s\n"
                            "Cluster pending: 2\n"),
              std::string::npos)
        << info.out;

    Proc bad =
        netctl({"network", "create", "--host-subnet-size", "26", "--subnet", "10.9.0.0/16", "x"});
    EXPECT_EQ(bad.status, 2);
    EXPECT_EQ(bad.err, "netctl: --host-subnet-size: only for --driver overlay\n");
    Proc cr = netctl({"network", "create", "-d", "overlay", "--subnet", "10.200.0.0/16",
                      "--host-subnet-size", "26", "mesh"});
    ASSERT_EQ(cr.status, 0) << cr.err;
    EXPECT_EQ(cr.out, std::string(64, 'a') + "\n");
    EXPECT_EQ(cluster_->calls(),
              std::vector<std::string>{
                  "create mesh overlay 10.200.0.0/16 cnetd.overlay.host_subnet_size=26"});
    Proc nls = netctl({"network", "ls"});
    ASSERT_EQ(nls.status, 0) << nls.err;
    EXPECT_NE(nls.out.find("NETWORK ID     NAME     DRIVER    SCOPE    SUBNET"), std::string::npos)
        << nls.out;
    // SUBNET: the overlay subnet (IPAM.Config), as every node shows it; the block is in inspect.
    EXPECT_NE(nls.out.find("aaaaaaaaaaaa   mesh     overlay   global   10.200.0.0/16"),
              std::string::npos)
        << nls.out;
    EXPECT_NE(nls.out.find("   bridge   bridge    local    172.17.0.0/16"), std::string::npos)
        << nls.out;
}

}  // namespace
}  // namespace cnetd
