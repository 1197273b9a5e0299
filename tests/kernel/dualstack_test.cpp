// Dual stack through LinuxKernel: the bridge's IPv6 gateway (no DAD), inhibit_ipv4, the container
// side's IPv6 address and default route, IPv6 traffic right after the attach, and the gratuitous
// ARP / unsolicited NA announcements, checked against `ip -j`, /proc/sys, captured frames and the
// neighbour caches of other namespaces.
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_fixture.hpp"
#include "netlink/announce.hpp"
#include "base/sysctl.hpp"
#include "netns/netns.hpp"

namespace cnetd::ktest {
namespace {

Ipv6Cidr cidr6(const char* s) {
    return Ipv6Cidr::parse(s).value();
}
Ipv6 ip6(const char* s) {
    return Ipv6::parse(s).value();
}


std::string nsarg(const std::string& ns) {
    return ns.empty() ? "" : "-n " + ns + " ";
}

std::vector<nlohmann::json> addrs(const char* family, const std::string& dev,
                                  const std::string& ns = "") {
    auto j = ip_json(nsarg(ns) + "addr show dev " + dev);
    std::vector<nlohmann::json> out;
    if (j.empty()) return out;
    for (const auto& a : j[0]["addr_info"])
        if (a["family"] == family) out.push_back(a);
    return out;
}

std::vector<nlohmann::json> global6(const std::string& dev, const std::string& ns = "") {
    std::vector<nlohmann::json> out;
    for (auto& a : addrs("inet6", dev, ns))
        if (a["scope"] == "global") out.push_back(a);
    return out;
}

bool flag(const nlohmann::json& a, const char* f) {
    return a.contains(f) && a[f] == true;
}

// A sysctl inside a namespace file (network sysctls resolve in the reader's namespace).
std::string sysctl_in(const std::string& path, const std::string& key) {
    auto fd = netns::open(path);
    if (!fd.ok()) return "<no netns>";
    auto scope = netns::ScopedNetns::enter(fd->get(), path);
    if (!scope.ok()) return "<setns>";
    auto v = sysctl::read(key);
    return v.ok() ? *v : "<" + v.error().message() + ">";
}

std::string sysctl_here(const std::string& key) {
    auto v = sysctl::read(key);
    return v.ok() ? *v : "<" + v.error().message() + ">";
}

// bind() on a tentative IPv6 address fails with EADDRNOTAVAIL: binding proves "usable now".
int bind6(const std::string& ip, int ns_fd = -1) {
    std::optional<netns::ScopedNetns> scope;
    if (ns_fd >= 0) {
        auto s = netns::ScopedNetns::enter(ns_fd, "test netns");
        if (!s.ok()) return EINVAL;
        scope.emplace(std::move(s).value());
    }
    UniqueFd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    ::inet_pton(AF_INET6, ip.c_str(), &sa.sin6_addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return errno;
    return 0;
}

class DualStackTest : public KernelTest {
protected:
    void SetUp() override {
        KernelTest::SetUp();
        if (!ipv6_enabled()) GTEST_SKIP() << "IPv6 is disabled in this kernel";
    }
};

TEST_F(DualStackTest, BridgeGetsNodadIpv6GatewayThatIsNotTentative) {
    core::BridgeSpec spec{"br0", cidr("192.0.2.1/24"), 1500, cidr6("2001:db8:1::1/64")};
    auto created = kernel->ensure_bridge(spec);
    ASSERT_TRUE(created.ok()) << created.error().message();
    EXPECT_TRUE(*created);

    auto g = global6("br0");
    ASSERT_EQ(g.size(), 1u) << ip_json("addr show dev br0").dump();
    EXPECT_EQ(g[0]["local"], "2001:db8:1::1");
    EXPECT_EQ(g[0]["prefixlen"], 64);
    EXPECT_TRUE(flag(g[0], "nodad")) << g[0].dump();
    EXPECT_FALSE(flag(g[0], "tentative")) << g[0].dump();
    EXPECT_FALSE(flag(g[0], "dadfailed")) << g[0].dump();
    EXPECT_EQ(bind6("2001:db8:1::1"), 0) << "usable at once";
    EXPECT_EQ(sysctl_here("net/ipv6/conf/br0/accept_ra"), "0");
    EXPECT_EQ(sysctl_here("net/ipv6/conf/br0/accept_dad"), "0");
    EXPECT_EQ(sysctl_here("net/ipv6/conf/br0/disable_ipv6"), "0");
    // IPv4 unchanged by dual stack.
    auto v4 = addrs("inet", "br0");
    ASSERT_EQ(v4.size(), 1u);
    EXPECT_EQ(v4[0]["local"], "192.0.2.1");

    // Idempotent: the second run keeps exactly one global address.
    auto again = kernel->ensure_bridge(spec);
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_FALSE(*again);
    g = global6("br0");
    ASSERT_EQ(g.size(), 1u);
    EXPECT_EQ(g[0]["local"], "2001:db8:1::1");
    EXPECT_FALSE(flag(g[0], "tentative"));
}

TEST_F(DualStackTest, AdoptedBridgeWithIpv6OffGetsItOn) {
    ASSERT_EQ(run("ip link add br1 type bridge && ip link set br1 up && "
                  "echo 1 > /proc/sys/net/ipv6/conf/br1/disable_ipv6")
                  .status,
              0);
    core::BridgeSpec spec{"br1", cidr("192.0.2.1/24"), 1500, cidr6("2001:db8:1::1/64")};
    auto r = kernel->ensure_bridge(spec);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(*r);
    EXPECT_EQ(sysctl_here("net/ipv6/conf/br1/disable_ipv6"), "0");
    auto g = global6("br1");
    ASSERT_EQ(g.size(), 1u) << ip_json("addr show dev br1").dump();
    EXPECT_EQ(g[0]["local"], "2001:db8:1::1");
    EXPECT_FALSE(flag(g[0], "tentative"));
}

TEST_F(DualStackTest, ForeignGlobalIpv6AddressesAreReplacedLinkLocalKept) {
    ASSERT_EQ(run("ip link add br1 type bridge && ip link set br1 up && "
                  "ip addr add 2001:db8:9::5/64 dev br1 nodad && "
                  "ip addr add 2001:db8:1::1/80 dev br1 nodad")
                  .status,
              0);
    ASSERT_EQ(global6("br1").size(), 2u);
    core::BridgeSpec spec{"br1", cidr("192.0.2.1/24"), 1500, cidr6("2001:db8:1::1/64")};
    auto r = kernel->ensure_bridge(spec);
    ASSERT_TRUE(r.ok()) << r.error().message();
    auto g = global6("br1");
    ASSERT_EQ(g.size(), 1u) << ip_json("addr show dev br1").dump();
    EXPECT_EQ(g[0]["local"], "2001:db8:1::1");
    EXPECT_EQ(g[0]["prefixlen"], 64);
    size_t link_local = 0;
    for (const auto& a : addrs("inet6", "br1"))
        if (a["scope"] == "link") ++link_local;
    EXPECT_EQ(link_local, 1u) << "the kernel's fe80:: address stays";
}

TEST_F(DualStackTest, Ipv4OnlyBridgeKeepsIpv6SettingsAsTheyAre) {
    ASSERT_EQ(
        run("ip link add br2 type bridge && echo 1 > /proc/sys/net/ipv6/conf/br2/disable_ipv6")
            .status,
        0);
    ASSERT_TRUE(kernel->ensure_bridge({"br2", cidr("192.0.2.1/24"), 1500}).ok());
    EXPECT_EQ(sysctl_here("net/ipv6/conf/br2/disable_ipv6"), "1");
    EXPECT_TRUE(global6("br2").empty());
}

TEST_F(DualStackTest, InhibitIpv4LeavesNoIpv4Address) {
    // A fresh bridge with inhibit_ipv4: no IPv4 address, IPv6 gateway present, link up.
    core::BridgeSpec spec{"br0", cidr("192.0.2.1/24"), 1500, cidr6("2001:db8:1::1/64"), true};
    ASSERT_TRUE(kernel->ensure_bridge(spec).ok());
    EXPECT_TRUE(addrs("inet", "br0").empty()) << ip_json("addr show dev br0").dump();
    EXPECT_EQ(global6("br0").size(), 1u);
    EXPECT_EQ(ip_json("-4 route show dev br0").size(), 0u) << "no IPv4 subnet route either";

    // A bridge that had our IPv4 gateway (network created before, now inhibited): it goes.
    ASSERT_TRUE(kernel->ensure_bridge({"br3", cidr("198.51.100.1/24"), 1500}).ok());
    ASSERT_EQ(addrs("inet", "br3").size(), 1u);
    core::BridgeSpec inhibit{"br3", cidr("198.51.100.1/24"), 1500, std::nullopt, true};
    auto r = kernel->ensure_bridge(inhibit);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(addrs("inet", "br3").empty()) << ip_json("addr show dev br3").dump();
    EXPECT_TRUE(kernel->ensure_bridge(inhibit).ok()) << "idempotent";
    EXPECT_TRUE(addrs("inet", "br3").empty());
}

class DualStackVethTest : public DualStackTest {
protected:
    void SetUp() override {
        DualStackTest::SetUp();
        if (IsSkipped()) return;
        auto br =
            kernel->ensure_bridge({"br0", cidr("192.0.2.1/24"), 1500, cidr6("2001:db8:1::1/64")});
        ASSERT_TRUE(br.ok()) << br.error().message();
    }
    // Attaches netns `name` to br0 dual stack, in the engine's order; returns the open namespace.
    std::unique_ptr<core::Netns> attach(const std::string& name, const std::string& host,
                                        const char* ip, const char* ipv6, const Mac& m) {
        auto ns = make_ns(name);
        if (!ns) return nullptr;
        auto steps = {
            kernel->create_veth({host, "br0", "eth0", m, 1500}, *ns),
            kernel->set_up(host),
            ns->enable_ipv6("eth0"),
            ns->add_address("eth0", cidr(ip)),
            ns->add_address6("eth0", cidr6(ipv6)),
            ns->set_up("eth0"),
            ns->add_default_route("eth0", cidr("192.0.2.1/24").addr()),
            ns->add_default_route6("eth0", ip6("2001:db8:1::1")),
        };
        for (const auto& s : steps) EXPECT_TRUE(s.ok()) << s.error().message();
        return ns;
    }
    int fd_of(const std::string& name) {
        auto fd = netns::open(ns_path(name));
        if (!fd.ok()) return -1;
        fds_.push_back(std::move(fd).value());
        return fds_.back().get();
    }
    std::vector<UniqueFd> fds_;
};

TEST_F(DualStackVethTest, ContainerSideGetsNodadAddressAndDefaultRoute6) {
    auto ns =
        attach("c1", "vethc0ffee1", "192.0.2.2/24", "2001:db8:1::2/64", mac("02:11:22:33:44:55"));
    ASSERT_TRUE(ns);
    auto g = global6("eth0", "c1");
    ASSERT_EQ(g.size(), 1u) << ip_json("-n c1 addr show dev eth0").dump();
    EXPECT_EQ(g[0]["local"], "2001:db8:1::2");
    EXPECT_EQ(g[0]["prefixlen"], 64);
    EXPECT_TRUE(flag(g[0], "nodad")) << g[0].dump();
    EXPECT_FALSE(flag(g[0], "tentative")) << g[0].dump();
    EXPECT_EQ(bind6("2001:db8:1::2", fd_of("c1")), 0) << "usable at once";

    auto routes = ip_json("-n c1 -6 route show default");
    ASSERT_EQ(routes.size(), 1u) << routes.dump();
    EXPECT_EQ(routes[0]["gateway"], "2001:db8:1::1");
    EXPECT_EQ(routes[0]["dev"], "eth0");
    auto routes4 = ip_json("-n c1 -4 route show default");
    ASSERT_EQ(routes4.size(), 1u);
    EXPECT_EQ(routes4[0]["gateway"], "192.0.2.1");

    EXPECT_EQ(sysctl_in(ns_path("c1"), "net/ipv6/conf/eth0/disable_ipv6"), "0");
    EXPECT_EQ(sysctl_in(ns_path("c1"), "net/ipv6/conf/eth0/accept_dad"), "0");
    EXPECT_EQ(sysctl_in(ns_path("c1"), "net/ipv6/conf/eth0/accept_ra"), "0");

    // Idempotent re-run of the v6 steps (a retried attach).
    EXPECT_TRUE(ns->add_address6("eth0", cidr6("2001:db8:1::2/64")).ok());
    EXPECT_TRUE(ns->add_default_route6("eth0", ip6("2001:db8:1::1")).ok());
    EXPECT_EQ(global6("eth0", "c1").size(), 1u);
    EXPECT_EQ(ip_json("-n c1 -6 route show default").size(), 1u);
}

// Negative control for the "not tentative" checks above: the same address added the ordinary way
// (with DAD) on a link with accept_dad=1 is tentative and cannot be bound, so they can fail.
TEST_F(DualStackVethTest, ControlAnAddressWithDadIsTentative) {
    auto ns = make_ns("c1");
    ASSERT_TRUE(ns);
    ASSERT_TRUE(
        kernel->create_veth({"vethc0ffee1", "br0", "eth0", Mac::random_local(), 1500}, *ns).ok());
    ASSERT_TRUE(kernel->set_up("vethc0ffee1").ok());
    ASSERT_TRUE(ns->set_up("eth0").ok());
    ASSERT_EQ(run("ip -n c1 addr add 2001:db8:1::7/64 dev eth0").status, 0);
    auto g = global6("eth0", "c1");
    ASSERT_EQ(g.size(), 1u);
    EXPECT_TRUE(flag(g[0], "tentative")) << g[0].dump();
    EXPECT_EQ(bind6("2001:db8:1::7", fd_of("c1")), EADDRNOTAVAIL);
}

// Milliseconds until namespace `ns` has the local (table local) route of its address `ip`, or -1
// after `limit_ms`.
double wait_local_route(const std::string& ns, const std::string& ip, int limit_ms) {
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        if (!ip_json("-n " + ns + " -6 route show table local " + ip).empty()) return ms;
        if (ms > limit_ms) return -1;
        ::usleep(200);
    }
}

// "Works immediately": the addresses are usable the moment the attach returns (no DAD: the
// listener binds b's address, a's SYN leaves from a's at once). One kernel detail remains: for a
// NODAD address the kernel joins the solicited-node group and inserts the address's local route
// (what makes it accept packets to it) from its ipv6_addrconf workqueue right after the add
// (addrconf_dad_begin -> addrconf_dad_completed). A packet that arrives before that worker ran is
// dropped and TCP/ND retry after 1 s. The window is the workqueue latency (microseconds idle,
// milliseconds on a loaded machine); the test measures it, then asserts no DAD-sized wait.
TEST_F(DualStackVethTest, TwoNamespacesTalkIpv6RightAfterTheAttach) {
    const auto t0 = std::chrono::steady_clock::now();
    auto a = attach("ca", "vetha000001", "192.0.2.2/24", "2001:db8:1::2/64", Mac::random_local());
    auto b = attach("cb", "vethb000001", "192.0.2.3/24", "2001:db8:1::3/64", Mac::random_local());
    ASSERT_TRUE(a && b);
    const int fa = fd_of("ca"), fb = fd_of("cb");
    auto msd = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    const auto t1 = std::chrono::steady_clock::now();
    const double join_ms = wait_local_route("cb", "2001:db8:1::3", 2000);
    ASSERT_GE(join_ms, 0) << "b's address never got its local route";
    const auto t2 = std::chrono::steady_clock::now();
    EXPECT_EQ(tcp_exchange(fa, fb, "2001:db8:1::3", 6001), "") << "a -> b over IPv6";
    const auto t3 = std::chrono::steady_clock::now();
    std::printf(
        "two dual-stack attaches %.1f ms, b's local route after %.2f ms, first IPv6 "
        "TCP exchange %.1f ms\n",
        msd(t1 - t0), join_ms, msd(t3 - t2));
    EXPECT_LT(msd(t3 - t0), 1000.0) << "no DAD wait (DAD alone takes >= 1 s)";
    EXPECT_EQ(tcp_exchange(fb, fa, "2001:db8:1::2", 6002), "") << "b -> a over IPv6";
    EXPECT_EQ(tcp_exchange(-1, fa, "2001:db8:1::2", 6003), "") << "host -> a over IPv6";
    EXPECT_EQ(tcp_exchange(fa, -1, "2001:db8:1::1", 6004), "") << "a -> gateway over IPv6";
    EXPECT_EQ(tcp_exchange(fa, fb, "192.0.2.3", 6005), "") << "IPv4 still works";
    // Off-link IPv6 destinations resolve through the v6 default route.
    auto get = ip_json("-n ca -6 route get 2001:db8:ffff::1");
    ASSERT_EQ(get.size(), 1u);
    EXPECT_EQ(get[0]["gateway"], "2001:db8:1::1");
    EXPECT_EQ(get[0]["dev"], "eth0");

    // Negative control: without b's veth, b is unreachable over IPv6.
    ASSERT_TRUE(kernel->delete_link("vethb000001").ok());
    EXPECT_NE(tcp_exchange(fa, fb, "2001:db8:1::3", 6006, true), "") << "b is detached";
}

TEST_F(DualStackVethTest, V6StepsOnMissingLinkNameItAndTheNetns) {
    auto ns = make_ns("c1");
    ASSERT_TRUE(ns);
    auto e = ns->enable_ipv6("eth7");
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().message(), "enable ipv6 on eth7 in " + ns_path("c1") + ": No such device");
    auto a = ns->add_address6("eth7", cidr6("2001:db8:1::2/64"));
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.error().message(),
              "add address 2001:db8:1::2/64 to eth7 in " + ns_path("c1") + ": No such device");
    auto r = ns->add_default_route6("eth7", ip6("2001:db8:1::1"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "add default route via 2001:db8:1::1 dev eth7 in " +
                                       ns_path("c1") + ": No such device");
    auto n = ns->announce("eth7", Mac::random_local(), cidr("192.0.2.2/24").addr(), std::nullopt);
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.error().message(),
              "announce 192.0.2.2 on eth7 in " + ns_path("c1") + ": No such device");
}

