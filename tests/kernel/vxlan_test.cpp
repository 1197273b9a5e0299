// The overlay data plane (netlink/vxlan.hpp through LinuxKernel): the built messages decoded
// without a kernel, then two "hosts" (network namespaces joined by a veth underlay on
// 192.0.2.0/24), each with the overlay's VXLAN device, a bridge with its block's gateway and a
// container, and real TCP between the containers across the tunnel. `ip -j` / `bridge -j` observe.
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "kernel_fixture.hpp"
#include "netlink/route.hpp"
#include "netlink/vxlan.hpp"
#include "netns/netns.hpp"

namespace cnetd::ktest {
namespace {

Ipv4 ip(const char* s) {
    return Ipv4::parse(s).value();
}
std::string ip_of(nlattr* a) {
    if (!a || nla_len(a) != 4) return "";
    uint32_t be;
    std::memcpy(&be, nla_data(a), 4);
    return Ipv4(ntohl(be)).str();
}

// --- messages, no kernel ---

TEST(VxlanMessage, DeviceCarriesIdLocalPortLearningLowerMtuMac) {
    netlink::VxlanParams p{
        "vx-0123456789ab",    4100, ip("192.0.2.1"), 4789, 7, 1450, mac("02:00:00:00:00:01"),
        cidr("10.200.1.0/32")};
    auto msg = netlink::build_vxlan_create(p);
    ASSERT_TRUE(msg.ok()) << msg.error().message();
    nlmsghdr* h = nlmsg_hdr(msg->get());
    EXPECT_EQ(h->nlmsg_type, RTM_NEWLINK);
    EXPECT_TRUE(h->nlmsg_flags & NLM_F_CREATE);
    EXPECT_TRUE(h->nlmsg_flags & NLM_F_EXCL);
    nlattr* tb[IFLA_MAX + 1] = {};
    ASSERT_EQ(nlmsg_parse(h, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr), 0);
    EXPECT_STREQ(static_cast<const char*>(nla_data(tb[IFLA_IFNAME])), "vx-0123456789ab");
    EXPECT_EQ(nla_get_u32(tb[IFLA_MTU]), 1450u);
    EXPECT_EQ(mac_of(tb[IFLA_ADDRESS]), "02:00:00:00:00:01");
    nlattr* li[IFLA_INFO_MAX + 1] = {};
    ASSERT_EQ(nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], nullptr), 0);
    EXPECT_STREQ(static_cast<const char*>(nla_data(li[IFLA_INFO_KIND])), "vxlan");
    nlattr* vx[IFLA_VXLAN_MAX + 1] = {};
    ASSERT_EQ(nla_parse_nested(vx, IFLA_VXLAN_MAX, li[IFLA_INFO_DATA], nullptr), 0);
    ASSERT_TRUE(vx[IFLA_VXLAN_ID] && vx[IFLA_VXLAN_PORT] && vx[IFLA_VXLAN_LEARNING] &&
                vx[IFLA_VXLAN_LINK]);
    EXPECT_EQ(nla_get_u32(vx[IFLA_VXLAN_ID]), 4100u);
    EXPECT_EQ(ip_of(vx[IFLA_VXLAN_LOCAL]), "192.0.2.1");
    EXPECT_EQ(ntohs(nla_get_u16(vx[IFLA_VXLAN_PORT])), 4789) << "network byte order";
    EXPECT_EQ(nla_get_u8(vx[IFLA_VXLAN_LEARNING]), 0) << "learning off";
    EXPECT_EQ(nla_get_u32(vx[IFLA_VXLAN_LINK]), 7u);
}

const netlink::VxlanPeerEntry kPeer{cidr("10.200.2.0/24"), ip("192.0.2.2"),
                                    mac("02:00:00:00:00:02")};

// The ndmsg and attributes of a neighbour request.
struct Neigh {
    nlmsghdr* h;
    ndmsg nd;
    nlattr* tb[NDA_MAX + 1] = {};
};
Neigh parse_neigh(const netlink::NlMsg& msg) {
    Neigh n{nlmsg_hdr(msg.get()), {}};
    n.nd = *static_cast<ndmsg*>(nlmsg_data(n.h));
    EXPECT_EQ(nlmsg_parse(n.h, sizeof(ndmsg), n.tb, NDA_MAX, nullptr), 0);
    return n;
}

