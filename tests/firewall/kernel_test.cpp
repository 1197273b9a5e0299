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

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "firewall/firewall.hpp"
#include "firewall/ruleset.hpp"
#include "nft/nft.hpp"

namespace cnetd::firewall {
namespace {

constexpr const char* kTable = "fwtest";
constexpr size_t kRules = 19;  // fixed, whatever the number of networks and ports

std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int rc = pclose(p);
    EXPECT_EQ(rc, 0) << cmd << "\n" << out;
    return out;
}

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

// A socket created inside netns `ns` ("" = the test's own netns); it stays there.
int socket_in(const std::string& ns, int type = SOCK_STREAM) {
    int s = -1;
    std::thread t([&] {
        if (!ns.empty()) {
            int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) return;
            close(fd);
        }
        s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    });
    t.join();
    return s;
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
        ASSERT_EQ(unshare(CLONE_NEWNET | CLONE_NEWNS), 0) << strerror(errno);
        ASSERT_EQ(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
        ASSERT_EQ(mount("tmpfs", "/run", "tmpfs", 0, nullptr), 0);
        run("ip link set lo up");
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
    nlohmann::json published() { return set(nft_json(), "published")["elem"]; }
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
    // Hairpin: the container itself and its neighbour, through the host address and through
    // the gateway address; masqueraded so the answer goes back through the host.
    EXPECT_EQ(tcp_to("c1", "c1", "198.51.100.1", 8080, 80), "172.30.0.1");
    EXPECT_EQ(tcp_to("c2", "c1", "198.51.100.1", 8080, 80), "172.30.0.1");
    EXPECT_EQ(tcp_to("c2", "c1", "172.30.0.1", 8080, 80), "172.30.0.1");
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
    EXPECT_NE(shown->find("0.0.0.0/0 . tcp . 8080 : 172.30.0.2 . 80 . 80"), std::string::npos);

    auto r = fw_->remove_ports({pf(L4::Tcp, nullptr, 8080, 8080, "172.30.0.2", 80)});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(published().is_null());
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8080, 80), "");
    // Removing again: best effort, the kernel's refusal is reported and names the element.
    r = fw_->remove_ports({pf(L4::Tcp, nullptr, 8080, 8080, "172.30.0.2", 80)});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("published { 0.0.0.0/0 . tcp . 8080"), std::string::npos)
        << r.error().message();
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
    EXPECT_EQ(published().size(), 1u);
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
    EXPECT_EQ(published().size(), 1u);
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.9", 9090, 90), "198.51.100.2");
}

TEST_F(PublishedPorts, RangeIsOneElementAndMapsOneToOne) {
    add({pf(L4::Tcp, nullptr, 8000, 8002, "172.30.0.2", 80)});
    ASSERT_EQ(published().size(), 1u);
    // Each host port reaches exactly its own container port (a listener only there).
    for (uint16_t i = 0; i < 3; ++i) {
        EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8000 + i, 80 + i), "198.51.100.2") << i;
        EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8000 + i, 80 + (i + 1) % 3), "") << i;
    }
    EXPECT_EQ(tcp_to("wan", "c1", "198.51.100.1", 8003, 83), "");
    // A range whose host ports are below its container ports, from the host via 127.0.0.1.
    add({pf(L4::Tcp, nullptr, 2000, 2009, "172.30.0.3", 3000)});
    EXPECT_EQ(tcp_to("", "c2", "127.0.0.1", 2007, 3007), "172.30.0.1");
    EXPECT_EQ(published().size(), 2u);
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