// --- announce ---

// Every frame that arrives on `ifname` (host namespace) while it is open.
class Capture {
public:
    explicit Capture(const std::string& ifname) {
        fd_ = UniqueFd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
        sockaddr_ll sll{};
        sll.sll_family = AF_PACKET;
        sll.sll_protocol = htons(ETH_P_ALL);
        sll.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
        ok_ = fd_.valid() && sll.sll_ifindex > 0 &&
              ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sll), sizeof sll) == 0;
    }
    bool ok() const { return ok_; }
    // Frames received until `quiet_ms` pass without one.
    std::vector<std::vector<uint8_t>> drain(int quiet_ms = 200) {
        std::vector<std::vector<uint8_t>> out;
        for (;;) {
            pollfd p{fd_.get(), POLLIN, 0};
            if (::poll(&p, 1, quiet_ms) != 1) return out;
            std::vector<uint8_t> buf(2048);
            sockaddr_ll from{};
            socklen_t fl = sizeof from;
            ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), 0,
                                   reinterpret_cast<sockaddr*>(&from), &fl);
            if (n <= 0) return out;
            // Only what the container sent: the bridge port is in hairpin mode, so broadcasts
            // and multicasts are also reflected back out of it (PACKET_OUTGOING).
            if (from.sll_pkttype == PACKET_OUTGOING) continue;
            buf.resize(static_cast<size_t>(n));

            out.push_back(std::move(buf));
        }
    }

