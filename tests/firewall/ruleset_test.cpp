// Unit tests (no privileges, no kernel): decode the netlink batches the firewall builds with
// libnftnl's own parsers and check every message's object names and element keys.
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "firewall/firewall.hpp"
#include "firewall/layout.hpp"
#include "firewall/ruleset.hpp"
#include "nft/attrs.hpp"
#include "nft/codec.hpp"

namespace cnetd::firewall {
namespace {

constexpr int kRules = 37;  // fixed, whatever the number of networks and ports

struct Elem {
    std::vector<uint8_t> key, key_end, data;
    uint32_t flags = 0;
};
struct Msg {
    int type = 0;  // NFT_MSG_*, or NFNL_MSG_BATCH_BEGIN/END
    uint16_t flags = 0;
    uint32_t seq = 0;
    int family = 0;
    std::string table, name, chain;  // name: table/chain/set name
    std::vector<Elem> elems;
    uint32_t set_flags = 0, key_len = 0;
    std::string comment;
};

using cnetd::nft::detail::each_attr;
using cnetd::nft::detail::each_nested;

std::vector<Msg> decode(const std::vector<uint8_t>& bytes) {
    std::vector<Msg> out;
    size_t off = 0;
    while (off + sizeof(nlmsghdr) <= bytes.size()) {
        auto* nlh = reinterpret_cast<const nlmsghdr*>(bytes.data() + off);
        EXPECT_GE(nlh->nlmsg_len, sizeof(nlmsghdr));
        EXPECT_LE(off + nlh->nlmsg_len, bytes.size());
        Msg m;
        m.flags = nlh->nlmsg_flags;
        m.seq = nlh->nlmsg_seq;
        if (nlh->nlmsg_type == NFNL_MSG_BATCH_BEGIN || nlh->nlmsg_type == NFNL_MSG_BATCH_END) {
            m.type = nlh->nlmsg_type;
        } else {
            EXPECT_EQ(NFNL_SUBSYS_ID(nlh->nlmsg_type), NFNL_SUBSYS_NFTABLES);
            m.type = NFNL_MSG_TYPE(nlh->nlmsg_type);
            m.family = static_cast<const nfgenmsg*>(NLMSG_DATA(nlh))->nfgen_family;
            switch (m.type) {
                case NFT_MSG_NEWTABLE:
                case NFT_MSG_DELTABLE: {
                    nftnl_table* t = nftnl_table_alloc();
                    EXPECT_EQ(nftnl_table_nlmsg_parse(nlh, t), 0);
                    m.name = nftnl_table_get_str(t, NFTNL_TABLE_NAME);
                    nftnl_table_free(t);
                    break;
                }
                case NFT_MSG_NEWCHAIN: {
                    nftnl_chain* c = nftnl_chain_alloc();
                    EXPECT_EQ(nftnl_chain_nlmsg_parse(nlh, c), 0);
                    m.table = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
                    m.name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
                    nftnl_chain_free(c);
                    break;
                }
                case NFT_MSG_NEWRULE: {
                    nftnl_rule* r = nftnl_rule_alloc();
                    EXPECT_EQ(nftnl_rule_nlmsg_parse(nlh, r), 0);
                    m.table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
                    m.chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
                    uint32_t len = 0;
                    auto* ud =
                        static_cast<const char*>(nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len));
                    // TLV: type(1) len(1) "comment\0"
                    if (ud && len > 2) m.comment.assign(ud + 2, strnlen(ud + 2, len - 2));
                    nftnl_rule_free(r);
                    break;
                }
                case NFT_MSG_NEWSET: {
                    nftnl_set* s = nftnl_set_alloc();
                    EXPECT_EQ(nftnl_set_nlmsg_parse(nlh, s), 0);
                    m.table = nftnl_set_get_str(s, NFTNL_SET_TABLE);
                    m.name = nftnl_set_get_str(s, NFTNL_SET_NAME);
                    m.set_flags = nftnl_set_get_u32(s, NFTNL_SET_FLAGS);
                    m.key_len = nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN);
                    nftnl_set_free(s);
                    break;
                }
                case NFT_MSG_NEWSETELEM:
                case NFT_MSG_DELSETELEM: {
                    // libnftnl 1.2.4's element parser rejects interval-end elements (flags
                    // without data), so the element list is walked with libmnl here.
                    auto elem = [&](const nlattr* le) {
                        Elem el;
                        each_nested(le, [&](const nlattr* f) {
                            auto ft = mnl_attr_get_type(f);
                            if (ft == NFTA_SET_ELEM_FLAGS) el.flags = ntohl(mnl_attr_get_u32(f));
                            std::vector<uint8_t>* dst = ft == NFTA_SET_ELEM_KEY       ? &el.key
                                                        : ft == NFTA_SET_ELEM_KEY_END ? &el.key_end
                                                        : ft == NFTA_SET_ELEM_DATA    ? &el.data
                                                                                      : nullptr;
                            if (!dst) return;
                            each_nested(f, [&](const nlattr* v) {
                                auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(v));
                                dst->assign(p, p + mnl_attr_get_payload_len(v));
                            });
                        });
                        m.elems.push_back(el);
                    };
                    each_attr(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)),
                              mnl_nlmsg_get_payload_tail(nlh), [&](const nlattr* a) {
                                  auto t = mnl_attr_get_type(a);
                                  if (t == NFTA_SET_ELEM_LIST_TABLE) m.table = mnl_attr_get_str(a);
                                  if (t == NFTA_SET_ELEM_LIST_SET) m.name = mnl_attr_get_str(a);
                                  if (t == NFTA_SET_ELEM_LIST_ELEMENTS) each_nested(a, elem);
                              });
                    break;
                }
                default:
                    ADD_FAILURE() << "unexpected message type " << m.type;
            }
        }
        out.push_back(m);
        off += NLMSG_ALIGN(nlh->nlmsg_len);
    }
    EXPECT_EQ(off, bytes.size());
    return out;
}

