// IPv6 address allocation: reserved addresses, lowest free, reuse, ranges, static rules, memory.
#include <gtest/gtest.h>

#include "core/ipam6.hpp"

namespace ipam6_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using cnetd::core::Ipam6;

namespace {
Ipv6 ip(const char* s) {
    return *Ipv6::parse(s);
}
Ipv6Cidr cidr(const char* s) {
    return *Ipv6Cidr::parse(s);
}
}  // namespace

TEST(Ipam6, LowestFreeSkipsAnycastAndGateway) {
    Ipam6 ipam(cidr("fd00:1::/64"), ip("fd00:1::1"));
    EXPECT_EQ(ipam.allocate()->str(), "fd00:1::2");
    EXPECT_EQ(ipam.allocate()->str(), "fd00:1::3");
    EXPECT_EQ(ipam.allocate()->str(), "fd00:1::4");
    ipam.release(ip("fd00:1::3"));
    EXPECT_FALSE(ipam.in_use(ip("fd00:1::3")));
    EXPECT_EQ(ipam.allocate()->str(), "fd00:1::3");  // reused at once, like Docker
    EXPECT_EQ(ipam.used(), 3u);
    EXPECT_FALSE(ipam.in_use(ip("fd00:1::1")));  // the gateway is reserved, not "in use"
    EXPECT_FALSE(ipam.in_use(ip("fd00:1::")));
}

TEST(Ipam6, GatewayInTheMiddleAndExhaustion) {
    Ipam6 ipam(cidr("fd00::/125"), ip("fd00::3"));
    std::vector<std::string> got;
    while (true) {
        auto a = ipam.allocate();
        if (!a) {
            EXPECT_EQ(a.error().message(), "no free address left in fd00::/125");
            EXPECT_EQ(a.error().kind(), ErrorKind::Conflict);
            break;
        }
        got.push_back(a->str());
    }
    // No broadcast in IPv6: the last address is handed out too.
    EXPECT_EQ(got, (std::vector<std::string>{"fd00::1", "fd00::2", "fd00::4", "fd00::5", "fd00::6",
                                             "fd00::7"}));
    EXPECT_EQ(ipam.used(), 6u);
}

TEST(Ipam6, Slash127HasNoAnycast) {
    Ipam6 ipam(cidr("fd00::/127"), ip("fd00::1"));
    EXPECT_EQ(ipam.allocate()->str(), "fd00::");
    EXPECT_FALSE(ipam.allocate().ok());
}

TEST(Ipam6, RangeLimitsDynamicButNotStatic) {
    Ipam6 ipam(cidr("fd00:2::/64"), ip("fd00:2::1"), cidr("fd00:2::8000/126"));
    EXPECT_EQ(ipam.allocate()->str(), "fd00:2::8000");  // a range's first address is usable
    EXPECT_EQ(ipam.allocate()->str(), "fd00:2::8001");
    EXPECT_EQ(ipam.allocate(ip("fd00:2::8002"))->str(), "fd00:2::8002");
    EXPECT_EQ(ipam.allocate()->str(), "fd00:2::8003");
    auto full = ipam.allocate();
    ASSERT_FALSE(full.ok());
    EXPECT_EQ(full.error().message(),
              "no free address left in fd00:2::8000/126 (the network's ip-range)");
    EXPECT_EQ(ipam.allocate(ip("fd00:2::5"))->str(), "fd00:2::5");  // outside the range: allowed
    EXPECT_EQ(ipam.used(), 5u);
}