private:
    UniqueFd fd_;
    bool ok_ = false;
};

uint16_t be16(const std::vector<uint8_t>& f, size_t off) {
    return static_cast<uint16_t>(f[off] << 8 | f[off + 1]);
}
bool eq(const std::vector<uint8_t>& f, size_t off, const uint8_t* p, size_t n) {
    return f.size() >= off + n && std::memcmp(f.data() + off, p, n) == 0;
}

// Independent checksum check: the one's complement sum over pseudo-header + message is 0xffff.
bool icmp6_checksum_ok(const std::vector<uint8_t>& f) {
    const size_t ip = 14, icmp = ip + 40;
    const size_t len = be16(f, ip + 4);
    if (f.size() < icmp + len) return false;
    uint32_t sum = 0;
    for (size_t i = ip + 8; i < ip + 40; i += 2) sum += be16(f, i);  // src + dst
    sum += static_cast<uint32_t>(len) + 58;
    for (size_t i = 0; i < len; i += 2)
        sum += static_cast<uint32_t>(f[icmp + i] << 8 | (i + 1 < len ? f[icmp + i + 1] : 0));
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return sum == 0xffff;
}

struct Seen {
    int arps = 0;      // gratuitous ARP requests from the expected MAC/IP
    int nas = 0;       // valid unsolicited NAs for the expected address/MAC
    int bad_arps = 0;  // ARP frames that are not what we expect
    int bad_nas = 0;   // NA frames that are not what we expect
};