std::vector<uint8_t> ip(const char* a) {
    in_addr x{};
    inet_pton(AF_INET, a, &x);
    auto* p = reinterpret_cast<const uint8_t*>(&x);
    return {p, p + 4};
}
std::vector<uint8_t> ifn(const std::string& n) {
    std::vector<uint8_t> v(16, 0);
    std::memcpy(v.data(), n.data(), n.size());
    return v;
}
std::vector<uint8_t> operator+(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

NetworkRules net(std::string id, std::string br, const char* cidr) {
    NetworkRules n;
    n.id = std::move(id);
    n.bridge = std::move(br);
    n.subnet = Ipv4Cidr::parse(cidr).value();
    return n;
}

const Msg* find_elems(const std::vector<Msg>& ms, const std::string& set) {
    for (const auto& m : ms)
        if ((m.type == NFT_MSG_NEWSETELEM || m.type == NFT_MSG_DELSETELEM) && m.name == set)
            return &m;
    return nullptr;
}

TEST(FirewallBatch, DefaultNetworkElements) {
    auto b = build_network("cnetd", net("n1", "docker0", "172.17.0.0/16"), true);
    auto ms = decode(b.bytes(100));
    ASSERT_GE(ms.size(), 3u);
    EXPECT_EQ(ms.front().type, NFNL_MSG_BATCH_BEGIN);
    EXPECT_EQ(ms.front().seq, 100u);
    EXPECT_EQ(ms.back().type, NFNL_MSG_BATCH_END);
    // bridges, subnets, nets, icc_bridges (icc on), masq_nets (masquerade on): one message each.
    ASSERT_EQ(ms.size(), 2u + 5u);
    for (size_t i = 1; i + 1 < ms.size(); ++i) {
        EXPECT_EQ(ms[i].type, NFT_MSG_NEWSETELEM);
        EXPECT_EQ(ms[i].family, NFPROTO_INET);
        EXPECT_EQ(ms[i].table, "cnetd");
        EXPECT_EQ(ms[i].seq, 100u + i);
        // Only the last message asks for an ack (errors are reported regardless).
        EXPECT_EQ(bool(ms[i].flags & NLM_F_ACK), i + 2 == ms.size()) << i;
    }
    const Msg* br = find_elems(ms, "bridges");
    ASSERT_TRUE(br);
    ASSERT_EQ(br->elems.size(), 1u);
    EXPECT_EQ(br->elems[0].key, ifn("docker0"));

    const Msg* sn = find_elems(ms, "subnets");
    ASSERT_TRUE(sn);
    ASSERT_EQ(sn->elems.size(), 2u);  // interval start, and the end (first address after)
    EXPECT_EQ(sn->elems[0].key, ip("172.17.0.0"));
    EXPECT_EQ(sn->elems[0].flags, 0u);
    EXPECT_EQ(sn->elems[1].key, ip("172.18.0.0"));
    EXPECT_EQ(sn->elems[1].flags, uint32_t{NFT_SET_ELEM_INTERVAL_END});

    const Msg* nets = find_elems(ms, "nets");
    ASSERT_TRUE(nets);
    ASSERT_EQ(nets->elems.size(), 1u);
    EXPECT_EQ(nets->elems[0].key, ip("172.17.0.0") + ifn("docker0"));
    EXPECT_EQ(nets->elems[0].key_end, ip("172.17.255.255") + ifn("docker0"));

    const Msg* icc = find_elems(ms, "icc_bridges");
    ASSERT_TRUE(icc);
    EXPECT_EQ(icc->elems.at(0).key, ifn("docker0") + ifn("docker0"));
    EXPECT_TRUE(find_elems(ms, "masq_nets"));
    EXPECT_FALSE(find_elems(ms, "snat_nets"));
    EXPECT_FALSE(find_elems(ms, "internal_bridges"));

    // The journal maps sequence numbers back to the exact object.
    EXPECT_EQ(b.describe(100, 100 + 3),
              "add element inet cnetd nets { 172.17.0.0/16 . \"docker0\" }");
    EXPECT_EQ(b.describe(100, 100 + 2), "add element inet cnetd subnets { 172.17.0.0/16 }");
}

TEST(FirewallBatch, SnatIccOffInternal) {
    auto n = net("n2", "br-x", "10.9.0.0/24");
    n.icc = false;
    n.snat_source = Ipv4::parse("192.0.2.7").value();
    auto ms = decode(build_network("t", n, true).bytes());
    EXPECT_FALSE(find_elems(ms, "icc_bridges"));
    EXPECT_FALSE(find_elems(ms, "masq_nets"));
    const Msg* sn = find_elems(ms, "snat_nets");
    ASSERT_TRUE(sn);
    ASSERT_EQ(sn->elems.size(), 2u);
    EXPECT_EQ(sn->elems[0].key, ip("10.9.0.0"));
    EXPECT_EQ(sn->elems[0].data, ip("192.0.2.7"));
    EXPECT_EQ(sn->elems[1].key, ip("10.9.1.0"));

    auto in = net("n3", "br-in", "10.8.0.0/24");
    in.internal = true;
    ms = decode(build_network("t", in, true).bytes());
    EXPECT_FALSE(find_elems(ms, "masq_nets"));
    EXPECT_FALSE(find_elems(ms, "snat_nets"));
    ASSERT_TRUE(find_elems(ms, "internal_bridges"));
    EXPECT_EQ(find_elems(ms, "internal_bridges")->elems.at(0).key, ifn("br-in"));
}

TEST(FirewallBatch, OverlayTunnelElements) {
    auto n = net("ov", "br-cccccccccccc", "10.200.1.0/24");
    n.tunnel = "vx-cccccccccccc";
    auto b = build_network("cnetd", n, true);
    auto ms = decode(b.bytes(100));
    // The block may arrive on the tunnel and leaves through it un-NATed: (block . vx) in nets.
    std::vector<std::vector<uint8_t>> nets_keys, icc_keys;
    for (const auto& m : ms) {
        for (const auto& e : m.elems) {
            if (m.name == "nets") {
                nets_keys.push_back(e.key);
                EXPECT_EQ(e.key_end.size(), 20u);
            }
            if (m.name == "icc_bridges") icc_keys.push_back(e.key);
        }
    }
    EXPECT_EQ(nets_keys,
              (std::vector<std::vector<uint8_t>>{ip("10.200.1.0") + ifn("br-cccccccccccc"),
                                                 ip("10.200.1.0") + ifn("vx-cccccccccccc")}));
    // Remote nodes' containers are peers both ways.
    EXPECT_EQ(icc_keys,
              (std::vector<std::vector<uint8_t>>{ifn("br-cccccccccccc") + ifn("br-cccccccccccc"),
                                                 ifn("br-cccccccccccc") + ifn("vx-cccccccccccc"),
                                                 ifn("vx-cccccccccccc") + ifn("br-cccccccccccc")}));
    // Not a bridge: nothing filters or isolates the tunnel as one.
    EXPECT_EQ(find_elems(ms, "bridges")->elems.size(), 1u);
    std::string all;
    for (size_t seq = 101; seq + 1 < 100 + ms.size(); ++seq) all += b.describe(100, seq) + "\n";
    EXPECT_NE(all.find("add element inet cnetd nets { 10.200.1.0/24 . \"vx-cccccccccccc\" }"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("add element inet cnetd icc_bridges { \"br-cccccccccccc\" . "
                       "\"vx-cccccccccccc\", \"vx-cccccccccccc\" . \"br-cccccccccccc\" }"),
              std::string::npos)
        << all;
    // Removal deletes the same elements; icc off: no peer acceptance either.
    auto del = decode(build_network("cnetd", n, false).bytes());
    EXPECT_EQ(del.size(), ms.size());
    n.icc = false;
    ms = decode(build_network("cnetd", n, true).bytes());
    EXPECT_FALSE(find_elems(ms, "icc_bridges"));
}

TEST(FirewallValidate, TunnelName) {
    auto n = net("ov", "br-c", "10.200.1.0/24");
    n.tunnel = "vx-c";
    EXPECT_TRUE(validate(n).ok());
    n.tunnel = "this-name-is-too-long";
    auto bad = validate(n);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message().find("network ov: tunnel"), std::string::npos)
        << bad.error().message();
    n.tunnel = "br-c";
    EXPECT_FALSE(validate(n).ok());
    n.tunnel = "vx-c";
    auto other = net("b", "vx-c", "10.9.0.0/24");
    auto clash = validate(std::vector<NetworkRules>{n, other});
    ASSERT_FALSE(clash.ok());
    EXPECT_NE(clash.error().message().find("interface vx-c already used by"), std::string::npos)
        << clash.error().message();
}

TEST(FirewallBatch, RemoveDeletesTheSameElements) {
    auto n = net("n1", "docker0", "172.17.0.0/16");
    auto add = decode(build_network("cnetd", n, true).bytes());
    auto del = decode(build_network("cnetd", n, false).bytes());
    ASSERT_EQ(add.size(), del.size());
    for (size_t i = 1; i + 1 < del.size(); ++i) {
        EXPECT_EQ(del[i].type, NFT_MSG_DELSETELEM);
        EXPECT_EQ(del[i].name, add[i].name);
        ASSERT_EQ(del[i].elems.size(), add[i].elems.size());
        for (size_t j = 0; j < del[i].elems.size(); ++j)
            EXPECT_EQ(del[i].elems[j].key, add[i].elems[j].key);
    }
}

TEST(FirewallBatch, RebuildLayoutIsIndependentOfNetworkCount) {
    auto count = [](const std::vector<Msg>& ms, int type) {
        return std::count_if(ms.begin(), ms.end(), [&](const Msg& m) { return m.type == type; });
    };
    std::vector<NetworkRules> many;
    for (int i = 0; i < 50; ++i)
        many.push_back(net(fmt::format("n{}", i), fmt::format("br{}", i),
                           fmt::format("10.{}.0.0/16", i).c_str()));
    auto one = decode(build_rebuild("cnetd", {many[0]}).bytes());
    auto fifty = decode(build_rebuild("cnetd", many).bytes());
    EXPECT_EQ(count(one, NFT_MSG_NEWRULE), count(fifty, NFT_MSG_NEWRULE));
    EXPECT_EQ(count(one, NFT_MSG_NEWCHAIN), count(fifty, NFT_MSG_NEWCHAIN));
    EXPECT_EQ(count(one, NFT_MSG_NEWSET), count(fifty, NFT_MSG_NEWSET));
    EXPECT_EQ(count(one, NFT_MSG_NEWCHAIN), 5);
    EXPECT_EQ(count(one, NFT_MSG_NEWRULE), kRules);
    EXPECT_EQ(count(fifty, NFT_MSG_NEWSETELEM), 50 * 5);

    // add table; delete table; add table — then sets, chains, rules, elements.
    ASSERT_GE(one.size(), 4u);
    EXPECT_EQ(one[1].type, NFT_MSG_NEWTABLE);
    EXPECT_EQ(one[2].type, NFT_MSG_DELTABLE);
    EXPECT_EQ(one[3].type, NFT_MSG_NEWTABLE);
    EXPECT_TRUE(one[3].flags & NLM_F_EXCL);
    for (const auto& m : one) {
        if (m.type == NFT_MSG_NEWTABLE) {
            EXPECT_EQ(m.name, "cnetd");
        }
        if (m.type == NFT_MSG_NEWRULE) {
            EXPECT_EQ(m.table, "cnetd");
            EXPECT_FALSE(m.comment.empty()) << m.chain;
        }
        if (m.type == NFT_MSG_NEWSET && m.name == "nets") {
            EXPECT_EQ(m.key_len, 20u);  // ipv4_addr . ifname
            EXPECT_EQ(m.set_flags, uint32_t{NFT_SET_INTERVAL | NFT_SET_CONCAT});
        }
    }
    // Rules come after every set and chain they use.
    size_t last_def = 0, first_rule = one.size();
    for (size_t i = 0; i < one.size(); ++i) {
        if (one[i].type == NFT_MSG_NEWSET || one[i].type == NFT_MSG_NEWCHAIN) last_def = i;
        if (one[i].type == NFT_MSG_NEWRULE) first_rule = std::min(first_rule, i);
    }
    EXPECT_LT(last_def, first_rule);

    Expected e = expected_state("cnetd", many);
    size_t rules = 0;
    for (const auto& c : e.chains) rules += c.rule_comments.size();
    EXPECT_EQ(rules, size_t{kRules});
    for (const auto& s : e.sets) {
        if (s.name == "bridges") {
            EXPECT_EQ(s.elements, 50u);
        }
    }
}

// ---- published ports ---------------------------------------------------------------------

PortForward pf(L4 proto, const char* host_ip, uint16_t h1, uint16_t h2, const char* cip,
               uint16_t c1, std::string br = "docker0") {
    PortForward p;
    p.proto = proto;
    if (host_ip) p.host_ip = Ipv4::parse(host_ip).value();
    p.host_first = h1;
    p.host_last = h2;
    p.container_ip = Ipv4::parse(cip).value();
    p.container_first = c1;
    p.bridge = std::move(br);
    return p;
}
std::vector<uint8_t> port(uint16_t p) {  // inet_service padded to a register
    return {static_cast<uint8_t>(p >> 8), static_cast<uint8_t>(p & 0xff), 0, 0};
}
std::vector<uint8_t> proto(uint8_t p) {
    return {p, 0, 0, 0};
}

TEST(FirewallPorts, SinglePortOnEveryAddressIsOneHashElement) {
    auto b = build_ports("cnetd", {pf(L4::Tcp, nullptr, 8080, 8080, "172.17.0.2", 80)}, true);
    auto ms = decode(b.bytes());
    ASSERT_EQ(ms.size(), 3u);  // begin, one NEWSETELEM, end
    EXPECT_EQ(ms[1].type, NFT_MSG_NEWSETELEM);
    EXPECT_EQ(ms[1].name, "published");  // the hash map: constant-time lookup
    EXPECT_EQ(ms[1].table, "cnetd");
    ASSERT_EQ(ms[1].elems.size(), 1u);
    const Elem& e = ms[1].elems[0];
    // Every address, one port: the key is just protocol . port (no interval, no address).
    EXPECT_EQ(e.key, proto(6) + port(8080));
    EXPECT_TRUE(e.key_end.empty());
    EXPECT_EQ(e.flags, 0u);
    // Value: container address . port.
    EXPECT_EQ(e.data, ip("172.17.0.2") + port(80));
    EXPECT_EQ(b.describe(1, 2),
              "add element inet cnetd published { tcp . 8080 : 172.17.0.2 . 80 }");
}

TEST(FirewallPorts, RangeIsOneElementWithAnOffsetWindow) {
    auto ms = decode(
        build_ports("cnetd", {pf(L4::Udp, nullptr, 8000, 8002, "172.17.0.2", 80)}, true).bytes());
    ASSERT_EQ(ms.size(), 3u);
    EXPECT_EQ(ms[1].name, "published_ranges");
    ASSERT_EQ(ms[1].elems.size(), 1u);
    const Elem& e = ms[1].elems[0];
    EXPECT_EQ(e.key, ip("0.0.0.0") + proto(17) + port(8000));
    EXPECT_EQ(e.key_end, ip("255.255.255.255") + proto(17) + port(8002));
    // The kernel maps dport to 80 + dport % 4: 8000 -> 80, 8001 -> 81, 8002 -> 82.
    EXPECT_EQ(e.data, ip("172.17.0.2") + port(80) + port(83));
}

TEST(FirewallPorts, SpecificHostAddressIsTheWholeKey) {
    auto p = pf(L4::Sctp, "198.51.100.7", 9000, 9000, "10.1.0.5", 9000, "br-x");
    auto ms = decode(build_ports("t", {p}, true).bytes());
    ASSERT_EQ(ms[1].elems.size(), 1u);
    EXPECT_EQ(ms[1].elems[0].key, ip("198.51.100.7") + proto(132) + port(9000));
    EXPECT_EQ(ms[1].elems[0].key_end, ip("198.51.100.7") + proto(132) + port(9000));
    EXPECT_EQ(ms[1].elems[0].data, ip("10.1.0.5") + port(9000) + port(9000));
    EXPECT_EQ(ms[1].name, "published_ranges");
    // 0.0.0.0 given explicitly means every address, as with Docker: the hash map.
    auto any =
        decode(build_ports("t", {pf(L4::Tcp, "0.0.0.0", 80, 80, "10.1.0.5", 80)}, true).bytes());
    EXPECT_EQ(any[1].name, "published");
    EXPECT_EQ(any[1].elems.at(0).key, proto(6) + port(80));

    // Removal deletes exactly the same keys; mappings of one map share a message.
    auto del = decode(build_ports("t",
                                  {p, pf(L4::Tcp, nullptr, 1, 1, "10.1.0.5", 1),
                                   pf(L4::Tcp, "198.51.100.8", 1, 1, "10.1.0.5", 1)},
                                  false)
                          .bytes());
    ASSERT_EQ(del.size(), 4u);
    EXPECT_EQ(del[1].type, NFT_MSG_DELSETELEM);
    EXPECT_EQ(del[1].name, "published_ranges");
    ASSERT_EQ(del[1].elems.size(), 2u);
    EXPECT_EQ(del[1].elems[0].key, ms[1].elems[0].key);
    EXPECT_EQ(del[1].elems[0].key_end, ms[1].elems[0].key_end);
    EXPECT_EQ(del[1].elems[1].key, ip("198.51.100.8") + proto(6) + port(1));
    EXPECT_EQ(del[2].name, "published");
    ASSERT_EQ(del[2].elems.size(), 1u);
    EXPECT_EQ(del[2].elems[0].key, proto(6) + port(1));
}

TEST(FirewallPorts, ManyMappingsArePackedIntoFewMessages) {
    std::vector<PortForward> ps;
    for (uint16_t i = 0; i < 1234; ++i)
        ps.push_back(pf(L4::Tcp, nullptr, 1000 + i, 1000 + i, "10.1.0.5", 80));
    auto b = build_ports("t", ps, true);
    EXPECT_EQ(b.size(), 3u);  // 500 + 500 + 234
    auto ms = decode(b.bytes());
    size_t n = 0;
    for (const auto& m : ms) n += m.elems.size();
    EXPECT_EQ(n, 1234u);
    EXPECT_EQ(ms[3].elems.back().key, proto(6) + port(1000 + 1233));
    EXPECT_NE(b.describe(1, 2).find("... (500 mappings)"), std::string::npos) << b.describe(1, 2);
}

TEST(FirewallPorts, Overlaps) {
    auto any80 = pf(L4::Tcp, nullptr, 80, 80, "10.1.0.5", 80);
    EXPECT_TRUE(overlaps(any80, pf(L4::Tcp, "192.0.2.1", 70, 90, "10.1.0.6", 70)));
    EXPECT_FALSE(overlaps(any80, pf(L4::Udp, nullptr, 80, 80, "10.1.0.6", 80)));
    EXPECT_FALSE(overlaps(any80, pf(L4::Tcp, nullptr, 81, 90, "10.1.0.6", 80)));
    EXPECT_FALSE(overlaps(pf(L4::Tcp, "192.0.2.1", 80, 80, "10.1.0.5", 80),
                          pf(L4::Tcp, "192.0.2.2", 80, 80, "10.1.0.6", 80)));
    EXPECT_TRUE(overlaps(pf(L4::Tcp, "0.0.0.0", 80, 80, "10.1.0.5", 80),
                         pf(L4::Tcp, "192.0.2.2", 80, 80, "10.1.0.6", 80)));
}

// The kernel's choice under NF_NAT_RANGE_PROTO_OFFSET with base 0 (nf_nat_l4proto_unique_tuple):
// port_min + dport % (port_max - port_min + 1). Every port of every range must land on
// container_first + (dport - host_first).
uint16_t kernel_pick(const PortMapValue& v, uint16_t dport) {
    const uint32_t size = uint32_t(v.port_max) - v.port_min + 1;
    return static_cast<uint16_t>(v.port_min + dport % size);
}
void expect_maps_1to1(const PortForward& p) {
    auto vs = port_map_values(p);
    ASSERT_FALSE(vs.empty());
    for (uint32_t d = p.host_first; d <= p.host_last; ++d) {
        const PortMapValue* v = nullptr;
        for (const auto& x : vs)
            if (d >= x.host_first && d <= x.host_last) v = &x;
        ASSERT_TRUE(v) << describe(p) << " dport " << d;
        ASSERT_EQ(kernel_pick(*v, static_cast<uint16_t>(d)), p.container_first + (d - p.host_first))
            << describe(p) << " dport " << d;
    }
}

TEST(FirewallPorts, OffsetWindowMapsEveryPortOfEveryRange) {
    EXPECT_EQ(port_map_values(pf(L4::Tcp, nullptr, 8000, 8010, "10.0.0.2", 80)).size(), 1u);
    uint32_t seed = 12345, checked = 0;
    auto rnd = [&](uint32_t mod) {
        seed = seed * 1103515245u + 12345u;
        return (seed >> 8) % mod;
    };
    for (int i = 0; i < 3000; ++i) {
        const uint16_t n = static_cast<uint16_t>(1 + rnd(i % 10 == 0 ? 2000 : 20));
        const uint16_t h = static_cast<uint16_t>(1 + rnd(65536 - n));
        const uint16_t c = static_cast<uint16_t>(1 + rnd(65536 - n));
        auto p = pf(L4::Tcp, nullptr, h, static_cast<uint16_t>(h + n - 1), "10.0.0.2", c);
        expect_maps_1to1(p);
        if (HasFatalFailure()) return;
        // One element unless n > h > c (then one per port).
        if (!(n > h && h > c)) {
            EXPECT_EQ(port_map_values(p).size(), 1u) << describe(p);
        }
        ++checked;
    }
    EXPECT_EQ(checked, 3000u);
    // Edges: top of the port space, h <= c, and the n > h > c fallback.
    expect_maps_1to1(pf(L4::Tcp, nullptr, 65530, 65535, "10.0.0.2", 65530));
    expect_maps_1to1(pf(L4::Tcp, nullptr, 1, 1024, "10.0.0.2", 64000));
    expect_maps_1to1(pf(L4::Tcp, nullptr, 40009, 40013, "10.0.0.2", 30000));
    auto fallback = pf(L4::Tcp, nullptr, 100, 300, "10.0.0.2", 50);
    expect_maps_1to1(fallback);
    EXPECT_EQ(port_map_values(fallback).size(), 201u);
}

TEST(FirewallPorts, RuleAndChainCountDoNotDependOnPorts) {
    auto count = [](const std::vector<Msg>& ms, int type) {
        return std::count_if(ms.begin(), ms.end(), [&](const Msg& m) { return m.type == type; });
    };
    std::vector<NetworkRules> nets{net("n1", "docker0", "172.17.0.0/16")};
    std::vector<PortForward> many;
    for (int i = 0; i < 10000; ++i)
        many.push_back(pf(i % 2 ? L4::Udp : L4::Tcp, nullptr, static_cast<uint16_t>(10000 + i),
                          static_cast<uint16_t>(10000 + i), "172.17.0.2", 80));
    auto zero = decode(build_rebuild("cnetd", nets, {}).bytes());
    auto one = decode(build_rebuild("cnetd", nets, {many[0]}).bytes());
    auto lots = decode(build_rebuild("cnetd", nets, many).bytes());
    for (int type : {NFT_MSG_NEWRULE, NFT_MSG_NEWCHAIN, NFT_MSG_NEWSET}) {
        EXPECT_EQ(count(zero, type), count(one, type)) << type;
        EXPECT_EQ(count(zero, type), count(lots, type)) << type;
    }
    EXPECT_EQ(count(lots, NFT_MSG_NEWRULE), kRules);
    // 20 messages of 500 map elements, and ONE hairpin_self element: every mapping targets the
    // same container address.
    EXPECT_EQ(count(lots, NFT_MSG_NEWSETELEM) - count(zero, NFT_MSG_NEWSETELEM), 21);
    size_t published = 0;
    for (const auto& m : lots)
        if (m.type == NFT_MSG_NEWSETELEM && m.name == "published") published += m.elems.size();
    EXPECT_EQ(published, 10000u);
    for (const auto& s : expected_state("cnetd", nets, many).sets)
        if (s.name == "published") {
            EXPECT_EQ(s.elements, 10000u);
        }
    // The DNAT lookups sit in the nat chains, the hairpin/localhost masquerades first in
    // postrouting (before "no nat on own bridge" returns), the loopback drop in raw.
    std::vector<std::string> post, pre, out, raw;
    for (const auto& m : one) {
        if (m.type != NFT_MSG_NEWRULE) continue;
        if (m.chain == "nat_postrouting") post.push_back(m.comment);
        if (m.chain == "nat_prerouting") pre.push_back(m.comment);
        if (m.chain == "nat_output") out.push_back(m.comment);
        if (m.chain == "raw_prerouting") raw.push_back(m.comment);
    }
    // The hash lookup (the common case) first, then the interval map, per family.
    EXPECT_EQ(pre, (std::vector<std::string>{
                       "cnetd: published ports", "cnetd: published port ranges",
                       "cnetd: published ports (ipv6)", "cnetd: published port ranges (ipv6)"}));
    EXPECT_EQ(out, (std::vector<std::string>{"cnetd: published ports from the host",
                                             "cnetd: published port ranges from the host",
                                             "cnetd: published ports from the host (ipv6)",
                                             "cnetd: published port ranges from the host (ipv6)"}));
    ASSERT_GE(post.size(), 7u);
    EXPECT_EQ(post[0], "cnetd: hairpin to itself");
    EXPECT_EQ(post[1], "cnetd: hairpin to itself (ipv6)");
    EXPECT_EQ(post[2], "cnetd: hairpin without br_netfilter");
    EXPECT_EQ(post[3], "cnetd: hairpin without br_netfilter (ipv6)");
    EXPECT_EQ(post[4], "cnetd: localhost to container");
    EXPECT_EQ(post[5], "cnetd: no nat on own bridge");
    EXPECT_EQ(post[6], "cnetd: no nat on own bridge (ipv6)");
    EXPECT_EQ(raw, (std::vector<std::string>{
                       "cnetd: no direct routing to container addresses",
                       "cnetd: no direct routing to container addresses (ipv6)",
                       "cnetd: loopback only from lo", "cnetd: ipv6 loopback only from lo"}));
}

TEST(FirewallPorts, ValidateAndDescribe) {
    auto good = pf(L4::Tcp, "127.0.0.1", 8000, 8002, "172.17.0.2", 80);
    EXPECT_TRUE(validate(good).ok());
    EXPECT_EQ(describe(good), "tcp 127.0.0.1:8000-8002 -> 172.17.0.2:80-82 (docker0)");
    auto r = validate(pf(L4::Tcp, nullptr, 9, 8, "172.17.0.2", 80));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("range ends before it starts"), std::string::npos);
    EXPECT_FALSE(validate(pf(L4::Tcp, nullptr, 0, 0, "172.17.0.2", 80)).ok());
    EXPECT_FALSE(validate(pf(L4::Tcp, nullptr, 1000, 1010, "172.17.0.2", 65530)).ok());
    EXPECT_FALSE(validate(pf(L4::Tcp, nullptr, 80, 80, "0.0.0.0", 80)).ok());
    EXPECT_FALSE(validate(pf(L4::Tcp, nullptr, 80, 80, "172.17.0.2", 80, "")).ok());
    std::string t = render("cnetd", {}, {good});
    EXPECT_NE(t.find("127.0.0.1 . tcp . 8000-8002 : 172.17.0.2 . 80 . 83"), std::string::npos) << t;
    EXPECT_NE(t.find("dnat ip to ip daddr . meta l4proto . th dport map @published"),
              std::string::npos);
}

