// Unit tests for lib/nft's typed specs and their codec (no kernel, no privileges):
//   - every expression type and every object spec survives build -> serialise -> parse back;
//   - the encoding is what libnftnl itself builds from the same attributes (what the kernel and
//     `nft` see does not depend on our codec's field order);
//   - derived wire values (key lengths, flags, packed types) and the nft text of specs.
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include <cstring>
#include <variant>

#include <gtest/gtest.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

#include "nft/batch.hpp"
#include "nft/codec.hpp"
#include "nft/expr.hpp"
#include "nft/spec.hpp"

namespace cnetd::nft {
namespace {

using namespace expr;

// One expression of every type, with and without each optional attribute.
Exprs every_expression() {
    const uint32_t zero = 0;
    return seq(
        meta(NFT_META_NFPROTO, NFT_REG_1), cmp_u32(NFT_REG_1, NFT_CMP_EQ, NFPROTO_IPV4),
        payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01),
        cmp_u16_be(NFT_REG32_01, NFT_CMP_NEQ, 53), ct(NFT_CT_STATE, NFT_REG_1),
        bitwise_mask(NFT_REG_1, 0x6), cmp(NFT_REG_1, NFT_CMP_NEQ, &zero, sizeof zero),
        lookup(NFT_REG_1, "plain"), lookup(NFT_REG_1, "inverted", true),
        lookup(NFT_REG32_00, "map", false, NFT_REG32_00),
        fib(NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_3), verdict(NF_ACCEPT),
        verdict(NF_DROP), verdict(NFT_RETURN), masquerade(), snat(NFPROTO_IPV4, NFT_REG_1),
        dnat(NFPROTO_IPV6, NFT_REG32_00, NFT_REG32_04, NFT_REG32_05, NF_NAT_RANGE_PROTO_OFFSET),
        dnat(NFPROTO_IPV4, NFT_REG32_00, NFT_REG32_01, NFT_REG32_01, 0),
        immediate(NFT_REG_1, &zero, sizeof zero), immediate(NFT_REG_2, &zero, 2));
}

RuleSpec rule_with(Exprs exprs, std::string comment = "cnetd: test rule") {
    return RuleSpec{NFPROTO_INET, "t", "forward", std::move(exprs), std::move(comment)};
}

// The objects of a batch's messages, in order.
std::vector<Message> roundtrip(const Batch& b) {
    auto ms = decode(b.bytes(42));
    EXPECT_TRUE(ms.ok()) << ms.error().message();
    return ms.ok() ? std::move(ms).value() : std::vector<Message>{};
}

TEST(NftExpr, EveryExpressionSurvivesARoundTrip) {
    Batch b;
    const RuleSpec r = rule_with(every_expression());
    b.add_rule(r, "...");
    const auto ms = roundtrip(b);
    ASSERT_EQ(ms.size(), 1u);
    EXPECT_EQ(ms[0].type, NFT_MSG_NEWRULE);
    EXPECT_EQ(ms[0].seq, 43u);
    EXPECT_EQ(ms[0].flags & (NLM_F_CREATE | NLM_F_APPEND), NLM_F_CREATE | NLM_F_APPEND);
    const auto* back = std::get_if<RuleSpec>(&ms[0].object);
    ASSERT_NE(back, nullptr);
    ASSERT_EQ(back->exprs.size(), r.exprs.size());
    for (size_t i = 0; i < r.exprs.size(); ++i)
        EXPECT_TRUE(back->exprs[i] == r.exprs[i]) << i << " " << expr_name(r.exprs[i]);
    EXPECT_EQ(*back, r);
}

TEST(NftExpr, ConstructorsFillTheFieldsNftWould) {
    const auto c = std::get<Cmp>(cmp_u16_be(NFT_REG_1, NFT_CMP_EQ, 0x1234));
    EXPECT_EQ(c.data, (std::vector<uint8_t>{0x12, 0x34}));  // big endian on the wire
    const auto b = std::get<Bitwise>(bitwise_mask(NFT_REG_2, htonl(0xff000000u)));
    EXPECT_EQ(b.sreg, b.dreg);
    EXPECT_EQ(b.mask, (std::vector<uint8_t>{0xff, 0, 0, 0}));
    EXPECT_EQ(b.xor_, (std::vector<uint8_t>{0, 0, 0, 0}));
    const auto l = std::get<Lookup>(lookup(NFT_REG_1, "s", true));
    EXPECT_FALSE(l.dreg.has_value());
    EXPECT_TRUE(l.invert);
    const auto s = std::get<Nat>(snat(NFPROTO_IPV4, NFT_REG_1));
    EXPECT_EQ(s.type, uint32_t(NFT_NAT_SNAT));
    EXPECT_FALSE(s.proto_min.has_value());
    EXPECT_EQ(expr_name(masquerade()), "masq");
    EXPECT_EQ(expr_name(verdict(NF_DROP)), "immediate");
    // seq() flattens expressions and lists in order.
    const Exprs e = seq(meta(1, 2), Exprs{masquerade(), verdict(0)}, Exprs{}, fib(1, 2, 3));
    ASSERT_EQ(e.size(), 4u);
    EXPECT_TRUE(std::holds_alternative<Masquerade>(e[1]));
    EXPECT_TRUE(std::holds_alternative<Fib>(e[3]));
}

// The same rule built attribute by attribute with libnftnl, as the nft CLI does.
std::vector<uint8_t> libnftnl_rule() {
    nftnl_rule* r = nftnl_rule_alloc();
    nftnl_rule_set_str(r, NFTNL_RULE_TABLE, "t");
    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, "forward");
    nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
    nftnl_expr* e = nftnl_expr_alloc("meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);  // set in another order on purpose
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_IIFNAME);
    nftnl_rule_add_expr(r, e);
    e = nftnl_expr_alloc("lookup");
    nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, "bridges");
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
    nftnl_rule_add_expr(r, e);
    e = nftnl_expr_alloc("nat");
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG32_00);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG32_01);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX, NFT_REG32_02);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_PROTO_OFFSET);
    nftnl_rule_add_expr(r, e);
    nftnl_rule_add_expr(r, nftnl_expr_alloc("masq"));
    std::vector<char> buf(8192);
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_NEWRULE, NFPROTO_INET,
                                          NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, 0);
    nftnl_rule_nlmsg_build_payload(nlh, r);
    nftnl_rule_free(r);
    return {buf.data(), buf.data() + nlh->nlmsg_len};
}