TEST(VxlanMessage, PeerNeighbourAndFdbArePermanentAndReplace) {
    auto arp = netlink::build_peer_add(netlink::PeerPart::Neighbour, 9, kPeer, NLM_F_REPLACE);
    ASSERT_TRUE(arp.ok()) << arp.error().message();
    Neigh n = parse_neigh(*arp);
    EXPECT_EQ(n.h->nlmsg_type, RTM_NEWNEIGH);
    EXPECT_TRUE(n.h->nlmsg_flags & NLM_F_REPLACE);
    EXPECT_TRUE(n.h->nlmsg_flags & NLM_F_CREATE);
    EXPECT_EQ(n.nd.ndm_family, AF_INET);
    EXPECT_EQ(n.nd.ndm_ifindex, 9);
    EXPECT_EQ(n.nd.ndm_state, NUD_PERMANENT);
    EXPECT_EQ(ip_of(n.tb[NDA_DST]), "10.200.2.0") << "the block's network address";
    EXPECT_EQ(mac_of(n.tb[NDA_LLADDR]), "02:00:00:00:00:02");

    auto fdb = netlink::build_peer_add(netlink::PeerPart::Fdb, 9, kPeer, NLM_F_REPLACE);
    ASSERT_TRUE(fdb.ok()) << fdb.error().message();
    Neigh f = parse_neigh(*fdb);
    EXPECT_EQ(f.h->nlmsg_type, RTM_NEWNEIGH);
    EXPECT_TRUE(f.h->nlmsg_flags & NLM_F_REPLACE);
    EXPECT_EQ(f.nd.ndm_family, AF_BRIDGE);
    EXPECT_EQ(f.nd.ndm_flags & NTF_SELF, NTF_SELF) << "the vxlan device's own table";
    EXPECT_EQ(f.nd.ndm_state, NUD_PERMANENT);
    EXPECT_EQ(f.nd.ndm_ifindex, 9);
    EXPECT_EQ(mac_of(f.tb[NDA_LLADDR]), "02:00:00:00:00:02");
    EXPECT_EQ(ip_of(f.tb[NDA_DST]), "192.0.2.2") << "the peer's underlay address";
}

TEST(VxlanMessage, PeerRouteIsOnlinkViaTheBlocksNetworkAddress) {
    auto msg = netlink::build_peer_add(netlink::PeerPart::Route, 9, kPeer, NLM_F_EXCL);
    ASSERT_TRUE(msg.ok()) << msg.error().message();
    nlmsghdr* h = nlmsg_hdr(msg->get());
    EXPECT_EQ(h->nlmsg_type, RTM_NEWROUTE);
    EXPECT_TRUE(h->nlmsg_flags & NLM_F_EXCL);
    auto* rtm = static_cast<rtmsg*>(nlmsg_data(h));
    EXPECT_EQ(rtm->rtm_family, AF_INET);
    EXPECT_EQ(rtm->rtm_dst_len, 24);
    EXPECT_EQ(rtm->rtm_table, RT_TABLE_MAIN);
    EXPECT_EQ(rtm->rtm_scope, RT_SCOPE_UNIVERSE);
    EXPECT_EQ(rtm->rtm_flags & RTNH_F_ONLINK, static_cast<unsigned>(RTNH_F_ONLINK));
    nlattr* tb[RTA_MAX + 1] = {};
    ASSERT_EQ(nlmsg_parse(h, sizeof(rtmsg), tb, RTA_MAX, nullptr), 0);
    EXPECT_EQ(ip_of(tb[RTA_DST]), "10.200.2.0");
    EXPECT_EQ(ip_of(tb[RTA_GATEWAY]), "10.200.2.0");
    ASSERT_TRUE(tb[RTA_OIF]);
    EXPECT_EQ(nla_get_u32(tb[RTA_OIF]), 9u);
}