// ---- IPv6 and gateway modes --------------------------------------------------------------

std::vector<uint8_t> ip6(const char* s) {
    auto a = Ipv6::parse(s).value().bytes();
    return {a.begin(), a.end()};
}
std::vector<uint8_t> fam(uint8_t f) {  // meta nfproto, padded
    return {f, 0, 0, 0};
}
NetworkRules net6(std::string id, std::string br, const char* cidr, const char* cidr6) {
    NetworkRules n = net(std::move(id), std::move(br), cidr);
    n.subnet6 = Ipv6Cidr::parse(cidr6).value();
    return n;
}
PortForward pf6(L4 proto, const char* host_ip6, uint16_t h1, uint16_t h2, const char* cip6,
                uint16_t c1, std::string br = "docker0") {
    PortForward p;
    p.family = Family::V6;
    p.proto = proto;
    if (host_ip6) p.host_ip6 = Ipv6::parse(host_ip6).value();
    p.host_first = h1;
    p.host_last = h2;
    p.container_ip6 = Ipv6::parse(cip6).value();
    p.container_first = c1;
    p.bridge = std::move(br);
    return p;
}
std::vector<std::string> set_names(const std::vector<Msg>& ms) {
    std::vector<std::string> v;
    for (const auto& m : ms)
        if (m.type == NFT_MSG_NEWSETELEM) v.push_back(m.name);
    return v;
}

