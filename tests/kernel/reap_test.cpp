// Retiring and reaping veth pairs (netlink/reap.hpp, LinuxKernel::retire_veth): a detach takes the
// pair out of service at once and one RTM_DELLINK by IFLA_GROUP deletes every retired pair. Checked
// against `ip -j` in the test's namespaces.
#include <chrono>
#include <cstdio>
#include <string>

#include "kernel_fixture.hpp"
#include "netlink/reap.hpp"
#include "netlink/socket.hpp"
#include "netns/netns.hpp"

namespace cnetd::ktest {
namespace {


nlohmann::json find_link(const std::string& name, const std::string& ns = "") {
    auto r = run("ip " + (ns.empty() ? std::string() : "-n " + ns + " ") + "-j -d link show dev " +
                 name + " 2>/dev/null");
    if (r.status != 0) return nlohmann::json();
    auto j = nlohmann::json::parse(r.out);
    return j.empty() ? nlohmann::json() : j[0];
}

bool exists(const std::string& name, const std::string& ns = "") {
    return !find_link(name, ns).is_null();
}



class ReapTest : public BridgeKernelTest {
protected:
    // An attached endpoint: netns `name`, host end `host`, container end `peer` with an address.
    std::unique_ptr<core::Netns> attach(const std::string& name, const std::string& host,
                                        const std::string& peer, int ip) {
        auto ns = make_ns(name);
        if (!ns) return nullptr;
        attach_in(*ns, host, peer, ip);
        return ns;
    }
    void attach_in(core::Netns& ns, const std::string& host, const std::string& peer, int ip) {
        auto steps = {
            kernel->create_veth({host, "br0", peer, Mac::random_local(), 1500}, ns),
            kernel->set_up(host),
            ns.add_address(peer, cidr(fmt::format("192.0.2.{}/24", ip).c_str())),
            ns.set_up(peer),
        };
        for (const auto& s : steps) EXPECT_TRUE(s.ok()) << s.error().message();
    }
};

// The primitives: retire_host leaves the pair down, off the bridge and in the reap group;
// retire_peer frees the container's name at once; one group deletion removes both ends.
TEST_F(ReapTest, RetiredPairIsOutOfServiceUntilTheGroupDeletion) {
    auto ns = attach("c1", "vethaaa0001", "eth0", 2);
    ASSERT_TRUE(ns);
    auto sock = netlink::RouteSocket::open_current();
    ASSERT_TRUE(sock.ok());
    auto nsock = netlink::RouteSocket::open_in(netns::open(ns_path("c1"))->get(), "c1");
    ASSERT_TRUE(nsock.ok());

    auto r = netlink::retire_host(*sock, "vethaaa0001");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(*r);
    auto host = find_link("vethaaa0001");
    ASSERT_FALSE(host.is_null());
    EXPECT_FALSE(has_flag(host, "UP")) << host.dump();
    EXPECT_FALSE(host.contains("master")) << host.dump();
    EXPECT_EQ(host["group"], std::to_string(netlink::kReapGroup)) << host.dump();
    EXPECT_TRUE(ip_json("link show master br0").empty()) << "the bridge lost its port";

    auto p = netlink::retire_peer(*nsock, "eth0", netlink::retired_peer_name("vethaaa0001"));
    ASSERT_TRUE(p.ok()) << p.error().message();
    EXPECT_FALSE(exists("eth0", "c1")) << "the container's eth0 is gone at once";
    auto peer = find_link("rvethaaa0001", "c1");
    ASSERT_FALSE(peer.is_null());
    EXPECT_FALSE(has_flag(peer, "UP")) << peer.dump();

    auto d = netlink::delete_group(*sock, netlink::kReapGroup);
    ASSERT_TRUE(d.ok()) << d.error().message();
    EXPECT_FALSE(exists("vethaaa0001"));
    EXPECT_EQ(link_count("c1"), 1u) << "only lo: the peer went with its host end";
    // Absent and empty are success.
    EXPECT_FALSE(*netlink::retire_host(*sock, "vethaaa0001"));
    EXPECT_TRUE(netlink::retire_peer(*nsock, "eth0", "rx").ok());
    EXPECT_TRUE(netlink::delete_group(*sock, netlink::kReapGroup).ok());
}

// One RTM_DELLINK removes every queued pair, both ends, and nothing else.
TEST_F(ReapTest, OneGroupDeletionRemovesAllQueuedPairsAndNothingElse) {
    constexpr int kPairs = 20;
    std::vector<std::unique_ptr<core::Netns>> nss;
    for (int i = 0; i < kPairs; ++i) {
        nss.push_back(attach(fmt::format("q{}", i), fmt::format("vethq{:07}", i), "eth0", 10 + i));
        ASSERT_TRUE(nss.back());
    }
    auto keep = attach("keep", "vethkeep001", "eth0", 100);
    ASSERT_TRUE(keep);
    auto sock = netlink::RouteSocket::open_current();
    ASSERT_TRUE(sock.ok());
    for (int i = 0; i < kPairs; ++i)
        ASSERT_TRUE(*netlink::retire_host(*sock, fmt::format("vethq{:07}", i)));
    ASSERT_TRUE(netlink::delete_group(*sock, netlink::kReapGroup).ok());
    for (int i = 0; i < kPairs; ++i) {
        EXPECT_FALSE(exists(fmt::format("vethq{:07}", i)));
        EXPECT_EQ(link_count(fmt::format("q{}", i)), 1u) << "peer of pair " << i;
    }
    EXPECT_TRUE(exists("vethkeep001"));
    EXPECT_TRUE(exists("eth0", "keep"));
    EXPECT_EQ(ip_json("link show master br0").size(), 1u);
}

// Through LinuxKernel: the container loses its interface at once, the reaper deletes the pair,
// flush_retired() waits for it.
TEST_F(ReapTest, RetireVethThenFlushDeletesBothEnds) {
    auto ns = attach("c1", "vethbbb0001", "eth0", 2);
    ASSERT_TRUE(ns);
    auto r = kernel->retire_veth("vethbbb0001", ns.get(), "eth0");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(exists("eth0", "c1"));
    EXPECT_TRUE(ip_json("link show master br0").empty());
    auto f = kernel->flush_retired();
    ASSERT_TRUE(f.ok()) << f.error().message();
    EXPECT_FALSE(exists("vethbbb0001"));
    EXPECT_EQ(link_count("c1"), 1u);
    // Absent: success, nothing queued.
    EXPECT_TRUE(kernel->retire_veth("vethbbb0001", ns.get(), "eth0").ok());
    EXPECT_TRUE(kernel->flush_retired().ok());
}

// CNI DEL then ADD of the same ifname in the same namespace works at once, before any reaping.
TEST_F(ReapTest, SameIfnameCanBeAttachedAgainImmediately) {
    auto ns = attach("c1", "vethccc0001", "eth0", 2);
    ASSERT_TRUE(ns);
    const std::string old_mac = find_link("eth0", "c1")["address"];
    ASSERT_TRUE(kernel->retire_veth("vethccc0001", ns.get(), "eth0").ok());
    auto again =
        kernel->create_veth({"vethccc0002", "br0", "eth0", Mac::random_local(), 1500}, *ns);
    ASSERT_TRUE(again.ok()) << again.error().message();
    auto eth0 = find_link("eth0", "c1");
    ASSERT_FALSE(eth0.is_null());
    EXPECT_NE(eth0["address"], old_mac);
    auto name = ns->free_ifname("eth");
    ASSERT_TRUE(name.ok());
    EXPECT_EQ(*name, "eth1");
    ASSERT_TRUE(kernel->flush_retired().ok());
    EXPECT_FALSE(exists("vethccc0001"));
    EXPECT_TRUE(exists("vethccc0002"));
    EXPECT_TRUE(exists("eth0", "c1"));
    EXPECT_EQ(link_count("c1"), 2u) << "lo and the new eth0";
}

// Without the container's namespace (gone, or not given) the host end is retired and the pair
// still reaped.
TEST_F(ReapTest, RetireWithoutTheNamespaceStillDeletesThePair) {
    auto ns = attach("c1", "vethddd0001", "eth0", 2);
    ASSERT_TRUE(ns);
    ASSERT_TRUE(kernel->retire_veth("vethddd0001", nullptr, "eth0").ok());
    ASSERT_TRUE(kernel->flush_retired().ok());
    EXPECT_FALSE(exists("vethddd0001"));
    EXPECT_EQ(link_count("c1"), 1u);
}

// A daemon stop (the kernel object's destruction) deletes what is queued; a start deletes what a
// crashed run left in the group.
TEST_F(ReapTest, StopFlushesAndStartDeletesLeftovers) {
    auto a = attach("c1", "vetheee0001", "eth0", 2);
    auto b = attach("c2", "vetheee0002", "eth0", 3);
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(kernel->retire_veth("vetheee0001", a.get(), "eth0").ok());
    kernel.reset();
    EXPECT_FALSE(exists("vetheee0001"));
    EXPECT_EQ(link_count("c1"), 1u);

    // A crash between retiring and reaping: the link sits in the group with nobody to reap it.
    auto sock = netlink::RouteSocket::open_current();
    ASSERT_TRUE(sock.ok());
    ASSERT_TRUE(*netlink::retire_host(*sock, "vetheee0002"));
    auto k = platform::LinuxKernel::create();
    ASSERT_TRUE(k.ok()) << k.error().message();
    kernel = std::move(k).value();
    EXPECT_FALSE(exists("vetheee0002"));
    EXPECT_EQ(link_count("c2"), 1u);
}

// Many detaches: the retirements are cheap and the reaper batches the deletions. Prints the times
// (the speed target is the benchmark's); asserts that everything is gone and the batches were few.
TEST_F(ReapTest, ManyRetirementsAreBatched) {
    constexpr int kPairs = 60;
    std::vector<std::unique_ptr<core::Netns>> nss;
    for (int i = 0; i < kPairs; ++i) {
        nss.push_back(attach(fmt::format("m{}", i), fmt::format("vethm{:07}", i), "eth0", 2 + i));
        ASSERT_TRUE(nss.back());
    }
    auto reaper = netlink::Reaper::start();
    ASSERT_TRUE(reaper.ok());
    auto sock = netlink::RouteSocket::open_current();
    ASSERT_TRUE(sock.ok());
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kPairs; ++i) {
        ASSERT_TRUE(*netlink::retire_host(*sock, fmt::format("vethm{:07}", i)));
        (*reaper)->queued();
    }
    auto t1 = std::chrono::steady_clock::now();
    ASSERT_TRUE((*reaper)->flush().ok());
    auto t2 = std::chrono::steady_clock::now();
    using ms = std::chrono::duration<double, std::milli>;
    std::printf("%d retirements: %.1f ms, then flush: %.1f ms, %llu batches\n", kPairs,
                ms(t1 - t0).count(), ms(t2 - t1).count(),
                static_cast<unsigned long long>((*reaper)->batches()));
    EXPECT_EQ((*reaper)->pending(), 0u);
    EXPECT_LT((*reaper)->batches(), static_cast<uint64_t>(kPairs)) << "no batching at all";
    for (int i = 0; i < kPairs; ++i) EXPECT_FALSE(exists(fmt::format("vethm{:07}", i)));
    EXPECT_EQ(link_count(), 2u) << "lo and br0";
}

}  // namespace
}  // namespace cnetd::ktest