TEST(NftExpr, EncodesExactlyWhatLibnftnlBuilds) {
    const RuleSpec r = rule_with(
        seq(meta(NFT_META_IIFNAME, NFT_REG_1), lookup(NFT_REG_1, "bridges", true),
            dnat(NFPROTO_IPV4, NFT_REG32_00, NFT_REG32_01, NFT_REG32_02, NF_NAT_RANGE_PROTO_OFFSET),
            masquerade()),
        "");  // libnftnl_rule() sets no comment
    EXPECT_EQ(encode(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, r), libnftnl_rule());
}

TEST(NftSpec, ObjectsSurviveARoundTrip) {
    const TableSpec t{NFPROTO_INET, "cnetd"};
    const ChainSpec base{NFPROTO_INET, "cnetd", "forward",
                         BaseChain{"filter", NF_INET_FORWARD, 0, NF_ACCEPT}};
    const ChainSpec regular{NFPROTO_INET, "cnetd", "helper", std::nullopt};
    const SetSpec set{NFPROTO_INET, "cnetd", "nets", {Type::Ipv4Addr, Type::Ifname}, {}, true, 7};
    const SetSpec map{NFPROTO_INET,
                      "cnetd",
                      "published",
                      {Type::InetProto, Type::InetService},
                      {Type::Ipv4Addr, Type::InetService},
                      false,
                      8};
    const ElementsSpec elems{NFPROTO_INET,
                             "cnetd",
                             "published_ranges",
                             {ElementSpec{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 9, 9, 9}, false},
                              ElementSpec{{10, 0, 0, 0}, {}, {}, true}}};
    Batch b;
    b.add_table(t);
    b.delete_table(t);
    b.create_chain(base);
    b.create_chain(regular);
    b.create_set(set);
    b.create_set(map);
    b.add_rule(rule_with(every_expression()), "x");
    b.add_elements(elems, "{ ... }");
    b.delete_elements(elems, "{ ... }");
    const auto ms = roundtrip(b);
    ASSERT_EQ(ms.size(), b.size());
    EXPECT_EQ(std::get<TableSpec>(ms[0].object), t);
    EXPECT_EQ(ms[1].type, NFT_MSG_DELTABLE);
    EXPECT_EQ(std::get<ChainSpec>(ms[2].object), base);
    EXPECT_EQ(std::get<ChainSpec>(ms[3].object), regular);
    EXPECT_EQ(std::get<SetSpec>(ms[4].object), set);
    EXPECT_EQ(std::get<SetSpec>(ms[5].object), map);
    EXPECT_EQ(std::get<RuleSpec>(ms[6].object), rule_with(every_expression()));
    EXPECT_EQ(ms[7].type, NFT_MSG_NEWSETELEM);
    EXPECT_EQ(std::get<ElementsSpec>(ms[7].object), elems);
    EXPECT_EQ(ms[8].type, NFT_MSG_DELSETELEM);
    EXPECT_EQ(std::get<ElementsSpec>(ms[8].object), elems);
    // Only the last message asks for an ack (Batch::bytes()).
    for (size_t i = 0; i + 1 < ms.size(); ++i) EXPECT_FALSE(ms[i].flags & NLM_F_ACK) << i;
    EXPECT_TRUE(ms.back().flags & NLM_F_ACK);
}