TEST(FirewallIpv6, DualStackNetworkElements) {
    auto n = net6("n1", "docker0", "172.17.0.0/16", "fd12:3456:789a:1::/64");
    auto b = build_network("cnetd", n, true);
    auto ms = decode(b.bytes());
    const Msg* s6 = find_elems(ms, "subnets6");
    ASSERT_TRUE(s6);
    ASSERT_EQ(s6->elems.size(), 2u);  // interval start, first address after it (end flag)
    EXPECT_EQ(s6->elems[0].key, ip6("fd12:3456:789a:1::"));
    EXPECT_EQ(s6->elems[1].key, ip6("fd12:3456:789a:2::"));
    EXPECT_EQ(s6->elems[1].flags, uint32_t{NFT_SET_ELEM_INTERVAL_END});
    const Msg* n6 = find_elems(ms, "nets6");
    ASSERT_TRUE(n6);
    EXPECT_EQ(n6->elems.at(0).key, ip6("fd12:3456:789a:1::") + ifn("docker0"));
    EXPECT_EQ(n6->elems.at(0).key_end,
              ip6("fd12:3456:789a:1:ffff:ffff:ffff:ffff") + ifn("docker0"));
    const Msg* m6 = find_elems(ms, "masq_nets6");
    ASSERT_TRUE(m6);
    EXPECT_EQ(m6->elems.at(0).key, ip6("fd12:3456:789a:1::"));
    bool described = false;
    for (const auto& d : b.descriptions())
        described |= d == "add element inet cnetd nets6 { fd12:3456:789a:1::/64 . \"docker0\" }";
    EXPECT_TRUE(described);

    // host_ipv4 (SNAT) is IPv4 only: IPv6 still masquerades. Internal: neither.
    n.snat_source = Ipv4::parse("192.0.2.7").value();
    ms = decode(build_network("cnetd", n, true).bytes());
    EXPECT_TRUE(find_elems(ms, "snat_nets"));
    EXPECT_FALSE(find_elems(ms, "masq_nets"));
    EXPECT_TRUE(find_elems(ms, "masq_nets6"));
    n.internal = true;
    ms = decode(build_network("cnetd", n, true).bytes());
    EXPECT_FALSE(find_elems(ms, "masq_nets6"));
    EXPECT_TRUE(find_elems(ms, "subnets6"));
    // A /0 reaches the end of the address space: no end element.
    auto all = net6("n2", "br-all", "10.0.0.0/8", "::/1");
    all.subnet6 = Ipv6Cidr(Ipv6::parse("8000::").value(), 1);
    ms = decode(build_network("cnetd", all, true).bytes());
    EXPECT_EQ(find_elems(ms, "subnets6")->elems.size(), 1u);
    // IPv4-only networks add no IPv6 elements.
    ms = decode(build_network("cnetd", net("n3", "br-3", "10.3.0.0/24"), true).bytes());
    EXPECT_FALSE(find_elems(ms, "nets6"));
}

