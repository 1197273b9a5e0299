// Default address pools: Docker's order, skipping used subnets, on-link routes and nameservers,
// a precise and bounded exhaustion message; resolv.conf parsing; IPv6 pools.
#include <gtest/gtest.h>

#include "core/pools.hpp"

namespace pools_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;

namespace {
Ipv4 ip(const char* s) {
    return *Ipv4::parse(s);
}
Ipv4Cidr net(const char* s) {
    return *Ipv4Cidr::parse_network(s);
}
Ipv6Cidr net6(const char* s) {
    return *Ipv6Cidr::parse_network(s);
}

// Every subnet of the default pools, in order, by taking them one after another.
std::vector<std::string> drain(const std::vector<AddressPool>& pools, PoolContext ctx) {
    std::vector<std::string> got;
    while (true) {
        auto r = choose_subnet(pools, ctx);
        if (!r) break;
        got.push_back(r->str());
        ctx.used.push_back(*r);
    }
    return got;
}
}  // namespace

TEST(Pools, DockerDefaultsInOrder) {
    auto got = drain(default_address_pools(), {});
    ASSERT_EQ(got.size(), 31u);
    for (int i = 0; i < 15; ++i) EXPECT_EQ(got[i], fmt::format("172.{}.0.0/16", 17 + i));
    for (int i = 0; i < 16; ++i) EXPECT_EQ(got[15 + i], fmt::format("192.168.{}.0/20", i * 16));
}

TEST(Pools, FirstIsDocker0Subnet) {
    EXPECT_EQ(choose_subnet(default_address_pools(), {})->str(), "172.17.0.0/16");
}

TEST(Pools, SkipsUsedSmallerAndLargerSubnets) {
    PoolContext ctx;
    ctx.used = {net("172.17.5.0/24"),
                net("172.16.0.0/12")};  // a /24 inside, and a /12 over 172.16-31
    EXPECT_EQ(choose_subnet(default_address_pools(), ctx)->str(), "192.168.0.0/20");
}

TEST(Pools, SkipsOnLinkRoute) {
    PoolContext ctx;
    ctx.used = {net("172.17.0.0/16")};
    ctx.onlink_routes = {net("172.18.128.0/17")};
    EXPECT_EQ(choose_subnet(default_address_pools(), ctx)->str(), "172.19.0.0/16");
}

TEST(Pools, DefaultRouteDoesNotVetoEverything) {
    PoolContext ctx;
    ctx.onlink_routes = {net("0.0.0.0/0")};
    EXPECT_EQ(choose_subnet(default_address_pools(), ctx)->str(), "172.17.0.0/16");
}

TEST(Pools, SkipsNameserver) {
    PoolContext ctx;
    ctx.nameservers = {ip("172.17.0.53"), ip("8.8.8.8")};
    EXPECT_EQ(choose_subnet(default_address_pools(), ctx)->str(), "172.18.0.0/16");
}

TEST(Pools, CustomPools) {
    std::vector<AddressPool> pools = {{net("10.10.0.0/16"), 24}, {net("10.20.0.0/30"), 30}};
    PoolContext ctx;
    ctx.used = {net("10.10.0.0/24"), net("10.10.1.0/25")};
    ctx.nameservers = {ip("10.10.2.1")};
    EXPECT_EQ(choose_subnet(pools, ctx)->str(), "10.10.3.0/24");
    ctx.used = {net("10.10.0.0/16")};
    EXPECT_EQ(choose_subnet(pools, ctx)->str(), "10.20.0.0/30");
}

TEST(Pools, ExhaustionMessageNamesPoolsAndReasons) {
    PoolContext ctx;
    // 29 of the 31 taken by networks (every /16 but 172.20 and 172.31, all of 192.168/16).
    for (int i = 17; i <= 31; ++i) {
        if (i != 20 && i != 31)
            ctx.used.push_back(Ipv4Cidr(Ipv4((172u << 24) | (unsigned(i) << 16)), 16));
    }
    ctx.used.push_back(net("192.168.0.0/16"));
    ctx.onlink_routes = {net("172.20.0.0/16"), net("10.0.0.0/8")};
    ctx.nameservers = {ip("172.31.0.53"), ip("1.1.1.1")};
    auto r = choose_subnet(default_address_pools(), ctx);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
    EXPECT_EQ(r.error().message(),
              "no free subnet in the default address pools 172.17.0.0/16, 172.18.0.0/16, "
              "172.19.0.0/16, 172.20.0.0/14 as /16s, 172.24.0.0/14 as /16s, 172.28.0.0/14 as /16s, "
              "192.168.0.0/16 as /20s (31 subnets: 29 used by networks, 1 overlaps on-link route "
              "172.20.0.0/16 on the host, 1 overlaps nameserver 172.31.0.53); give the network a "
              "subnet, remove unused networks or add pools to default-address-pools");
}

