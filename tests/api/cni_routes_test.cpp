// The CNI routes (/v1/cni/{add,del,check,gc}, /v1/cni/status/{network}) served end to end by the
// real server, handlers and worker against FakeBackend: the request bodies cnetd-cni sends, the
// attachment answers it builds its result from, and the CniCode of every error.
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "api_server.hpp"

namespace cnetd {
namespace {

using api::json;

class CniRoutes : public ApiServer {
protected:
    // A fake "namespace": a plain file, as FakeBackend::create_netns makes them.
    std::string make_netns(const std::string& name) {
        const std::string path = netns_dir_ + "/" + name;
        int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd >= 0) ::close(fd);
        return path;
    }

    static json add_body(const std::string& cid, const std::string& netns,
                         const std::string& subnet = "10.88.0.0/16", unsigned host_port = 8080) {
        return {
            {"Network", {{"Name", "pods"}, {"Subnet", subnet}, {"Bridge", "cni0"}}},
            {"ContainerID", cid},
            {"IfName", "eth0"},
            {"Netns", netns},
            {"PortMappings",
             json::array({{{"HostPort", host_port}, {"ContainerPort", 80}, {"Protocol", "tcp"}}})}};
    }
};

TEST_F(CniRoutes, AddCheckDelServedByTheBackend) {
    const std::string ns = make_netns("c1");
    auto [st, a] = call("POST", "/v1/cni/add", add_body("c1", ns));
    ASSERT_EQ(st, 201) << a.dump();
    EXPECT_EQ(a["Network"], "pods");
    EXPECT_EQ(a["Bridge"], "cni0");
    EXPECT_EQ(a["Subnet"], "10.88.0.0/16");
    EXPECT_EQ(a["Gateway"], "10.88.0.1");
    EXPECT_EQ(a["Internal"], false);
    EXPECT_EQ(a["Mtu"], 1500);
    EXPECT_EQ(a["Endpoint"]["IPv4Address"], "10.88.0.2/16");
    EXPECT_EQ(a["Endpoint"]["Interface"], "eth0");
    EXPECT_EQ(a["Endpoint"]["SandboxKey"], ns);
    EXPECT_EQ(a["Endpoint"]["Ports"],
              json({{"80/tcp", {{{"HostIp", "0.0.0.0"}, {"HostPort", "8080"}}}}}));
    // The network ADD created is a network like any other.
    auto net = client().request("GET", "/v1/networks/pods");
    ASSERT_TRUE(net.ok()) << net.error().message();
    EXPECT_EQ((*net)["Containers"].size(), 1u);

    // A runtime's retry of the same ADD gets the same attachment.
    auto [st2, again] = call("POST", "/v1/cni/add", add_body("c1", ns));
    ASSERT_EQ(st2, 201) << again.dump();
    EXPECT_EQ(again["Endpoint"]["EndpointID"], a["Endpoint"]["EndpointID"]);

    auto [cst, checked] =
        call("POST", "/v1/cni/check",
             {{"Network", "pods"}, {"ContainerID", "c1"}, {"IfName", "eth0"}, {"Netns", ns}});
    ASSERT_EQ(cst, 200) << checked.dump();
    EXPECT_EQ(checked, a);

    const json key = {{"Network", "pods"}, {"ContainerID", "c1"}, {"IfName", "eth0"}};
    EXPECT_EQ(call("POST", "/v1/cni/del", key), std::make_pair(200, json({{"Removed", true}})));
    // DEL is idempotent: nothing left to remove is still success.
    EXPECT_EQ(call("POST", "/v1/cni/del", key), std::make_pair(200, json({{"Removed", false}})));
    EXPECT_EQ(fake_->calls(),
              (std::vector<std::string>{"cni_add c1/eth0", "cni_add c1/eth0", "cni_check c1/eth0",
                                        "cni_del c1/eth0", "cni_del c1/eth0"}));
}

TEST_F(CniRoutes, ErrorsCarryTheCniCode) {
    const std::string ns = make_netns("c1");
    ASSERT_EQ(call("POST", "/v1/cni/add", add_body("c1", ns)).first, 201);
    // Unknown attachment: NotFound, CNI code 3.
    auto [st, e] =
        call("POST", "/v1/cni/check",
             {{"Network", "pods"}, {"ContainerID", "nope"}, {"IfName", "eth0"}, {"Netns", ns}});
    EXPECT_EQ(st, 404) << e.dump();
    EXPECT_EQ(e["CniCode"], 3);
    EXPECT_EQ(e["message"], "no attachment nope/eth0 on network pods");
    // The same network name with another subnet: Conflict, CNI code 7.
    auto [st2, e2] = call("POST", "/v1/cni/add", add_body("c2", ns, "10.99.0.0/16"));
    EXPECT_EQ(st2, 409) << e2.dump();
    EXPECT_EQ(e2["CniCode"], 7);
    EXPECT_EQ(e2["kind"], "conflict");
    // The attachment moved to another namespace: a Kernel-kind failure, CNI code 100.
    auto [st3, e3] = call("POST", "/v1/cni/check",
                          {{"Network", "pods"},
                           {"ContainerID", "c1"},
                           {"IfName", "eth0"},
                           {"Netns", make_netns("other")}});
    EXPECT_EQ(st3, 500) << e3.dump();
    EXPECT_EQ(e3["CniCode"], 100);
    // A bad body never reaches the backend: 400, CNI code 7, the field named.
    auto [st4, e4] = call("POST", "/v1/cni/gc", {{"Network", "pods"}, {"Valid", 1}});
    EXPECT_EQ(st4, 400) << e4.dump();
    EXPECT_EQ(e4["CniCode"], 7);
    EXPECT_EQ(e4["message"], "CNI gc: \"Valid\": expected an array");
    EXPECT_EQ(fake_->calls(), (std::vector<std::string>{"cni_add c1/eth0", "cni_check nope/eth0",
                                                        "cni_add c2/eth0", "cni_check c1/eth0"}));
}

TEST_F(CniRoutes, GcRemovesTheAttachmentsNotListedOnly) {
    unsigned port = 8080;
    for (const char* cid : {"keep", "drop"}) {
        auto body = add_body(cid, make_netns(cid), "10.88.0.0/16", port++);
        ASSERT_EQ(call("POST", "/v1/cni/add", body).first, 201);
    }
    // An endpoint made by connect (no container id) is never collected.
    make_netns("plain");
    ASSERT_TRUE(
        client().request("POST", "/v1/networks/pods/connect", json{{"Target", "plain"}}).ok());
    auto [st, r] = call("POST", "/v1/cni/gc",
                        {{"Network", "pods"},
                         {"Valid", json::array({{{"ContainerID", "keep"}, {"IfName", "eth0"}}})}});
    ASSERT_EQ(st, 200) << r.dump();
    EXPECT_EQ(r, json({{"Removed", json::array({"drop/eth0"})}}));
    auto net = client().request("GET", "/v1/networks/pods");
    ASSERT_TRUE(net.ok());
    std::vector<std::string> left;
    for (const auto& [id, ep] : (*net)["Containers"].items()) left.push_back(ep["Name"]);
    std::sort(left.begin(), left.end());
    EXPECT_EQ(left, (std::vector<std::string>{netns_dir_ + "/keep", "plain"}));
}

TEST_F(CniRoutes, StatusReportsTheBackendsProblems) {
    EXPECT_EQ(call("GET", "/v1/cni/status/pods", nullptr),
              std::make_pair(200, json({{"Ready", true}, {"Problems", json::array()}})));
    fake_->set_cni_problems({"bridge cni0 of network pods is missing"});
    // A mutation in between: the next status read may not reuse the first one's dump.
    ASSERT_TRUE(client().request("POST", "/v1/netns", json{{"Name", "x"}}).ok());
    EXPECT_EQ(
        call("GET", "/v1/cni/status/pods", nullptr),
        std::make_pair(200, json({{"Ready", true},
                                  {"Problems", {"bridge cni0 of network pods is missing"}}})));
    EXPECT_EQ(fake_->calls(),
              (std::vector<std::string>{"cni_status pods", "create_netns x", "cni_status pods"}));
}

// The route table's auth classes are the ones the server enforces (daemon/auth.hpp decides by
// method), and every row is reachable: a request of its method and shape is never a 404 or 405.
TEST_F(ApiServer, EveryRouteOfTheTableIsServedWithItsAuthClass) {
    const auto routes = daemon::Handlers::routes();
    ASSERT_EQ(routes.size(), 22u);  // 20 + GET /v1/events + GET /metrics
    for (const auto& r : routes) {
        EXPECT_EQ(r.access, daemon::required_for(r.method)) << r.method << " " << r.pattern;
        EXPECT_EQ(r.cni, r.pattern.rfind("/v1/cni/", 0) == 0) << r.pattern;
        std::string target = r.pattern;
        for (size_t b; (b = target.find('{')) != std::string::npos;)
            target.replace(b, target.find('}') - b + 1, "x");
        auto resp = client().raw(r.method, target, "{}");
        ASSERT_TRUE(resp.ok()) << resp.error().message();
        EXPECT_NE(resp->status, 405) << r.method << " " << target << ": " << resp->body;
        // Only "not found" answers of the backend, never the router's.
        EXPECT_EQ(resp->body.find("no such API endpoint"), std::string::npos) << resp->body;
    }
}

}  // namespace
}  // namespace cnetd
