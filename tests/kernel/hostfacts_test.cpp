// IPv6 port holds and the host facts the engine derives defaults from (uplink MTU, on-link routes,
// bridge port count), through LinuxKernel, against real sockets and `ip`-made links and routes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <string>

#include "kernel_fixture.hpp"

namespace cnetd::ktest {
namespace {



// Binds a fresh socket and returns 0 or the errno; the socket is kept in `keep` when given.
int try_bind6(int type, const char* ip, uint16_t port, int v6only, UniqueFd* keep = nullptr) {
    UniqueFd fd(::socket(AF_INET6, type | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return errno;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    ::inet_pton(AF_INET6, ip, &sa.sin6_addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return errno;
    if (keep) *keep = std::move(fd);
    return 0;
}

int try_bind4(int type, const char* ip, uint16_t port) {
    UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return errno;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, ip, &sa.sin_addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return errno;
    return 0;
}

class HoldPorts6Test : public KernelTest {
protected:
    void SetUp() override {
        KernelTest::SetUp();
        if (!ipv6_enabled()) GTEST_SKIP() << "IPv6 is disabled in this kernel";
    }
};

TEST_F(HoldPorts6Test, TcpOnAnyBlocksIpv6BindsAndLeavesIpv4Alone) {
    // Control: before the hold the port is free on both families.
    ASSERT_EQ(try_bind6(SOCK_STREAM, "::", 18080, 1), 0);
    auto hold = kernel->hold_ports6(IPPROTO_TCP, std::nullopt, 18080, 18081);
    ASSERT_TRUE(hold.ok()) << hold.error().message();
    for (uint16_t p : {18080, 18081}) {
        EXPECT_EQ(try_bind6(SOCK_STREAM, "::", p, 1), EADDRINUSE) << p;
        EXPECT_EQ(try_bind6(SOCK_STREAM, "::", p, 0), EADDRINUSE) << p << " dual-stack socket";
        EXPECT_EQ(try_bind6(SOCK_STREAM, "::1", p, 1), EADDRINUSE) << p;
        EXPECT_EQ(try_bind4(SOCK_STREAM, "0.0.0.0", p), 0) << p << ": IPv4 is not held";
    }
    EXPECT_EQ(try_bind6(SOCK_STREAM, "::", 18082, 1), 0) << "only the range";
    // Never listening: a connection to the held port is refused (DNAT, not the holder, serves it).
    UniqueFd c(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(18080);
    sa.sin6_addr = in6addr_loopback;
    EXPECT_NE(::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    EXPECT_EQ(errno, ECONNREFUSED);

    hold->reset();  // released: bindable again
    EXPECT_EQ(try_bind6(SOCK_STREAM, "::", 18080, 1), 0);
}

TEST_F(HoldPorts6Test, UdpAndSpecificAddress) {
    auto hold = kernel->hold_ports6(IPPROTO_UDP, std::nullopt, 15353, 15353);
    ASSERT_TRUE(hold.ok()) << hold.error().message();
    EXPECT_EQ(try_bind6(SOCK_DGRAM, "::", 15353, 1), EADDRINUSE);
    EXPECT_EQ(try_bind4(SOCK_DGRAM, "0.0.0.0", 15353), 0);

    auto lo = kernel->hold_ports6(IPPROTO_TCP, Ipv6::parse("::1").value(), 18090, 18090);
    ASSERT_TRUE(lo.ok()) << lo.error().message();
    EXPECT_EQ(try_bind6(SOCK_STREAM, "::1", 18090, 1), EADDRINUSE);
    EXPECT_EQ(try_bind4(SOCK_STREAM, "127.0.0.1", 18090), 0);
}

// [::1] tcp (served by the daemon's relay on the hold's own socket, daemon/relay.hpp): the hold
// listens, stays exclusive against SO_REUSEADDR binders, and on release shuts the socket down, so a
// dup (the relay's) stops accepting at once although it is still open.
TEST_F(HoldPorts6Test, LoopbackHoldListensAndReleaseStopsADup) {
    auto hold = kernel->hold_ports6(IPPROTO_TCP, Ipv6::parse("::1").value(), 18095, 18095);
    ASSERT_TRUE(hold.ok()) << hold.error().message();
    ASSERT_EQ((*hold)->fds().size(), 1u);
    UniqueFd dup(::fcntl((*hold)->fds()[0], F_DUPFD_CLOEXEC, 0));
    ASSERT_TRUE(dup.valid());
    UniqueFd other(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(other.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(18095);
    sa.sin6_addr = in6addr_loopback;
    EXPECT_NE(::bind(other.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    EXPECT_EQ(errno, EADDRINUSE);
    UniqueFd c1(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(c1.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << "listening";
    hold->reset();
    UniqueFd c2(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_NE(::connect(c2.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    EXPECT_EQ(errno, ECONNREFUSED) << "the dup no longer accepts";
}

TEST_F(HoldPorts6Test, TakenPortFailsNamingItAndHoldsNothing) {
    UniqueFd other;
    ASSERT_EQ(try_bind6(SOCK_STREAM, "::", 19090, 1, &other), 0);
    auto hold = kernel->hold_ports6(IPPROTO_TCP, std::nullopt, 19089, 19091);
    ASSERT_FALSE(hold.ok());
    EXPECT_EQ(hold.error().error_number(), EADDRINUSE);
    EXPECT_EQ(hold.error().message(), "Bind for [::]:19090 failed: Address already in use");
    EXPECT_EQ(try_bind6(SOCK_STREAM, "::", 19089, 1), 0) << "the first port was released";
    EXPECT_EQ(try_bind6(SOCK_STREAM, "::", 19091, 1), 0);
}

TEST_F(HoldPorts6Test, Ipv4HoldStillWorksAfterTheRefactor) {
    auto hold = kernel->hold_ports(IPPROTO_TCP, std::nullopt, 18100, 18100);
    ASSERT_TRUE(hold.ok()) << hold.error().message();
    EXPECT_EQ(try_bind4(SOCK_STREAM, "0.0.0.0", 18100), EADDRINUSE);
    EXPECT_EQ(try_bind6(SOCK_STREAM, "::", 18100, 1), 0) << "IPv6 is not held";
    auto taken = kernel->hold_ports(IPPROTO_UDP, Ipv4::parse("127.0.0.1").value(), 18101, 18101);
    ASSERT_TRUE(taken.ok());
    auto again = kernel->hold_ports(IPPROTO_UDP, Ipv4::parse("127.0.0.1").value(), 18101, 18101);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().message(), "Bind for 127.0.0.1:18101 failed: Address already in use");
}

using HostFactsTest = KernelTest;

// An "uplink" in the test namespace with an MTU and an address. A dummy device would do, but
// some kernels (this CI's included) lack the dummy module: a veth pair with both ends up has
// carrier just the same.
bool uplink(const std::string& name, unsigned mtu, const std::string& addr) {
    return run(fmt::format("ip link add {0} type veth peer name {0}p && ip link set {0}p up && "
                           "ip link set {0} mtu {1} up && ip addr add {2} dev {0}",
                           name, mtu, addr))
               .status == 0;
}

TEST_F(HostFactsTest, DefaultRouteMtuFollowsThePreferredDefaultRoute) {
    auto none = kernel->default_route_mtu();
    ASSERT_TRUE(none.ok()) << none.error().message();
    EXPECT_FALSE(none->has_value()) << "fresh namespace: no default route";

    ASSERT_TRUE(uplink("up0", 1450, "192.0.2.10/24"));
    ASSERT_TRUE(uplink("up1", 1400, "198.51.100.10/24"));
    // A default route in another table does not count.
    ASSERT_EQ(run("ip route add default via 198.51.100.1 table 100").status, 0);
    EXPECT_FALSE(kernel->default_route_mtu()->has_value());

    ASSERT_EQ(run("ip route add default via 192.0.2.1 metric 100").status, 0);
    auto m = kernel->default_route_mtu();
    ASSERT_TRUE(m.ok()) << m.error().message();
    ASSERT_TRUE(m->has_value());
    EXPECT_EQ(**m, 1450u);

    // A better (lower metric) default route via the other uplink wins.
    ASSERT_EQ(run("ip route add default via 198.51.100.1 metric 50").status, 0);
    EXPECT_EQ(kernel->default_route_mtu()->value_or(0), 1400u);
    ASSERT_EQ(run("ip route del default via 198.51.100.1 metric 50").status, 0);
    EXPECT_EQ(kernel->default_route_mtu()->value_or(0), 1450u);

    // Read live, not cached.
    ASSERT_EQ(run("ip link set up0 mtu 1380").status, 0);
    EXPECT_EQ(kernel->default_route_mtu()->value_or(0), 1380u);
}

TEST_F(HostFactsTest, OnlinkRoutesListsScopeLinkRoutesOfTheMainTable) {
    auto empty = kernel->onlink_routes4();
    ASSERT_TRUE(empty.ok()) << empty.error().message();
    EXPECT_TRUE(empty->empty());

    ASSERT_TRUE(uplink("up0", 1500, "192.0.2.10/24"));
    ASSERT_EQ(run("ip route add 198.51.100.0/25 dev up0 scope link && "
                  "ip route add 203.0.113.0/24 via 192.0.2.1 && "
                  "ip route add 10.99.0.0/16 dev up0 table 100 && "
                  "ip route add default via 192.0.2.1")
                  .status,
              0);
    auto r = kernel->onlink_routes4();
    ASSERT_TRUE(r.ok()) << r.error().message();
    std::set<Ipv4Cidr> got(r->begin(), r->end());
    EXPECT_EQ(got, (std::set<Ipv4Cidr>{cidr("192.0.2.0/24"), cidr("198.51.100.0/25")}))
        << "the kernel's subnet route and ours; not gateway routes, not table 100";
    EXPECT_EQ(got.size(), r->size()) << "no duplicates";
}

TEST_F(HostFactsTest, BridgePortCountCountsEnslavedLinks) {
    ASSERT_TRUE(kernel->ensure_bridge({"br0", cidr("192.0.2.1/24"), 1500}).ok());
    ASSERT_TRUE(kernel->ensure_bridge({"br1", cidr("198.51.100.1/24"), 1500}).ok());
    auto zero = kernel->bridge_port_count("br0");
    ASSERT_TRUE(zero.ok()) << zero.error().message();
    EXPECT_EQ(*zero, 0u);

    ASSERT_EQ(run("for i in 0 1 2; do ip link add vp$i type veth peer name vp${i}p && "
                  "ip link set vp$i master br0 || exit 1; done && "
                  "ip link add vq0 type veth peer name vq0p && ip link set vq0 master br1")
                  .status,
              0);
    auto ns = make_ns("c1");
    ASSERT_TRUE(ns);
    ASSERT_TRUE(
        kernel->create_veth({"vethc0ffee1", "br0", "eth0", Mac::random_local(), 1500}, *ns).ok());
    EXPECT_EQ(kernel->bridge_port_count("br0").value(), 4u);
    EXPECT_EQ(kernel->bridge_port_count("br1").value(), 1u);

    ASSERT_EQ(run("ip link del vp1").status, 0);
    EXPECT_EQ(kernel->bridge_port_count("br0").value(), 3u);

    auto missing = kernel->bridge_port_count("nobr0");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().message(), "count ports of bridge nobr0: No such device");
    auto veth = kernel->bridge_port_count("vp0");
    ASSERT_FALSE(veth.ok());
    EXPECT_EQ(veth.error().kind(), ErrorKind::Conflict);
    EXPECT_NE(veth.error().message().find("\"vp0\" is a veth link, not a bridge"),
              std::string::npos)
        << veth.error().message();
}

// forget_neighbours (used by attach and reconciliation when an address is reused): the bridge's
// entries for exactly those addresses are gone from the kernel, others stay, and a second call
// (nothing left to delete) still succeeds.
TEST_F(HostFactsTest, ForgetNeighboursDeletesExactlyThoseEntries) {
    ASSERT_EQ(run("ip link add nb0 type veth peer name nb0p && ip link set nb0 up && "
                  "ip link set nb0p up && ip addr add 192.0.2.1/24 dev nb0 && "
                  "ip -6 addr add 2001:db8:9::1/64 dev nb0 nodad && "
                  "ip neigh add 192.0.2.2 lladdr 02:00:00:00:00:02 nud reachable dev nb0 && "
                  "ip neigh add 192.0.2.3 lladdr 02:00:00:00:00:03 nud reachable dev nb0 && "
                  "ip -6 neigh add 2001:db8:9::2 lladdr 02:00:00:00:00:02 nud reachable dev nb0")
                  .status,
              0);
    auto dsts = [&] {
        std::set<std::string> out;
        for (const auto& n : ip_json("neigh show dev nb0")) out.insert(n["dst"].get<std::string>());
        return out;
    };
    ASSERT_EQ(dsts(), (std::set<std::string>{"192.0.2.2", "192.0.2.3", "2001:db8:9::2"}));
    auto r = kernel->forget_neighbours("nb0", Ipv4::parse("192.0.2.2").value(),
                                       Ipv6::parse("2001:db8:9::2").value());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(dsts(), (std::set<std::string>{"192.0.2.3"}));
    r = kernel->forget_neighbours("nb0", Ipv4::parse("192.0.2.2").value(),
                                  Ipv6::parse("2001:db8:9::2").value());
    EXPECT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(dsts(), (std::set<std::string>{"192.0.2.3"}));
}

}  // namespace
}  // namespace cnetd::ktest
