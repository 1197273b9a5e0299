// The new config keys (default-address-pools, ipv6, fixed-cidr-v6) and reload classification.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config/reload.hpp"

namespace reload_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::config;

namespace {
Config parse_ok(std::string_view yaml) {
    auto r = parse(yaml, "cnetd.yaml");
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? *r : Config{};
}
std::string err(std::string_view yaml) {
    auto r = parse(yaml, "cnetd.yaml");
    EXPECT_FALSE(r.ok()) << yaml;
    if (r.ok()) return "";
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    return r.error().message();
}
std::vector<std::string> keys(const std::vector<KeyChange>& v) {
    std::vector<std::string> out;
    for (const auto& c : v) out.push_back(c.key);
    return out;
}
}  // namespace

TEST(ConfigPools, DefaultsAreDockers) {
    Config c;
    EXPECT_EQ(c.address_pools, core::default_address_pools());
    EXPECT_TRUE(c.address_pools6.empty());
    EXPECT_FALSE(c.ipv6);
    EXPECT_FALSE(c.fixed_cidr_v6);
}

TEST(ConfigPools, ExampleConfigDocumentsTheDefaults) {
    auto c = load(CNETD_EXAMPLE_CONFIG, true);
    ASSERT_TRUE(c.ok()) << c.error().message();
    Config d;
    EXPECT_EQ(c->address_pools, d.address_pools);
    EXPECT_EQ(c->address_pools6, d.address_pools6);
    EXPECT_EQ(c->ipv6, d.ipv6);
    EXPECT_EQ(c->fixed_cidr_v6, d.fixed_cidr_v6);
    EXPECT_TRUE(c->warnings.empty());
}

TEST(ConfigPools, DaemonJsonShapeReplacesDefaults) {
    auto c = parse_ok(R"({"default-address-pools": [{"base": "10.10.0.0/16", "size": 24},
        {"base": "fd00:1::/48", "size": 64}], "ipv6": true, "fixed-cidr-v6": "fd00:2::/64"})");
    ASSERT_EQ(c.address_pools.size(), 1u);
    EXPECT_EQ(c.address_pools[0].str(), "10.10.0.0/16 as /24s");
    ASSERT_EQ(c.address_pools6.size(), 1u);
    EXPECT_EQ(c.address_pools6[0].str(), "fd00:1::/48 as /64s");
    EXPECT_TRUE(c.ipv6);
    EXPECT_EQ(c.fixed_cidr_v6->str(), "fd00:2::/64");
    EXPECT_TRUE(c.warnings.empty());
    // A chosen subnet really comes from the configured pool.
    EXPECT_EQ(core::choose_subnet(c.address_pools, {})->str(), "10.10.0.0/24");
}

TEST(ConfigPools, Ipv6WithoutFixedCidrUsesTheUla) {
    auto c = parse_ok("ipv6: true\n");
    EXPECT_TRUE(c.ipv6);
    EXPECT_FALSE(c.fixed_cidr_v6);  // the daemon takes a /64 of its ULA /48
    EXPECT_TRUE(c.warnings.empty());
}

TEST(ConfigPools, FixedCidrV6WithoutIpv6Warns) {
    auto c = parse_ok("fixed-cidr-v6: fd00:2::/64\n");
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_EQ(
        c.warnings[0],
        "cnetd.yaml: fixed-cidr-v6: ignored while ipv6 is false (set ipv6: true for a dual-stack "
        "default network)");
}

TEST(ConfigPools, OnlyIpv6PoolsLeavesNoIpv4PoolAndWarns) {
    auto c = parse_ok("default-address-pools: [{base: 'fd00:1::/48', size: 64}]\n");
    EXPECT_TRUE(c.address_pools.empty());
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_NE(c.warnings[0].find("default-address-pools: no IPv4 pool given"), std::string::npos);
}

