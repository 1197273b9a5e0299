// Daemon ID and ULA: SHA-256 vectors, Docker's derivation (its own test vectors), /64 choice.
#include <gtest/gtest.h>

#include <set>

#include "core/ula.hpp"

namespace ula_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;

namespace {
std::string hex(const std::array<uint8_t, 32>& h) {
    std::string s;
    for (auto b : h) s += fmt::format("{:02x}", b);
    return s;
}
Ipv6Cidr net6(const char* s) {
    return *Ipv6Cidr::parse_network(s);
}
}  // namespace

TEST(Sha256, FipsVectors) {
    EXPECT_EQ(hex(detail::sha256("")),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hex(detail::sha256("abc")),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hex(detail::sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    // 55/56/64 bytes: the padding edge cases (one or two final blocks).
    EXPECT_EQ(hex(detail::sha256(std::string(55, 'a'))),
              "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    EXPECT_EQ(hex(detail::sha256(std::string(56, 'a'))),
              "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    EXPECT_EQ(hex(detail::sha256(std::string(64, 'a'))),
              "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
    EXPECT_EQ(hex(detail::sha256(std::string(1000000, 'a'))),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Ula, MatchesDockersDerivation) {
    // moby libnetwork/ipamutils TestDeriveULABaseNetwork.
    EXPECT_EQ(ula48_from_id("").str(), "fd42:98fc:1c14::/48");
    EXPECT_EQ(ula48_from_id("499d4bc0-b0b3-416f-b1ee-cf6486315593").str(), "fd62:fb69:18af::/48");
}

TEST(Ula, DeterministicAndDistinct) {
    std::string id = new_daemon_id();
    EXPECT_EQ(ula48_from_id(id), ula48_from_id(std::string(id)));
    std::set<Ipv6Cidr> seen;
    for (int i = 0; i < 50; ++i) {
        auto u = ula48_from_id(new_daemon_id());
        EXPECT_EQ(u.prefix(), 48);
        EXPECT_EQ(u.addr().bytes()[0], 0xfd);
        EXPECT_EQ(u.addr(), u.network());
        seen.insert(u);
    }
    EXPECT_EQ(seen.size(), 50u);  // 40 random bits: a collision here would be a bug
}

TEST(Ula, DaemonIdShape) {
    std::string a = new_daemon_id(), b = new_daemon_id();
    EXPECT_EQ(a.size(), 64u);
    EXPECT_NE(a, b);
    EXPECT_TRUE(validate_daemon_id(a).ok());
    EXPECT_FALSE(validate_daemon_id(a.substr(1)).ok());
    EXPECT_EQ(validate_daemon_id("XYZ").error().message(),
              "daemon ID \"XYZ\" is not 64 lower-case hex characters");
    std::string upper = a;
    upper[0] = 'A';
    EXPECT_FALSE(validate_daemon_id(upper).ok());
}

TEST(Ula, ChoosesFirstFreeSlash64) {
    Ipv6Cidr u = net6("fd12:3456:789a::/48");
    EXPECT_EQ(choose_subnet6(u, {})->str(), "fd12:3456:789a::/64");
    EXPECT_EQ(choose_subnet6(u, {net6("fd12:3456:789a::/64")})->str(), "fd12:3456:789a:1::/64");
    // Gaps are filled first; foreign subnets do not matter; a bigger used prefix skips its /64s.
    EXPECT_EQ(choose_subnet6(u, {net6("fd12:3456:789a::/64"), net6("fd12:3456:789a:2::/64"),
                                 net6("2001:db8::/64")})
                  ->str(),
              "fd12:3456:789a:1::/64");
    EXPECT_EQ(choose_subnet6(u, {net6("fd12:3456:789a::/56")})->str(), "fd12:3456:789a:100::/64");
    // A used subnet longer than /64 still takes its /64.
    EXPECT_EQ(choose_subnet6(u, {net6("fd12:3456:789a::100/120")})->str(), "fd12:3456:789a:1::/64");
}

TEST(Ula, Exhaustion) {
    auto r = choose_subnet6(net6("fd12:3456:789a::/48"), {net6("fd12:3456:7800::/40")});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
    EXPECT_NE(r.error().message().find("fd12:3456:7800::/40"), std::string::npos)
        << r.error().message();
    EXPECT_EQ(choose_subnet6(net6("fd12:3456:789a::/48"), {}).ok(), true);
    EXPECT_EQ(choose_subnet6(net6("fd12:3456:789a::/80"), {}).error().kind(),
              ErrorKind::InvalidArgument);
}

}  // namespace ula_test
