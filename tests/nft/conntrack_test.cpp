// Kernel tests for nft::conntrack_delete (root; each test unshares a fresh network and mount
// namespace and mounts a private tmpfs on /run, so `ip netns` files stay inside the test).
// Real conntrack entries are made by real traffic:
//
//   peer netns (198.51.100.2, 2001:db8::2) --eth0/host0-- [test netns] (198.51.100.1, .10,
//                                                          2001:db8::1)
//
// The entries are observed in /proc/net/nf_conntrack of the test's namespace, independently of
// the code under test.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../firewall/netns_util.hpp"
#include "nft/conntrack.hpp"

namespace cnetd::nft {
namespace {

using testing_netns::run;
using testing_netns::socket_in;

sockaddr_storage addr_of(const std::string& ip, uint16_t port) {
    sockaddr_storage ss{};
    if (ip.find(':') != std::string::npos) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        inet_pton(AF_INET, ip.c_str(), &a->sin_addr);
    }
    return ss;
}
socklen_t len_of(const sockaddr_storage& ss) {
    return ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

// One conntrack entry of the test's namespace, original direction.
struct Entry {
    std::string l3, l4, dst;
    uint16_t dport = 0;
};
std::vector<Entry> entries() {
    std::vector<Entry> out;
    FILE* f = fopen("/proc/net/nf_conntrack", "r");
    if (!f) return out;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char l3[16] = "", l4[16] = "";
        if (sscanf(line, "%15s %*d %15s", l3, l4) != 2) continue;
        Entry e{l3, l4, "", 0};
        const char* d = strstr(line, " dst=");
        const char* p = strstr(line, " dport=");
        if (!d || !p) continue;
        e.dst.assign(d + 5, strcspn(d + 5, " "));
        // IPv6 addresses are listed uncompressed (%pI6): compare in inet_ntop's form.
        in6_addr a6{};
        char text[INET6_ADDRSTRLEN];
        if (inet_pton(AF_INET6, e.dst.c_str(), &a6) == 1)
            e.dst = inet_ntop(AF_INET6, &a6, text, sizeof text);
        e.dport = static_cast<uint16_t>(atoi(p + 7));
        out.push_back(e);
    }
    fclose(f);
    return out;
}
size_t count(const std::string& l4, const std::string& dst, uint16_t dport) {
    size_t n = 0;
    for (const auto& e : entries()) n += e.l4 == l4 && e.dst == dst && e.dport == dport;
    return n;
}

class Conntrack : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(testing_netns::enter_sandbox());
        run("ip netns add peer");
        run("ip link add host0 type veth peer name eth0 netns peer");
        run("ip addr add 198.51.100.1/24 dev host0 && ip addr add 198.51.100.10/24 dev host0");
        run("ip addr add 2001:db8::1/64 dev host0 nodad && ip link set host0 up");
        run("ip -n peer addr add 198.51.100.2/24 dev eth0 && ip -n peer link set eth0 up");
        run("ip -n peer addr add 2001:db8::2/64 dev eth0 nodad && ip -n peer link set lo up");
        // Conntrack tracks a namespace's packets only once something there needs it: a rule
        // with a ct expression (the firewall's `ct state` rules do the same in production).
        run("nft add table inet track");
        run("nft add chain inet track in '{ type filter hook input priority 0; }'");
        run("nft add rule inet track in ct state new counter");
    }
    void TearDown() override {
        for (int s : socks_) close(s);
        if (access("/run/netns/peer", F_OK) == 0) run("ip netns del peer");
    }

    // A UDP datagram from the peer (a fresh socket: a fresh source port, so a new entry) to
    // ip:port, where a socket of the test's namespace receives it.
    void udp(const std::string& ip, uint16_t port) {
        const sockaddr_storage dst = addr_of(ip, port);
        const int fam = dst.ss_family;
        int srv = socket_in("", SOCK_DGRAM, fam);
        int one = 1;
        setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        const sockaddr_storage any = addr_of(fam == AF_INET6 ? "::" : "0.0.0.0", port);
        bind(srv, reinterpret_cast<const sockaddr*>(&any), len_of(any));  // may already be bound
        int cli = socket_in("peer", SOCK_DGRAM, fam);
        ASSERT_GE(cli, 0);
        ASSERT_EQ(sendto(cli, "x", 1, 0, reinterpret_cast<const sockaddr*>(&dst), len_of(dst)), 1)
            << ip << " " << port << ": " << strerror(errno);
        socks_.push_back(srv);
        socks_.push_back(cli);
    }
    // A TCP connection from the peer to ip:port (accepted: an established entry).
    void tcp(const std::string& ip, uint16_t port) {
        const sockaddr_storage dst = addr_of(ip, port);
        int srv = socket_in("", SOCK_STREAM, dst.ss_family);
        const sockaddr_storage any = addr_of("0.0.0.0", port);
        ASSERT_EQ(bind(srv, reinterpret_cast<const sockaddr*>(&any), len_of(any)), 0);
        ASSERT_EQ(listen(srv, 4), 0);
        int cli = socket_in("peer", SOCK_STREAM, dst.ss_family);
        ASSERT_EQ(connect(cli, reinterpret_cast<const sockaddr*>(&dst), len_of(dst)), 0);
        socks_.push_back(srv);
        socks_.push_back(cli);
    }
    // Waits (bounded) until the kernel lists `n` entries of l4/dst/dport.
    void await(const std::string& l4, const std::string& dst, uint16_t dport, size_t n) {
        for (int i = 0; i < 100 && count(l4, dst, dport) != n; ++i) usleep(10'000);
        ASSERT_EQ(count(l4, dst, dport), n) << l4 << " " << dst << " " << dport;
    }

    std::vector<int> socks_;
};

