// Kernel tests for the nftables firewall (root; each test unshares a fresh network and mount
// namespace, and mounts a private tmpfs on /run so `ip netns` files stay inside the test).
// Asserts kernel state through `nft -j` and real TCP traffic between namespaces:
//
//   wan netns (198.51.100.2) --wan0/198.51.100.1-- [test netns = host] --br-a-- c1 (172.30.0.2)
//                                                                     \        c2 (172.30.0.3)
//                                                                      --br-b-- c3 (172.31.0.2)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "firewall/firewall.hpp"
#include "firewall/ruleset.hpp"
#include "netns_util.hpp"
#include "nft/nft.hpp"

namespace cnetd::firewall {
namespace {

constexpr const char* kTable = "fwtest";
constexpr size_t kRules = 37;  // fixed, whatever the number of networks and ports

using testing_netns::run;
using testing_netns::socket_in;

std::string read_file(const std::string& path) {
    std::string out;
    FILE* f = fopen(path.c_str(), "r");
    if (!f) return out;
    char buf[256];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    fclose(f);
    return out;
}

void write_file(const char* path, const char* v) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << path;
    ASSERT_GT(write(fd, v, strlen(v)), 0) << path;
    close(fd);
}

sockaddr_in addr(const char* ip, uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

// TCP connect from netns `from` to ip:port, with a listener in netns `to` on listen_port, bounded
// by ~1 s. Returns the source address the server saw, or "" if the connection failed.
std::string tcp_to(const std::string& from, const std::string& to, const char* ip, uint16_t port,
                   uint16_t listen_port) {
    int srv = socket_in(to);
    int one = 1;
    setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in any = addr("0.0.0.0", listen_port);
    EXPECT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
    EXPECT_EQ(listen(srv, 4), 0);
    int cli = socket_in(from);
    fcntl(cli, F_SETFL, O_NONBLOCK);
    sockaddr_in dst = addr(ip, port);
    connect(cli, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
    pollfd p{cli, POLLOUT, 0};
    std::string seen;
    if (poll(&p, 1, 1000) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(cli, SOL_SOCKET, SO_ERROR, &err, &len);
        pollfd ps{srv, POLLIN, 0};
        if (err == 0 && poll(&ps, 1, 1000) == 1) {
            sockaddr_in peer{};
            socklen_t pl = sizeof peer;
            int c = accept(srv, reinterpret_cast<sockaddr*>(&peer), &pl);
            if (c >= 0) {
                char b[INET_ADDRSTRLEN];
                seen = inet_ntop(AF_INET, &peer.sin_addr, b, sizeof b);
                close(c);
            }
        }
    }
    close(cli);
    close(srv);
    return seen;
}
// The IPv6 version of tcp_to: connect to [ip]:port, listener on [::]:listen_port.
std::string tcp6_to(const std::string& from, const std::string& to, const char* ip, uint16_t port,
                    uint16_t listen_port) {
    auto sock6 = [](const std::string& ns) { return socket_in(ns, SOCK_STREAM, AF_INET6); };
    auto a6 = [](const char* a, uint16_t p) {
        sockaddr_in6 x{};
        x.sin6_family = AF_INET6;
        x.sin6_port = htons(p);
        inet_pton(AF_INET6, a, &x.sin6_addr);
        return x;
    };
    int srv = sock6(to);
    int one = 1;
    setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in6 any = a6("::", listen_port);
    EXPECT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&any), sizeof any), 0) << strerror(errno);
    EXPECT_EQ(listen(srv, 4), 0);
    int cli = sock6(from);
    fcntl(cli, F_SETFL, O_NONBLOCK);
    sockaddr_in6 dst = a6(ip, port);
    connect(cli, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
    pollfd p{cli, POLLOUT, 0};
    std::string seen;
    if (poll(&p, 1, 1000) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(cli, SOL_SOCKET, SO_ERROR, &err, &len);
        pollfd ps{srv, POLLIN, 0};
        if (err == 0 && poll(&ps, 1, 1000) == 1) {
            sockaddr_in6 peer{};
            socklen_t pl = sizeof peer;
            int c = accept(srv, reinterpret_cast<sockaddr*>(&peer), &pl);
            if (c >= 0) {
                char b[INET6_ADDRSTRLEN];
                seen = inet_ntop(AF_INET6, &peer.sin6_addr, b, sizeof b);
                close(c);
            }
        }
    }
    close(cli);
    close(srv);
    return seen;
}
std::string tcp6(const std::string& from, const std::string& to, const char* ip) {
    static uint16_t port = 25000;
    ++port;
    return tcp6_to(from, to, ip, port, port);
}

// The same with a fresh port each time, listened to and connected to directly.
std::string tcp(const std::string& from, const std::string& to, const char* ip) {
    static uint16_t port = 20000;
    ++port;
    return tcp_to(from, to, ip, port, port);
}

NetworkRules net(std::string id, std::string br, const char* cidr) {
    NetworkRules n;
    n.id = std::move(id);
    n.bridge = std::move(br);
    n.subnet = Ipv4Cidr::parse(cidr).value();
    return n;
}

class FirewallKernel : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(testing_netns::enter_sandbox());
        fw_ = make_nftables_backend({kTable, true});
    }
    void TearDown() override {
        fw_.reset();
        for (const char* ns : {"wan", "c1", "c2", "c3"})
            if (access((std::string("/run/netns/") + ns).c_str(), F_OK) == 0)
                run(std::string("ip netns del ") + ns);
    }

    nlohmann::json nft_json() {
        return nlohmann::json::parse(run(std::string("nft -j list table inet ") + kTable));
    }
    size_t count(const nlohmann::json& j, const char* kind) {
        size_t n = 0;
        for (const auto& o : j["nftables"])
            if (o.contains(kind)) ++n;
        return n;
    }
    nlohmann::json set(const nlohmann::json& j, const std::string& name) {
        for (const auto& o : j["nftables"]) {
            if (o.contains("set") && o["set"]["name"] == name) return o["set"];
            if (o.contains("map") && o["map"]["name"] == name) return o["map"];
        }
        return {};
    }

    // The wan netns and routing; bridges and containers are added with add_bridge/add_container.
    void topology() {
        run("ip netns add wan");
        run("ip link add wan0 type veth peer name eth0 netns wan");
        run("ip addr add 198.51.100.1/24 dev wan0 && ip link set wan0 up");
        run("ip -n wan addr add 198.51.100.2/24 dev eth0 && ip -n wan link set eth0 up");
        run("ip -n wan link set lo up");
        write_file("/proc/sys/net/ipv4/ip_forward", "1");
    }
    void add_bridge(const std::string& br, const std::string& gw_cidr) {
        run("ip link add " + br + " type bridge && ip addr add " + gw_cidr + " dev " + br +
            " && ip link set " + br + " up");
    }
    void add_container(const std::string& c, const std::string& br, const std::string& cidr,
                       const std::string& gw) {
        run("ip netns add " + c);
        run("ip link add v" + c + " type veth peer name eth0 netns " + c);
        run("ip link set v" + c + " master " + br + " && ip link set v" + c + " up");
        run("ip -n " + c + " addr add " + cidr + " dev eth0 && ip -n " + c +
            " link set eth0 up && ip -n " + c + " link set lo up && ip -n " + c +
            " route add default via " + gw);
    }

    // IPv6 for the same topology: wan 2001:db8:1::2 -- host 2001:db8:1::1 (wan0); a bridge gets
    // an IPv6 gateway with add_bridge6, a container an address with add_container6. No DAD.
    void topology6() {
        run("ip addr add 2001:db8:1::1/64 dev wan0 nodad");
        run("ip -n wan addr add 2001:db8:1::2/64 dev eth0 nodad");
        write_file("/proc/sys/net/ipv6/conf/all/forwarding", "1");
    }
    void add_bridge6(const std::string& br, const std::string& gw_cidr) {
        run("ip addr add " + gw_cidr + " dev " + br + " nodad");
    }
    void add_container6(const std::string& c, const std::string& cidr, const std::string& gw) {
        run("ip -n " + c + " addr add " + cidr + " dev eth0 nodad && ip -n " + c +
            " -6 route add default via " + gw);
    }

    std::unique_ptr<Backend> fw_;
};