Seen classify(const std::vector<std::vector<uint8_t>>& frames, const Mac& m, Ipv4 v4,
              const Ipv6& v6) {
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t allnodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
    static const uint8_t allnodes[16] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const uint32_t v4be = v4.network_order();
    const auto* v4b = reinterpret_cast<const uint8_t*>(&v4be);
    Seen s;
    for (const auto& f : frames) {
        if (f.size() < 14) continue;
        const uint16_t type = be16(f, 12);
        if (type == ETH_P_ARP) {
            const bool good = f.size() >= 42 && eq(f, 0, bcast, 6) &&
                              eq(f, 6, m.bytes().data(), 6) && be16(f, 14) == 1 &&
                              be16(f, 16) == ETH_P_IP && f[18] == 6 && f[19] == 4 &&
                              be16(f, 20) == 1 /* request */ && eq(f, 22, m.bytes().data(), 6) &&
                              eq(f, 28, v4b, 4) && eq(f, 38, v4b, 4);
            ++(good ? s.arps : s.bad_arps);
        } else if (type == ETH_P_IPV6 && f.size() >= 14 + 40 + 1 && f[14 + 6] == 58 &&
                   f[14 + 40] == 136) {
            const size_t icmp = 14 + 40;
            const bool good = f.size() >= icmp + 32 && eq(f, 0, allnodes_mac, 6) &&
                              eq(f, 6, m.bytes().data(), 6) && f[14 + 7] == 255 /* hop limit */ &&
                              eq(f, 14 + 24, allnodes, 16) && be16(f, 14 + 4) == 32 &&
                              f[icmp + 1] == 0 && (f[icmp + 4] & 0xe0) == 0x20 /* R=0 S=0 O=1 */ &&
                              eq(f, icmp + 8, v6.bytes().data(), 16) && f[icmp + 24] == 2 &&
                              f[icmp + 25] == 1 && eq(f, icmp + 26, m.bytes().data(), 6) &&
                              icmp6_checksum_ok(f);
            ++(good ? s.nas : s.bad_nas);
        }
    }
    return s;
}