TEST(ConfigPools, ErrorsNameKeyIndexAndValue) {
    EXPECT_EQ(
        err("default-address-pools: [{base: 10.0.0.0/16, size: 24}, {base: 10.1.0.0/16, size: 8}]"),
        "cnetd.yaml: default-address-pools[1]: size 8 is shorter than the prefix of base "
        "10.1.0.0/16 (size must be between 16 and 31)");
    EXPECT_EQ(err("default-address-pools: [{base: 10.0.0.0/16, size: 32}]"),
              "cnetd.yaml: default-address-pools[0]: size 32 leaves no room for a gateway and a "
              "container (size must be between 16 and 31)");
    EXPECT_EQ(err("default-address-pools: [{base: 10.0.0.0/33, size: 24}]"),
              "cnetd.yaml: default-address-pools[0].base: \"10.0.0.0/33\": prefix length 33 > 32");
    EXPECT_EQ(
        err("default-address-pools: [{base: 10.0.0.1/16, size: 24}]"),
        "cnetd.yaml: default-address-pools[0]: base 10.0.0.1/16 has host bits set (did you mean "
        "10.0.0.0/16?)");
    EXPECT_EQ(
        err("default-address-pools: [{base: 10.0.0.0/16, size: x}]"),
        "cnetd.yaml: default-address-pools[0].size: expected a prefix length (a whole number up "
        "to 128), got \"x\"");
    EXPECT_EQ(err("default-address-pools: [{base: 10.0.0.0/16}]"),
              "cnetd.yaml: default-address-pools[0]: size is missing for base 10.0.0.0/16");
    EXPECT_EQ(
        err("default-address-pools: [{size: 24}]"),
        "cnetd.yaml: default-address-pools[0]: base is missing (expected {base: CIDR, size: N})");
    EXPECT_EQ(
        err("default-address-pools: [{base: 10.0.0.0/16, size: 24, name: x}]"),
        "cnetd.yaml: default-address-pools[0]: unknown key \"name\" (an entry has base and size)");
    EXPECT_EQ(err("default-address-pools: [10.0.0.0/16]"),
              "cnetd.yaml: default-address-pools[0]: expected {base: CIDR, size: N}, got "
              "\"10.0.0.0/16\"");
    EXPECT_EQ(err("default-address-pools: 10.0.0.0/16"),
              "cnetd.yaml: default-address-pools: expected a list of {base: CIDR, size: N}, got "
              "\"10.0.0.0/16\"");
    EXPECT_EQ(
        err("default-address-pools: []"),
        "cnetd.yaml: default-address-pools: the list is empty (remove the key to use Docker's "
        "default pools)");
    EXPECT_EQ(err("default-address-pools: [{base: 'fe80::/64', size: 64}]"),
              "cnetd.yaml: default-address-pools[0]: base fe80::/64 is not a unicast range for "
              "networks (use a ULA fdxx:xxxx:xxxx::/48 or a global prefix)");
    EXPECT_EQ(err("ipv6: maybe"), "cnetd.yaml: ipv6: expected true or false, got \"maybe\"");
    EXPECT_EQ(
        err("fixed-cidr-v6: 'fd00::1/64'"),
        "cnetd.yaml: fixed-cidr-v6: \"fd00::1/64\" has host bits set (did you mean fd00::/64?)");
    EXPECT_EQ(
        err("fixed-cidr-v6: 10.0.0.0/8"),
        "cnetd.yaml: fixed-cidr-v6: \"10.0.0.0/8\" is not an IPv6 CIDR: \"10.0.0.0\" is not an "
        "IPv6 address");
    EXPECT_EQ(
        err("fixed-cidr-v6: 'ff02::/64'"),
        "cnetd.yaml: fixed-cidr-v6: \"ff02::/64\" is not a unicast subnet with room for a gateway "
        "and containers (e.g. fd00:1::/64)");
    EXPECT_EQ(err("fixed-cidr-v6: 'fd00::/127'"),
              "cnetd.yaml: fixed-cidr-v6: \"fd00::/127\" is not a unicast subnet with room for a "
              "gateway and containers (e.g. fd00:1::/64)");
}

TEST(ConfigPools, OtherKeyHandlingStillWorks) {
    EXPECT_EQ(err("defualt-address-pools: []"), "cnetd.yaml: defualt-address-pools: unknown key");
    auto c = parse_ok("ip6tables: true\nlog-driver: json-file\n");
    EXPECT_EQ(c.warnings.size(), 2u);
}

TEST(Reload, NoChanges) {
    Config a;
    auto p = diff(a, a);
    EXPECT_TRUE(p.empty());
    EXPECT_EQ(p.summary(), "no changes");
}