TEST(FirewallModes, ElementsPerGatewayMode) {
    auto n = net6("n1", "br-m", "10.5.0.0/24", "fd00:5::/64");
    auto names = [&] { return set_names(decode(build_network("t", n, true).bytes())); };
    auto has = [&](const std::string& set) {
        auto v = names();
        return std::find(v.begin(), v.end(), set) != v.end();
    };
    // nat (default): protected subnets, masquerade.
    EXPECT_TRUE(has("subnets") && has("subnets6") && has("masq_nets") && has("masq_nets6"));
    EXPECT_FALSE(has("open_bridges") || has("isolated_bridges"));
    // nat-unprotected for IPv4 only: no raw drop for the IPv4 subnet, forward accepts into it.
    n.mode4 = GatewayMode::NatUnprotected;
    EXPECT_FALSE(has("subnets"));
    EXPECT_TRUE(has("subnets6") && has("masq_nets") && has("masq_nets6"));
    auto ms = decode(build_network("t", n, true).bytes());
    ASSERT_TRUE(find_elems(ms, "open_bridges"));
    ASSERT_EQ(find_elems(ms, "open_bridges")->elems.size(), 1u);
    EXPECT_EQ(find_elems(ms, "open_bridges")->elems[0].key, fam(NFPROTO_IPV4) + ifn("br-m"));
    // routed for IPv6: no masquerade and no raw drop for IPv6; IPv4 stays nat.
    n.mode4 = GatewayMode::Nat;
    n.mode6 = GatewayMode::Routed;
    EXPECT_TRUE(has("subnets") && has("masq_nets"));
    EXPECT_FALSE(has("subnets6") || has("masq_nets6") || has("open_bridges"));
    // isolated for both: no masquerade, isolated_bridges for both families.
    n.mode4 = n.mode6 = GatewayMode::Isolated;
    ms = decode(build_network("t", n, true).bytes());
    EXPECT_FALSE(find_elems(ms, "masq_nets") || find_elems(ms, "masq_nets6"));
    const Msg* iso = find_elems(ms, "isolated_bridges");
    ASSERT_TRUE(iso);
    ASSERT_EQ(iso->elems.size(), 2u);
    EXPECT_EQ(iso->elems[0].key, fam(NFPROTO_IPV4) + ifn("br-m"));
    EXPECT_EQ(iso->elems[1].key, fam(NFPROTO_IPV6) + ifn("br-m"));
    std::string t = render("t", {n});
    EXPECT_NE(t.find("elements = { ipv4 . \"br-m\", ipv6 . \"br-m\" }"), std::string::npos) << t;
}

