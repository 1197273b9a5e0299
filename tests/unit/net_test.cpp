#include <gtest/gtest.h>

#include "base/error.hpp"
#include "base/net.hpp"

namespace net_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;

TEST(Ipv4, ParsesStrictly) {
    EXPECT_EQ(Ipv4::parse("172.17.0.1")->value(), 0xAC110001u);
    EXPECT_EQ(Ipv4::parse("0.0.0.0")->str(), "0.0.0.0");
    EXPECT_EQ(Ipv4::parse("255.255.255.255")->str(), "255.255.255.255");
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "1.2.3.256", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4",
                            "1..3.4", "a.b.c.d", "1.2.3.-4", "1.2.3.4/24"}) {
        auto r = Ipv4::parse(bad);
        EXPECT_FALSE(r.ok()) << bad;
        if (!r.ok()) {
            EXPECT_EQ(r.error().message(), fmt::format("\"{}\" is not an IPv4 address", bad));
            EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
        }
    }
}

TEST(Ipv4Cidr, ParsesAndComputes) {
    auto c = *Ipv4Cidr::parse("172.17.0.1/16");
    EXPECT_EQ(c.network().str(), "172.17.0.0");
    EXPECT_EQ(c.broadcast().str(), "172.17.255.255");
    EXPECT_EQ(c.size(), 65536u);
    EXPECT_TRUE(c.contains(*Ipv4::parse("172.17.200.3")));
    EXPECT_FALSE(c.contains(*Ipv4::parse("172.18.0.1")));
    EXPECT_EQ(Ipv4Cidr::parse("0.0.0.0/0")->size(), uint64_t{1} << 32);
    EXPECT_EQ(Ipv4Cidr::parse("10.0.0.0/33").error().message(), "\"10.0.0.0/33\": prefix length 33 > 32");
    EXPECT_FALSE(Ipv4Cidr::parse("10.0.0.0").ok());
    EXPECT_FALSE(Ipv4Cidr::parse("10.0.0.0/").ok());
    EXPECT_FALSE(Ipv4Cidr::parse("10.0.0.0/08").ok());
    EXPECT_FALSE(Ipv4Cidr::parse("10.0.0.0/8x").ok());
    EXPECT_EQ(Ipv4Cidr::parse_network("10.0.0.1/8").error().message(),
              "\"10.0.0.1/8\" has host bits set (did you mean 10.0.0.0/8?)");
}

TEST(Ipv4Cidr, Overlaps) {
    auto a = *Ipv4Cidr::parse("10.10.0.0/16");
    EXPECT_TRUE(a.overlaps(*Ipv4Cidr::parse("10.10.5.0/24")));
    EXPECT_TRUE(Ipv4Cidr::parse("10.10.5.0/24")->overlaps(a));
    EXPECT_FALSE(a.overlaps(*Ipv4Cidr::parse("10.11.0.0/16")));
    EXPECT_TRUE(a.overlaps(*Ipv4Cidr::parse("0.0.0.0/0")));
}

TEST(Mac, ParseFormatRandom) {
    EXPECT_EQ(Mac::parse("02:42:AC:11:00:02")->str(), "02:42:ac:11:00:02");
    for (const char* bad : {"", "02:42:ac:11:00", "02:42:ac:11:00:02:03", "02-42-ac-11-00-02", "zz:42:ac:11:00:02",
                            "02:42:ac:11:00:2"}) {
        EXPECT_FALSE(Mac::parse(bad).ok()) << bad;
    }
    for (int i = 0; i < 100; ++i) {
        Mac m = Mac::random_local();
        EXPECT_EQ(m.bytes()[0] & 0x01, 0) << m.str();  // unicast
        EXPECT_EQ(m.bytes()[0] & 0x02, 2) << m.str();  // locally administered
    }
    EXPECT_NE(Mac::random_local(), Mac::random_local());
}

TEST(IfName, Validation) {
    EXPECT_TRUE(validate_ifname("docker0").ok());
    EXPECT_TRUE(validate_ifname("abcdefghijklmno").ok());  // 15
    EXPECT_EQ(validate_ifname("abcdefghijklmnop").error().message(),
              "interface name \"abcdefghijklmnop\" is 16 characters long (the limit is 15)");
    EXPECT_FALSE(validate_ifname("").ok());
    EXPECT_FALSE(validate_ifname("a/b").ok());
    EXPECT_FALSE(validate_ifname("a b").ok());
    EXPECT_FALSE(validate_ifname("a:b").ok());
    EXPECT_FALSE(validate_ifname("..").ok());
}

TEST(RandomHex, LengthAndAlphabet) {
    std::string h = random_hex(64);
    EXPECT_EQ(h.size(), 64u);
    EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_NE(random_hex(7), random_hex(7));
}

TEST(Error, ContextFramesAndLists) {
    Result<int> r = Error::sys(EEXIST, "create veth vethc0ffee1 in /var/run/docker/netns/a");
    auto framed = std::move(r).context("connect a to bridge");
    EXPECT_EQ(framed.error().message(),
              "connect a to bridge: create veth vethc0ffee1 in /var/run/docker/netns/a: File exists");
    EXPECT_EQ(framed.error().error_number(), EEXIST);
    EXPECT_EQ(framed.error().kind(), ErrorKind::Kernel);
    ErrorList l;
    l.add(Error::not_found("x"));
    l.add(Error::conflict("y"));
    EXPECT_EQ(l.combined("teardown").message(), "teardown: x; y");
    EXPECT_EQ(l.combined("teardown").kind(), ErrorKind::NotFound);
}

}  // namespace net_test
