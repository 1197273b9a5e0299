#include <gtest/gtest.h>

#include "core/ports.hpp"

namespace ports_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;

namespace {
PortRequest one(std::string_view spec) {
    auto r = parse_port_spec(spec);
    EXPECT_TRUE(r.ok()) << spec << ": " << (r.ok() ? "" : r.error().message());
    EXPECT_EQ(r.ok() ? r->size() : 0u, 1u) << spec;
    return r.ok() && !r->empty() ? (*r)[0] : PortRequest{};
}
std::string err(std::string_view spec) {
    auto r = parse_port_spec(spec);
    EXPECT_FALSE(r.ok()) << spec;
    return r.ok() ? "" : r.error().message();
}
Ipv4 ip(const char* s) { return *Ipv4::parse(s); }
}  // namespace

TEST(PortSpec, DockerForms) {
    EXPECT_EQ(one("80"), (PortRequest{Proto::Tcp, std::nullopt, {0, 0}, {80, 80}}));
    EXPECT_EQ(one("8080:80"), (PortRequest{Proto::Tcp, std::nullopt, {8080, 8080}, {80, 80}}));
    EXPECT_EQ(one("8080:80/udp"), (PortRequest{Proto::Udp, std::nullopt, {8080, 8080}, {80, 80}}));
    EXPECT_EQ(one("8080:80/sctp").proto, Proto::Sctp);
    EXPECT_EQ(one("127.0.0.1:8080:80"), (PortRequest{Proto::Tcp, ip("127.0.0.1"), {8080, 8080}, {80, 80}}));
    EXPECT_EQ(one("192.0.2.1::80"), (PortRequest{Proto::Tcp, ip("192.0.2.1"), {0, 0}, {80, 80}}));
    EXPECT_EQ(one("0.0.0.0:8080:80").host_ip, ip("0.0.0.0"));  // explicit: overrides defaults
    PortAllocator a;
    auto any = a.allocate(one("0.0.0.0:8080:80"));
    ASSERT_TRUE(any.ok());
    EXPECT_EQ(any->front().host_ip, std::nullopt);  // bound as "every address"
    EXPECT_EQ(any->front().str(), "0.0.0.0:8080->80/tcp");
    EXPECT_EQ(one("8000-8010:80"), (PortRequest{Proto::Tcp, std::nullopt, {8000, 8010}, {80, 80}}));
    EXPECT_EQ(one("8000-8010:80-90"), (PortRequest{Proto::Tcp, std::nullopt, {8000, 8010}, {80, 90}}));
    auto many = parse_port_spec("80-82/udp");
    ASSERT_TRUE(many.ok());
    ASSERT_EQ(many->size(), 3u);
    EXPECT_EQ((*many)[2], (PortRequest{Proto::Udp, std::nullopt, {0, 0}, {82, 82}}));
}

TEST(PortSpec, PreciseErrors) {
    EXPECT_EQ(err(""), "port spec is empty");
    EXPECT_EQ(err("0"), "port spec \"0\": \"0\" is not a port (1-65535)");
    EXPECT_EQ(err("65536:80"), "port spec \"65536:80\": \"65536\" is not a port (1-65535)");
    EXPECT_EQ(err("8080:80/icmp"), "port spec \"8080:80/icmp\": protocol \"icmp\" is not one of tcp, udp, sctp");
    EXPECT_EQ(err("8000-8010:80-85"), "port spec \"8000-8010:80-85\": host range has 11 ports but container range has 6");
    EXPECT_EQ(err("90-80"), "port spec \"90-80\": range 90-80 ends before it starts");
    EXPECT_EQ(err("1.2.3:8080:80"), "port spec \"1.2.3:8080:80\": \"1.2.3\" is not an IPv4 address");
    EXPECT_EQ(err("[::1]8080:80"), "port spec \"[::1]8080:80\": expected [IPv6]:HOSTPORT:CONTAINERPORT");
    EXPECT_EQ(err("[::1]:8080"), "port spec \"[::1]:8080\": expected [IPv6]:HOSTPORT:CONTAINERPORT");
    EXPECT_EQ(err("[::g]:8080:80"), "port spec \"[::g]:8080:80\": \"::g\" is not an IPv6 address");
    EXPECT_EQ(err(":80"), "port spec \":80\": empty host port");
    EXPECT_EQ(err("a:b:c:80"), "port spec \"a:b:c:80\": too many ':' (IPv6 addresses go in brackets)");
    EXPECT_EQ(err("x"), "port spec \"x\": \"x\" is not a port (1-65535)");
}

TEST(PortAllocator, AnyAddressConflictsWithSpecificAndBack) {
    PortAllocator a;
    ASSERT_TRUE(a.allocate(one("8080:80")).ok());
    auto c = a.allocate(one("127.0.0.1:8080:80"));
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().message(), "Bind for 127.0.0.1:8080 failed: port is already allocated");
    EXPECT_EQ(c.error().kind(), ErrorKind::Conflict);
    EXPECT_TRUE(a.allocate(one("8080:80/udp")).ok());  // other protocol: free
    ASSERT_TRUE(a.allocate(one("127.0.0.1:9090:80")).ok());
    ASSERT_TRUE(a.allocate(one("192.0.2.1:9090:80")).ok());  // other specific address: free
    auto any = a.allocate(one("9090:80"));
    ASSERT_FALSE(any.ok());
    EXPECT_EQ(any.error().message(), "Bind for 0.0.0.0:9090 failed: port is already allocated");
}

