#include "firewall/ruleset.hpp"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstring>
#include <functional>

#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "nft/expr.hpp"

namespace cnetd::firewall {
namespace {

using TablePtr = CHandle<nftnl_table, nftnl_table_free>;
using ChainPtr = CHandle<nftnl_chain, nftnl_chain_free>;
using RulePtr = CHandle<nftnl_rule, nftnl_rule_free>;
using SetPtr = CHandle<nftnl_set, nftnl_set_free>;

constexpr int kFamily = NFPROTO_INET;
constexpr uint32_t kIfnameLen = 16;  // IFNAMSIZ: meta iifname loads 16 zero-padded bytes

// nft's datatype numbers (nftables' enum datatypes), so `nft list` prints our sets readably.
// Concatenated types are packed 6 bits per field.
constexpr uint32_t kTypeIpv4 = 7, kTypeInetProto = 12, kTypeInetService = 13, kTypeIfname = 41;
constexpr uint32_t concat_type(std::initializer_list<uint32_t> t) {
    uint32_t v = 0;
    for (uint32_t x : t) v = (v << 6) | x;
    return v;
}

// ---- sets ---------------------------------------------------------------------------------

struct SetDef {
    const char* name;
    uint32_t flags;
    uint32_t key_type;
    std::vector<uint32_t> fields;  // field lengths (concatenations); key_len = sum of padded
    uint32_t data_type = 0;        // maps only
    uint32_t data_len = 0;
    const char* nft_decl;  // for render() and the batch journal
};

const std::vector<SetDef>& set_defs() {
    static const std::vector<SetDef> defs = {
        {"bridges", 0, kTypeIfname, {kIfnameLen}, 0, 0, "type ifname"},
        {"internal_bridges", 0, kTypeIfname, {kIfnameLen}, 0, 0, "type ifname"},
        {"icc_bridges",
         NFT_SET_CONCAT,
         concat_type({kTypeIfname, kTypeIfname}),
         {kIfnameLen, kIfnameLen},
         0,
         0,
         "type ifname . ifname"},
        {"subnets", NFT_SET_INTERVAL, kTypeIpv4, {4}, 0, 0, "type ipv4_addr; flags interval"},
        {"nets",
         NFT_SET_INTERVAL | NFT_SET_CONCAT,
         concat_type({kTypeIpv4, kTypeIfname}),
         {4, kIfnameLen},
         0,
         0,
         "type ipv4_addr . ifname; flags interval"},
        {"masq_nets", NFT_SET_INTERVAL, kTypeIpv4, {4}, 0, 0, "type ipv4_addr; flags interval"},
        {"snat_nets",
         NFT_SET_MAP | NFT_SET_INTERVAL,
         kTypeIpv4,
         {4},
         kTypeIpv4,
         4,
         "type ipv4_addr : ipv4_addr; flags interval"},
        // Reserved for published ports: (host address, protocol, port) -> (container, port).
        {"published",
         NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_CONCAT,
         concat_type({kTypeIpv4, kTypeInetProto, kTypeInetService}),
         {4, 1, 2},
         concat_type({kTypeIpv4, kTypeInetService}),
         8,
         "type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; flags interval"},
    };
    return defs;
}

uint32_t padded(uint32_t len) {
    return (len + 3) & ~3u;
}

// ---- chains and rules ---------------------------------------------------------------------

struct ChainDef {
    const char* name;
    const char* type;
    uint32_t hook;
    int32_t prio;
    const char* nft_hook;  // for render()
};

const std::vector<ChainDef>& chain_defs() {
    static const std::vector<ChainDef> defs = {
        {"raw_prerouting", "filter", NF_INET_PRE_ROUTING, -300,
         "type filter hook prerouting priority raw; policy accept;"},
        {"forward", "filter", NF_INET_FORWARD, 0,
         "type filter hook forward priority filter; policy accept;"},
        {"nat_prerouting", "nat", NF_INET_PRE_ROUTING, -100,
         "type nat hook prerouting priority dstnat; policy accept;"},
        {"nat_output", "nat", NF_INET_LOCAL_OUT, -100,
         "type nat hook output priority dstnat; policy accept;"},
        {"nat_postrouting", "nat", NF_INET_POST_ROUTING, 100,
         "type nat hook postrouting priority srcnat; policy accept;"},
    };
    return defs;
}

// In the inet family an `ip ...` match needs `meta nfproto ipv4` first (nft adds it implicitly).
void ipv4_only(nftnl_rule* r) {
    nft::expr::meta(r, NFT_META_NFPROTO, NFT_REG_1);
    nft::expr::cmp_u32(r, NFT_REG_1, NFT_CMP_EQ, NFPROTO_IPV4);
}
void ifname_in(nftnl_rule* r, uint32_t key, const char* set) {
    nft::expr::meta(r, key, NFT_REG_1);
    nft::expr::lookup(r, NFT_REG_1, set);
}
void ct_state_any(nftnl_rule* r, uint32_t bits) {
    nft::expr::ct(r, NFT_CT_STATE, NFT_REG_1);
    nft::expr::bitwise_mask(r, NFT_REG_1, bits);
    uint32_t zero = 0;
    nft::expr::cmp(r, NFT_REG_1, NFT_CMP_NEQ, &zero, sizeof zero);
}
constexpr uint32_t kIpSaddr = 12, kIpDaddr = 16;  // offsets in the IPv4 header

struct RuleDef {
    const char* chain;
    const char* comment;  // stable identity of the rule
    const char* nft;      // the same rule in nft syntax
    std::function<void(nftnl_rule*)> build;
};

const std::vector<RuleDef>& rule_defs() {
    using namespace nft::expr;
    static const std::vector<RuleDef> defs = {
        // Docker 28's raw PREROUTING `-d C ! -i br -j DROP`, for whole subnets at once: a packet
        // for a managed subnet must arrive on that subnet's bridge. Local addresses (the bridge's
        // own gateway address) stay reachable, as they are with Docker.
        {"raw_prerouting", "cnetd: no direct routing to container addresses",
         "ip daddr @subnets ip daddr . iifname != @nets fib daddr type != local drop",
         [](nftnl_rule* r) {
             ipv4_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpDaddr, 4, NFT_REG_1);
             lookup(r, NFT_REG_1, "subnets");
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpDaddr, 4, NFT_REG_1);
             meta(r, NFT_META_IIFNAME, NFT_REG32_01);
             lookup(r, NFT_REG_1, "nets", /*invert=*/true);
             fib(r, NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_1);
             cmp_u32(r, NFT_REG_1, NFT_CMP_NEQ, RTN_LOCAL);
             verdict(r, NF_DROP);
         }},
        {"forward", "cnetd: established", "ct state established,related accept",
         [](nftnl_rule* r) {
             ct_state_any(r, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
             verdict(r, NF_ACCEPT);
         }},
        {"forward", "cnetd: invalid from bridge", "iifname @bridges ct state invalid drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_IIFNAME, "bridges");
             ct_state_any(r, NF_CT_STATE_INVALID_BIT);
             verdict(r, NF_DROP);
         }},
        {"forward", "cnetd: invalid to bridge", "oifname @bridges ct state invalid drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_OIFNAME, "bridges");
             ct_state_any(r, NF_CT_STATE_INVALID_BIT);
             verdict(r, NF_DROP);
         }},
        // Only bridged traffic (br_netfilter) has iifname == oifname == the bridge.
        {"forward", "cnetd: icc", "iifname . oifname @icc_bridges accept",
         [](nftnl_rule* r) {
             meta(r, NFT_META_IIFNAME, NFT_REG_1);
             meta(r, NFT_META_OIFNAME, NFT_REG_2);
             lookup(r, NFT_REG_1, "icc_bridges");
             verdict(r, NF_ACCEPT);
         }},
        {"forward", "cnetd: internal egress", "iifname @internal_bridges drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_IIFNAME, "internal_bridges");
             verdict(r, NF_DROP);
         }},
        {"forward", "cnetd: internal ingress", "oifname @internal_bridges drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_OIFNAME, "internal_bridges");
             verdict(r, NF_DROP);
         }},
        // Between two managed bridges (isolation) or within one with ICC off.
        {"forward", "cnetd: isolation", "iifname @bridges oifname @bridges drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_IIFNAME, "bridges");
             ifname_in(r, NFT_META_OIFNAME, "bridges");
             verdict(r, NF_DROP);
         }},
        // Docker's `! -i br -o br -j DROP`: nothing unsolicited from outside reaches a container.
        {"forward", "cnetd: no inbound", "oifname @bridges drop",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_OIFNAME, "bridges");
             verdict(r, NF_DROP);
         }},
        {"forward", "cnetd: outbound", "iifname @bridges accept",
         [](nftnl_rule* r) {
             ifname_in(r, NFT_META_IIFNAME, "bridges");
             verdict(r, NF_ACCEPT);
         }},
        {"nat_postrouting", "cnetd: no nat on own bridge", "ip saddr . oifname @nets return",
         [](nftnl_rule* r) {
             ipv4_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpSaddr, 4, NFT_REG_1);
             meta(r, NFT_META_OIFNAME, NFT_REG32_01);
             lookup(r, NFT_REG_1, "nets");
             verdict(r, NFT_RETURN);
         }},
        {"nat_postrouting", "cnetd: masquerade", "ip saddr @masq_nets masquerade",
         [](nftnl_rule* r) {
             ipv4_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpSaddr, 4, NFT_REG_1);
             lookup(r, NFT_REG_1, "masq_nets");
             masquerade(r);
         }},
        {"nat_postrouting", "cnetd: snat", "snat ip to ip saddr map @snat_nets",
         [](nftnl_rule* r) {
             ipv4_only(r);
             payload(r, NFT_PAYLOAD_NETWORK_HEADER, kIpSaddr, 4, NFT_REG_1);
             lookup(r, NFT_REG_1, "snat_nets", false, NFT_REG_1);
             snat(r, NFPROTO_IPV4, NFT_REG_1);
         }},
    };
    return defs;
}

