// build_veth_create() / build_bridge_create() decoded without a kernel: the request carries
// everything in one message (host name, MTU, master; peer name, MAC, MTU, netns fd).
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "kernel_fixture.hpp"
#include "netlink/bridge.hpp"
#include "netlink/veth.hpp"

namespace cnetd::ktest {
namespace {

std::string str(nlattr* a) {
    return a ? std::string(static_cast<const char*>(nla_data(a))) : "";
}

TEST(VethMessage, OneRequestCarriesBothEnds) {
    netlink::VethParams p{"vethc0ffee1", 42, "eth0", Mac::parse("02:aa:bb:cc:dd:ee").value(),
                          1450,          7};
    auto msg = netlink::build_veth_create(p);
    ASSERT_TRUE(msg.ok()) << msg.error().message();
    nlmsghdr* h = nlmsg_hdr(msg->get());
    EXPECT_EQ(h->nlmsg_type, RTM_NEWLINK);
    EXPECT_TRUE(h->nlmsg_flags & NLM_F_CREATE);
    EXPECT_TRUE(h->nlmsg_flags & NLM_F_EXCL) << "an existing name must fail, not be modified";

    nlattr* tb[IFLA_MAX + 1] = {};
    ASSERT_EQ(nlmsg_parse(h, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr), 0);
    EXPECT_EQ(str(tb[IFLA_IFNAME]), "vethc0ffee1");
    ASSERT_TRUE(tb[IFLA_MTU]);
    EXPECT_EQ(nla_get_u32(tb[IFLA_MTU]), 1450u);
    ASSERT_TRUE(tb[IFLA_MASTER]) << "master set in the same message";
    EXPECT_EQ(nla_get_u32(tb[IFLA_MASTER]), 42u);
    EXPECT_FALSE(tb[IFLA_NET_NS_FD]) << "the host end stays in our namespace";

    ASSERT_TRUE(tb[IFLA_LINKINFO]);
    nlattr* li[IFLA_INFO_MAX + 1] = {};
    ASSERT_EQ(nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], nullptr), 0);
    EXPECT_EQ(str(li[IFLA_INFO_KIND]), "veth");
    ASSERT_TRUE(li[IFLA_INFO_DATA]);
    nlattr* vi[VETH_INFO_MAX + 1] = {};
    ASSERT_EQ(nla_parse_nested(vi, VETH_INFO_MAX, li[IFLA_INFO_DATA], nullptr), 0);
    ASSERT_TRUE(vi[VETH_INFO_PEER]);
    // VETH_INFO_PEER = struct ifinfomsg followed by link attributes.
    auto* peer_attrs = reinterpret_cast<nlattr*>(static_cast<char*>(nla_data(vi[VETH_INFO_PEER])) +
                                                 NLMSG_ALIGN(sizeof(ifinfomsg)));
    int peer_len = nla_len(vi[VETH_INFO_PEER]) - static_cast<int>(NLMSG_ALIGN(sizeof(ifinfomsg)));
    nlattr* pt[IFLA_MAX + 1] = {};
    ASSERT_EQ(nla_parse(pt, IFLA_MAX, peer_attrs, peer_len, nullptr), 0);
    EXPECT_EQ(str(pt[IFLA_IFNAME]), "eth0");
    EXPECT_EQ(mac_of(pt[IFLA_ADDRESS]), "02:aa:bb:cc:dd:ee");
    ASSERT_TRUE(pt[IFLA_MTU]);
    EXPECT_EQ(nla_get_u32(pt[IFLA_MTU]), 1450u);
    ASSERT_TRUE(pt[IFLA_NET_NS_FD]) << "peer is born inside the target netns";
    EXPECT_EQ(nla_get_u32(pt[IFLA_NET_NS_FD]), 7u);
    EXPECT_FALSE(pt[IFLA_MASTER]);
}

TEST(VethMessage, InvalidNamesAreRejectedBeforeAnyKernelCall) {
    netlink::VethParams p{"this-name-is-too-long", 0, "eth0", Mac::random_local(), 1500, -1};
    auto msg = netlink::build_veth_create(p);
    ASSERT_FALSE(msg.ok());
    EXPECT_NE(msg.error().message().find("create veth this-name-is-too-long"), std::string::npos)
        << msg.error().message();
    p.host_name = "vethok";
    p.peer_name = "bad/name";
    EXPECT_FALSE(netlink::build_veth_create(p).ok());
}

TEST(BridgeMessage, CarriesKindNameMacMtu) {
    auto msg = netlink::build_bridge_create("br0", Mac::parse("06:00:00:00:00:01").value(), 1400);
    ASSERT_TRUE(msg.ok());
    nlmsghdr* h = nlmsg_hdr(msg->get());
    EXPECT_TRUE(h->nlmsg_flags & NLM_F_EXCL);
    nlattr* tb[IFLA_MAX + 1] = {};
    ASSERT_EQ(nlmsg_parse(h, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr), 0);
    EXPECT_EQ(str(tb[IFLA_IFNAME]), "br0");
    EXPECT_EQ(mac_of(tb[IFLA_ADDRESS]), "06:00:00:00:00:01");
    EXPECT_EQ(nla_get_u32(tb[IFLA_MTU]), 1400u);
    nlattr* li[IFLA_INFO_MAX + 1] = {};
    ASSERT_EQ(nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], nullptr), 0);
    EXPECT_EQ(str(li[IFLA_INFO_KIND]), "bridge");
}

}  // namespace
}  // namespace cnetd::ktest