TEST(FirewallModes, RoutedNetworkOpensPublishedContainerPorts) {
    auto n = net6("n1", "br-r", "10.6.0.0/24", "fd00:6::/64");
    n.mode4 = n.mode6 = GatewayMode::Routed;
    auto p4 = pf(L4::Tcp, nullptr, 8000, 8002, "10.6.0.2", 80, "br-r");
    auto p6 = pf6(L4::Udp, nullptr, 5353, 5353, "fd00:6::2", 53, "br-r");
    auto ms = decode(build_ports("t", {p4, p6}, true, {n}).bytes());
    const Msg* r4 = find_elems(ms, "routed_ports");
    const Msg* r6 = find_elems(ms, "routed_ports6");
    ASSERT_TRUE(r4 && r6);
    EXPECT_EQ(r4->elems.at(0).key, ip("10.6.0.2") + proto(6) + port(80));
    EXPECT_EQ(r4->elems.at(0).key_end, ip("10.6.0.2") + proto(6) + port(82));
    EXPECT_EQ(r6->elems.at(0).key, ip6("fd00:6::2") + proto(17) + port(53));
    EXPECT_EQ(r6->elems.at(0).key_end, ip6("fd00:6::2") + proto(17) + port(53));
    // Not routed (or unknown network): DNAT elements only.
    ms = decode(build_ports("t", {p4, p6}, true, {}).bytes());
    EXPECT_FALSE(find_elems(ms, "routed_ports") || find_elems(ms, "routed_ports6"));
    n.mode6 = GatewayMode::Nat;
    ms = decode(build_ports("t", {p4, p6}, true, {n}).bytes());
    EXPECT_TRUE(find_elems(ms, "routed_ports"));
    EXPECT_FALSE(find_elems(ms, "routed_ports6"));
    for (const auto& s : expected_state("t", {n}, {p4, p6}).sets)
        if (s.name == "routed_ports") {
            EXPECT_EQ(s.elements, 1u);
        }
}