TEST_F(DualStackVethTest, AnnounceSendsThreeGratuitousArpsAndThreeNas) {
    const Mac m = mac("02:aa:bb:cc:dd:01");
    auto a = attach("ca", "vetha000001", "192.0.2.2/24", "2001:db8:1::2/64", m);
    ASSERT_TRUE(a);
    Capture cap("vetha000001");
    ASSERT_TRUE(cap.ok()) << std::strerror(errno);
    cap.drain(50);  // whatever the attach itself caused (MLD reports, ...)

    const auto t0 = std::chrono::steady_clock::now();
    auto r = a->announce("eth0", m, cidr("192.0.2.2/24").addr(), ip6("2001:db8:1::2"));
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(r.ok()) << r.error().message();
    std::printf("announce (3 ARP + 3 NA): %.3f ms\n", ms);

    auto s = classify(cap.drain(), m, cidr("192.0.2.2/24").addr(), ip6("2001:db8:1::2"));
    EXPECT_EQ(s.arps, 3);
    EXPECT_EQ(s.nas, 3);
    EXPECT_EQ(s.bad_arps, 0);
    EXPECT_EQ(s.bad_nas, 0);

    // IPv4 only: ARPs, no NA.
    ASSERT_TRUE(a->announce("eth0", m, cidr("192.0.2.2/24").addr(), std::nullopt).ok());
    s = classify(cap.drain(), m, cidr("192.0.2.2/24").addr(), ip6("2001:db8:1::2"));
    EXPECT_EQ(s.arps, 3);
    EXPECT_EQ(s.nas, 0);
}