TEST(VxlanMessage, DeletesGoByKey) {
    auto arp = netlink::build_peer_delete(netlink::PeerPart::Neighbour, 9, kPeer);
    ASSERT_TRUE(arp.ok()) << arp.error().message();
    Neigh n = parse_neigh(*arp);
    EXPECT_EQ(n.h->nlmsg_type, RTM_DELNEIGH);
    EXPECT_EQ(ip_of(n.tb[NDA_DST]), "10.200.2.0");
    EXPECT_FALSE(n.tb[NDA_LLADDR]);

    auto fdb = netlink::build_peer_delete(netlink::PeerPart::Fdb, 9, kPeer);
    ASSERT_TRUE(fdb.ok()) << fdb.error().message();
    Neigh f = parse_neigh(*fdb);
    EXPECT_EQ(f.h->nlmsg_type, RTM_DELNEIGH);
    EXPECT_EQ(f.nd.ndm_family, AF_BRIDGE);
    EXPECT_EQ(f.nd.ndm_flags & NTF_SELF, NTF_SELF);
    EXPECT_EQ(mac_of(f.tb[NDA_LLADDR]), "02:00:00:00:00:02");
    EXPECT_FALSE(f.tb[NDA_DST]) << "no destination: the whole entry of the MAC goes";

    auto route = netlink::build_peer_delete(netlink::PeerPart::Route, 9, kPeer);
    ASSERT_TRUE(route.ok()) << route.error().message();
    nlmsghdr* h = nlmsg_hdr(route->get());
    EXPECT_EQ(h->nlmsg_type, RTM_DELROUTE);
    nlattr* tb[RTA_MAX + 1] = {};
    ASSERT_EQ(nlmsg_parse(h, sizeof(rtmsg), tb, RTA_MAX, nullptr), 0);
    EXPECT_EQ(ip_of(tb[RTA_DST]), "10.200.2.0");
    EXPECT_EQ(nla_get_u32(tb[RTA_OIF]), 9u);
    EXPECT_FALSE(tb[RTA_GATEWAY]);
}

TEST(RouteMessage, NetnsRouteIsExclusiveAndNotOnlink) {
    auto msg =
        netlink::build_route4_add({3, cidr("10.200.0.0/16"), ip("10.200.1.1"), false}, NLM_F_EXCL);
    ASSERT_TRUE(msg.ok()) << msg.error().message();
    nlmsghdr* h = nlmsg_hdr(msg->get());
    EXPECT_TRUE(h->nlmsg_flags & NLM_F_EXCL) << "an existing route is an error (EEXIST)";
    EXPECT_FALSE(h->nlmsg_flags & NLM_F_REPLACE);
    EXPECT_EQ(static_cast<rtmsg*>(nlmsg_data(h))->rtm_flags & RTNH_F_ONLINK, 0u);
}

// --- two hosts on a veth underlay ---

constexpr const char* kDev = "vx-0123456789ab";
constexpr const char* kBr = "br-0123456789ab";

struct Host {
    int n = 0;  // 1 or 2
    UniqueFd fd;
    std::unique_ptr<platform::LinuxKernel> k;
    std::unique_ptr<core::Netns> c;  // the container's namespace, opened by k
    UniqueFd cfd;

    // fmt, not "h" + std::to_string(): GCC 12 -O3 -Wrestrict false positive (see lib/firewall).
    std::string ns() const { return fmt::format("h{}", n); }
    std::string underlay() const { return fmt::format("u{}", n); }
    Ipv4 vtep() const { return ip(("192.0.2." + std::to_string(n)).c_str()); }
    Mac vtep_mac() const { return mac(("02:00:00:00:00:0" + std::to_string(n)).c_str()); }
    Ipv4Cidr block() const { return cidr(fmt::format("10.200.{}.0/24", n).c_str()); }
    std::string container_ip() const { return fmt::format("10.200.{}.2", n); }
    core::VxlanSpec spec() const {
        // The device's address: the block's network address as /32 (flannel's subnet.IP/32).
        return {kDev,       4100, vtep(),     4789,
                underlay(), 1450, vtep_mac(), Ipv4Cidr(block().network(), 32)};
    }
    core::VxlanPeer as_peer() const { return {block(), vtep(), vtep_mac()}; }
};

