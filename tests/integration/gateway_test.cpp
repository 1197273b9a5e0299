// Issue 15, items 2-4, end to end with the real daemon: a refused connect leaves the namespace's
// routes (and every other kernel object) as they were; a namespace on several networks gets its
// default route from the endpoint Docker's rule picks, and keeps one when that endpoint leaves;
// the host's own namespaces are never a target.
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "fixture.hpp"
#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;

namespace {

class Gateway : public DaemonTest {
protected:
    // "via GW dev IF" of the namespace's default route of `family` ("-4"/"-6"), "" without one.
    static std::string default_route(const std::string& netns, const std::string& family = "-4") {
        json j = ip_json({family, "route", "show", "default"}, netns);
        if (!j.is_array() || j.empty()) return "";
        return "via " + j[0].value("gateway", std::string("?")) + " dev " +
               j[0].value("dev", std::string("?"));
    }
    // The families an endpoint carries the default route for, as inspect shows them.
    json default_role(const std::string& network, const std::string& name) {
        json n = d.netctl_json({"network", "inspect", network});
        if (!n.is_array() || n.empty()) return json();
        for (const auto& [id, ep] : n[0]["Containers"].items())
            if (ep["Name"] == name) return ep["DefaultRoute"];
        return json();
    }
};

TEST_F(Gateway, RefusedConnectLeavesTheNamespacesRouteAndEverythingElse) {
    start();
    container("d", "bridge", {"-p", "8080:80"});
    container("c");
    ok({"network", "create", "web", "--subnet", "10.80.0.0/24"});
    ASSERT_EQ(default_route(ns("c")), "via 172.17.0.1 dev eth0");
    const std::string before = kernel_snapshot(d);
    // "web" would win the default route (priority 5); port 8080 is taken: 409, nothing changed.
    std::string err =
        fails({"network", "connect", "web", "c", "--gw-priority", "5", "-p", "8080:80"});
    EXPECT_NE(err.find("port is already allocated"), std::string::npos) << err;
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    EXPECT_EQ(default_route(ns("c")), "via 172.17.0.1 dev eth0");
    // A host port another process of the host listens on: also refused before any link exists.
    TagServer other("", TagServer::Proto::Tcp, "0.0.0.0", 9090, "other");
    ASSERT_TRUE(other.ready());
    err = fails({"network", "connect", "web", "c", "--gw-priority", "5", "-p", "8081:81", "-p",
                 "9090:90"});
    EXPECT_NE(err.find("9090"), std::string::npos) << err;
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    EXPECT_EQ(default_route(ns("c")), "via 172.17.0.1 dev eth0");
}

TEST_F(Gateway, DefaultRouteFollowsDockersRuleAndMovesWhenTheGatewayLeaves) {
    start();
    ok({"network", "create", "zeta", "--subnet", "10.50.0.0/24"});
    ok({"network", "create", "alpha", "--subnet", "10.60.0.0/24"});
    ok({"network", "create", "inside", "--subnet", "10.70.0.0/24", "--internal"});
    container("c");                                                     // bridge: eth0
    ok({"network", "connect", "inside", "c", "--gw-priority", "100"});  // internal: never
    EXPECT_EQ(default_route(ns("c")), "via 172.17.0.1 dev eth0");
    ok({"network", "connect", "zeta", "c"});  // "zeta" sorts after "bridge": keeps eth0's
    EXPECT_EQ(default_route(ns("c")), "via 172.17.0.1 dev eth0");
    ok({"network", "connect", "alpha", "c", "--gw-priority", "10"});  // highest priority
    EXPECT_EQ(default_route(ns("c")), "via 10.60.0.1 dev eth3");
    EXPECT_EQ(default_role("alpha", "c"), json::array({"IPv4"}));
    EXPECT_EQ(default_role("bridge", "c"), json::array());
    ok({"network", "disconnect", "alpha", "c"});  // hands over to the next in line
    EXPECT_EQ(default_route(ns("c")), "via 172.17.0.1 dev eth0");
    EXPECT_EQ(default_role("bridge", "c"), json::array({"IPv4"}));
    ok({"network", "disconnect", "bridge", "c"});
    EXPECT_EQ(default_route(ns("c")), "via 10.50.0.1 dev eth2");
    ok({"network", "disconnect", "zeta", "c"});
    EXPECT_EQ(default_route(ns("c")), "");  // only the internal network is left
    // The choice survives a restart: reconciliation repairs only the elected endpoint's route.
    ok({"network", "connect", "zeta", "c"});
    ok({"network", "connect", "bridge", "c", "--gw-priority", "3"});
    ASSERT_EQ(default_route(ns("c")).rfind("via 172.17.0.1 dev ", 0), 0u);
    const std::string chosen = default_route(ns("c"));
    d.kill(SIGKILL);
    start();
    EXPECT_EQ(default_route(ns("c")), chosen);
}

TEST_F(Gateway, TheHostsOwnNamespacesAreNeverATarget) {
    // The test's namespace plays the host: it has a default route of its own.
    sh({"ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"});
    sh({"ip", "addr", "add", "192.0.2.1/24", "dev", "up0"});
    sh({"ip", "link", "set", "up0", "up"});
    sh({"ip", "link", "set", "up1", "up"});
    sh({"ip", "route", "add", "default", "via", "192.0.2.254"});
    start();
    const std::string before = kernel_snapshot(d);
    const std::string self = "/proc/" + std::to_string(d.pid()) + "/ns/net";
    for (const std::string& target : {self, std::string("/proc/1/ns/net")}) {
        std::string err = fails({"network", "connect", "bridge", target});
        EXPECT_NE(err.find("is the host's own network namespace"), std::string::npos) << err;
    }
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    EXPECT_EQ(default_route(""), "via 192.0.2.254 dev up0");
}

}  // namespace