TEST_F(FirewallKernel, BaseAndNetworkAreVisibleToNft) {
    ASSERT_TRUE(fw_->ensure_base().ok());
    auto n = net("n1", "docker0", "172.17.0.0/16");
    auto r = fw_->add_network(n);
    ASSERT_TRUE(r.ok()) << r.error().message();
    auto j = nft_json();
    EXPECT_EQ(count(j, "chain"), 5u);
    EXPECT_EQ(count(j, "rule"), kRules);
    EXPECT_EQ(set(j, "bridges")["elem"], nlohmann::json::array({"docker0"}));
    auto nets = set(j, "nets")["elem"];
    ASSERT_EQ(nets.size(), 1u);
    EXPECT_NE(nets.dump().find("172.17.0.0"), std::string::npos) << nets.dump();
    EXPECT_NE(nets.dump().find("docker0"), std::string::npos) << nets.dump();
    EXPECT_EQ(set(j, "masq_nets")["elem"].size(), 1u);
    EXPECT_FALSE(set(j, "snat_nets").contains("elem"));
    auto shown = fw_->show();
    ASSERT_TRUE(shown.ok());
    EXPECT_NE(shown->find("# kernel: matches"), std::string::npos) << *shown;
    // ensure_base again keeps the elements (a restarted daemon does not cut traffic).
    auto fresh = make_nftables_backend({kTable, true});
    ASSERT_TRUE(fresh->ensure_base().ok());
    EXPECT_EQ(set(nft_json(), "bridges")["elem"], nlohmann::json::array({"docker0"}));
    // Our own changes are not drift.
    EXPECT_FALSE(fw_->handle_events().value());
    EXPECT_EQ(fw_->repairs(), 0u);
}

TEST_F(FirewallKernel, FiftyNetworksAddElementsOnly) {
    ASSERT_TRUE(fw_->ensure_base().ok());
    ASSERT_TRUE(fw_->add_network(net("n0", "br0", "10.0.0.0/24")).ok());
    auto j1 = nft_json();
    for (int i = 1; i < 50; ++i) {
        auto r = fw_->add_network(net(fmt::format("n{}", i), fmt::format("br{}", i),
                                      fmt::format("10.0.{}.0/24", i).c_str()));
        ASSERT_TRUE(r.ok()) << r.error().message();
    }
    auto j50 = nft_json();
    EXPECT_EQ(count(j1, "rule"), count(j50, "rule"));
    EXPECT_EQ(count(j1, "chain"), count(j50, "chain"));
    EXPECT_EQ(set(j50, "bridges")["elem"].size(), 50u);
    EXPECT_EQ(set(j50, "nets")["elem"].size(), 50u);
    ASSERT_TRUE(fw_->remove_network(net("n7", "br7", "10.0.7.0/24")).ok());
    EXPECT_EQ(set(nft_json(), "bridges")["elem"].size(), 49u);
}

TEST_F(FirewallKernel, RejectedBatchChangesNothingAndNamesTheObject) {
    ASSERT_TRUE(fw_->ensure_base().ok());
    auto sock = nft::Socket::open();
    ASSERT_TRUE(sock.ok());
    // A valid network's elements, then one for a set that does not exist in another table.
    nft::Batch b = build_network(kTable, net("a", "br-a", "172.30.0.0/24"), true);
    b.append(build_network("nosuchtable", net("b", "br-b", "172.31.0.0/24"), true).split()[0]);
    auto r = sock->commit(b);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(),
              "add element inet nosuchtable bridges { \"br-b\" }: No such file or directory");
    auto j = nft_json();
    EXPECT_FALSE(set(j, "bridges").contains("elem")) << set(j, "bridges").dump();
    EXPECT_FALSE(set(j, "nets").contains("elem"));
    // A duplicate in the same transaction is refused too and names the set and element.
    nft::Batch dup = build_network(kTable, net("a", "br-a", "172.30.0.0/24"), true);
    dup.append(build_network(kTable, net("c", "br-c", "172.30.0.0/25"), true));
    auto r2 = sock->commit(dup);
    ASSERT_FALSE(r2.ok());
    EXPECT_NE(r2.error().message().find("172.30.0.0/25"), std::string::npos)
        << r2.error().message();
    EXPECT_FALSE(set(nft_json(), "bridges").contains("elem"));
}

TEST_F(FirewallKernel, MasqueradeIsolationIccInternalAndDirectRouting) {
    topology();
    add_bridge("br-a", "172.30.0.1/24");
    add_container("c1", "br-a", "172.30.0.2/24", "172.30.0.1");
    add_container("c2", "br-a", "172.30.0.3/24", "172.30.0.1");
    add_bridge("br-b", "172.31.0.1/24");
    add_container("c3", "br-b", "172.31.0.2/24", "172.31.0.1");
    run("ip -n wan route add 172.30.0.0/24 via 198.51.100.1");

    // Without our table: no NAT (wan has a route back, so it sees the container address), and
    // wan reaches the container directly — the behaviour the firewall must change.
    EXPECT_EQ(tcp("c1", "wan", "198.51.100.2"), "172.30.0.2");
    EXPECT_EQ(tcp("wan", "c1", "172.30.0.2"), "198.51.100.2");
    EXPECT_EQ(tcp("c1", "c3", "172.31.0.2"), "172.30.0.2");

    auto a = net("a", "br-a", "172.30.0.0/24");
    auto b = net("b", "br-b", "172.31.0.0/24");
    ASSERT_TRUE(fw_->ensure_base().ok());
    ASSERT_TRUE(fw_->add_network(a).ok());
    ASSERT_TRUE(fw_->add_network(b).ok());

    EXPECT_EQ(tcp("c1", "wan", "198.51.100.2"), "198.51.100.1");  // masqueraded
    EXPECT_EQ(tcp("c3", "wan", "198.51.100.2"), "198.51.100.1");
    EXPECT_EQ(tcp("wan", "c1", "172.30.0.2"), "");  // no direct routing
    EXPECT_EQ(tcp("c1", "c3", "172.31.0.2"), "");   // isolation, both ways
    EXPECT_EQ(tcp("c3", "c1", "172.30.0.2"), "");
    EXPECT_EQ(tcp("c1", "c2", "172.30.0.3"), "172.30.0.2");  // icc on
    EXPECT_EQ(tcp("", "c1", "172.30.0.2"), "172.30.0.1");    // host reaches containers

    a.icc = false;
    ASSERT_TRUE(fw_->add_network(a).ok());
    EXPECT_EQ(tcp("c1", "c2", "172.30.0.3"), "");                 // icc off
    EXPECT_EQ(tcp("c1", "wan", "198.51.100.2"), "198.51.100.1");  // still reaches wan

    b.internal = true;
    ASSERT_TRUE(fw_->add_network(b).ok());
    EXPECT_EQ(tcp("c3", "wan", "198.51.100.2"), "");  // internal: no way out
    EXPECT_EQ(set(nft_json(), "internal_bridges")["elem"], nlohmann::json::array({"br-b"}));

    b.internal = false;
    b.snat_source = Ipv4::parse("198.51.100.9").value();
    run("ip addr add 198.51.100.9/24 dev wan0");
    ASSERT_TRUE(fw_->add_network(b).ok());
    EXPECT_EQ(tcp("c3", "wan", "198.51.100.2"), "198.51.100.9");  // SNAT to host_ipv4

    ASSERT_TRUE(fw_->remove_network(b).ok());
    run("ip -n wan route add 172.31.0.0/24 via 198.51.100.1");
    EXPECT_EQ(tcp("c3", "wan", "198.51.100.2"), "172.31.0.2");  // no longer ours: no NAT
}