TEST(NftSpec, DerivedWireValuesAndText) {
    const SetSpec nfproto{NFPROTO_INET, "t", "unbridged", {Type::NfProto}, {}, false, 0};
    EXPECT_EQ(nfproto.key_len(), 1u);  // a single field keeps its size
    EXPECT_EQ(nfproto.flags(), 0u);
    EXPECT_EQ(nfproto.decl(), "type nf_proto");
    const SetSpec ranges{NFPROTO_INET,
                         "t",
                         "published6_ranges",
                         {Type::Ipv6Addr, Type::InetProto, Type::InetService},
                         {Type::Ipv6Addr, Type::InetService, Type::InetService},
                         true,
                         0};
    EXPECT_EQ(ranges.key_len(), 24u);  // 16 + 4 + 4: each field padded to a register
    EXPECT_EQ(ranges.data_len(), 24u);
    EXPECT_EQ(ranges.flags(), uint32_t(NFT_SET_INTERVAL | NFT_SET_MAP | NFT_SET_CONCAT));
    EXPECT_EQ(ranges.key_type(), (8u << 12) | (12u << 6) | 13u);
    EXPECT_EQ(unpack_types(ranges.key_type()), ranges.key);
    EXPECT_EQ(ranges.decl(),
              "type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service . "
              "inet_service; flags interval");
    const ChainSpec c{NFPROTO_INET, "t", "nat_prerouting",
                      BaseChain{"nat", NF_INET_PRE_ROUTING, -100, NF_ACCEPT}};
    EXPECT_EQ(c.hook_text(), "type nat hook prerouting priority dstnat; policy accept;");
    EXPECT_EQ(family_name(NFPROTO_INET), "inet");
    EXPECT_EQ(family_name(NFPROTO_IPV6), "ip6");

    Batch b;
    b.create_set(ranges);
    b.create_chain(c);
    b.add_elements(ElementsSpec{NFPROTO_INET, "t", "nets", {}}, "{ 10.0.0.0/8 }");
    EXPECT_EQ(b.descriptions()[0],
              "add map inet t published6_ranges { type ipv6_addr . inet_proto . inet_service : "
              "ipv6_addr . inet_service . inet_service; flags interval; }");
    EXPECT_EQ(b.descriptions()[1],
              "add chain inet t nat_prerouting { type nat hook prerouting priority dstnat; "
              "policy accept; }");
    EXPECT_EQ(b.descriptions()[2], "add element inet t nets { 10.0.0.0/8 }");
}

TEST(NftSpec, TruncatedOrForeignBytesAreErrors) {
    Batch b;
    b.add_rule(rule_with(every_expression()), "x");
    auto bytes = b.bytes();
    bytes.resize(bytes.size() - 8);  // cut into the last message
    EXPECT_FALSE(decode(bytes).ok());
    std::vector<uint8_t> foreign(sizeof(nlmsghdr) + 4, 0);
    auto* nlh = reinterpret_cast<nlmsghdr*>(foreign.data());
    nlh->nlmsg_len = static_cast<uint32_t>(foreign.size());
    nlh->nlmsg_type = (1 << 8) | 0;  // NFNL_SUBSYS_CTNETLINK
    auto r = decode(foreign);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("not an nftables message"), std::string::npos);
}

}  // namespace
}  // namespace cnetd::nft

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