TEST(PortAllocator, EphemeralRoundRobinSkipsReservedAndUsed) {
    PortAllocator a({40000, 40004}, {40001});
    std::vector<uint16_t> got;
    for (int i = 0; i < 4; ++i) {
        auto b = a.allocate(one("80"));
        ASSERT_TRUE(b.ok()) << i;
        got.push_back(b->front().host.first);
    }
    EXPECT_EQ(got, (std::vector<uint16_t>{40000, 40002, 40003, 40004}));
    auto full = a.allocate(one("80"));
    ASSERT_FALSE(full.ok());
    EXPECT_EQ(full.error().message(), "no free host port left in 40000-40004 for tcp");
    a.release({Proto::Tcp, std::nullopt, {40002, 40002}, {80, 80}});
    EXPECT_EQ(a.allocate(one("80"))->front().host.first, 40002);
}

TEST(PortAllocator, HostRangePicksTheFirstFreePort) {
    PortAllocator a;
    EXPECT_EQ(a.allocate(one("8000-8002:80"))->front().host, (PortRange{8000, 8000}));
    EXPECT_EQ(a.allocate(one("8000-8002:80"))->front().host, (PortRange{8001, 8001}));
    EXPECT_EQ(a.allocate(one("8000-8002:80"))->front().host, (PortRange{8002, 8002}));
    auto full = a.allocate(one("8000-8002:80"));
    ASSERT_FALSE(full.ok());
    EXPECT_EQ(full.error().message(), "Bind for 0.0.0.0:8000-8002 failed: all ports are already allocated");
}

TEST(PortAllocator, OneToOneRangesAreAllOrNothing) {
    PortAllocator a;
    ASSERT_TRUE(a.allocate(one("8005:80")).ok());
    auto r = a.allocate(one("8000-8010:80-90"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "Bind for 0.0.0.0:8005 failed: port is already allocated");
    EXPECT_FALSE(a.in_use(Proto::Tcp, std::nullopt, 8000));  // nothing half-taken
    auto b = a.allocate(one("9000-9010:80-90"));
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->front().str(), "0.0.0.0:9000-9010->80-90/tcp");
    a.release(b->front());
    EXPECT_FALSE(a.in_use(Proto::Tcp, std::nullopt, 9005));
}

TEST(PortSpec, Ipv6HostAddresses) {
    PortRequest r = one("[::1]:8080:80");
    EXPECT_TRUE(r.ipv6);
    EXPECT_EQ(r.host_ip6, Ipv6::parse("::1").value());
    EXPECT_EQ(r.host, (PortRange{8080, 8080}));
    EXPECT_EQ(r.host_ip, std::nullopt);
    PortRequest any = one("[::]:8080:80/udp");
    EXPECT_TRUE(any.ipv6);
    EXPECT_EQ(any.host_ip6, std::nullopt);  // every IPv6 address
    EXPECT_EQ(any.proto, Proto::Udp);
    PortRequest eph = one("[2001:db8::5]::80");
    EXPECT_EQ(eph.host, (PortRange{0, 0}));
    EXPECT_EQ(eph.host_ip6, Ipv6::parse("2001:db8::5").value());
}

TEST(PortAllocator, DualStackTakesTheSamePortForBothFamilies) {
    PortAllocator a({40000, 40010});
    auto b = a.allocate(one("80"), /*dual=*/true);
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(b->size(), 2u);
    EXPECT_EQ((*b)[0].str(), "0.0.0.0:40000->80/tcp");
    EXPECT_EQ((*b)[1].str(), "[::]:40000->80/tcp");
    // IPv6 [::1] conflicts with [::], IPv4 is independent of IPv6.
    auto c = a.allocate(one("[::1]:40000:80"));
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().message(), "Bind for [::1]:40000 failed: port is already allocated");
    a.release((*b)[1]);
    EXPECT_TRUE(a.in_use(Proto::Tcp, std::nullopt, 40000));  // IPv4 still held
    auto d = a.allocate(one("[::1]:40000:80"));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->front().str(), "[::1]:40000->80/tcp");
    // A dual request needs the port free in both families: 40000 is taken for IPv4 and [::1].
    auto e = a.allocate(one("40000:80"), true);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().message(), "Bind for 0.0.0.0:40000 failed: port is already allocated");
    // An explicit IPv6 [::] mapping on a port that only IPv4 uses is fine.
    auto f = a.allocate(one("[::]:40001:80"));
    ASSERT_TRUE(f.ok());
    EXPECT_FALSE(a.in_use(Proto::Tcp, std::nullopt, 40001));
}

}  // namespace ports_test
