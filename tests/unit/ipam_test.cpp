#include <gtest/gtest.h>

#include <set>

#include "core/ipam.hpp"

namespace ipam_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using cnetd::core::Ipam;

namespace {
Ipv4 ip(const char* s) { return *Ipv4::parse(s); }
Ipv4Cidr cidr(const char* s) { return *Ipv4Cidr::parse(s); }
}  // namespace

TEST(Ipam, LowestFreeSkipsNetworkAndGateway) {
    Ipam ipam(cidr("172.17.0.0/16"), ip("172.17.0.1"));
    EXPECT_EQ(ipam.allocate()->str(), "172.17.0.2");
    EXPECT_EQ(ipam.allocate()->str(), "172.17.0.3");
    ipam.release(ip("172.17.0.2"));
    EXPECT_EQ(ipam.allocate()->str(), "172.17.0.2");  // reused at once, like Docker
    EXPECT_EQ(ipam.used(), 2u);
}

TEST(Ipam, GatewayInTheMiddle) {
    Ipam ipam(cidr("10.0.0.0/29"), ip("10.0.0.3"));
    std::vector<std::string> got;
    while (true) {
        auto a = ipam.allocate();
        if (!a) {
            EXPECT_EQ(a.error().message(), "no free address left in 10.0.0.0/29");
            EXPECT_EQ(a.error().kind(), ErrorKind::Conflict);
            break;
        }
        got.push_back(a->str());
    }
    EXPECT_EQ(got, (std::vector<std::string>{"10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"}));
}

TEST(Ipam, RangeLimitsDynamicButNotStatic) {
    Ipam ipam(cidr("10.1.0.0/24"), ip("10.1.0.1"), cidr("10.1.0.128/30"));
    EXPECT_EQ(ipam.allocate()->str(), "10.1.0.128");
    EXPECT_EQ(ipam.allocate()->str(), "10.1.0.129");
    EXPECT_EQ(ipam.allocate()->str(), "10.1.0.130");
    EXPECT_EQ(ipam.allocate()->str(), "10.1.0.131");
    auto full = ipam.allocate();
    ASSERT_FALSE(full.ok());
    EXPECT_EQ(full.error().message(), "no free address left in 10.1.0.128/30 (the network's ip-range)");
    EXPECT_EQ(ipam.allocate(ip("10.1.0.20"))->str(), "10.1.0.20");
}

TEST(Ipam, StaticValidation) {
    Ipam ipam(cidr("10.1.0.0/24"), ip("10.1.0.1"));
    EXPECT_TRUE(ipam.allocate(ip("10.1.0.7")).ok());
    EXPECT_EQ(ipam.allocate(ip("10.1.0.7")).error().message(), "address 10.1.0.7 is already in use");
    EXPECT_EQ(ipam.allocate(ip("10.1.0.7")).error().kind(), ErrorKind::Conflict);
    EXPECT_EQ(ipam.allocate(ip("10.2.0.7")).error().message(),
              "address 10.2.0.7 is not in the network's subnet 10.1.0.0/24");
    EXPECT_EQ(ipam.allocate(ip("10.1.0.1")).error().message(), "address 10.1.0.1 is the network's gateway");
    EXPECT_EQ(ipam.allocate(ip("10.1.0.0")).error().message(),
              "address 10.1.0.0 is the network address of 10.1.0.0/24");
    EXPECT_EQ(ipam.allocate(ip("10.1.0.255")).error().message(),
              "address 10.1.0.255 is the broadcast address of 10.1.0.0/24");
    EXPECT_TRUE(ipam.in_use(ip("10.1.0.7")));
    ipam.release(ip("10.1.0.7"));
    EXPECT_FALSE(ipam.in_use(ip("10.1.0.7")));
    ipam.release(ip("10.1.0.7"));      // double release: no-op
    ipam.release(ip("192.168.1.1"));   // foreign: no-op
    EXPECT_EQ(ipam.used(), 0u);
}

TEST(Ipam, LargeSubnetIsDenseAndUnique) {
    Ipam ipam(cidr("10.0.0.0/16"), ip("10.0.0.1"));
    std::set<uint32_t> seen;
    for (int i = 0; i < 20000; ++i) {
        auto a = ipam.allocate();
        ASSERT_TRUE(a.ok());
        ASSERT_TRUE(seen.insert(a->value()).second);
    }
    EXPECT_EQ(*seen.rbegin(), ip("10.0.0.0").value() + 20001);  // dense: no gaps
    for (uint32_t v = ip("10.0.10.0").value(); v < ip("10.0.11.0").value(); ++v) ipam.release(Ipv4(v));
    EXPECT_EQ(ipam.allocate()->str(), "10.0.10.0");
}

}  // namespace ipam_test