class OverlayTest : public KernelTest {
protected:
    void SetUp() override {
        KernelTest::SetUp();
        if (HasFatalFailure()) return;
        for (int n : {1, 2}) {
            Host& h = host(n);
            h.n = n;
            ASSERT_TRUE(make_ns(h.ns()));
            auto fd = netns::open(ns_path(h.ns()));
            ASSERT_TRUE(fd.ok()) << fd.error().message();
            h.fd = std::move(fd).value();
        }
        ASSERT_EQ(run("ip link add u1 netns h1 type veth peer name u2 netns h2").status, 0);
        for (Host* h : {&h1, &h2}) {
            const std::string n = "ip -n " + h->ns() + " ";
            ASSERT_EQ(run(n + "addr add " + h->vtep().str() + "/24 dev " + h->underlay()).status,
                      0);
            ASSERT_EQ(run(n + "link set " + h->underlay() + " up").status, 0);
            // The kernel object lives in the host's namespace (its socket is made there).
            in(*h, [&] {
                auto k = platform::LinuxKernel::create();
                ASSERT_TRUE(k.ok()) << k.error().message();
                h->k = std::move(k).value();
                ASSERT_TRUE(h->k->write_sysctl("net/ipv4/ip_forward", "1").ok());
            });
        }
    }
    void TearDown() override {
        for (Host* h : {&h1, &h2}) {
            h->c.reset();
            h->k.reset();
        }
        KernelTest::TearDown();
    }

    Host& host(int n) { return n == 1 ? h1 : h2; }

    // Runs `f` with the calling thread inside the host's namespace (ensure_bridge writes sysctls
    // of the namespace it runs in, as the daemon's worker does in its own).
    template <class F>
    void in(Host& h, F f) {
        auto scope = netns::ScopedNetns::enter(h.fd.get(), h.ns());
        ASSERT_TRUE(scope.ok()) << scope.error().message();
        f();
    }

    // The overlay network on host `h`: VXLAN device, bridge with the block's gateway, a container
    // with the block's .2 and the route to the whole overlay subnet via the gateway.
    void bring_up(Host& h) {
        in(h, [&] {
            auto under = h.k->link_of_address(h.vtep());
            ASSERT_TRUE(under.ok()) << under.error().message();
            EXPECT_EQ(under->first, h.underlay());
            EXPECT_EQ(under->second, 1500u);
            auto made = h.k->ensure_vxlan(h.spec());
            ASSERT_TRUE(made.ok()) << made.error().message();
            EXPECT_TRUE(*made);
            const auto gw = Ipv4Cidr(Ipv4(h.block().network().value() + 1), 24);
            auto br = h.k->ensure_bridge({kBr, gw, 1450});
            ASSERT_TRUE(br.ok()) << br.error().message();
            const std::string cpath = ns_path("c" + std::to_string(h.n));
            ASSERT_TRUE(h.k->create_netns(cpath).ok());
            auto c = h.k->open_netns(cpath);
            ASSERT_TRUE(c.ok()) << c.error().message();
            h.c = std::move(c).value();
            auto fd = netns::open(cpath);
            ASSERT_TRUE(fd.ok());
            h.cfd = std::move(fd).value();
            const std::string veth = "vethc" + std::to_string(h.n);
            auto v = h.k->create_veth({veth, kBr, "eth0", Mac::random_local(), 1450}, *h.c);
            ASSERT_TRUE(v.ok()) << v.error().message();
            ASSERT_TRUE(h.k->set_up(veth).ok());
            ASSERT_TRUE(h.c->add_address("eth0", cidr((h.container_ip() + "/24").c_str())).ok());
            ASSERT_TRUE(h.c->set_up("eth0").ok());
            auto r = h.c->add_route("eth0", cidr("10.200.0.0/16"), gw.addr());
            ASSERT_TRUE(r.ok()) << r.error().message();
        });
    }

    void add_peer(Host& h, const core::VxlanPeer& p) {
        auto r = h.k->add_vxlan_peer(kDev, p);
        ASSERT_TRUE(r.ok()) << r.error().message();
    }

    // Both hosts up, each with the other as its peer.
    void mesh() {
        bring_up(h1);
        bring_up(h2);
        add_peer(h1, h2.as_peer());
        add_peer(h2, h1.as_peer());
    }

    std::string tcp(Host& from, Host& to, int port) {
        return tcp_exchange(from.cfd.get(), to.cfd.get(), to.container_ip(), port);
    }

