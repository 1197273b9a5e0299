// Validators of untrusted identifiers (lib/base/validate) and the strictness of the address, MAC,
// interface-name and port parsers at the edges attackers like: embedded NULs, signs, whitespace,
// leading zeros, overlong input, out-of-range numbers.
#include <string>

#include <gtest/gtest.h>

#include "base/net.hpp"
#include "base/validate.hpp"
#include "core/ports.hpp"

namespace validate_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace std::string_literals;

TEST(ValidateContainerId, CniRegex) {
    for (const char* ok : {"a", "0", "abc123", "A_b.c-d", "e5c4a1f0d2b3", "x..", "9-"})
        EXPECT_TRUE(validate_container_id(ok).ok()) << ok;
    for (std::string bad : {""s, "_a"s, ".a"s, "-a"s, "a/b"s, "../etc"s, "a b"s, "a\nb"s, "a\0b"s,
                            "a:b"s, "a%b"s, "é"s, "a\x7f"s})
        EXPECT_FALSE(validate_container_id(bad).ok()) << bad;
    auto e = validate_container_id("ab/../../x", "CNI_CONTAINERID");
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(e.error().message(),
              "CNI_CONTAINERID: container id \"ab/../../x\" contains \"/\" (allowed: "
              "[a-zA-Z0-9][a-zA-Z0-9_.-]*)");
    EXPECT_EQ(validate_container_id("").error().message(),
              "container id: container id must not be empty");
    EXPECT_EQ(validate_container_id("\x01x").error().message(),
              "container id: container id \"\\x01x\" must start with a letter or digit (allowed: "
              "[a-zA-Z0-9][a-zA-Z0-9_.-]*)");
}

TEST(ValidateContainerId, NetworkNames) {
    EXPECT_TRUE(validate_cni_network_name("cnetd-bridge").ok());
    auto e = validate_cni_network_name("a b", "name");
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().message(),
              "name: network name \"a b\" contains \" \" (allowed: [a-zA-Z0-9][a-zA-Z0-9_.-]*)");
}

TEST(ValidateContainerId, QuoteForErrorEscapesAndCuts) {
    EXPECT_EQ(quote_for_error("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\x0a\\x01\"");
    std::string big(1000, 'x');
    EXPECT_EQ(quote_for_error(big), "\"" + std::string(64, 'x') + "\"... (1000 bytes)");
}

TEST(ParserEdges, InterfaceNames) {
    EXPECT_TRUE(validate_ifname("eth0").ok());
    EXPECT_TRUE(validate_ifname(std::string(15, 'a')).ok());
    for (std::string bad : {""s, std::string(16, 'a'), "."s, ".."s, "a/b"s, "a:b"s, "a b"s, "a\tb"s,
                            "a\nb"s, "a\0b"s, "\xc3\xa9"s, "a\x7f"s})
        EXPECT_FALSE(validate_ifname(bad).ok()) << bad;
}

TEST(ParserEdges, Ipv4AndCidr) {
    for (std::string bad : {"1.2.3"s, "1.2.3.4."s, "1.2.3.4.5"s, "01.2.3.4"s, "1.2.3.256"s,
                            "+1.2.3.4"s, "-1.2.3.4"s, " 1.2.3.4"s, "1.2.3.4 "s, "1.2.3.4\0"s,
                            "1..3.4"s, "0x1.2.3.4"s, "4294967296"s, "1.2.3.4/"s, ""s})
        EXPECT_FALSE(Ipv4::parse(bad).ok()) << bad;
    for (std::string bad :
         {"10.0.0.0/33"s, "10.0.0.0/-1"s, "10.0.0.0/+8"s, "10.0.0.0/08"s, "10.0.0.0/8/8"s,
          "10.0.0.0/ 8"s, "10.0.0.0/8\0"s, "10.0.0.0"s, "/8"s, "10.0.0.0/99999999999"s})
        EXPECT_FALSE(Ipv4Cidr::parse(bad).ok()) << bad;
    EXPECT_EQ(Ipv4Cidr::parse_network("10.0.0.1/8").error().message(),
              "\"10.0.0.1/8\" has host bits set (did you mean 10.0.0.0/8?)");
    EXPECT_TRUE(Ipv4Cidr::parse("0.0.0.0/0").ok());
}

TEST(ParserEdges, Ipv6AndCidr) {
    EXPECT_TRUE(Ipv6::parse("2001:db8::1").ok());
    for (std::string bad : {"::1\0junk"s, "::1%eth0"s, "[::1]"s, "::1 "s, "1::2::3"s, ":::"s,
                            "12345::"s, "g::"s, ""s, std::string(46, ':')})
        EXPECT_FALSE(Ipv6::parse(bad).ok()) << bad;
    for (std::string bad : {"fd00::/129"s, "fd00::/-1"s, "fd00::/064"s, "fd00::"s, "fd00::/64\0"s})
        EXPECT_FALSE(Ipv6Cidr::parse(bad).ok()) << bad;
    EXPECT_FALSE(Ipv6Cidr::parse_network("fd00::1/64").ok());
}

TEST(ParserEdges, Mac) {
    EXPECT_TRUE(Mac::parse("02:42:AC:11:00:02").ok());
    for (std::string bad : {"02:42:ac:11:00"s, "02:42:ac:11:00:02:03"s, "02-42-ac-11-00-02"s,
                            "2:42:ac:11:00:02:"s, "+2:42:ac:11:00:02"s, "02:42:ac:11:00:g2"s,
                            " 2:42:ac:11:00:02"s, "02:42:ac:11:00:0\0"s, "0242.ac11.0002"s})
        EXPECT_FALSE(Mac::parse(bad).ok()) << bad;
}

TEST(ParserEdges, PortSpecs) {
    for (std::string bad : {""s,
                            "0"s,
                            "65536"s,
                            "-1"s,
                            "+80"s,
                            "80:"s,
                            ":80"s,
                            "80/tcpx"s,
                            "80/"s,
                            "8080:80/TCP/udp"s,
                            "90-80"s,
                            "8000-8010:80-90x"s,
                            "1.2.3.4:8080:80:1"s,
                            "999.1.1.1:80:80"s,
                            "080"s,
                            "80\0"s,
                            "8000-8001:80-90"s,
                            "a:80:80"s,
                            "65535-65536:80"s,
                            " 80"s})
        EXPECT_FALSE(core::parse_port_spec(bad).ok()) << bad;
    auto e = core::parse_port_spec("8000-8001:80-90");
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(e.error().message().find("8000-8001:80-90"), std::string::npos)
        << e.error().message();
}

}  // namespace validate_test