// ---- elements -----------------------------------------------------------------------------

struct Elem {
    std::vector<uint8_t> key, key_end, data;
    uint32_t flags = 0;
};
struct SetElems {
    const char* set;
    std::vector<Elem> elems;
    std::string text;  // "{ 172.17.0.0/16 . "docker0" }"
};

std::vector<uint8_t> be32(uint32_t host) {
    uint32_t v = htonl(host);
    std::vector<uint8_t> out(4);
    std::memcpy(out.data(), &v, 4);
    return out;
}
std::vector<uint8_t> ifname(const std::string& name) {
    std::vector<uint8_t> out(kIfnameLen, 0);
    std::memcpy(out.data(), name.data(), std::min<size_t>(name.size(), kIfnameLen - 1));
    return out;
}
std::vector<uint8_t> cat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// An rbtree interval: the start, and the first address after it flagged as an interval end
// (omitted when the range reaches 255.255.255.255, as nft does).
std::vector<Elem> interval(const Ipv4Cidr& c, std::vector<uint8_t> data = {}) {
    std::vector<Elem> out;
    out.push_back(Elem{be32(c.network().value()), {}, std::move(data), 0});
    if (c.broadcast().value() != 0xffffffffu)
        out.push_back(Elem{be32(c.broadcast().value() + 1), {}, {}, NFT_SET_ELEM_INTERVAL_END});
    return out;
}