    nlohmann::json neigh(Host& h) { return ip_json("-n " + h.ns() + " neigh show dev " + kDev); }
    nlohmann::json routes(Host& h) { return ip_json("-n " + h.ns() + " route show dev " + kDev); }
    nlohmann::json fdb(Host& h) {
        auto r = run("bridge -n " + h.ns() + " -j fdb show dev " + kDev + " 2>/dev/null");
        EXPECT_EQ(r.status, 0);
        return r.out.empty() ? nlohmann::json::array() : nlohmann::json::parse(r.out);
    }
    nlohmann::json device(Host& h) {
        auto j = ip_json("-n " + h.ns() + " -d link show " + kDev);
        return j.empty() ? nlohmann::json::object() : j[0];
    }

    // Asserts that `h` holds exactly the three entries of peer `p` on the device.
    void expect_entries(Host& h, const core::VxlanPeer& p) {
        auto n = neigh(h);
        ASSERT_EQ(n.size(), 1u) << n.dump();
        EXPECT_EQ(n[0].value("dst", ""), p.block.network().str());
        EXPECT_EQ(n[0].value("lladdr", ""), p.mac.str());
        EXPECT_EQ(n[0]["state"], nlohmann::json::array({"PERMANENT"})) << n.dump();
        auto f = fdb(h);
        ASSERT_EQ(f.size(), 1u) << f.dump();
        EXPECT_EQ(f[0].value("mac", ""), p.mac.str());
        EXPECT_EQ(f[0].value("dst", ""), p.underlay.str());
        EXPECT_EQ(f[0].value("state", ""), "permanent") << f.dump();
        EXPECT_NE(f[0]["flags"].dump().find("self"), std::string::npos) << f.dump();
        auto r = routes(h);
        ASSERT_EQ(r.size(), 1u) << r.dump();
        EXPECT_EQ(r[0].value("dst", ""), p.block.str());
        EXPECT_EQ(r[0].value("gateway", ""), p.block.network().str());
        EXPECT_EQ(r[0]["flags"], nlohmann::json::array({"onlink"})) << r.dump();
        auto peers = h.k->vxlan_peers(kDev);
        ASSERT_TRUE(peers.ok()) << peers.error().message();
        EXPECT_EQ(*peers, std::vector<core::VxlanPeer>{p});
    }

    Host h1, h2;
};

TEST_F(OverlayTest, TrafficCrossesHostsThroughTheThreeEntries) {
    bring_up(h1);
    bring_up(h2);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_NE(tcp(h1, h2, 7001), "") << "no peer programmed: no way to the other block";
    // A stale programming of h2 (wrong underlay) first: the right one replaces it.
    add_peer(h1, {h2.block(), ip("192.0.2.99"), h2.vtep_mac()});
    add_peer(h1, h2.as_peer());
    add_peer(h2, h1.as_peer());
    EXPECT_EQ(tcp(h1, h2, 7002), "");
    EXPECT_EQ(tcp(h2, h1, 7003), "");
    expect_entries(h1, h2.as_peer());
    expect_entries(h2, h1.as_peer());

    auto d = device(h1);
    EXPECT_EQ(d.value("mtu", 0), 1450);
    EXPECT_EQ(d.value("address", ""), h1.vtep_mac().str());
    EXPECT_NE(d.value("flags", nlohmann::json::array()).dump().find("UP"), std::string::npos);
    const auto& info = d["linkinfo"];
    EXPECT_EQ(info.value("info_kind", ""), "vxlan");
    EXPECT_EQ(info["info_data"].value("id", 0), 4100);
    EXPECT_EQ(info["info_data"].value("local", ""), "192.0.2.1");
    EXPECT_EQ(info["info_data"].value("port", 0), 4789);
    EXPECT_EQ(info["info_data"].value("learning", true), false);
    EXPECT_EQ(info["info_data"].value("link", ""), "u1");
    auto addrs = ip_json("-n h1 -4 addr show dev " + std::string(kDev));
    ASSERT_EQ(addrs.size(), 1u);
    ASSERT_EQ(addrs[0]["addr_info"].size(), 1u) << addrs.dump();
    EXPECT_EQ(addrs[0]["addr_info"][0].value("local", ""), "10.200.1.0");
    EXPECT_EQ(addrs[0]["addr_info"][0].value("prefixlen", 0), 32);
    // Entries missing a part are listed with that part zero, for the caller to repair.
    ASSERT_EQ(run("bridge -n h1 fdb del " + h2.vtep_mac().str() + " dev " + kDev + " self").status,
              0);
    auto peers = h1.k->vxlan_peers(kDev);
    ASSERT_TRUE(peers.ok()) << peers.error().message();
    EXPECT_EQ(*peers, (std::vector<core::VxlanPeer>{{h2.block(), Ipv4(), h2.vtep_mac()}}));
    ASSERT_EQ(run("ip -n h1 neigh del 10.200.2.0 dev " + std::string(kDev)).status, 0);
    peers = h1.k->vxlan_peers(kDev);
    ASSERT_TRUE(peers.ok()) << peers.error().message();
    EXPECT_EQ(*peers, (std::vector<core::VxlanPeer>{{h2.block(), Ipv4(), Mac()}}));
}