TEST(Ipam6, StaticErrors) {
    Ipam6 ipam(cidr("fd00:3::/64"), ip("fd00:3::1"));
    auto out = ipam.allocate(ip("fd00:4::5"));
    EXPECT_EQ(out.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(out.error().message(),
              "address fd00:4::5 is not in the network's subnet fd00:3::/64");
    auto gw = ipam.allocate(ip("fd00:3::1"));
    EXPECT_EQ(gw.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(gw.error().message(), "address fd00:3::1 is the network's gateway");
    auto any = ipam.allocate(ip("fd00:3::"));
    EXPECT_EQ(any.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(any.error().message(),
              "address fd00:3:: is the subnet-router anycast address of fd00:3::/64");
    ASSERT_TRUE(
        ipam.allocate(ip("fd00:3::ffff:ffff:ffff:ffff")).ok());  // the last address: no broadcast
    auto dup = ipam.allocate(ip("fd00:3::ffff:ffff:ffff:ffff"));
    EXPECT_EQ(dup.error().kind(), ErrorKind::Conflict);
    EXPECT_EQ(dup.error().message(), "address fd00:3::ffff:ffff:ffff:ffff is already in use");
    EXPECT_EQ(ipam.used(), 1u);
    // Dynamic allocation is not disturbed by the static one far away.
    EXPECT_EQ(ipam.allocate()->str(), "fd00:3::2");
}

TEST(Ipam6, StaticFillsTheGapDynamicSkipsIt) {
    Ipam6 ipam(cidr("fd00:5::/64"), ip("fd00:5::1"));
    ASSERT_TRUE(ipam.allocate(ip("fd00:5::3")).ok());
    ASSERT_TRUE(ipam.allocate(ip("fd00:5::4")).ok());
    EXPECT_EQ(ipam.allocate()->str(), "fd00:5::2");
    EXPECT_EQ(ipam.allocate()->str(), "fd00:5::5");  // 2, 3, 4 merged into one taken run
    ipam.release(ip("fd00:5::3"));                   // splits the run
    EXPECT_TRUE(ipam.in_use(ip("fd00:5::2")));
    EXPECT_FALSE(ipam.in_use(ip("fd00:5::3")));
    EXPECT_TRUE(ipam.in_use(ip("fd00:5::4")));
    EXPECT_EQ(ipam.allocate()->str(), "fd00:5::3");
    EXPECT_EQ(ipam.used(), 4u);
}

TEST(Ipam6, ReleaseIsANoOpForFreeReservedAndForeign) {
    Ipam6 ipam(cidr("fd00:6::/64"), ip("fd00:6::1"));
    ASSERT_TRUE(ipam.allocate().ok());
    ipam.release(ip("fd00:6::1"));   // gateway
    ipam.release(ip("fd00:6::"));    // anycast
    ipam.release(ip("fd00:6::99"));  // free
    ipam.release(ip("fd00:7::2"));   // other subnet
    EXPECT_EQ(ipam.used(), 1u);
    EXPECT_EQ(ipam.allocate()->str(), "fd00:6::3");  // gateway and anycast still reserved
    ipam.release(ip("fd00:6::2"));
    ipam.release(ip("fd00:6::2"));  // twice: no-op
    EXPECT_EQ(ipam.used(), 1u);
}

TEST(Ipam6, HostBitsInSubnetAreIgnored) {
    Ipam6 ipam(cidr("fd00:8::1/64"), ip("fd00:8::1"));  // a gateway CIDR passed as subnet
    EXPECT_EQ(ipam.allocate()->str(), "fd00:8::2");
}

TEST(Ipam6, ManySequentialAllocationsStayCheap) {
    // 100000 sequential addresses are one run; every 2nd released makes 50000 runs (O(in use)).
    Ipam6 ipam(cidr("fd00:9::/64"), ip("fd00:9::1"));
    std::vector<Ipv6> got;
    for (int i = 0; i < 100000; ++i) got.push_back(*ipam.allocate());
    EXPECT_EQ(got.back().str(), "fd00:9::1:86a1");  // 2 + 99999 = 0x186a1
    for (size_t i = 0; i < got.size(); i += 2) ipam.release(got[i]);
    EXPECT_EQ(ipam.used(), 50000u);
    EXPECT_EQ(ipam.allocate()->str(), "fd00:9::2");
    EXPECT_EQ(ipam.allocate()->str(), "fd00:9::4");
}

TEST(Ipam6, U128RoundTrip) {
    using namespace cnetd::core::v6;
    for (const char* s : {"::", "::1", "fd00:1::ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                          "2001:db8::8:800:200c:417a"}) {
        EXPECT_EQ(from_u128(to_u128(ip(s))).str(), s);
    }
    EXPECT_EQ(host_mask(128), u128{0});
    EXPECT_EQ(host_mask(127), u128{1});
    EXPECT_EQ(host_mask(0), ~u128{0});
    EXPECT_EQ(from_u128(last(cidr("fd00::/64"))).str(), "fd00::ffff:ffff:ffff:ffff");
}

}  // namespace ipam6_test