TEST_F(FirewallKernel, FlushRulesetIsRepairedFromIntent) {
    topology();
    add_bridge("br-a", "172.30.0.1/24");
    add_container("c1", "br-a", "172.30.0.2/24", "172.30.0.1");
    ASSERT_TRUE(fw_->ensure_base().ok());
    ASSERT_TRUE(fw_->add_network(net("a", "br-a", "172.30.0.0/24")).ok());
    ASSERT_GE(fw_->monitor_fd(), 0);
    EXPECT_FALSE(fw_->handle_events().value());
    EXPECT_EQ(tcp("c1", "wan", "198.51.100.2"), "198.51.100.1");

    run("nft flush ruleset");                         // this test's netns only
    EXPECT_EQ(tcp("c1", "wan", "198.51.100.2"), "");  // no NAT, wan has no route back
    pollfd p{fw_->monitor_fd(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 1000), 1);
    auto repaired = fw_->handle_events();
    ASSERT_TRUE(repaired.ok()) << repaired.error().message();
    EXPECT_TRUE(*repaired);
    EXPECT_EQ(fw_->repairs(), 1u);
    EXPECT_EQ(tcp("c1", "wan", "198.51.100.2"), "198.51.100.1");
    EXPECT_NE(fw_->show()->find("# kernel: matches"), std::string::npos);
    // The repair itself is not drift.
    EXPECT_FALSE(fw_->handle_events().value());

    // Someone deletes one of our elements: also repaired.
    run(std::string("nft delete element inet ") + kTable + " masq_nets { 172.30.0.0/24 }");
    EXPECT_TRUE(fw_->handle_events().value());
    EXPECT_EQ(set(nft_json(), "masq_nets")["elem"].size(), 1u);
    EXPECT_EQ(fw_->repairs(), 2u);
}

TEST_F(FirewallKernel, AddAfterTableVanishedRebuilds) {
    ASSERT_TRUE(fw_->ensure_base().ok());
    ASSERT_TRUE(fw_->add_network(net("a", "br-a", "172.30.0.0/24")).ok());
    run(std::string("nft delete table inet ") + kTable);
    auto r = fw_->add_network(net("b", "br-b", "172.31.0.0/24"));
    ASSERT_TRUE(r.ok()) << r.error().message();
    auto j = nft_json();
    EXPECT_EQ(set(j, "bridges")["elem"].size(), 2u);
    EXPECT_EQ(count(j, "rule"), kRules);
}

// ---- published ports ---------------------------------------------------------------------

PortForward pf(L4 proto, const char* host_ip, uint16_t h1, uint16_t h2, const char* cip,
               uint16_t c1, const char* br = "br-a") {
    PortForward p;
    p.proto = proto;
    if (host_ip) p.host_ip = Ipv4::parse(host_ip).value();
    p.host_first = h1;
    p.host_last = h2;
    p.container_ip = Ipv4::parse(cip).value();
    p.container_first = c1;
    p.bridge = br;
    return p;
}

// A UDP socket bound to port in netns `ns`.
int udp_bound(const std::string& ns, uint16_t port) {
    int s = socket_in(ns, SOCK_DGRAM);
    sockaddr_in a = addr("0.0.0.0", port);
    EXPECT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return s;
}
// True if a datagram arrives on `s` within `ms`.
bool udp_got(int s, int ms = 500) {
    pollfd p{s, POLLIN, 0};
    if (poll(&p, 1, ms) != 1) return false;
    char b[64];
    return recv(s, b, sizeof b, 0) > 0;
}

class PublishedPorts : public FirewallKernel {
protected:
    // wan (198.51.100.2) -- host (198.51.100.1 on wan0) -- br-a: c1 .2, c2 .3; br-b: c3
    void SetUp() override {
        FirewallKernel::SetUp();
        if (HasFatalFailure()) return;
        topology();
        add_bridge("br-a", "172.30.0.1/24");
        add_container("c1", "br-a", "172.30.0.2/24", "172.30.0.1");
        add_container("c2", "br-a", "172.30.0.3/24", "172.30.0.1");
        add_bridge("br-b", "172.31.0.1/24");
        add_container("c3", "br-b", "172.31.0.2/24", "172.31.0.1");
        // A container reaching its own published port is DNAT'd back out of the bridge port it
        // came from; with br_netfilter that frame is bridged, so the port needs hairpin mode
        // (Docker sets it when published ports are served in-kernel; the engine's job).
        run("ip link set vc1 type bridge_slave hairpin on");
        ASSERT_TRUE(fw_->ensure_base().ok());
        ASSERT_TRUE(fw_->add_network(net("a", "br-a", "172.30.0.0/24")).ok());
        ASSERT_TRUE(fw_->add_network(net("b", "br-b", "172.31.0.0/24")).ok());
    }
    void add(const std::vector<PortForward>& ps) {
        auto r = fw_->add_ports(ps);
        ASSERT_TRUE(r.ok()) << r.error().message();
    }
    nlohmann::json published(const char* map = "published") { return set(nft_json(), map)["elem"]; }
};

TEST_F(PublishedPorts, TcpFromEverywhereThroughOneElement) {
    // Before publishing: nothing answers on 8080, and the container is not reachable directly.
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8080, 80), "");
    add({pf(L4::Tcp, nullptr, 8080, 8080, "172.30.0.2", 80)});
    EXPECT_EQ(published().size(), 1u);
    EXPECT_EQ(count(nft_json(), "rule"), kRules);
    EXPECT_EQ(read_file("/proc/sys/net/ipv4/conf/br-a/route_localnet"), "1\n");

    // From outside: DNAT'd, the client address is preserved.
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8080, 80), "198.51.100.2");
    // From the host, to its own address and to 127.0.0.1 (masqueraded to the bridge address).
    EXPECT_EQ(tcp_to("", "c1", "198.51.100.1", 8080, 80), "198.51.100.1");
    EXPECT_EQ(tcp_to("", "c1", "127.0.0.1", 8080, 80), "172.30.0.1");
    // Hairpin, through the host address and through the gateway address: the container itself
    // is masqueraded (it would drop a packet from its own address); its neighbour keeps its
    // address (br_netfilter, on here, un-DNATs the reply switched back over the bridge).
    EXPECT_EQ(tcp_to("c1", "c1", "198.51.100.1", 8080, 80), "172.30.0.1");
    EXPECT_EQ(tcp_to("c1", "c1", "172.30.0.1", 8080, 80), "172.30.0.1");
    EXPECT_EQ(tcp_to("c2", "c1", "198.51.100.1", 8080, 80), "172.30.0.3");
    EXPECT_EQ(tcp_to("c2", "c1", "172.30.0.1", 8080, 80), "172.30.0.3");
    // A container on another (isolated) network, through a host address.
    EXPECT_EQ(tcp_to("c3", "c1", "198.51.100.1", 8080, 80), "172.30.0.1");
    EXPECT_EQ(tcp("c3", "c1", "172.30.0.2"), "");  // but still not directly

    // Unpublished: another host port, and direct routing to any container port from wan.
    run("ip -n wan route add 172.30.0.0/24 via 198.51.100.1");
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8081, 80), "");
    EXPECT_EQ(tcp_to("wan", "c1", "172.30.0.2", 80, 80), "");
    EXPECT_EQ(tcp("wan", "c1", "172.30.0.2"), "");

    auto shown = fw_->show();
    ASSERT_TRUE(shown.ok());
    EXPECT_NE(shown->find("# kernel: matches"), std::string::npos) << *shown;
    EXPECT_NE(shown->find("tcp . 8080 : 172.30.0.2 . 80"), std::string::npos);
    // The common case is a plain hash map (no interval flag): constant-time lookup.
    EXPECT_FALSE(set(nft_json(), "published").contains("flags")) << set(nft_json(), "published");
    EXPECT_EQ(set(nft_json(), "published_ranges")["flags"], nlohmann::json::array({"interval"}));

    auto r = fw_->remove_ports({pf(L4::Tcp, nullptr, 8080, 8080, "172.30.0.2", 80)});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(published().is_null());
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8080, 80), "");
    // Removing again: best effort, the kernel's refusal is reported and names the element.
    r = fw_->remove_ports({pf(L4::Tcp, nullptr, 8080, 8080, "172.30.0.2", 80)});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("published { tcp . 8080 : 172.30.0.2 . 80 }"),
              std::string::npos)
        << r.error().message();
}