TEST_F(DualStackVethTest, AnnounceUpdatesStaleNeighbourEntriesElsewhere) {
    // b cached a previous owner of a's addresses (a reused IP); a's announcement must fix that.
    const Mac m = mac("02:aa:bb:cc:dd:02");
    auto b = attach("cb", "vethb000001", "192.0.2.3/24", "2001:db8:1::3/64", Mac::random_local());
    auto a = attach("ca", "vetha000001", "192.0.2.2/24", "2001:db8:1::2/64", m);
    ASSERT_TRUE(a && b);
    ASSERT_EQ(
        run("ip -n cb neigh replace 192.0.2.2 lladdr 02:00:00:00:00:99 dev eth0 nud stale && "
            "ip -n cb neigh replace 2001:db8:1::2 lladdr 02:00:00:00:00:99 dev eth0 nud stale")
            .status,
        0);
    auto lladdr = [](const char* ip) {
        auto j = ip_json(std::string("-n cb neigh show ") + ip + " dev eth0");
        return j.empty() ? std::string("<none>") : j[0].value("lladdr", std::string("<none>"));
    };
    ASSERT_EQ(lladdr("192.0.2.2"), "02:00:00:00:00:99");
    ASSERT_EQ(lladdr("2001:db8:1::2"), "02:00:00:00:00:99");

    ASSERT_TRUE(a->announce("eth0", m, cidr("192.0.2.2/24").addr(), ip6("2001:db8:1::2")).ok());
    // Delivery through the bridge is synchronous on veth, but give the softirq a moment.
    for (int i = 0;
         i < 50 && (lladdr("192.0.2.2") != m.str() || lladdr("2001:db8:1::2") != m.str()); ++i)
        ::usleep(10000);
    EXPECT_EQ(lladdr("192.0.2.2"), m.str());
    EXPECT_EQ(lladdr("2001:db8:1::2"), m.str());
}