ConntrackMatch udp_match(uint16_t first, uint16_t last) {
    ConntrackMatch m;
    m.port_first = first;
    m.port_last = last;
    return m;
}

TEST_F(Conntrack, DeletesExactlyTheEntriesOfThePortRange) {
    for (uint16_t port : {5000, 5001, 5002, 6000}) udp("198.51.100.1", port);
    udp("198.51.100.1", 5000);  // a second flow to the same port: two entries
    await("udp", "198.51.100.1", 5000, 2);
    await("udp", "198.51.100.1", 6000, 1);
    auto r = conntrack_delete({udp_match(5000, 5001)});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, 3u);
    EXPECT_EQ(count("udp", "198.51.100.1", 5000), 0u);
    EXPECT_EQ(count("udp", "198.51.100.1", 5001), 0u);
    EXPECT_EQ(count("udp", "198.51.100.1", 5002), 1u);
    EXPECT_EQ(count("udp", "198.51.100.1", 6000), 1u);
    // Nothing left to match: 0, not an error.
    r = conntrack_delete({udp_match(5000, 5001)});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, 0u);
}

TEST_F(Conntrack, DestinationAddressAndProtocolNarrowTheMatch) {
    udp("198.51.100.1", 7000);
    udp("198.51.100.10", 7000);
    tcp("198.51.100.10", 7000);
    await("udp", "198.51.100.1", 7000, 1);
    await("udp", "198.51.100.10", 7000, 1);
    await("tcp", "198.51.100.10", 7000, 1);
    ConntrackMatch m = udp_match(7000, 7000);
    m.dst = Ipv4::parse("198.51.100.10").value();
    EXPECT_EQ(m.str(), "udp dport 7000 dst 198.51.100.10");
    auto r = conntrack_delete({m});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, 1u);
    EXPECT_EQ(count("udp", "198.51.100.10", 7000), 0u);
    EXPECT_EQ(count("udp", "198.51.100.1", 7000), 1u);   // another address
    EXPECT_EQ(count("tcp", "198.51.100.10", 7000), 1u);  // another protocol
}

TEST_F(Conntrack, FamiliesAreSeparateAndOneCallTakesManyMatches) {
    udp("198.51.100.1", 5353);
    udp("2001:db8::1", 5353);
    udp("2001:db8::1", 5354);
    udp("198.51.100.1", 9000);
    await("udp", "198.51.100.1", 5353, 1);
    await("udp", "2001:db8::1", 5353, 1);
    await("udp", "2001:db8::1", 5354, 1);
    ConntrackMatch six = udp_match(5353, 5353);
    six.family = ConntrackMatch::V6;
    six.dst6 = Ipv6::parse("2001:db8::1").value();
    EXPECT_EQ(six.str(), "ipv6 udp dport 5353 dst 2001:db8::1");
    auto r = conntrack_delete({six});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, 1u);
    EXPECT_EQ(count("udp", "2001:db8::1", 5353), 0u);
    EXPECT_EQ(count("udp", "198.51.100.1", 5353), 1u);  // the IPv4 entry of the same port stays
    EXPECT_EQ(count("udp", "2001:db8::1", 5354), 1u);
    // One call, both families, two ranges.
    ConntrackMatch six_any = udp_match(5354, 5354);
    six_any.family = ConntrackMatch::V6;
    r = conntrack_delete({udp_match(5353, 5353), six_any, udp_match(9000, 9000)});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, 3u);
    for (const auto& e : entries()) EXPECT_NE(e.l4, "udp") << e.dst << " " << e.dport;
}

TEST_F(Conntrack, NoMatchesOpensNothing) {
    udp("198.51.100.1", 5000);
    await("udp", "198.51.100.1", 5000, 1);
    auto r = conntrack_delete({});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 0u);
    EXPECT_EQ(count("udp", "198.51.100.1", 5000), 1u);
}

}  // namespace
}  // namespace cnetd::nft

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (geteuid() != 0) {
        fprintf(stderr, "conntrack kernel tests need root (run under unshare); skipping\n");
        return 77;
    }
    return RUN_ALL_TESTS();
}
