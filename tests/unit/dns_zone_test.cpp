// lib/dns/zone: the names of an endpoint, case-insensitivity, NAME.NETWORK, scoping to the asker's
// networks, alias sets (round robin), missing families, reverse names.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "dns/zone.hpp"

namespace dns_zone_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::dns;

namespace {

Ipv4 v4(const char* s) {
    return *Ipv4::parse(s);
}
Ipv6 v6(const char* s) {
    return *Ipv6::parse(s);
}

HostEntry host(std::string name, const char* addr, char id_digit,
               std::vector<std::string> aliases = {}) {
    HostEntry h;
    h.name = std::move(name);
    h.aliases = std::move(aliases);
    h.endpoint_id = std::string(64, id_digit);
    if (addr) h.v4 = v4(addr);
    return h;
}

// frontend: web (+v6), db (alias "store"), api ("db" alias too); backend: db2 (alias "db"),
// internal; "my.dotted" network name with a dot.
Zone sample() {
    NetworkEntry front{"id-front", "Frontend", false, {}};
    front.hosts.push_back(host("Web", "172.18.0.2", 'a'));
    front.hosts.back().v6 = v6("fd00::2");
    front.hosts.back().container_id = "C0FFEE0123456789abcdef";
    front.hosts.push_back(host("db", "172.18.0.3", 'b', {"Store"}));
    front.hosts.push_back(host("api", "172.18.0.4", 'c', {"db", "DB"}));
    NetworkEntry back{"id-back", "backend", true, {}};
    back.hosts.push_back(host("db2", "172.19.0.3", 'd', {"db"}));
    back.hosts.push_back(host("web", "172.19.0.2", 'e'));
    NetworkEntry dotted{"id-dot", "my.dotted", false, {}};
    dotted.hosts.push_back(host("x", "172.20.0.2", 'f'));
    return Zone({front, back, dotted});
}

std::vector<uint32_t> scope(const Zone& z, std::initializer_list<const char*> ids) {
    std::vector<uint32_t> out;
    for (const char* id : ids) out.push_back(*z.network_index(id));
    return out;
}

std::vector<Ipv4> sorted(std::vector<Ipv4> v) {
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace

TEST(DnsZone, IndexesNetworks) {
    auto z = sample();
    EXPECT_EQ(z.networks(), 3u);
    EXPECT_EQ(z.network_index("id-back"), 1u);
    EXPECT_FALSE(z.network_index("nope"));
    EXPECT_TRUE(z.network(1).internal);  // the server reads the flag: no forwarding
    EXPECT_FALSE(z.network(0).internal);
    // frontend: web, aaaaaaaaaaaa, c0ffee012345, db, bbbbbbbbbbbb, store, api, cccccccccccc = 8;
    // backend: db2, dddd…, db, web, eeee… = 5; dotted: x, ffff… = 2.
    EXPECT_EQ(z.names(), 15u);
    EXPECT_EQ(Zone().names(), 0u);
    EXPECT_FALSE(Zone().lookup({}, "db").found);
}

TEST(DnsZone, NamesAliasesAndShortIdsCaseInsensitive) {
    auto z = sample();
    auto s = scope(z, {"id-front"});
    for (const char* name : {"web", "aaaaaaaaaaaa", "c0ffee012345", "store"}) {
        auto f = z.lookup(s, name);
        EXPECT_TRUE(f.found) << name;
        EXPECT_EQ(f.v4.size(), 1u) << name;
    }
    EXPECT_EQ(z.lookup(s, "web").v4, std::vector{v4("172.18.0.2")});
    EXPECT_EQ(z.lookup(s, "web").v6, std::vector{v6("fd00::2")});
    EXPECT_FALSE(z.lookup(s, "aaaaaaaaaaa").found);    // 11 characters: not a name
    EXPECT_FALSE(z.lookup(s, "aaaaaaaaaaaaa").found);  // 13
    EXPECT_FALSE(z.lookup(s, "c0ffee0123456").found);
}

TEST(DnsZone, AliasSharedByEndpointsHasAllAddresses) {
    auto z = sample();
    auto f = z.lookup(scope(z, {"id-front"}), "db");
    EXPECT_TRUE(f.found);
    // db itself and api's alias "db" (given twice, "db" and "DB": once).
    EXPECT_EQ(sorted(f.v4), (std::vector{v4("172.18.0.3"), v4("172.18.0.4")}));
}

TEST(DnsZone, ScopeIsTheAskersNetworksAndTheUnionOverThem) {
    auto z = sample();
    EXPECT_FALSE(z.lookup(scope(z, {"id-back"}), "store").found);  // a frontend name
    EXPECT_FALSE(z.lookup(scope(z, {"id-front"}), "db2").found);
    auto both = z.lookup(scope(z, {"id-front", "id-back"}), "db");
    EXPECT_EQ(sorted(both.v4), (std::vector{v4("172.18.0.3"), v4("172.18.0.4"), v4("172.19.0.3")}));
    EXPECT_EQ(z.lookup(scope(z, {"id-back", "id-front"}), "web").v4.size(), 2u);
    EXPECT_FALSE(z.lookup({}, "web").found);
    std::vector<uint32_t> bogus{99};
    EXPECT_FALSE(z.lookup(bogus, "web").found);
}

TEST(DnsZone, NameDotNetwork) {
    auto z = sample();
    auto s = scope(z, {"id-front", "id-back"});
    EXPECT_EQ(z.lookup(s, "web.frontend").v4, std::vector{v4("172.18.0.2")});
    EXPECT_EQ(z.lookup(s, "web.backend").v4, std::vector{v4("172.19.0.2")});
    EXPECT_EQ(z.lookup(s, "db.backend").v4, std::vector{v4("172.19.0.3")});
    EXPECT_FALSE(z.lookup(s, "db2.frontend").found);  // a name of another network
    EXPECT_FALSE(z.lookup(s, "web.other").found);     // not a network
    EXPECT_FALSE(z.lookup(scope(z, {"id-front"}), "db2.backend").found);  // not in scope
    EXPECT_FALSE(z.lookup(s, "web.").found);
    EXPECT_FALSE(z.lookup(s, ".frontend").found);
    EXPECT_FALSE(z.lookup(s, "frontend").found);
    // A network name with a dot: "x.my.dotted" is "x" in network "my.dotted".
    auto d = scope(z, {"id-dot"});
    EXPECT_EQ(z.lookup(d, "x.my.dotted").v4, std::vector{v4("172.20.0.2")});
    EXPECT_FALSE(z.lookup(d, "x.dotted").found);
}

TEST(DnsZone, NameWithoutAddressOfTheFamilyIsFoundEmpty) {
    NetworkEntry n{"id", "net", false, {}};
    n.hosts.push_back(host("v6only", nullptr, '1'));
    n.hosts.back().v6 = v6("fd00::9");
    n.hosts.push_back(host("v4only", "10.0.0.9", '2'));
    Zone z({n});
    std::vector<uint32_t> s{0};
    auto f = z.lookup(s, "v6only");
    EXPECT_TRUE(f.found);  // AAAA answers; A gets an empty NOERROR, not a forward
    EXPECT_TRUE(f.v4.empty());
    EXPECT_EQ(f.v6.size(), 1u);
    f = z.lookup(s, "v4only");
    EXPECT_TRUE(f.found);
    EXPECT_TRUE(f.v6.empty());
}

TEST(DnsZone, ReverseNames) {
    auto z = sample();
    auto s = scope(z, {"id-front", "id-back"});
    EXPECT_EQ(z.reverse(s, v4("172.18.0.2")), "Web.Frontend");  // Docker: "name.network"
    EXPECT_EQ(z.reverse(s, v4("172.19.0.3")), "db2.backend");
    EXPECT_EQ(z.reverse(s, v6("fd00::2")), "Web.Frontend");
    EXPECT_FALSE(z.reverse(s, v4("172.20.0.2")));  // the dotted network is not in scope
    EXPECT_FALSE(z.reverse(s, v6("fd00::3")));
    EXPECT_FALSE(Zone().reverse(s, v4("172.18.0.2")));
    // An endpoint without a name (CNI) is named by its short container id, else endpoint id.
    NetworkEntry n{"id", "net", false, {host("", "10.0.0.2", 'a'), host("", "10.0.0.3", 'B')}};
    n.hosts[0].container_id = "0123456789ABCDEF";
    Zone nameless({n});
    std::vector<uint32_t> one{0};
    EXPECT_EQ(nameless.reverse(one, v4("10.0.0.2")), "0123456789ab.net");
    EXPECT_EQ(nameless.reverse(one, v4("10.0.0.3")), "bbbbbbbbbbbb.net");
    EXPECT_TRUE(nameless.lookup(one, "bbbbbbbbbbbb.net").found);
}

TEST(DnsZone, ThousandNamesLookUpByHash) {
    NetworkEntry n{"id", "big", false, {}};
    for (int i = 0; i < 1000; ++i)
        n.hosts.push_back(host(fmt::format("c{}", i), nullptr, 'a', {"all"}));
    for (int i = 0; i < 1000; ++i) {
        n.hosts[i].v4 = Ipv4(0x0A000000u + static_cast<uint32_t>(i));
        n.hosts[i].endpoint_id = fmt::format("{:012x}", i) + std::string(52, '0');
    }
    Zone z({n});
    std::vector<uint32_t> s{0};
    EXPECT_EQ(z.names(), 2001u);
    EXPECT_EQ(z.lookup(s, "c999").v4, std::vector{Ipv4(0x0A000000u + 999)});
    EXPECT_EQ(z.lookup(s, "all").v4.size(), 1000u);
    EXPECT_EQ(z.lookup(s, "c999.big").v4.size(), 1u);
}

}  // namespace dns_zone_test
