// LinuxKernel's own state of an open namespace (its fd, its route socket, the interface indexes
// its steps resolved): found through the abstract core::Netns, so a wrapped Netns (the failpoint
// decorator) serves create_veth, restore_netns and retire_veth; and one handle's steps resolve an
// interface name once, until this code creates, retires or deletes a link of that name.
#include <string>

#include "core/failpoint_wrappers.hpp"
#include "kernel_fixture.hpp"
#include "netns/netns.hpp"

namespace cnetd::ktest {
namespace {


// The IPv4 addresses on `dev` in namespace `ns`, as `ip` sees them.
std::vector<std::string> addrs4(const std::string& dev, const std::string& ns) {
    std::vector<std::string> out;
    auto j = ip_json("-n " + ns + " addr show dev " + dev);
    if (j.empty()) return out;
    for (const auto& a : j[0]["addr_info"])
        if (a["family"] == "inet") out.push_back(a["local"].get<std::string>());
    return out;
}

class NetnsHandleTest : public BridgeKernelTest {
protected:
    core::VethSpec veth(const char* host, const char* peer) {
        return {host, "br0", peer, Mac::random_local(), 1500};
    }
};

// The failpoint decorator forwards to the real Netns; the kernel must not need its dynamic type.
TEST_F(NetnsHandleTest, WrappedNetnsServesCreateVethAndRestore) {
    auto inner = make_ns("c1");
    ASSERT_TRUE(inner);
    const core::NetnsId id = inner->id();
    core::FailpointNetns ns(std::move(inner));

    auto made = kernel->create_veth(veth("vethwrap1", "eth0"), ns);
    ASSERT_TRUE(made.ok()) << made.error().message();
    EXPECT_EQ(ip_json("-n c1 link show dev eth0").size(), 1u) << "peer born inside c1";

    // The netns file goes and comes back naming the very namespace the wrapper holds.
    ASSERT_TRUE(kernel->delete_netns(ns_path("c1")).ok());
    auto back = kernel->restore_netns(ns_path("c1"), ns);
    ASSERT_TRUE(back.ok()) << back.error().message();
    auto fd = netns::open(ns_path("c1"));
    ASSERT_TRUE(fd.ok()) << fd.error().message();
    EXPECT_EQ(netns::identity(fd->get()).value(), id);
}

TEST_F(NetnsHandleTest, WrappedNetnsRetiresThePeerAtOnce) {
    core::FailpointNetns ns(make_ns("c1"));
    ASSERT_TRUE(kernel->create_veth(veth("vethwrap2", "eth0"), ns).ok());
    ASSERT_TRUE(kernel->retire_veth("vethwrap2", &ns, "eth0").ok());
    // Renamed inside the namespace by retire_veth itself (the reaper may delete it any moment
    // after): the name is free for the next attach either way.
    EXPECT_NE(run("ip -n c1 link show dev eth0 2>/dev/null").status, 0);
    ASSERT_TRUE(kernel->flush_retired().ok());
    EXPECT_NE(run("ip link show dev vethwrap2 2>/dev/null").status, 0);
}

// A rename behind the handle's back shows the steps reuse the index the first step resolved.
TEST_F(NetnsHandleTest, StepsOfOneHandleResolveTheInterfaceOnce) {
    auto ns = make_ns("c1");
    ASSERT_TRUE(ns);
    ASSERT_TRUE(kernel->create_veth(veth("vethidx1", "eth0"), *ns).ok());
    auto first = ns->add_address("eth0", cidr("192.0.2.2/24"));
    ASSERT_TRUE(first.ok()) << first.error().message();
    ASSERT_EQ(run("ip -n c1 link set dev eth0 name other0").status, 0);
    auto second = ns->add_address("eth0", cidr("192.0.2.3/24"));
    ASSERT_TRUE(second.ok()) << second.error().message();
    EXPECT_EQ(addrs4("other0", "c1"), (std::vector<std::string>{"192.0.2.2", "192.0.2.3"}));
}

// A link this code makes again under the same name is looked up afresh, through every handle.
TEST_F(NetnsHandleTest, RecreatedPeerIsResolvedAfresh) {
    auto ns = make_ns("c1");
    ASSERT_TRUE(ns);
    auto other = kernel->open_netns(ns_path("c1"));  // a second handle of the same namespace
    ASSERT_TRUE(other.ok()) << other.error().message();
    ASSERT_TRUE(kernel->create_veth(veth("vethidx2", "eth0"), *ns).ok());
    ASSERT_TRUE(ns->add_address("eth0", cidr("192.0.2.2/24")).ok());
    ASSERT_TRUE((*other)->add_address("eth0", cidr("192.0.2.2/24")).ok());
    ASSERT_TRUE(kernel->delete_link("vethidx2").ok());  // the pair, behind both handles' backs

    ASSERT_TRUE(kernel->create_veth(veth("vethidx3", "eth0"), *ns).ok());
    auto r = ns->add_address("eth0", cidr("192.0.2.4/24"));
    ASSERT_TRUE(r.ok()) << r.error().message();
    auto r2 = (*other)->add_address("eth0", cidr("192.0.2.5/24"));
    ASSERT_TRUE(r2.ok()) << r2.error().message();
    EXPECT_EQ(addrs4("eth0", "c1"), (std::vector<std::string>{"192.0.2.4", "192.0.2.5"}));

    // Deleted through the handle: the next step names the missing link, as without a cache.
    ASSERT_TRUE(ns->delete_link("eth0").ok());
    auto gone = ns->add_address("eth0", cidr("192.0.2.6/24"));
    ASSERT_FALSE(gone.ok());
    EXPECT_EQ(gone.error().message(),
              "add address 192.0.2.6/24 to eth0 in " + ns_path("c1") + ": No such device");
}

}  // namespace
}  // namespace cnetd::ktest