// hairpin_self is counted per container address: two mappings to c1 share one element, which
// stays until the last of them goes.
TEST_F(PublishedPorts, HairpinToItselfLastsAsLongAsAnyMappingOfTheContainer) {
    auto a = pf(L4::Tcp, nullptr, 8080, 8080, "172.30.0.2", 80);
    auto b = pf(L4::Tcp, nullptr, 8081, 8081, "172.30.0.2", 81);
    add({a, b});
    add({a});  // the same mapping again changes nothing
    EXPECT_EQ(set(nft_json(), "hairpin_self")["elem"].size(), 1u)
        << set(nft_json(), "hairpin_self");
    ASSERT_TRUE(fw_->remove_ports({a}).ok());
    EXPECT_EQ(set(nft_json(), "hairpin_self")["elem"].size(), 1u);
    EXPECT_EQ(tcp_to("c1", "c1", "198.51.100.1", 8081, 81), "172.30.0.1");
    EXPECT_EQ(tcp_to("c2", "c1", "198.51.100.1", 8081, 81), "172.30.0.3");
    // Remapped to c2: c1's element goes, c2's comes, in the same transaction.
    run("ip link set vc2 type bridge_slave hairpin on");  // c2 reaching itself needs it too
    add({pf(L4::Tcp, nullptr, 8081, 8081, "172.30.0.3", 81)});
    EXPECT_EQ(tcp_to("c2", "c2", "198.51.100.1", 8081, 81), "172.30.0.1");
    EXPECT_EQ(tcp_to("c1", "c2", "198.51.100.1", 8081, 81), "172.30.0.2");
    ASSERT_TRUE(fw_->remove_ports({pf(L4::Tcp, nullptr, 8081, 8081, "172.30.0.3", 81)}).ok());
    EXPECT_TRUE(set(nft_json(), "hairpin_self")["elem"].is_null());
    EXPECT_NE(fw_->show()->find("# kernel: matches"), std::string::npos);
}

// Without br_netfilter the neighbour's reply is switched past netfilter and never un-DNAT'd:
// the backend sees bridge-nf-call-iptables=0 and masquerades every hairpin connection.
TEST_F(PublishedPorts, HairpinWithoutBrNetfilterFallsBackToMasquerade) {
    write_file("/proc/sys/net/bridge/bridge-nf-call-iptables", "0");
    add({pf(L4::Tcp, nullptr, 8080, 8080, "172.30.0.2", 80)});
    auto shown = fw_->show();
    EXPECT_NE(shown->find("# kernel: differs: set unbridged has 0 elements, not 1"),
              std::string::npos)
        << *shown;
    ASSERT_TRUE(fw_->sync({net("a", "br-a", "172.30.0.0/24"), net("b", "br-b", "172.31.0.0/24")},
                          {pf(L4::Tcp, nullptr, 8080, 8080, "172.30.0.2", 80)})
                    .ok());
    EXPECT_NE(fw_->show()->find("# kernel: matches"), std::string::npos);
    EXPECT_EQ(set(nft_json(), "unbridged")["elem"], nlohmann::json::array({"ipv4"}));
    EXPECT_EQ(tcp_to("c2", "c1", "198.51.100.1", 8080, 80), "172.30.0.1");
    EXPECT_EQ(tcp_to("c1", "c1", "198.51.100.1", 8080, 80), "172.30.0.1");
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8080, 80), "198.51.100.2");  // not hairpin
    // The fallback is what makes it work: without that rule the neighbour cannot connect.
    const auto j = nft_json();  // kept: a range-for over nft_json()["..."] would dangle
    int64_t handle = -1;
    for (const auto& o : j["nftables"])
        if (o.contains("rule") &&
            o["rule"].value("comment", "") == "cnetd: hairpin without br_netfilter")
            handle = o["rule"]["handle"];
    ASSERT_GE(handle, 0);
    run(fmt::format("nft delete rule inet {} nat_postrouting handle {}", kTable, handle));
    EXPECT_EQ(tcp_to("c2", "c1", "198.51.100.1", 8080, 80), "");
    // br_netfilter back on, a rebuild: no element, the neighbour keeps its address again.
    write_file("/proc/sys/net/bridge/bridge-nf-call-iptables", "1");
    ASSERT_TRUE(fw_->sync({net("a", "br-a", "172.30.0.0/24"), net("b", "br-b", "172.31.0.0/24")},
                          {pf(L4::Tcp, nullptr, 8080, 8080, "172.30.0.2", 80)})
                    .ok());
    EXPECT_TRUE(set(nft_json(), "unbridged")["elem"].is_null());
    EXPECT_EQ(tcp_to("c2", "c1", "198.51.100.1", 8080, 80), "172.30.0.3");
}

TEST_F(PublishedPorts, LoopbackBindingIsNeverReachableFromOutside) {
    add({pf(L4::Tcp, "127.0.0.1", 8080, 8080, "172.30.0.2", 80)});
    EXPECT_EQ(tcp_to("", "c1", "127.0.0.1", 8080, 80), "172.30.0.1");
    EXPECT_EQ(tcp_to("", "c1", "198.51.100.1", 8080, 80), "");  // only on 127.0.0.1
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8080, 80), "");

    // wan crafts a route: 127.0.0.1 via the host (moby 45610 / CVE-2025-54388). Its own local
    // table must come after our rule for the packet to leave at all, and it must accept answers
    // from 127.0.0.1 on eth0 (route_localnet there, the attacker's own machine).
    run("ip -n wan rule add pref 10 to 127.0.0.1 lookup 100");
    run("ip netns exec wan sh -c 'echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet'");
    run("ip -n wan route add 127.0.0.1/32 via 198.51.100.1 dev eth0 table 100");
    run("ip -n wan rule add pref 100 lookup local && ip -n wan rule del pref 0");
    EXPECT_EQ(tcp_to("wan", "c1", "127.0.0.1", 8080, 80), "");

    // The attack is real: without our raw rule the packet is DNAT'd to the container.
    auto j = nft_json();
    int64_t handle = -1;
    for (const auto& o : j["nftables"])
        if (o.contains("rule") && o["rule"].value("comment", "") == "cnetd: loopback only from lo")
            handle = o["rule"]["handle"];
    ASSERT_GE(handle, 0);
    run(fmt::format("nft delete rule inet {} raw_prerouting handle {}", kTable, handle));
    EXPECT_EQ(tcp_to("wan", "c1", "127.0.0.1", 8080, 80), "198.51.100.2");
    // ...and drift repair restores it completely (the CVE was a reload that lost it).
    EXPECT_TRUE(fw_->handle_events().value());
    EXPECT_EQ(tcp_to("wan", "c1", "127.0.0.1", 8080, 80), "");
    EXPECT_EQ(published("published_ranges").size(), 1u);
    EXPECT_EQ(tcp_to("", "c1", "127.0.0.1", 8080, 80), "172.30.0.1");
}