TEST(Pools, ExhaustionMessageIsBounded) {
    // A huge pool fully covered by thousands of small routes: the scan stays cheap and the
    // message names only a few of them.
    std::vector<AddressPool> pools;
    for (int i = 0; i < 20; ++i)
        pools.push_back({Ipv4Cidr(Ipv4((10u << 24) | (unsigned(i) << 16)), 16), 28});
    PoolContext ctx;
    for (uint32_t i = 0; i < 20 * 256; ++i)
        ctx.onlink_routes.push_back(Ipv4Cidr(Ipv4((10u << 24) | (i << 8)), 24));
    auto r = choose_subnet(pools, ctx);
    ASSERT_FALSE(r.ok());
    const std::string& m = r.error().message();
    EXPECT_LT(m.size(), 500u) << m;
    EXPECT_NE(m.find("the configured default-address-pools 10.0.0.0/16 as /28s"), std::string::npos)
        << m;
    EXPECT_NE(m.find("and 12 more"), std::string::npos) << m;  // 20 pools, 8 named
    EXPECT_NE(m.find("(81920 subnets: 81920 overlap on-link routes 10.0.0.0/24, 10.0.1.0/24, "
                     "10.0.2.0/24, 10.0.3.0/24 and 5116 more on the host)"),
              std::string::npos)
        << m;
}

TEST(Pools, BigPoolCoveredByOneNetworkIsSkippedArithmetically) {
    // 2^23 candidate /31s, all inside one used /8: must not iterate them one by one.
    std::vector<AddressPool> pools = {{net("10.0.0.0/8"), 31}, {net("100.64.0.0/10"), 31}};
    PoolContext ctx;
    ctx.used = {net("10.0.0.0/8"), net("100.64.0.0/31")};
    EXPECT_EQ(choose_subnet(pools, ctx)->str(), "100.64.0.2/31");
}

TEST(Pools, ValidatePool) {
    EXPECT_TRUE(validate_pool({net("10.0.0.0/8"), 24}).ok());
    EXPECT_EQ(
        validate_pool({net("10.0.0.0/16"), 8}).error().message(),
        "size 8 is shorter than the prefix of base 10.0.0.0/16 (size must be between 16 and 31)");
    EXPECT_EQ(
        validate_pool({net("10.0.0.0/16"), 32}).error().message(),
        "size 32 leaves no room for a gateway and a container (size must be between 16 and 31)");
    EXPECT_EQ(validate_pool({*Ipv4Cidr::parse("10.0.0.1/16"), 24}).error().message(),
              "base 10.0.0.1/16 has host bits set (did you mean 10.0.0.0/16?)");
    auto r = choose_subnet({{net("10.0.0.0/16"), 8}}, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    auto e = choose_subnet({}, {});
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().kind(), ErrorKind::Conflict);
}

TEST(Pools, ReadNameservers) {
    auto ns = read_nameservers(
        "# generated\n"
        "search example.org\n"
        "nameserver 192.0.2.53\n"
        "nameserver\t198.51.100.1   # trailing comment\r\n"
        "  nameserver 203.0.113.9\n"
        "nameserver 2001:db8::53\n"
        "#nameserver 10.0.0.1\n"
        "; nameserver 10.0.0.2\n"
        "nameserver 192.0.2.53\n"
        "nameserver 300.1.1.1\n"
        "nameserver\n"
        "nameservers 10.0.0.3\n"
        "options edns0\n"
        "nameserver 10.9.9.9");  // no final newline
    std::vector<std::string> got;
    for (auto a : ns) got.push_back(a.str());
    EXPECT_EQ(got,
              (std::vector<std::string>{"192.0.2.53", "198.51.100.1", "203.0.113.9", "10.9.9.9"}));
    EXPECT_TRUE(read_nameservers("").empty());
}

TEST(Pools6, FirstFreeAndValidation) {
    std::vector<AddressPool6> pools = {{net6("fd00:1::/48"), 64}};
    EXPECT_EQ(choose_subnet6(pools, {})->str(), "fd00:1::/64");
    EXPECT_EQ(choose_subnet6(pools, {net6("fd00:1::/63")})->str(), "fd00:1:0:2::/64");
    EXPECT_EQ(
        validate_pool(AddressPool6{net6("fe80::/64"), 64}).error().message(),
        "base fe80::/64 is not a unicast range for networks (use a ULA fdxx:xxxx:xxxx::/48 or a "
        "global prefix)");
    EXPECT_FALSE(validate_pool(AddressPool6{net6("fd00::/48"), 40}).ok());
    EXPECT_FALSE(validate_pool(AddressPool6{net6("fd00::/48"), 127}).ok());
}

TEST(Pools6, ExhaustedPoolNamesTheNetworks) {
    std::vector<AddressPool6> pools = {{net6("fd00:1::/62"), 64}};
    auto r =
        choose_subnet6(pools, {net6("fd00:1::/64"), net6("fd00:1:0:1::/64"), net6("fd00::/16")});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
    EXPECT_EQ(r.error().message(),
              "no free IPv6 subnet in fd00:1::/62 as /64s: every candidate overlaps the subnets of "
              "networks (fd00:1::/64, fd00::/16)");
}

TEST(Pools6, LastCandidatesOfAPool) {
    // The last /124 of fc00::/7 (ff00::/8 above it is multicast, refused as a pool).
    std::vector<AddressPool6> pools = {{net6("fcff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124"), 126}};
    auto r = choose_subnet6(pools, {net6("fcff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124")});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
    EXPECT_EQ(choose_subnet6(pools, {net6("fcff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/125")})->str(),
              "fcff:ffff:ffff:ffff:ffff:ffff:ffff:fff8/126");
}

}  // namespace pools_test