TEST(Reload, LiveKeys) {
    Config a;
    Config b = parse_ok(
        "icc: false\nip-masq: false\nmtu: 1450\nlog-level: debug\nip: 192.0.2.10\nip-forward: "
        "false\n"
        "default-address-pools: [{base: 10.10.0.0/16, size: 24}]\n");
    auto p = diff(a, b);
    EXPECT_TRUE(p.restart.empty()) << p.summary();
    EXPECT_EQ(keys(p.live), (std::vector<std::string>{"log-level", "icc", "ip-masq", "mtu", "ip",
                                                      "ip-forward", "default-address-pools"}));
    EXPECT_EQ(p.live[1].str(), "icc: true -> false");
    EXPECT_EQ(p.live[3].str(), "mtu: auto -> 1450");
    EXPECT_EQ(p.live[4].str(), "ip: 0.0.0.0 -> 192.0.2.10");
    EXPECT_EQ(p.live[6].str(), "default-address-pools: default -> 10.10.0.0/16 as /24s");
    for (const auto& c : p.live) {
        EXPECT_TRUE(is_live_key(c.key)) << c.key;
        EXPECT_FALSE(c.note.empty());
    }
}

TEST(Reload, RestartKeys) {
    Config a;
    Config b = parse_ok(
        "bridge: cbr0\nbip: 10.9.0.1/24\nfixed-cidr: 10.9.0.128/25\nipv6: true\n"
        "fixed-cidr-v6: fd00:2::/64\niptables: false\nsocket: /run/x.sock\nstate-dir: /var/lib/x\n"
        "netns-dir: /run/netns\n");
    auto p = diff(a, b);
    EXPECT_TRUE(p.live.empty()) << p.summary();
    EXPECT_EQ(keys(p.restart),
              (std::vector<std::string>{"bridge", "bip", "fixed-cidr", "ipv6", "fixed-cidr-v6",
                                        "firewall", "socket", "state-dir", "netns-dir"}));
    EXPECT_EQ(p.restart[1].str(), "bip: 172.17.0.1/16 -> 10.9.0.1/24");
    EXPECT_EQ(p.restart[2].str(), "fixed-cidr: (unset) -> 10.9.0.128/25");
    EXPECT_EQ(p.restart[5].str(), "firewall: nftables -> none");
    for (const auto& c : p.restart) EXPECT_FALSE(is_live_key(c.key)) << c.key;
    EXPECT_EQ(diff(a, parse_ok("bridge: none")).restart.at(0).str(), "bridge: docker0 -> none");
}

TEST(Reload, MixedSummaryAndApplyLive) {
    Config running;
    Config file = parse_ok("icc: false\nbip: 10.9.0.1/24\nmtu: 1400\nlog-driver: json-file\n");
    auto p = diff(running, file);
    EXPECT_EQ(
        p.summary(),
        "applied: icc: true -> false, mtu: auto -> 1400; pending restart: bip: 172.17.0.1/16 -> "
        "10.9.0.1/24 (re-addressing the default bridge renumbers its containers; start() checks "
        "it has none)");
    Config now = apply_live(running, file);
    EXPECT_FALSE(now.icc);
    EXPECT_EQ(now.mtu, 1400u);
    EXPECT_EQ(now.default_net.mtu, 1400u);
    EXPECT_EQ(now.default_net.bip.str(), "172.17.0.1/16");  // still what runs
    EXPECT_EQ(now.warnings, file.warnings);
    // Pending changes stay pending; nothing live is left.
    auto again = diff(now, file);
    EXPECT_TRUE(again.live.empty());
    EXPECT_EQ(keys(again.restart), std::vector<std::string>{"bip"});
    // Reverting the file reverts the live keys and clears the pending restart.
    auto back = diff(now, running);
    EXPECT_EQ(keys(back.live), (std::vector<std::string>{"icc", "mtu"}));
    EXPECT_TRUE(back.restart.empty());
}

TEST(Reload, LongValuesAreCut) {
    std::string yaml = "default-address-pools: [";
    for (int i = 0; i < 40; ++i)
        yaml += fmt::format("{}{{base: 10.{}.0.0/16, size: 24}}", i ? ", " : "", i);
    yaml += "]";
    // Named: a Config{} temporary here trips GCC 12 -O3 -Wmaybe-uninitialized (a false positive).
    const Config defaults;
    auto p = diff(defaults, parse_ok(yaml));
    ASSERT_EQ(p.live.size(), 1u);
    EXPECT_EQ(p.live[0].new_value.size(), 160u);
    EXPECT_EQ(p.live[0].new_value.substr(157), "...");
    // Pools differing only past the cut are still a change.
    std::string yaml2 = yaml;
    yaml2.replace(yaml2.rfind("size: 24"), 8, "size: 25");
    EXPECT_EQ(diff(parse_ok(yaml), parse_ok(yaml2)).live.size(), 1u);
}

TEST(Reload, UnknownKeyIsNotLive) {
    EXPECT_FALSE(is_live_key("no-such-key"));
}

}  // namespace reload_test