std::vector<SetElems> network_elements(const NetworkRules& n) {
    const Ipv4Cidr s = n.subnet.masked();
    const std::string q = fmt::format("\"{}\"", n.bridge);
    std::vector<SetElems> out;
    out.push_back({"bridges", {Elem{ifname(n.bridge), {}, {}, 0}}, fmt::format("{{ {} }}", q)});
    out.push_back({"subnets", interval(s), fmt::format("{{ {} }}", s.str())});
    out.push_back({"nets",
                   {Elem{cat(be32(s.network().value()), ifname(n.bridge)),
                         cat(be32(s.broadcast().value()), ifname(n.bridge)),
                         {},
                         0}},
                   fmt::format("{{ {} . {} }}", s.str(), q)});
    if (n.icc)
        out.push_back({"icc_bridges",
                       {Elem{cat(ifname(n.bridge), ifname(n.bridge)), {}, {}, 0}},
                       fmt::format("{{ {} . {} }}", q, q)});
    if (n.internal)
        out.push_back(
            {"internal_bridges", {Elem{ifname(n.bridge), {}, {}, 0}}, fmt::format("{{ {} }}", q)});
    if (n.masquerade && !n.internal) {
        if (n.snat_source)
            out.push_back({"snat_nets", interval(s, be32(n.snat_source->value())),
                           fmt::format("{{ {} : {} }}", s.str(), n.snat_source->str())});
        else
            out.push_back({"masq_nets", interval(s), fmt::format("{{ {} }}", s.str())});
    }
    return out;
}

void add_elements(nft::Batch& b, std::string_view table, const SetElems& se, bool add) {
    SetPtr s(nftnl_set_alloc());
    const std::string t(table);
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, t.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, se.set);
    for (const auto& e : se.elems) {
        nftnl_set_elem* el = nftnl_set_elem_alloc();
        nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, e.key.data(), e.key.size());
        if (!e.key_end.empty())
            nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY_END, e.key_end.data(), e.key_end.size());
        if (!e.data.empty())
            nftnl_set_elem_set(el, NFTNL_SET_ELEM_DATA, e.data.data(), e.data.size());
        if (e.flags) nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_FLAGS, e.flags);
        nftnl_set_elem_add(s.get(), el);
    }
    b.add_elements(
        add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, kFamily, add ? NLM_F_CREATE : 0, s.get(),
        fmt::format("{} element inet {} {} {}", add ? "add" : "delete", table, se.set, se.text));
}

}  // namespace