TEST_F(OverlayTest, EnsureIsIdempotentAndRepairsInPlaceWithoutTouchingEntries) {
    mesh();
    ASSERT_FALSE(HasFatalFailure());
    const int ifindex = device(h1).value("ifindex", 0);
    auto again = h1.k->ensure_vxlan(h1.spec());
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_FALSE(*again);
    // Drift of what ensure adjusts in place: MTU, a stray address.
    ASSERT_EQ(run("ip -n h1 link set " + std::string(kDev) + " mtu 1400").status, 0);
    ASSERT_EQ(run("ip -n h1 addr add 10.9.9.9/32 dev " + std::string(kDev)).status, 0);
    again = h1.k->ensure_vxlan(h1.spec());
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_FALSE(*again) << "adjusted, not created";
    auto d = device(h1);
    EXPECT_EQ(d.value("ifindex", 0), ifindex);
    EXPECT_EQ(d.value("mtu", 0), 1450);
    auto addrs = ip_json("-n h1 -4 addr show dev " + std::string(kDev));
    ASSERT_EQ(addrs[0]["addr_info"].size(), 1u) << addrs.dump();
    EXPECT_EQ(addrs[0]["addr_info"][0].value("local", ""), h1.block().network().str());
    expect_entries(h1, h2.as_peer());
    EXPECT_EQ(tcp(h1, h2, 7011), "");
    // Down (someone set it down): ensure brings it up again.
    ASSERT_EQ(run("ip -n h1 link set " + std::string(kDev) + " down").status, 0);
    ASSERT_TRUE(h1.k->ensure_vxlan(h1.spec()).ok());
    EXPECT_NE(device(h1)["flags"].dump().find("UP"), std::string::npos);
    // Another MAC: the kernel flushed the neighbours with the change, so the device is made
    // again and the caller told (true) to program its peers.
    ASSERT_EQ(run("ip -n h1 link set " + std::string(kDev) + " address 02:00:00:00:00:99").status,
              0);
    again = h1.k->ensure_vxlan(h1.spec());
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_TRUE(*again);
    EXPECT_EQ(device(h1).value("address", ""), h1.vtep_mac().str());
    add_peer(h1, h2.as_peer());
    EXPECT_EQ(tcp(h1, h2, 7012), "");
}

TEST_F(OverlayTest, EnsureRecreatesADeviceWhoseVniOrPortDiffers) {
    mesh();
    ASSERT_FALSE(HasFatalFailure());
    const int ifindex = device(h1).value("ifindex", 0);
    auto spec = h1.spec();
    spec.vni = 4101;
    auto made = h1.k->ensure_vxlan(spec);
    ASSERT_TRUE(made.ok()) << made.error().message();
    EXPECT_TRUE(*made) << "a device with another VNI is made again";
    auto d = device(h1);
    EXPECT_NE(d.value("ifindex", 0), ifindex);
    EXPECT_EQ(d["linkinfo"]["info_data"].value("id", 0), 4101);
    EXPECT_EQ(d.value("address", ""), h1.vtep_mac().str()) << "same stable MAC";
    auto peers = h1.k->vxlan_peers(kDev);
    ASSERT_TRUE(peers.ok());
    EXPECT_TRUE(peers->empty()) << "the old device's entries went with it";

    spec.port = 8472;
    made = h1.k->ensure_vxlan(spec);
    ASSERT_TRUE(made.ok()) << made.error().message();
    EXPECT_TRUE(*made);
    EXPECT_EQ(device(h1)["linkinfo"]["info_data"].value("port", 0), 8472);
    made = h1.k->ensure_vxlan(spec);
    ASSERT_TRUE(made.ok());
    EXPECT_FALSE(*made);
}