TEST_F(PublishedPorts, SpecificHostAddressAnswersOnlyThere) {
    run("ip addr add 198.51.100.9/24 dev wan0");
    add({pf(L4::Tcp, "198.51.100.9", 9090, 9090, "172.30.0.2", 90)});
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.9", 9090, 90), "198.51.100.2");
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 9090, 90), "");
    EXPECT_NE(tcp_to("", "c1", "198.51.100.9", 9090, 90), "");  // the host itself
    EXPECT_EQ(tcp_to("", "c1", "127.0.0.1", 9090, 90), "");
    // 0.0.0.0 on an overlapping port range conflicts (Docker's rule; the kernel's pipapo set
    // would accept the overlap and pick one): refused, nothing changes.
    auto r = fw_->add_ports({pf(L4::Tcp, nullptr, 9000, 9099, "172.30.0.3", 90)});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
    EXPECT_NE(r.error().message().find("conflicts with tcp 198.51.100.9:9090"), std::string::npos)
        << r.error().message();
    EXPECT_EQ(published("published_ranges").size(), 1u);
    EXPECT_TRUE(published().is_null());
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.9", 9090, 90), "198.51.100.2");
}

TEST_F(PublishedPorts, RangeIsOneElementAndMapsOneToOne) {
    add({pf(L4::Tcp, nullptr, 8000, 8002, "172.30.0.2", 80)});
    ASSERT_EQ(published("published_ranges").size(), 1u);
    // Each host port reaches exactly its own container port (a listener only there).
    for (uint16_t i = 0; i < 3; ++i) {
        EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8000 + i, 80 + i), "198.51.100.2") << i;
        EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8000 + i, 80 + (i + 1) % 3), "") << i;
    }
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8003, 83), "");
    // A range whose host ports are below its container ports, from the host via 127.0.0.1.
    add({pf(L4::Tcp, nullptr, 2000, 2009, "172.30.0.3", 3000)});
    EXPECT_EQ(tcp_to("", "c2", "127.0.0.1", 2007, 3007), "172.30.0.1");
    EXPECT_EQ(published("published_ranges").size(), 2u);
}

// A batch (a container's UDP ports) is flushed with ONE conntrack dump: every mapping of the
// batch moves at once, and entries of mappings outside the batch are left alone.
TEST_F(PublishedPorts, UdpBatchRemapFlushesEveryPortOfTheBatchAndNothingElse) {
    std::vector<PortForward> to_a, to_b;
    std::vector<int> a, b;
    for (uint16_t i = 0; i < 3; ++i) {
        to_a.push_back(pf(L4::Udp, nullptr, 6000 + i, 6000 + i, "172.30.0.2", 60 + i));
        to_b.push_back(pf(L4::Udp, nullptr, 6000 + i, 6000 + i, "172.30.0.3", 60 + i));
        a.push_back(udp_bound("c1", 60 + i));
        b.push_back(udp_bound("c2", 60 + i));
    }
    int cli = socket_in("wan", SOCK_DGRAM);
    auto send = [&](uint16_t i) {
        sockaddr_in dst = addr("198.51.100.1", 6000 + i);
        ASSERT_EQ(sendto(cli, "x", 1, 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst), 1);
    };
    add(to_a);
    for (uint16_t i = 0; i < 3; ++i) {
        send(i);
        EXPECT_TRUE(udp_got(a[i])) << i;
    }
    // Port 6002 is moved to B behind the backend's back: its flow stays on A as long as its
    // conntrack entry lives (the control of the previous test).
    {
        auto sock = nft::Socket::open();
        ASSERT_TRUE(sock.ok());
        nft::Batch swap = build_ports(kTable, {to_a[2]}, false);
        swap.append(build_ports(kTable, {to_b[2]}, true));
        ASSERT_TRUE(sock->commit(swap).ok());
        fw_->handle_events().value();
    }
    // Ports 6000 and 6001 move to B in one call: both flows follow at once.
    ASSERT_TRUE(fw_->add_ports({to_b[0], to_b[1]}).ok());
    for (uint16_t i = 0; i < 2; ++i) {
        send(i);
        EXPECT_TRUE(udp_got(b[i])) << i;
        EXPECT_FALSE(udp_got(a[i], 200)) << i;
    }
    // 6002 was not in the batch: its entry survived, so its flow is still on A.
    send(2);
    EXPECT_TRUE(udp_got(a[2])) << "the batch deleted an entry outside it";
    EXPECT_FALSE(udp_got(b[2], 200));
    close(cli);
    for (int fd : a) close(fd);
    for (int fd : b) close(fd);
}

TEST_F(PublishedPorts, UdpRemapDeletesStaleConntrackEntries) {
    const auto to_a = pf(L4::Udp, nullptr, 5353, 5353, "172.30.0.2", 53);
    const auto to_b = pf(L4::Udp, nullptr, 5353, 5353, "172.30.0.3", 53);
    int a = udp_bound("c1", 53), b = udp_bound("c2", 53);
    int cli = socket_in("wan", SOCK_DGRAM);
    sockaddr_in dst = addr("198.51.100.1", 5353);
    auto send = [&] {
        ASSERT_EQ(sendto(cli, "x", 1, 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst), 1);
    };
    add({to_a});
    send();
    EXPECT_TRUE(udp_got(a));

    // The control: changing the element behind the backend's back leaves the flow on A.
    {
        auto sock = nft::Socket::open();
        ASSERT_TRUE(sock.ok());
        nft::Batch swap = build_ports(kTable, {to_a}, false);
        swap.append(build_ports(kTable, {to_b}, true));
        ASSERT_TRUE(sock->commit(swap).ok());
        send();
        EXPECT_TRUE(udp_got(a)) << "the stale conntrack entry should still lead to A";
        EXPECT_FALSE(udp_got(b, 200));
        nft::Batch back = build_ports(kTable, {to_b}, false);
        back.append(build_ports(kTable, {to_a}, true));
        ASSERT_TRUE(sock->commit(back).ok());
        fw_->handle_events().value();  // our own out-of-band edit looks like drift: absorb it
    }

    // remove + add: the next datagram from the same client socket reaches B.
    ASSERT_TRUE(fw_->remove_ports({to_a}).ok());
    add({to_b});
    send();
    EXPECT_TRUE(udp_got(b));
    EXPECT_FALSE(udp_got(a, 200));
    // Replacing in place (same key, other target) flushes too: back to A at once.
    add({to_a});
    EXPECT_EQ(published().size(), 1u);
    send();
    EXPECT_TRUE(udp_got(a));
    EXPECT_FALSE(udp_got(b, 200));
    close(cli);
    close(a);
    close(b);
}