// ---- public ---------------------------------------------------------------------------------

nft::Batch build_network(std::string_view table, const NetworkRules& n, bool add) {
    nft::Batch b;
    for (const auto& se : network_elements(n)) add_elements(b, table, se, add);
    return b;
}

nft::Batch build_rebuild(std::string_view table, const std::vector<NetworkRules>& nets) {
    nft::Batch b;
    const std::string t(table);
    {
        TablePtr tb(nftnl_table_alloc());
        nftnl_table_set_str(tb.get(), NFTNL_TABLE_NAME, t.c_str());
        // "add; delete; add": the delete never fails, and drops every old object in the same
        // transaction that creates the new ones.
        b.add_table(NFT_MSG_NEWTABLE, kFamily, NLM_F_CREATE, tb.get(), "add table inet " + t);
        b.add_table(NFT_MSG_DELTABLE, kFamily, 0, tb.get(), "delete table inet " + t);
        b.add_table(NFT_MSG_NEWTABLE, kFamily, NLM_F_CREATE | NLM_F_EXCL, tb.get(),
                    "add table inet " + t);
    }
    uint32_t set_id = 0;
    for (const auto& d : set_defs()) {
        SetPtr s(nftnl_set_alloc());
        // The kernel requires a transaction-local set id (used by nft for anonymous sets).
        nftnl_set_set_u32(s.get(), NFTNL_SET_ID, ++set_id);
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, t.c_str());
        nftnl_set_set_str(s.get(), NFTNL_SET_NAME, d.name);
        nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, kFamily);
        nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, d.flags);
        nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, d.key_type);
        uint32_t key_len = 0;
        for (uint32_t f : d.fields) key_len += padded(f);
        nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, key_len);
        if (d.fields.size() > 1) {
            // The kernel needs the field lengths to pick the concatenation-aware (pipapo) backend.
            // libnftnl takes the whole array of field lengths at once, as bytes (uint8_t[]).
            std::vector<uint8_t> lens(d.fields.begin(), d.fields.end());
            nftnl_set_set_data(s.get(), NFTNL_SET_DESC_CONCAT, lens.data(),
                               static_cast<uint32_t>(lens.size()));
        }
        {
            // nft reads the key's byte order from the set's user data: without it an ifname
            // (a host-order string) set lists as "" in `nft list`. 1 = host, 2 = big endian.
            nftnl_udata_buf* ud = nftnl_udata_buf_alloc(64);
            nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER,
                                d.key_type == kTypeIfname ? 1 : 2);
            if (d.flags & NFT_SET_MAP) nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_DATABYTEORDER, 2);
            if (d.flags & NFT_SET_INTERVAL)
                nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_MERGE_ELEMENTS, 1);
            nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud),
                               nftnl_udata_buf_len(ud));
            nftnl_udata_buf_free(ud);
        }
        if (d.flags & NFT_SET_MAP) {
            nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, d.data_type);
            nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_LEN, d.data_len);
        }
        b.add_set(NFT_MSG_NEWSET, kFamily, NLM_F_CREATE | NLM_F_EXCL, s.get(),
                  fmt::format("add {} inet {} {} {{ {}; }}", d.flags & NFT_SET_MAP ? "map" : "set",
                              t, d.name, d.nft_decl));
    }
    for (const auto& d : chain_defs()) {
        ChainPtr c(nftnl_chain_alloc());
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, t.c_str());
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, d.name);
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, d.type);
        nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, d.hook);
        nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, d.prio);
        nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
        b.add_chain(NFT_MSG_NEWCHAIN, kFamily, NLM_F_CREATE | NLM_F_EXCL, c.get(),
                    fmt::format("add chain inet {} {} {{ {} }}", t, d.name, d.nft_hook));
    }
    for (const auto& d : rule_defs()) {
        RulePtr r(nftnl_rule_alloc());
        nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, t.c_str());
        nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, d.chain);
        nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, kFamily);
        d.build(r.get());
        nft::expr::comment(r.get(), d.comment);
        b.add_rule(NFT_MSG_NEWRULE, kFamily, NLM_F_CREATE | NLM_F_APPEND, r.get(),
                   fmt::format("add rule inet {} {} {}", t, d.chain, d.nft));
    }
    for (const auto& n : nets) b.append(build_network(table, n, true));
    return b;
}