TEST_F(OverlayTest, EnsureRefusesALinkOfAnotherKindHoldingTheName) {
    ASSERT_EQ(run("ip -n h1 link add " + std::string(kDev) + " type veth peer name vxp").status, 0);
    auto made = h1.k->ensure_vxlan(h1.spec());
    ASSERT_FALSE(made.ok());
    EXPECT_EQ(made.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(made.error().message().find(kDev), std::string::npos) << made.error().message();
    EXPECT_NE(made.error().message().find("veth"), std::string::npos) << made.error().message();
    EXPECT_EQ(device(h1)["linkinfo"].value("info_kind", ""), "veth") << "left alone";
}

TEST_F(OverlayTest, BadSpecsChangeNothingAndNameTheField) {
    auto spec = h1.spec();
    spec.vni = 0;
    auto r = h1.k->ensure_vxlan(spec);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(r.error().message().find("vni 0"), std::string::npos) << r.error().message();
    spec.vni = 1u << 24;
    EXPECT_FALSE(h1.k->ensure_vxlan(spec).ok());
    spec = h1.spec();
    spec.mac = Mac();
    r = h1.k->ensure_vxlan(spec);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("mac"), std::string::npos) << r.error().message();
    spec = h1.spec();
    spec.underlay = "nosuch0";
    r = h1.k->ensure_vxlan(spec);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("nosuch0"), std::string::npos) << r.error().message();
    EXPECT_EQ(run("ip -n h1 link show " + std::string(kDev) + " 2>/dev/null").status, 1)
        << "nothing created";

    ASSERT_TRUE(h1.k->ensure_vxlan(h1.spec()).ok());
    auto peer = h2.as_peer();
    peer.block = cidr("10.200.2.5/24");
    auto p = h1.k->add_vxlan_peer(kDev, peer);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(p.error().message().find("10.200.2.5/24"), std::string::npos) << p.error().message();
    EXPECT_TRUE(neigh(h1).empty());
}

TEST_F(OverlayTest, RemovePeerRemovesTheThreeEntriesAndTrafficStops) {
    mesh();
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(tcp(h1, h2, 7021), "");
    auto r = h1.k->remove_vxlan_peer(kDev, h2.as_peer());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(neigh(h1).empty()) << neigh(h1).dump();
    EXPECT_TRUE(fdb(h1).empty()) << fdb(h1).dump();
    EXPECT_TRUE(routes(h1).empty()) << routes(h1).dump();
    auto peers = h1.k->vxlan_peers(kDev);
    ASSERT_TRUE(peers.ok());
    EXPECT_TRUE(peers->empty());
    EXPECT_NE(tcp(h1, h2, 7022), "") << "no route to h2's block any more";
    r = h1.k->remove_vxlan_peer(kDev, h2.as_peer());
    EXPECT_TRUE(r.ok()) << "absent entries are success: " << r.error().message();
    EXPECT_TRUE(h1.k->remove_vxlan_peer("vx-nosuch", h2.as_peer()).ok()) << "absent device";
    add_peer(h1, h2.as_peer());
    EXPECT_EQ(tcp(h1, h2, 7023), "");
}