TEST_F(PublishedPorts, TenThousandMappingsKeepRulesAndAddCost) {
    using Clock = std::chrono::steady_clock;
    std::vector<PortForward> all;
    auto one_add = [&](uint16_t port) {
        all.push_back(pf(L4::Tcp, nullptr, port, port, "172.30.0.2", 80));
        auto t0 = Clock::now();
        auto r = fw_->add_ports({all.back()});
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
        EXPECT_TRUE(r.ok()) << r.error().message();
        return us.count();
    };
    auto first = one_add(40000);  // with 0 present
    auto at1 = one_add(40001);    // with 1 present
    std::vector<PortForward> batch;
    for (uint16_t p = 10000; p < 10098; ++p)
        batch.push_back(pf(L4::Tcp, nullptr, p, p, "172.30.0.2", 80));
    add(batch);
    all.insert(all.end(), batch.begin(), batch.end());
    auto at100 = one_add(40002);  // with 100 present
    for (int k = 0; k < 10; ++k) {
        batch.clear();
        for (int i = 0; i < 990; ++i) {
            const uint16_t p = static_cast<uint16_t>(11000 + k * 990 + i);
            batch.push_back(pf(L4::Udp, nullptr, p, p, "172.30.0.3", 53));
        }
        add(batch);
        all.insert(all.end(), batch.begin(), batch.end());
    }
    const size_t present = published().size();
    auto at10k = one_add(40003);
    EXPECT_EQ(present, 10001u);
    auto j = nft_json();
    EXPECT_EQ(count(j, "rule"), kRules);
    EXPECT_EQ(count(j, "chain"), 5u);
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 40003, 80), "198.51.100.2");
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 10050, 80), "198.51.100.2");
    // Our own 10,000-element transactions are not drift (even if notifications overflowed).
    EXPECT_FALSE(fw_->handle_events().value());
    EXPECT_EQ(fw_->repairs(), 0u);
    // The restart path: one transaction rebuilding the table with every network and port.
    auto t0 = Clock::now();
    auto r = fw_->sync({net("a", "br-a", "172.30.0.0/24"), net("b", "br-b", "172.31.0.0/24")}, all);
    auto sync_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(published().size(), all.size());
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 40001, 80), "198.51.100.2");
    EXPECT_NE(fw_->show()->find("# kernel: matches"), std::string::npos);
    EXPECT_FALSE(fw_->handle_events().value());
    printf(
        "add_ports(1 mapping) with 0 / 1 / 100 / %zu present: %lld / %lld / %lld / %lld us; "
        "sync() of all %zu: %lld ms\n",
        present, static_cast<long long>(first), static_cast<long long>(at1),
        static_cast<long long>(at100), static_cast<long long>(at10k), all.size(),
        static_cast<long long>(sync_ms));
}

// ---- IPv6 and gateway modes --------------------------------------------------------------

NetworkRules net6(std::string id, std::string br, const char* cidr, const char* cidr6) {
    NetworkRules n = net(std::move(id), std::move(br), cidr);
    n.subnet6 = Ipv6Cidr::parse(cidr6).value();
    return n;
}

// wan (2001:db8:1::2) -- host -- br-a (fd00:a::/64): c1 ::2, c2 ::3; br-b (fd00:b::/64): c3 ::2
class DualStack : public FirewallKernel {
protected:
    void SetUp() override {
        FirewallKernel::SetUp();
        if (HasFatalFailure()) return;
        topology();
        topology6();
        add_bridge("br-a", "172.30.0.1/24");
        add_bridge6("br-a", "fd00:a::1/64");
        add_container("c1", "br-a", "172.30.0.2/24", "172.30.0.1");
        add_container6("c1", "fd00:a::2/64", "fd00:a::1");
        add_container("c2", "br-a", "172.30.0.3/24", "172.30.0.1");
        add_container6("c2", "fd00:a::3/64", "fd00:a::1");
        add_bridge("br-b", "172.31.0.1/24");
        add_bridge6("br-b", "fd00:b::1/64");
        add_container("c3", "br-b", "172.31.0.2/24", "172.31.0.1");
        add_container6("c3", "fd00:b::2/64", "fd00:b::1");
        run("ip link set vc1 type bridge_slave hairpin on");
        // wan can route to the container subnets (so "no NAT" and "direct routing" are visible).
        run("ip -n wan route add 172.30.0.0/24 via 198.51.100.1");
        run("ip -n wan -6 route add fd00:a::/64 via 2001:db8:1::1");
        run("ip -n wan -6 route add fd00:b::/64 via 2001:db8:1::1");
        // Warm up neighbour discovery on every path the tests use (a loaded machine can take
        // longer than one connect's 1 s budget for the first packet).
        for (auto [from, to, ip] :
             {std::tuple{"c1", "wan", "2001:db8:1::2"}, std::tuple{"c2", "wan", "2001:db8:1::2"},
              std::tuple{"c3", "wan", "2001:db8:1::2"}, std::tuple{"c1", "c2", "fd00:a::3"},
              std::tuple{"c2", "c1", "fd00:a::2"}})
            for (int i = 0; i < 5 && tcp6(from, to, ip).empty(); ++i) {
            }
        a_ = net6("a", "br-a", "172.30.0.0/24", "fd00:a::/64");
        b_ = net6("b", "br-b", "172.31.0.0/24", "fd00:b::/64");
        ASSERT_TRUE(fw_->ensure_base().ok());
    }
    void apply(const NetworkRules& n) {
        auto r = fw_->add_network(n);
        ASSERT_TRUE(r.ok()) << r.error().message();
    }
    NetworkRules a_, b_;
};

TEST_F(DualStack, Ipv6MasqueradeIsolationIccInternalAndDirectRouting) {
    // Without our table: no NAT, direct routing works, networks reach each other. (The first
    // packets also wait for neighbour discovery: allow a few tries on a loaded machine.)
    auto eventually = [](auto f) {
        std::string r;
        for (int i = 0; i < 5 && r.empty(); ++i) r = f();
        return r;
    };
    EXPECT_EQ(eventually([] { return tcp6("c1", "wan", "2001:db8:1::2"); }), "fd00:a::2");
    EXPECT_EQ(eventually([] { return tcp6("wan", "c1", "fd00:a::2"); }), "2001:db8:1::2");
    EXPECT_EQ(eventually([] { return tcp6("c1", "c3", "fd00:b::2"); }), "fd00:a::2");
    EXPECT_EQ(eventually([] { return tcp6("c1", "c2", "fd00:a::3"); }), "fd00:a::2");

    apply(a_);
    apply(b_);
    auto j = nft_json();
    EXPECT_EQ(count(j, "rule"), kRules);
    EXPECT_EQ(set(j, "nets6")["elem"].size(), 2u);
    EXPECT_EQ(set(j, "masq_nets6")["elem"].size(), 2u);

    EXPECT_EQ(tcp6("c1", "wan", "2001:db8:1::2"), "2001:db8:1::1");  // masqueraded to the host
    EXPECT_EQ(tcp6("c3", "wan", "2001:db8:1::2"), "2001:db8:1::1");
    EXPECT_EQ(tcp("c1", "wan", "198.51.100.2"), "198.51.100.1");  // IPv4 as before
    EXPECT_EQ(tcp6("wan", "c1", "fd00:a::2"), "");                // no direct routing
    EXPECT_EQ(tcp6("c1", "c3", "fd00:b::2"), "");                 // isolation, both ways
    EXPECT_EQ(tcp6("c3", "c1", "fd00:a::2"), "");
    EXPECT_EQ(tcp6("c1", "c2", "fd00:a::3"), "fd00:a::2");  // icc on
    EXPECT_EQ(tcp6("", "c1", "fd00:a::2"), "fd00:a::1");    // the host reaches them

    // ICC off: bridged IPv6 must pass the forward hook (bridge-nf-call-ip6tables).
    write_file("/proc/sys/net/bridge/bridge-nf-call-ip6tables", "0");
    a_.icc = false;
    apply(a_);
    EXPECT_EQ(read_file("/proc/sys/net/bridge/bridge-nf-call-ip6tables"), "1\n");
    EXPECT_EQ(tcp6("c1", "c2", "fd00:a::3"), "");
    EXPECT_EQ(tcp("c1", "c2", "172.30.0.3"), "");
    EXPECT_EQ(tcp6("c1", "wan", "2001:db8:1::2"), "2001:db8:1::1");

    // SNAT (host_ipv4) is IPv4 only: IPv6 keeps masquerading.
    run("ip addr add 198.51.100.9/24 dev wan0");
    b_.snat_source = Ipv4::parse("198.51.100.9").value();
    apply(b_);
    EXPECT_EQ(tcp("c3", "wan", "198.51.100.2"), "198.51.100.9");
    EXPECT_EQ(tcp6("c3", "wan", "2001:db8:1::2"), "2001:db8:1::1");

    b_.internal = true;
    apply(b_);
    EXPECT_EQ(tcp6("c3", "wan", "2001:db8:1::2"), "");  // internal: no way out
    EXPECT_EQ(tcp6("wan", "c3", "fd00:b::2"), "");

    ASSERT_TRUE(fw_->remove_network(b_).ok());
    EXPECT_EQ(tcp6("c3", "wan", "2001:db8:1::2"), "fd00:b::2");  // no longer ours: no NAT
    EXPECT_NE(fw_->show()->find("# kernel: matches"), std::string::npos);
}