TEST_F(DualStackVethTest, AnnounceOnDownLinkFailsNamingIt) {
    auto ns = make_ns("c1");
    ASSERT_TRUE(ns);
    ASSERT_TRUE(
        kernel->create_veth({"vethc0ffee1", "br0", "eth0", Mac::random_local(), 1500}, *ns).ok());
    auto r = ns->announce("eth0", Mac::random_local(), cidr("192.0.2.2/24").addr(),
                          ip6("2001:db8:1::2"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().error_number(), ENETDOWN);
    EXPECT_EQ(r.error().message(), "announce 192.0.2.2 and 2001:db8:1::2 on eth0 in " +
                                       ns_path("c1") + ": Network is down");
}

TEST(AnnounceFrames, GarpAndNaLayout) {
    const Mac m = mac("02:11:22:33:44:55");
    auto arp = netlink::build_garp(m, Ipv4::parse("192.0.2.9").value());
    ASSERT_EQ(arp.size(), 60u);
    auto na = netlink::build_unsolicited_na(m, ip6("2001:db8::9"));
    ASSERT_EQ(na.size(), 14u + 40u + 32u);
    auto s = classify({arp, na}, m, Ipv4::parse("192.0.2.9").value(), ip6("2001:db8::9"));
    EXPECT_EQ(s.arps, 1);
    EXPECT_EQ(s.nas, 1);
    // Checksum is not trivially accepted: flipping a byte breaks it.
    na[14 + 40 + 8] ^= 1;
    EXPECT_FALSE(icmp6_checksum_ok(na));
}

}  // namespace
}  // namespace cnetd::ktest