TEST(FirewallIpv6, PublishedPortsV6) {
    // [::]:8080 -> [fd00::2]:80: the IPv6 hash map.
    auto b = build_ports("cnetd", {pf6(L4::Tcp, nullptr, 8080, 8080, "fd00::2", 80)}, true);
    auto ms = decode(b.bytes());
    ASSERT_EQ(ms.size(), 3u);
    EXPECT_EQ(ms[1].name, "published6");
    EXPECT_EQ(ms[1].elems.at(0).key, proto(6) + port(8080));
    EXPECT_EQ(ms[1].elems.at(0).data, ip6("fd00::2") + port(80));
    EXPECT_EQ(b.describe(1, 2), "add element inet cnetd published6 { tcp . 8080 : fd00::2 . 80 }");
    // "::" given explicitly is every address too.
    ms = decode(build_ports("t", {pf6(L4::Tcp, "::", 80, 80, "fd00::2", 80)}, true).bytes());
    EXPECT_EQ(ms[1].name, "published6");
    // A specific address, and a range: the IPv6 interval map, offset window as for IPv4.
    auto spec = pf6(L4::Tcp, "2001:db8::9", 9090, 9090, "fd00::3", 90);
    auto range = pf6(L4::Udp, nullptr, 8000, 8002, "fd00::3", 80);
    ms = decode(build_ports("t", {spec, range}, true).bytes());
    ASSERT_EQ(ms.size(), 3u);
    EXPECT_EQ(ms[1].name, "published6_ranges");
    ASSERT_EQ(ms[1].elems.size(), 2u);
    EXPECT_EQ(ms[1].elems[0].key, ip6("2001:db8::9") + proto(6) + port(9090));
    EXPECT_EQ(ms[1].elems[0].key_end, ip6("2001:db8::9") + proto(6) + port(9090));
    EXPECT_EQ(ms[1].elems[0].data, ip6("fd00::3") + port(90) + port(90));
    EXPECT_EQ(ms[1].elems[1].key, ip6("::") + proto(17) + port(8000));
    EXPECT_EQ(ms[1].elems[1].key_end,
              ip6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") + proto(17) + port(8002));
    EXPECT_EQ(ms[1].elems[1].data, ip6("fd00::3") + port(80) + port(83));
    std::string t = render("t", {}, {spec, range});
    EXPECT_NE(t.find("2001:db8::9 . tcp . 9090 : fd00::3 . 90 . 90, ::/0 . udp . 8000-8002 : "
                     "fd00::3 . 80 . 83"),
              std::string::npos)
        << t;
    EXPECT_NE(t.find("ip6 daddr != ::1 fib daddr type local dnat ip6 to meta l4proto . th dport "
                     "map @published6"),
              std::string::npos);
    EXPECT_EQ(describe(spec), "tcp [2001:db8::9]:9090 -> [fd00::3]:90 (docker0)");
    EXPECT_EQ(describe(range), "udp [::]:8000-8002 -> [fd00::3]:80-82 (docker0)");

    // Families never overlap; within IPv6 [::] overlaps every address.
    auto any6 = pf6(L4::Tcp, nullptr, 80, 80, "fd00::2", 80);
    EXPECT_FALSE(overlaps(any6, pf(L4::Tcp, nullptr, 80, 80, "10.0.0.2", 80)));
    EXPECT_TRUE(overlaps(any6, pf6(L4::Tcp, "2001:db8::1", 70, 90, "fd00::3", 70)));
    EXPECT_FALSE(overlaps(pf6(L4::Tcp, "2001:db8::1", 80, 80, "fd00::3", 80),
                          pf6(L4::Tcp, "2001:db8::2", 80, 80, "fd00::3", 80)));
    EXPECT_FALSE(same_key(any6, pf(L4::Tcp, nullptr, 80, 80, "10.0.0.2", 80)));
}

TEST(FirewallIpv6, ValidatePortForwardV6) {
    EXPECT_TRUE(validate(pf6(L4::Tcp, nullptr, 80, 80, "fd00::2", 80)).ok());
    EXPECT_TRUE(validate(pf6(L4::Tcp, "2001:db8::1", 80, 80, "fd00::2", 80)).ok());
    auto r = validate(pf6(L4::Tcp, nullptr, 80, 80, "::", 80));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("container_ip6 :: is not a container address"),
              std::string::npos)
        << r.error().message();
    // ::1: refused with the reason (the kernel drops the answers; see docs/firewall.md).
    r = validate(pf6(L4::Tcp, "::1", 8080, 8080, "fd00::2", 80));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(r.error().message().find("published port tcp [::1]:8080 -> [fd00::2]:80 (docker0): "
                                       "host_ip6 ::1 cannot be published in the kernel"),
              std::string::npos)
        << r.error().message();
    EXPECT_FALSE(validate(pf6(L4::Tcp, "ff02::1", 80, 80, "fd00::2", 80)).ok());
    // subnet6 overlap between networks.
    auto over =
        validate(std::vector<NetworkRules>{net6("a", "br-a", "10.0.0.0/24", "fd00:1::/48"),
                                           net6("b", "br-b", "10.0.1.0/24", "fd00:1:0:5::/64")});
    ASSERT_FALSE(over.ok());
    EXPECT_NE(over.error().message().find("subnet6 fd00:1:0:5::/64 overlaps fd00:1::/48 of a"),
              std::string::npos)
        << over.error().message();
}

// The rebuild's fixed part decodes back (lib/nft's codec) into exactly the specs of the layout
// tables: what goes to the kernel is what set_defs/chain_defs/rule_defs say, nothing more.
TEST(FirewallBatch, RebuildDecodesBackToTheLayoutSpecs) {
    auto ms = nft::decode(build_rebuild("cnetd", {}).bytes());
    ASSERT_TRUE(ms.ok()) << ms.error().message();
    std::vector<nft::SetSpec> sets;
    std::vector<nft::ChainSpec> chains;
    std::vector<nft::RuleSpec> rules;
    for (const auto& m : *ms) {
        if (const auto* s = std::get_if<nft::SetSpec>(&m.object)) sets.push_back(*s);
        if (const auto* c = std::get_if<nft::ChainSpec>(&m.object)) chains.push_back(*c);
        if (const auto* r = std::get_if<nft::RuleSpec>(&m.object)) rules.push_back(*r);
    }
    ASSERT_EQ(sets.size(), detail::set_defs().size());
    for (size_t i = 0; i < sets.size(); ++i)
        EXPECT_EQ(sets[i], detail::set_spec("cnetd", detail::set_defs()[i], uint32_t(i + 1))) << i;
    ASSERT_EQ(chains.size(), detail::chain_defs().size());
    for (size_t i = 0; i < chains.size(); ++i)
        EXPECT_EQ(chains[i], detail::chain_spec("cnetd", detail::chain_defs()[i])) << i;
    ASSERT_EQ(rules.size(), static_cast<size_t>(kRules));
    for (size_t i = 0; i < rules.size(); ++i) {
        EXPECT_EQ(rules[i], detail::rule_spec("cnetd", detail::rule_defs()[i]))
            << detail::rule_defs()[i].comment;
        for (const auto& e : rules[i].exprs)  // every expression is one cnetd knows how to write
            EXPECT_FALSE(std::holds_alternative<nft::expr::Other>(e)) << nft::expr_name(e);
    }
}

TEST(FirewallBatch, SplitKeepsDescriptions) {
    auto b = build_network("cnetd", net("n1", "docker0", "172.17.0.0/16"), false);
    auto parts = b.split();
    ASSERT_EQ(parts.size(), b.size());
    EXPECT_EQ(parts[0].describe(7, 8), b.describe(1, 2));
    EXPECT_EQ(decode(parts[1].bytes()).size(), 3u);
}

TEST(FirewallValidate, RejectsBadIntent) {
    EXPECT_TRUE(validate(net("a", "docker0", "172.17.0.0/16")).ok());
    auto bad = validate(net("a", "this-name-is-too-long", "172.17.0.0/16"));
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message().find("network a"), std::string::npos);
    auto overlap = validate(std::vector<NetworkRules>{net("a", "br-a", "10.0.0.0/16"),
                                                      net("b", "br-b", "10.0.1.0/24")});
    ASSERT_FALSE(overlap.ok());
    EXPECT_NE(overlap.error().message().find("overlaps"), std::string::npos);
    auto dup = validate(std::vector<NetworkRules>{net("a", "br-a", "10.0.0.0/16"),
                                                  net("b", "br-a", "10.1.0.0/16")});
    EXPECT_FALSE(dup.ok());
}

TEST(FirewallRender, ShowsElementsAndRules) {
    auto n = net("n1", "docker0", "172.17.0.0/16");
    std::string t = render("cnetd", {n});
    EXPECT_NE(t.find("table inet cnetd {"), std::string::npos);
    EXPECT_NE(t.find("elements = { 172.17.0.0/16 . \"docker0\" }"), std::string::npos);
    EXPECT_NE(t.find("ip saddr @masq_nets masquerade"), std::string::npos);
}

TEST(FirewallNone, DoesNothingSuccessfully) {
    auto b = make_none_backend();
    EXPECT_EQ(b->name(), "none");
    EXPECT_TRUE(b->ensure_base().ok());
    EXPECT_TRUE(b->add_network(net("a", "docker0", "172.17.0.0/16")).ok());
    EXPECT_EQ(b->monitor_fd(), -1);
    EXPECT_FALSE(b->handle_events().value());
}

TEST(FirewallNone, ValidatesInput) {
    auto b = make_none_backend();
    EXPECT_FALSE(b->add_network(net("", "docker0", "172.17.0.0/16")).ok());
}