TEST_F(DualStack, GatewayModeNatUnprotected) {
    a_.mode4 = a_.mode6 = GatewayMode::NatUnprotected;
    apply(a_);
    apply(b_);
    EXPECT_EQ(tcp("c1", "wan", "198.51.100.2"), "198.51.100.1");  // still masqueraded
    EXPECT_EQ(tcp6("c1", "wan", "2001:db8:1::2"), "2001:db8:1::1");
    EXPECT_EQ(tcp("wan", "c1", "172.30.0.2"), "198.51.100.2");  // direct routing allowed
    EXPECT_EQ(tcp6("wan", "c1", "fd00:a::2"), "2001:db8:1::2");
    EXPECT_EQ(tcp6("c3", "c1", "fd00:a::2"), "");   // other networks still not
    EXPECT_EQ(tcp6("wan", "c3", "fd00:b::2"), "");  // and b is still protected
    // Per family: IPv6 back to nat.
    a_.mode6 = GatewayMode::Nat;
    apply(a_);
    EXPECT_EQ(tcp6("wan", "c1", "fd00:a::2"), "");
    EXPECT_EQ(tcp("wan", "c1", "172.30.0.2"), "198.51.100.2");
}

TEST_F(DualStack, GatewayModeRoutedOpensOnlyPublishedPorts) {
    a_.mode6 = GatewayMode::Routed;
    apply(a_);
    apply(b_);
    EXPECT_EQ(tcp6("c1", "wan", "2001:db8:1::2"), "fd00:a::2");   // no masquerade
    EXPECT_EQ(tcp("c1", "wan", "198.51.100.2"), "198.51.100.1");  // IPv4 stays nat
    EXPECT_EQ(tcp6_to("wan", "c1", "fd00:a::2", 80, 80), "");     // unpublished: dropped
    PortForward p;
    p.family = Family::V6;
    p.proto = L4::Tcp;
    p.host_first = p.host_last = 8080;
    p.container_ip6 = Ipv6::parse("fd00:a::2").value();
    p.container_first = 80;
    p.bridge = "br-a";
    ASSERT_TRUE(fw_->add_ports({p}).ok());
    EXPECT_EQ(set(nft_json(), "routed_ports6")["elem"].size(), 1u);
    EXPECT_EQ(tcp6_to("wan", "c1", "fd00:a::2", 80, 80), "2001:db8:1::2");  // published: routed
    EXPECT_EQ(tcp6_to("wan", "c1", "fd00:a::2", 81, 81), "");               // other port: no
    EXPECT_EQ(tcp6_to("wan", "c2", "fd00:a::3", 80, 80), "");               // other container: no
    EXPECT_EQ(tcp6_to("c3", "c1", "fd00:a::2", 80, 80), "");                // other network: no
    EXPECT_EQ(tcp6_to("wan", "c1", "2001:db8:1::1", 8080, 80), "2001:db8:1::2");  // DNAT too
    // Unpublishing closes it again.
    ASSERT_TRUE(fw_->remove_ports({p}).ok());
    EXPECT_EQ(tcp6_to("wan", "c1", "fd00:a::2", 80, 80), "");
    // The network leaving routed mode with a mapping present: the element goes with it.
    ASSERT_TRUE(fw_->add_ports({p}).ok());
    a_.mode6 = GatewayMode::Nat;
    apply(a_);
    EXPECT_TRUE(set(nft_json(), "routed_ports6")["elem"].is_null());
    EXPECT_EQ(tcp6_to("wan", "c1", "fd00:a::2", 80, 80), "");
    EXPECT_EQ(tcp6_to("wan", "c1", "2001:db8:1::1", 8080, 80), "2001:db8:1::2");
    EXPECT_NE(fw_->show()->find("# kernel: matches"), std::string::npos);
}

TEST_F(DualStack, GatewayModeIsolated) {
    a_.mode4 = a_.mode6 = GatewayMode::Isolated;
    apply(a_);
    apply(b_);
    EXPECT_EQ(tcp("c1", "wan", "198.51.100.2"), "");
    EXPECT_EQ(tcp6("c1", "wan", "2001:db8:1::2"), "");
    EXPECT_EQ(tcp("wan", "c1", "172.30.0.2"), "");
    EXPECT_EQ(tcp6("wan", "c1", "fd00:a::2"), "");
    EXPECT_EQ(tcp6("c3", "c1", "fd00:a::2"), "");
    EXPECT_EQ(tcp6("c1", "c3", "fd00:b::2"), "");
    EXPECT_EQ(tcp6("", "c1", "fd00:a::2"), "fd00:a::1");  // the host itself: yes
    EXPECT_EQ(tcp("", "c1", "172.30.0.2"), "172.30.0.1");
    EXPECT_EQ(tcp6("c1", "c2", "fd00:a::3"), "fd00:a::2");           // inside the bridge: yes
    EXPECT_EQ(tcp6("c3", "wan", "2001:db8:1::2"), "2001:db8:1::1");  // b unaffected
}

class PublishedPorts6 : public DualStack {
protected:
    void SetUp() override {
        DualStack::SetUp();
        if (HasFatalFailure()) return;
        apply(a_);
        apply(b_);
    }
    static PortForward p6(L4 proto, const char* host, uint16_t h, const char* c, uint16_t cp,
                          uint16_t h_last = 0) {
        PortForward p;
        p.family = Family::V6;
        p.proto = proto;
        if (host) p.host_ip6 = Ipv6::parse(host).value();
        p.host_first = h;
        p.host_last = h_last ? h_last : h;
        p.container_ip6 = Ipv6::parse(c).value();
        p.container_first = cp;
        p.bridge = "br-a";
        return p;
    }
};

