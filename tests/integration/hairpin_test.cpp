// Hairpin end to end (issue 15): the real cnetd and netctl, real TCP. A container reaching a
// published port through a host address is DNAT'd back into its own bridge; who does the server
// see? Like Docker without its proxy: the real client when it is another container, the bridge
// address only when a container reaches its own port (it would drop a packet from its own
// address, so that one is masqueraded).
//
//   wan netns: eth0 198.51.100.2/24 ---- wan0 198.51.100.1/24 [host netns: cnetd, docker0]
//
// The test's network namespace is fresh, so br_netfilter's bridge-nf-call-iptables has its
// per-namespace default, 1 (the kernel here has br_netfilter built in); the fallback without it is
// tests/firewall/kernel_test.cpp PublishedPorts.HairpinWithoutBrNetfilterFallsBackToMasquerade.
#include <gtest/gtest.h>

#include <memory>

#include "fixture.hpp"
#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;

namespace {

constexpr const char* kGateway = "172.17.0.1";  // docker0's address

class Hairpin : public DaemonTest {
protected:
    void SetUp() override {
        DaemonTest::SetUp();
        add_wan();
    }
    void TearDown() override {
        servers_.clear();
        DaemonTest::TearDown();
    }
    // A server in container `name` on `port` answering each connection with the peer address.
    void who(const std::string& name, int port) {
        servers_.push_back(std::make_unique<WhoAmIServer>(ns(name), "0.0.0.0", port));
        ASSERT_TRUE(servers_.back()->ready()) << name << ":" << port;
    }
    std::string ip_of(const std::string& name) {
        json j = ip_json({"-4", "addr", "show", "dev", "eth0"}, ns(name));
        if (!j.is_array() || j.size() != 1 || j[0]["addr_info"].empty()) return "";
        return j[0]["addr_info"][0]["local"];
    }

    std::vector<std::unique_ptr<WhoAmIServer>> servers_;
};

TEST_F(Hairpin, NeighbourKeepsItsAddressItselfIsMasqueraded) {
    start();
    container("a", "bridge", {"-p", "8081:81"});
    container("b", "bridge", {"-p", "8080:80"});
    who("a", 81);
    who("b", 80);
    const std::string a = ip_of("a");
    ASSERT_FALSE(a.empty());
    ASSERT_NE(a, kGateway);
    // Another container's published port, through the host's address and through the gateway
    // address: the server sees the client container (Docker 20.10 and 28, no proxy: 172.17.0.2).
    EXPECT_EQ(tcp_whoami(ns("a"), kHostWan, 8080), a) << "neighbour via a host address";
    EXPECT_EQ(tcp_whoami(ns("a"), kGateway, 8080), a) << "neighbour via the gateway address";
    // Its own published port: it works, masqueraded to the bridge address.
    EXPECT_EQ(tcp_whoami(ns("a"), kHostWan, 8081), kGateway) << "itself via a host address";
    EXPECT_EQ(tcp_whoami(ns("a"), kGateway, 8081), kGateway) << "itself via the gateway address";
    // Controls: from outside the client address is kept, as before.
    EXPECT_EQ(tcp_whoami(wan_path(), kHostWan, 8080), "198.51.100.2");
    // After b unpublishes and publishes again (elements removed and re-added), the same.
    ok({"network", "disconnect", "bridge", "b"});
    ok({"network", "connect", "bridge", "b", "-p", "8080:80"});
    EXPECT_EQ(tcp_whoami(ns("a"), kHostWan, 8080), a) << "after reconnect";
    EXPECT_EQ(tcp_whoami(ns("a"), kHostWan, 8081), kGateway) << "itself, after b reconnected";
}

}  // namespace