Expected expected_state(std::string_view, const std::vector<NetworkRules>& nets) {
    Expected e;
    for (const auto& c : chain_defs()) {
        ExpectedChain ec{c.name, {}};
        for (const auto& r : rule_defs())
            if (std::string_view(r.chain) == c.name) ec.rule_comments.push_back(r.comment);
        e.chains.push_back(std::move(ec));
    }
    for (const auto& s : set_defs()) e.sets.push_back({s.name, 0});
    for (const auto& n : nets)
        for (const auto& se : network_elements(n))
            for (auto& es : e.sets)
                if (es.name == se.set) es.elements += se.elems.size();
    return e;
}

std::string mismatch(const nft::TableInfo& have, const Expected& want, bool elements) {
    if (!have.exists) return "table missing";
    for (const auto& c : want.chains) {
        const nft::ChainInfo* h = have.chain(c.name);
        if (!h) return fmt::format("chain {} missing", c.name);
        if (h->rule_comments != c.rule_comments)
            return fmt::format("chain {} has {} rules, not our {}", c.name, h->rule_comments.size(),
                               c.rule_comments.size());
    }
    if (have.chains.size() != want.chains.size())
        return fmt::format("{} chains instead of {}", have.chains.size(), want.chains.size());
    for (const auto& s : want.sets) {
        const nft::SetInfo* h = have.set(s.name);
        if (!h) return fmt::format("set {} missing", s.name);
        if (elements && h->elements != s.elements)
            return fmt::format("set {} has {} elements, not {}", s.name, h->elements, s.elements);
    }
    if (have.sets.size() != want.sets.size())
        return fmt::format("{} sets instead of {}", have.sets.size(), want.sets.size());
    return {};
}

bool matches(const nft::TableInfo& have, const Expected& want, bool elements) {
    return mismatch(have, want, elements).empty();
}

std::string render(std::string_view table, const std::vector<NetworkRules>& nets) {
    std::string out = fmt::format("table inet {} {{\n", table);
    for (const auto& d : set_defs()) {
        out += fmt::format("\t{} {} {{\n", d.flags & NFT_SET_MAP ? "map" : "set", d.name);
        out += fmt::format("\t\t{}\n", d.nft_decl);
        std::vector<std::string> elems;
        for (const auto& n : nets)
            for (const auto& se : network_elements(n))
                if (std::string_view(se.set) == d.name)
                    elems.push_back(se.text.substr(2, se.text.size() - 4));  // strip "{ " " }"
        if (!elems.empty()) {
            out += "\t\telements = { ";
            for (size_t i = 0; i < elems.size(); ++i) out += (i ? ", " : "") + elems[i];
            out += " }\n";
        }
        out += "\t}\n";
    }
    for (const auto& c : chain_defs()) {
        out += fmt::format("\tchain {} {{\n\t\t{}\n", c.name, c.nft_hook);
        for (const auto& r : rule_defs())
            if (std::string_view(r.chain) == c.name)
                out += fmt::format("\t\t{} comment \"{}\"\n", r.nft, r.comment);
        out += "\t}\n";
    }
    out += "}\n";
    return out;
}

Result<void> validate(const NetworkRules& n) {
    auto frame = [&] { return fmt::format("network {}", n.id.empty() ? n.bridge : n.id); };
    if (n.id.empty()) return Error::invalid(fmt::format("{}: empty network id", frame()));
    if (auto r = validate_ifname(n.bridge); !r.ok())
        return Error(r.error()).wrap(frame() + ": bridge");
    if (n.subnet.prefix() < 1 || n.subnet.prefix() > 32)
        return Error::invalid(
            fmt::format("{}: subnet {}: prefix must be 1..32", frame(), n.subnet.str()));
    return ok();
}

Result<void> validate(const std::vector<NetworkRules>& nets) {
    for (size_t i = 0; i < nets.size(); ++i) {
        CNETD_TRY(validate(nets[i]));
        for (size_t j = 0; j < i; ++j) {
            if (nets[i].id == nets[j].id)
                return Error::invalid(fmt::format("network {}: duplicate id", nets[i].id));
            if (nets[i].bridge == nets[j].bridge)
                return Error::invalid(fmt::format("network {}: bridge {} already used by {}",
                                                  nets[i].id, nets[i].bridge, nets[j].id));
            if (nets[i].subnet.masked().overlaps(nets[j].subnet.masked()))
                return Error::invalid(fmt::format("network {}: subnet {} overlaps {} of {}",
                                                  nets[i].id, nets[i].subnet.str(),
                                                  nets[j].subnet.str(), nets[j].id));
        }
    }
    return ok();
}

}  // namespace cnetd::firewall