TEST_F(PublishedPorts6, AnyAddressFromEverywhere) {
    EXPECT_EQ(tcp6_to("wan", "c1", "2001:db8:1::1", 8080, 80), "");
    ASSERT_TRUE(fw_->add_ports({p6(L4::Tcp, nullptr, 8080, "fd00:a::2", 80)}).ok());
    EXPECT_EQ(set(nft_json(), "published6")["elem"].size(), 1u);
    EXPECT_FALSE(set(nft_json(), "published6").contains("flags"));  // a hash map
    EXPECT_EQ(count(nft_json(), "rule"), kRules);
    EXPECT_EQ(tcp6_to("wan", "c1", "2001:db8:1::1", 8080, 80), "2001:db8:1::2");  // from outside
    EXPECT_EQ(tcp6_to("", "c1", "2001:db8:1::1", 8080, 80), "2001:db8:1::1");     // the host
    EXPECT_EQ(tcp6_to("c1", "c1", "2001:db8:1::1", 8080, 80), "fd00:a::1");       // hairpin: itself
    EXPECT_EQ(tcp6_to("c2", "c1", "2001:db8:1::1", 8080, 80), "fd00:a::3");       // a neighbour
    EXPECT_EQ(tcp6_to("c2", "c1", "fd00:a::1", 8080, 80), "fd00:a::3");
    EXPECT_EQ(tcp6_to("c3", "c1", "2001:db8:1::1", 8080, 80), "fd00:a::1");  // other network
    EXPECT_EQ(tcp6_to("wan", "c1", "fd00:a::2", 80, 80), "");                // but not directly
    // The host's ::1 is not DNAT'd (the kernel could not deliver the answers, see below).
    EXPECT_EQ(tcp6_to("", "c1", "::1", 8080, 80), "");
    // IPv4 mappings on the same port are separate (Docker binds both families).
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8080, 80), "");
    EXPECT_NE(fw_->show()->find("tcp . 8080 : fd00:a::2 . 80"), std::string::npos);
    EXPECT_NE(fw_->show()->find("# kernel: matches"), std::string::npos);
    ASSERT_TRUE(fw_->remove_ports({p6(L4::Tcp, nullptr, 8080, "fd00:a::2", 80)}).ok());
    EXPECT_EQ(tcp6_to("wan", "c1", "2001:db8:1::1", 8080, 80), "");
}

TEST_F(PublishedPorts6, SpecificAddressAndRange) {
    run("ip addr add 2001:db8:1::9/64 dev wan0 nodad");
    ASSERT_TRUE(fw_->add_ports({p6(L4::Tcp, "2001:db8:1::9", 9090, "fd00:a::2", 90),
                                p6(L4::Tcp, nullptr, 8000, "fd00:a::3", 80, 8002)})
                    .ok());
    EXPECT_EQ(set(nft_json(), "published6_ranges")["elem"].size(), 2u);
    EXPECT_EQ(tcp6_to("wan", "c1", "2001:db8:1::9", 9090, 90), "2001:db8:1::2");
    EXPECT_EQ(tcp6_to("wan", "c1", "2001:db8:1::1", 9090, 90), "");  // only on that address
    EXPECT_NE(tcp6_to("", "c1", "2001:db8:1::9", 9090, 90), "");     // the host itself
    for (uint16_t i = 0; i < 3; ++i) {
        EXPECT_EQ(tcp6_to("wan", "c2", "2001:db8:1::1", 8000 + i, 80 + i), "2001:db8:1::2") << i;
        EXPECT_EQ(tcp6_to("wan", "c2", "2001:db8:1::1", 8000 + i, 80 + (i + 1) % 3), "") << i;
    }
    // [::] on an overlapping port conflicts; refused, nothing changes.
    auto r = fw_->add_ports({p6(L4::Tcp, nullptr, 9090, "fd00:a::3", 90)});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
    EXPECT_NE(r.error().message().find("conflicts with tcp [2001:db8:1::9]:9090"),
              std::string::npos)
        << r.error().message();
    EXPECT_TRUE(set(nft_json(), "published6")["elem"].is_null());
}

// ::1 cannot be served in the kernel. The backend refuses it; the second half shows why with a
// hand-made table doing what a ::1 mapping would need (DNAT in output, masquerade out of the
// bridge): the SYN reaches the container, the answers come back on br-a and are un-NATed to
// destination ::1 in prerouting, and never reach the input hook (strict route lookup for
// loopback destinations: rt6_need_strict(); ::1's route is on lo).
TEST_F(PublishedPorts6, LoopbackIsRefusedAndKernelDropsIt) {
    auto r = fw_->add_ports({p6(L4::Tcp, "::1", 8080, "fd00:a::2", 80)});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(r.error().message().find("host_ip6 ::1 cannot be published in the kernel"),
              std::string::npos)
        << r.error().message();
    EXPECT_TRUE(set(nft_json(), "published6_ranges")["elem"].is_null());

    run("nft add table inet lo6 && "
        "nft add chain inet lo6 out '{ type nat hook output priority -100; }' && "
        "nft add rule inet lo6 out ip6 daddr ::1 tcp dport 8080 counter dnat ip6 to "
        "'[fd00:a::2]:80' && "
        "nft add chain inet lo6 post '{ type nat hook postrouting priority 100; }' && "
        "nft add rule inet lo6 post ip6 saddr ::1 oifname br-a counter masquerade && "
        "nft add chain inet lo6 pre '{ type filter hook prerouting priority 0; }' && "
        "nft add rule inet lo6 pre iifname br-a ip6 daddr ::1 tcp sport 80 counter && "
        "nft add chain inet lo6 in '{ type filter hook input priority 0; }' && "
        "nft add rule inet lo6 in iifname br-a tcp sport 80 counter");
    EXPECT_EQ(tcp6_to("", "c1", "::1", 8080, 80), "");
    auto j = nlohmann::json::parse(run("nft -j list table inet lo6"));
    std::vector<int64_t> packets;
    for (const auto& o : j["nftables"])
        if (o.contains("rule"))
            for (const auto& e : o["rule"]["expr"])
                if (e.contains("counter")) packets.push_back(e["counter"]["packets"]);
    ASSERT_EQ(packets.size(), 4u);
    EXPECT_EQ(packets[0], 1);  // DNAT'd in output
    EXPECT_EQ(packets[1], 1);  // masqueraded out of br-a: the SYN reached the container
    EXPECT_GE(packets[2], 1);  // its SYN-ACKs come back, un-NATed to ::1 ...
    EXPECT_EQ(packets[3], 0);  // ... and are dropped by the kernel before the input hook
    run("nft delete table inet lo6");
}

TEST_F(PublishedPorts6, UdpRemapDeletesStaleConntrackEntries) {
    auto sock6 = [](const std::string& ns, uint16_t bind_port) {
        int s = socket_in(ns, SOCK_DGRAM, AF_INET6);
        if (bind_port) {
            sockaddr_in6 a{};
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(bind_port);
            bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        }
        return s;
    };
    const auto to_a = p6(L4::Udp, nullptr, 5353, "fd00:a::2", 53);
    const auto to_b = p6(L4::Udp, nullptr, 5353, "fd00:a::3", 53);
    int a = sock6("c1", 53), b = sock6("c2", 53), cli = sock6("wan", 0);
    sockaddr_in6 dst{};
    dst.sin6_family = AF_INET6;
    dst.sin6_port = htons(5353);
    inet_pton(AF_INET6, "2001:db8:1::1", &dst.sin6_addr);
    auto send = [&] {
        ASSERT_EQ(sendto(cli, "x", 1, 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst), 1);
    };
    ASSERT_TRUE(fw_->add_ports({to_a}).ok());
    send();
    EXPECT_TRUE(udp_got(a));
    // Replacing in place (same key, other target) deletes the IPv6 flow: the next datagram
    // from the same client socket reaches B.
    ASSERT_TRUE(fw_->add_ports({to_b}).ok());
    send();
    EXPECT_TRUE(udp_got(b));
    EXPECT_FALSE(udp_got(a, 200));
    ASSERT_TRUE(fw_->remove_ports({to_b}).ok());
    ASSERT_TRUE(fw_->add_ports({to_a}).ok());
    send();
    EXPECT_TRUE(udp_got(a));
    EXPECT_FALSE(udp_got(b, 200));
    close(cli);
    close(a);
    close(b);
}

}  // namespace
}  // namespace cnetd::firewall

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (geteuid() != 0) {
        fprintf(stderr, "firewall kernel tests need root (run under unshare); skipping\n");
        return 77;
    }
    return RUN_ALL_TESTS();
}