// A step that fails (the onlink route on a down device: ENETDOWN) undoes the entries this call
// added, and only those: an entry that existed before is replaced and stays.
TEST_F(OverlayTest, AFailedAddUndoesOnlyWhatItAdded) {
    ASSERT_TRUE(h1.k->ensure_vxlan(h1.spec()).ok());
    const std::string dev = kDev;
    ASSERT_EQ(run("ip -n h1 link set " + dev + " down").status, 0);
    const core::VxlanPeer p3{cidr("10.200.3.0/24"), ip("192.0.2.3"), mac("02:00:00:00:00:03")};
    ASSERT_EQ(run("ip -n h1 neigh add 10.200.3.0 lladdr 02:00:00:00:00:33 nud permanent dev " + dev)
                  .status,
              0);
    auto r = h1.k->add_vxlan_peer(kDev, p3);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("route"), std::string::npos) << r.error().message();
    EXPECT_TRUE(fdb(h1).empty()) << "the FDB entry this call added is gone: " << fdb(h1).dump();
    EXPECT_TRUE(routes(h1).empty());
    auto n = neigh(h1);
    ASSERT_EQ(n.size(), 1u) << "the neighbour that was there before stays: " << n.dump();
    EXPECT_EQ(n[0].value("dst", ""), "10.200.3.0");

    // A fresh peer: all its entries go again.
    const core::VxlanPeer p4{cidr("10.200.4.0/24"), ip("192.0.2.4"), mac("02:00:00:00:00:04")};
    ASSERT_FALSE(h1.k->add_vxlan_peer(kDev, p4).ok());
    n = neigh(h1);
    EXPECT_EQ(n.size(), 1u) << n.dump();
    EXPECT_TRUE(fdb(h1).empty()) << fdb(h1).dump();
}

TEST_F(KernelTest, NetnsAddRouteAndHasRoute) {
    ASSERT_TRUE(kernel->ensure_bridge({"br0", cidr("192.0.2.1/24"), 1500}).ok());
    auto c = make_ns("c");
    ASSERT_TRUE(c);
    ASSERT_TRUE(kernel->create_veth({"vethr", "br0", "eth0", Mac::random_local(), 1500}, *c).ok());
    ASSERT_TRUE(c->add_address("eth0", cidr("192.0.2.2/24")).ok());
    ASSERT_TRUE(c->set_up("eth0").ok());
    auto has = c->has_route("eth0", cidr("10.200.0.0/16"), ip("192.0.2.1"));
    ASSERT_TRUE(has.ok()) << has.error().message();
    EXPECT_FALSE(*has);
    auto r = c->add_route("eth0", cidr("10.200.0.0/16"), ip("192.0.2.1"));
    ASSERT_TRUE(r.ok()) << r.error().message();
    auto routes = ip_json("-n c route show 10.200.0.0/16");
    ASSERT_EQ(routes.size(), 1u) << routes.dump();
    EXPECT_EQ(routes[0].value("gateway", ""), "192.0.2.1");
    EXPECT_EQ(routes[0].value("dev", ""), "eth0");
    has = c->has_route("eth0", cidr("10.200.0.0/16"), ip("192.0.2.1"));
    ASSERT_TRUE(has.ok());
    EXPECT_TRUE(*has);
    EXPECT_FALSE(*c->has_route("eth0", cidr("10.200.0.0/16"), ip("192.0.2.9")));
    EXPECT_FALSE(*c->has_route("eth0", cidr("10.201.0.0/16"), ip("192.0.2.1")));
    EXPECT_FALSE(*c->has_route("eth9", cidr("10.200.0.0/16"), ip("192.0.2.1")));
    r = c->add_route("eth0", cidr("10.200.0.0/16"), ip("192.0.2.1"));
    ASSERT_FALSE(r.ok()) << "EEXIST is an error";
    EXPECT_EQ(r.error().error_number(), EEXIST) << r.error().message();
    r = c->add_route("eth0", cidr("10.200.1.5/16"), ip("192.0.2.1"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(r.error().message().find("10.200.1.5/16"), std::string::npos);
}

TEST_F(KernelTest, LinkOfAddressFindsTheLinkAndItsMtu) {
    ASSERT_EQ(run("ip link add ua mtu 1400 type veth peer name ub").status, 0);
    ASSERT_EQ(run("ip addr add 198.51.100.1/24 dev ua").status, 0);
    auto l = kernel->link_of_address(ip("198.51.100.1"));
    ASSERT_TRUE(l.ok()) << l.error().message();
    EXPECT_EQ(l->first, "ua");
    EXPECT_EQ(l->second, 1400u);
    l = kernel->link_of_address(ip("198.51.100.2"));
    ASSERT_FALSE(l.ok());
    EXPECT_EQ(l.error().kind(), ErrorKind::NotFound);
    EXPECT_NE(l.error().message().find("198.51.100.2"), std::string::npos);
}

}  // namespace
}  // namespace cnetd::ktest
