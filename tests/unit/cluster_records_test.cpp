// lib/cluster/records: keys, JSON codecs (strict decoders), vtep_mac and choose_block.
#include "cluster/records.hpp"

#include <gtest/gtest.h>

namespace cnetd::cluster {
namespace {

Ipv4Cidr net(const char* s) {
    return *Ipv4Cidr::parse_network(s);
}
Ipv4 ip(const char* s) {
    return *Ipv4::parse(s);
}
std::size_t first(std::size_t) {
    return 0;
}

TEST(ClusterKeys, BuildAndParseRoundTrip) {
    const std::string id(64, 'a');
    EXPECT_EQ(network_key("mesh"), "/cnetd/networks/mesh");
    EXPECT_EQ(vni_key(4096), "/cnetd/vni/4096");
    EXPECT_EQ(node_key("n1"), "/cnetd/nodes/n1");
    EXPECT_EQ(block_key(id, net("10.200.3.0/24")), "/cnetd/blocks/" + id + "/10.200.3.0-24");
    EXPECT_EQ(endpoint_key(id, "n2", "e1"), "/cnetd/endpoints/" + id + "/n2/e1");

    auto k = parse_key(block_key(id, net("10.200.3.0/24")));
    EXPECT_EQ(k.kind, ParsedKey::Kind::Block);
    EXPECT_EQ(k.net_id, id);
    EXPECT_EQ(k.block, net("10.200.3.0/24"));
    k = parse_key(endpoint_key(id, "n2", "e1"));
    EXPECT_EQ(k.kind, ParsedKey::Kind::Endpoint);
    EXPECT_EQ(k.name, "n2");
    EXPECT_EQ(k.ep_id, "e1");
    k = parse_key(vni_key(5000));
    EXPECT_EQ(k.kind, ParsedKey::Kind::Vni);
    EXPECT_EQ(k.vni, 5000u);
    EXPECT_EQ(parse_key(network_key("mesh")).name, "mesh");
    EXPECT_EQ(parse_key(node_key("n1")).kind, ParsedKey::Kind::Node);
}

TEST(ClusterKeys, AnythingElseIsOther) {
    for (const char* k : {"/other/x", "/cnetd/", "/cnetd/networks/", "/cnetd/networks/a/b",
                          "/cnetd/vni/07", "/cnetd/vni/x", "/cnetd/blocks/id/10.0.0.1-24",
                          "/cnetd/blocks/id/junk", "/cnetd/endpoints/id/n1", "/cnetd/nodes//x"})
        EXPECT_EQ(parse_key(k).kind, ParsedKey::Kind::Other) << k;
}

TEST(ClusterRecords, RoundTrip) {
    core::OverlayNetworkDef d;
    d.id = std::string(64, 'b');
    d.name = "mesh";
    d.subnet = net("10.200.0.0/16");
    d.block_prefix = 24;
    d.vni = 4097;
    d.internal = true;
    d.dns = false;
    d.labels = {{"a", "b"}};
    d.options = {{"cnetd.overlay.host_subnet_size", "24"}};
    d.created = "2026-12-04T07:00:00.000000001Z";
    auto dd = decode_network("k", encode(d));
    ASSERT_TRUE(dd.ok()) << dd.error().message();
    EXPECT_EQ(*dd, d);

    NodeRecord n{"n1", ip("192.0.2.1"), 4789, "2026-12-04T07:00:00Z", "2026-12-04T07:01:00Z"};
    EXPECT_EQ(*decode_node("k", encode(n)), n);
    BlockRecord b{"n1", ip("192.0.2.1"), *Mac::parse("02:00:00:00:00:01")};
    EXPECT_EQ(*decode_block("k", encode(b)), b);
    EndpointRecord e{"web", {"www", "w"}, ip("10.200.3.2"), "c0ffee"};
    EXPECT_EQ(*decode_endpoint("k", encode(e)), e);
}

TEST(ClusterRecords, DecodersNameKeyAndField) {
    auto r = decode_block("/cnetd/blocks/x/10.0.0.0-24", R"({"node":"n1","underlay":"1.2.3"})");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(r.error().message().find("/cnetd/blocks/x/10.0.0.0-24"), std::string::npos);
    EXPECT_NE(r.error().message().find("\"underlay\""), std::string::npos);
    auto n = decode_node("k", "not json");
    ASSERT_FALSE(n.ok());
    EXPECT_NE(n.error().message().find("not a JSON object"), std::string::npos);
    auto d = decode_network(
        "k", R"({"id":"x","name":"m","subnet":"10.0.0.0/16","block_prefix":16,"vni":1})");
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message().find("block_prefix"), std::string::npos);
    auto e = decode_endpoint("k", R"({"name":"a","address":"10.0.0.2","extra":1,"aliases":[1]})");
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message().find("aliases"), std::string::npos);
    // Unknown fields are ignored.
    EXPECT_TRUE(
        decode_block("k", R"({"node":"n","underlay":"1.2.3.4","mac":"02:00:00:00:00:01","x":2})")
            .ok());
}

TEST(ClusterRecords, VtepMacIsStableUnicastLocalAndDistinct) {
    const Mac a = vtep_mac("n1", "net");
    EXPECT_EQ(a, vtep_mac("n1", "net"));
    EXPECT_NE(a, vtep_mac("n2", "net"));
    EXPECT_NE(a, vtep_mac("n1", "net2"));
    EXPECT_NE(vtep_mac("ab", "c"), vtep_mac("a", "bc"));
    EXPECT_FALSE(a.is_multicast());
    EXPECT_EQ(a.bytes()[0] & 0x02, 0x02);
}

TEST(ChooseBlock, OwnThenPreviousThenFirstFree) {
    const auto subnet = net("10.200.0.0/16");
    std::vector<Ipv4Cidr> taken = {net("10.200.0.0/24"), net("10.200.1.0/24")};
    EXPECT_EQ(choose_block(subnet, 24, taken, net("10.200.1.0/24"), std::nullopt, first),
              net("10.200.1.0/24"));
    EXPECT_EQ(choose_block(subnet, 24, taken, std::nullopt, net("10.200.9.0/24"), first),
              net("10.200.9.0/24"));
    // A previous block someone else holds now is not taken over.
    EXPECT_EQ(choose_block(subnet, 24, taken, std::nullopt, net("10.200.0.0/24"), first),
              net("10.200.2.0/24"));
    // Random among the first 100 free: the picker sees 100 candidates.
    std::size_t seen = 0;
    auto b = choose_block(subnet, 24, taken, std::nullopt, std::nullopt, [&](std::size_t n) {
        seen = n;
        return n - 1;
    });
    EXPECT_EQ(seen, 100u);
    EXPECT_EQ(b, net("10.200.101.0/24"));
}

TEST(ChooseBlock, FullSubnetAndBadPrefix) {
    const auto subnet = net("10.200.0.0/23");
    std::vector<Ipv4Cidr> taken = {net("10.200.0.0/24"), net("10.200.1.0/24")};
    EXPECT_FALSE(choose_block(subnet, 24, taken, std::nullopt, std::nullopt, first));
    EXPECT_FALSE(choose_block(subnet, 23, {}, std::nullopt, std::nullopt, first));
    // A previous block outside the subnet or of another size is ignored.
    EXPECT_EQ(choose_block(subnet, 24, {}, std::nullopt, net("10.9.0.0/24"), first),
              net("10.200.0.0/24"));
}

}  // namespace
}  // namespace cnetd::cluster