// find_overlap (the O(log n) check behind "port is already allocated") against the definition:
// a linear scan with overlaps(). Random disjoint indexes over a few host addresses (specific,
// every-address, explicit 0.0.0.0 / ::), both families and two protocols; random queries with a
// random set of skipped (replaced) keys.
TEST(PortIndex, FindOverlapAgreesWithALinearScan) {
    std::mt19937 rng(20261128);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    const std::optional<Ipv4> v4[] = {std::nullopt, *Ipv4::parse("0.0.0.0"),
                                      *Ipv4::parse("192.0.2.1"), *Ipv4::parse("192.0.2.2"),
                                      *Ipv4::parse("127.0.0.1")};
    const std::optional<Ipv6> v6[] = {std::nullopt, *Ipv6::parse("::"), *Ipv6::parse("2001:db8::1"),
                                      *Ipv6::parse("2001:db8::2")};
    auto random_mapping = [&] {
        PortForward p;
        p.family = pick(2) ? Family::V6 : Family::V4;
        p.proto = pick(2) ? L4::Tcp : L4::Udp;
        if (p.family == Family::V6)
            p.host_ip6 = v6[pick(4)];
        else
            p.host_ip = v4[pick(5)];
        p.host_first = static_cast<uint16_t>(1 + pick(80));
        p.host_last = static_cast<uint16_t>(p.host_first + (pick(3) ? 0 : pick(6)));
        return p;
    };
    int found = 0, clear = 0;
    for (int round = 0; round < 200; ++round) {
        PortMap index;
        for (int i = 0; i < 60; ++i) {
            PortForward p = random_mapping();
            bool free = true;
            for (const auto& [k, q] : index) free = free && !overlaps(p, q);
            if (free) index.emplace(port_key(p), p);
        }
        for (int q = 0; q < 50; ++q) {
            const PortForward p = random_mapping();
            PortMap skip;
            for (const auto& [k, e] : index)
                if (pick(8) == 0) skip.emplace(k, e);
            if (pick(2)) skip.emplace(port_key(p), p);
            const PortForward* linear = nullptr;
            for (const auto& [k, e] : index)
                if (!linear && !skip.count(k) && overlaps(p, e)) linear = &e;
            const PortForward* fast = find_overlap(index, p, skip);
            ASSERT_EQ(fast != nullptr, linear != nullptr)
                << describe(p) << " vs " << (linear ? describe(*linear) : describe(*fast));
            if (fast) {
                EXPECT_TRUE(overlaps(p, *fast)) << describe(p) << " vs " << describe(*fast);
                EXPECT_EQ(skip.count(port_key(*fast)), 0u);
                ++found;
            } else {
                ++clear;
            }
        }
    }
    // Both outcomes were exercised, many times.
    EXPECT_GT(found, 1000);
    EXPECT_GT(clear, 1000);
}

// Issue 15: only a container reaching its own published port is masqueraded. The rule looks the
// pair (source, destination after DNAT) up in hairpin_self, one `C . C` per container address.
TEST(FirewallPorts, HairpinSelfIsOneElementPerContainerAddress) {
    auto b = build_hairpin_self("cnetd",
                                {pf(L4::Tcp, nullptr, 8080, 8080, "172.17.0.2", 80),
                                 pf(L4::Udp, nullptr, 8080, 8080, "172.17.0.2", 80),
                                 pf(L4::Tcp, nullptr, 9090, 9090, "172.17.0.3", 90)},
                                false);
    auto ms = decode(b.bytes());
    ASSERT_EQ(ms.size(), 3u);  // begin, one DELSETELEM, end
    EXPECT_EQ(ms[1].type, NFT_MSG_DELSETELEM);
    EXPECT_EQ(ms[1].name, "hairpin_self");
    ASSERT_EQ(ms[1].elems.size(), 2u);  // 172.17.0.2 once, however many mappings it has
    EXPECT_EQ(ms[1].elems[0].key, ip("172.17.0.2") + ip("172.17.0.2"));
    EXPECT_EQ(ms[1].elems[1].key, ip("172.17.0.3") + ip("172.17.0.3"));
    EXPECT_EQ(b.describe(1, 2),
              "delete element inet cnetd hairpin_self { 172.17.0.2 . 172.17.0.2, 172.17.0.3 . "
              "172.17.0.3 }");
    auto six = decode(
        build_hairpin_self("t", {pf6(L4::Tcp, nullptr, 80, 80, "fd00::2", 80)}, true).bytes());
    ASSERT_EQ(six.size(), 3u);
    EXPECT_EQ(six[1].name, "hairpin_self6");
    EXPECT_EQ(six[1].elems.at(0).key.size(), 32u);

    const std::vector<NetworkRules> nets{net("n1", "docker0", "172.17.0.0/16")};
    const std::vector<PortForward> ports{pf(L4::Tcp, nullptr, 8080, 8080, "172.17.0.2", 80),
                                         pf(L4::Tcp, nullptr, 8081, 8081, "172.17.0.2", 81)};
    for (const auto& m : decode(build_rebuild("cnetd", nets, ports).bytes())) {
        if (m.type == NFT_MSG_NEWSET && m.name == "hairpin_self") {
            EXPECT_EQ(m.key_len, 8u);                          // ipv4_addr . ipv4_addr
            EXPECT_EQ(m.set_flags, uint32_t{NFT_SET_CONCAT});  // a hash: no interval
        }
        if (m.type == NFT_MSG_NEWSET && m.name == "unbridged") {
            EXPECT_EQ(m.key_len, 1u);
        }
        if (m.type == NFT_MSG_NEWSETELEM) {
            EXPECT_NE(m.name, "unbridged");  // br_netfilter on
        }
        if (m.type == NFT_MSG_NEWSETELEM && m.name == "hairpin_self") {
            EXPECT_EQ(m.elems.size(), 1u);
        }
    }
    for (const auto& s : expected_state("cnetd", nets, ports).sets)
        if (s.name == "hairpin_self") {
            EXPECT_EQ(s.elements, 1u);
        }
    const std::string t = render("cnetd", nets, ports);
    EXPECT_NE(t.find("ct status dnat ip saddr . ip daddr @hairpin_self masquerade comment "
                     "\"cnetd: hairpin to itself\""),
              std::string::npos)
        << t;
    EXPECT_NE(t.find("elements = { 172.17.0.2 . 172.17.0.2 }"), std::string::npos) << t;
    // The neighbour case is no longer masqueraded through `nets`, except without br_netfilter.
    EXPECT_EQ(t.find("ct status dnat ip saddr . oifname @nets masquerade"), std::string::npos);
}

// Without br_netfilter for a family, `unbridged` gets it and every hairpin connection of that
// family is masqueraded (the old behaviour: it works, the server sees the gateway).
TEST(FirewallPorts, UnbridgedFamiliesAreElements) {
    const std::vector<NetworkRules> nets{net("n1", "docker0", "172.17.0.0/16")};
    const Msg* u = nullptr;
    auto ms = decode(build_rebuild("cnetd", nets, {}, BridgeNf{false, true}).bytes());
    for (const auto& m : ms)
        if (m.type == NFT_MSG_NEWSETELEM && m.name == "unbridged") u = &m;
    ASSERT_NE(u, nullptr);
    ASSERT_EQ(u->elems.size(), 1u);
    EXPECT_EQ(u->elems[0].key, std::vector<uint8_t>{NFPROTO_IPV4});
    for (const auto& s : expected_state("cnetd", nets, {}, BridgeNf{false, false}).sets)
        if (s.name == "unbridged") {
            EXPECT_EQ(s.elements, 2u);
        }
    const std::string t = render("cnetd", nets, {}, BridgeNf{false, false});
    EXPECT_NE(t.find("elements = { ipv4, ipv6 }"), std::string::npos) << t;
    EXPECT_NE(t.find("ct status dnat meta nfproto @unbridged ip saddr . oifname @nets masquerade"),
              std::string::npos);
}

}  // namespace
}  // namespace cnetd::firewall

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
