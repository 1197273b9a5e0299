#include "nft/codec.hpp"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <cstring>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "base/fd.hpp"
#include "nft/attrs.hpp"
#include "nft/expr_codec.hpp"

namespace cnetd::nft {
namespace {

// Scratch space for one message; our largest (an element list of kMaxElemsPerMsg mappings,
// ~32 KiB) is far smaller.
constexpr size_t kMsgBuf = 64 * 1024;
constexpr uint32_t kByteorderHost = 1, kByteorderBig = 2;  // nft's set user data values

using TablePtr = CHandle<nftnl_table, nftnl_table_free>;
using ChainPtr = CHandle<nftnl_chain, nftnl_chain_free>;
using RulePtr = CHandle<nftnl_rule, nftnl_rule_free>;
using SetPtr = CHandle<nftnl_set, nftnl_set_free>;

template <class Obj, class BuildFn>
std::vector<uint8_t> build_msg(int msg, int family, uint16_t flags, Obj* o, BuildFn payload) {
    std::vector<char> buf(kMsgBuf);
    nlmsghdr* nlh =
        nftnl_nlmsg_build_hdr(buf.data(), static_cast<uint16_t>(msg), static_cast<uint16_t>(family),
                              static_cast<uint16_t>(flags | NLM_F_ACK), 0);
    payload(nlh, o);
    return {buf.data(), buf.data() + nlh->nlmsg_len};
}

// nft reads a set's key byte order from its user data: without it an ifname set (a host-order
// string) lists as "" in `nft list`.
void put_set_userdata(nftnl_set* s, const SetSpec& spec) {
    nftnl_udata_buf* ud = nftnl_udata_buf_alloc(64);
    if (!ud) std::abort();
    const bool host = spec.key.size() == 1 && spec.key[0] == Type::Ifname;
    nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, host ? kByteorderHost : kByteorderBig);
    if (spec.is_map()) nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_DATABYTEORDER, kByteorderBig);
    if (spec.interval) nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_MERGE_ELEMENTS, 1);
    nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
    nftnl_udata_buf_free(ud);
}

void put_comment(nftnl_rule* r, const std::string& text) {
    nftnl_udata_buf* buf = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    if (!buf) std::abort();
    const std::string s = text.substr(0, NFTNL_UDATA_COMMENT_MAXLEN - 1);
    nftnl_udata_put_strz(buf, NFTNL_UDATA_RULE_COMMENT, s.c_str());
    nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(buf),
                        nftnl_udata_buf_len(buf));
    nftnl_udata_buf_free(buf);
}

std::string get_comment(const nftnl_rule* r) {
    if (!nftnl_rule_is_set(r, NFTNL_RULE_USERDATA)) return {};
    uint32_t len = 0;
    const void* data = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
    std::string out;
    nftnl_udata_parse(
        data, len,
        [](const nftnl_udata* attr, void* d) -> int {
            if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT) {
                const char* s = static_cast<const char*>(nftnl_udata_get(attr));
                static_cast<std::string*>(d)->assign(s, strnlen(s, nftnl_udata_len(attr)));
            }
            return 0;
        },
        &out);
    return out;
}

std::string str_or_empty(const char* s) {
    return s ? s : "";
}

using detail::each_attr;
using detail::each_nested;

ElementSpec parse_element(const nlattr* list_elem) {
    ElementSpec el;
    each_nested(list_elem, [&](const nlattr* f) {
        const auto ft = mnl_attr_get_type(f);
        if (ft == NFTA_SET_ELEM_FLAGS)
            el.interval_end = (ntohl(mnl_attr_get_u32(f)) & NFT_SET_ELEM_INTERVAL_END) != 0;
        std::vector<uint8_t>* dst = ft == NFTA_SET_ELEM_KEY       ? &el.key
                                    : ft == NFTA_SET_ELEM_KEY_END ? &el.key_end
                                    : ft == NFTA_SET_ELEM_DATA    ? &el.data
                                                                  : nullptr;
        if (!dst) return;
        each_nested(f, [&](const nlattr* v) {  // NFTA_DATA_VALUE
            auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(v));
            dst->assign(p, p + mnl_attr_get_payload_len(v));
        });
    });
    return el;
}

int family_of(const nlmsghdr* nlh) {
    return static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh))->nfgen_family;
}

Error unparsable(const char* what) {
    return Error::internal(fmt::format("cannot parse nftables {} message", what));
}

}  // namespace

// ---- encode ---------------------------------------------------------------------------------

std::vector<uint8_t> encode(int msg, uint16_t flags, const TableSpec& spec) {
    TablePtr t(nftnl_table_alloc());
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, spec.name.c_str());
    return build_msg(msg, spec.family, flags, t.get(), nftnl_table_nlmsg_build_payload);
}

std::vector<uint8_t> encode(int msg, uint16_t flags, const ChainSpec& spec) {
    ChainPtr c(nftnl_chain_alloc());
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, spec.table.c_str());
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, spec.name.c_str());
    if (spec.base) {
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, spec.base->type.c_str());
        nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, spec.base->hooknum);
        nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, spec.base->priority);
        if (spec.base->policy) nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, *spec.base->policy);
    }
    return build_msg(msg, spec.family, flags, c.get(), nftnl_chain_nlmsg_build_payload);
}

std::vector<uint8_t> encode(int msg, uint16_t flags, const SetSpec& spec) {
    SetPtr s(nftnl_set_alloc());
    if (spec.id) nftnl_set_set_u32(s.get(), NFTNL_SET_ID, spec.id);
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, spec.table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, spec.name.c_str());
    nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, static_cast<uint32_t>(spec.family));
    nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, spec.flags());
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, spec.key_type());
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, spec.key_len());
    if (spec.key.size() > 1) {
        // The kernel needs the field lengths to pick the concatenation-aware (pipapo) backend.
        // libnftnl takes the whole array of field lengths at once, as bytes (uint8_t[]).
        std::vector<uint8_t> lens;
        for (Type t : spec.key) lens.push_back(static_cast<uint8_t>(type_len(t)));
        nftnl_set_set_data(s.get(), NFTNL_SET_DESC_CONCAT, lens.data(),
                           static_cast<uint32_t>(lens.size()));
    }
    put_set_userdata(s.get(), spec);
    if (spec.is_map()) {
        nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, spec.data_type());
        nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_LEN, spec.data_len());
    }
    return build_msg(msg, spec.family, flags, s.get(), nftnl_set_nlmsg_build_payload);
}

std::vector<uint8_t> encode(int msg, uint16_t flags, const RuleSpec& spec) {
    RulePtr r(nftnl_rule_alloc());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, spec.table.c_str());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, spec.chain.c_str());
    nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, static_cast<uint32_t>(spec.family));
    detail::put_exprs(r.get(), spec.exprs);
    if (!spec.comment.empty()) put_comment(r.get(), spec.comment);
    return build_msg(msg, spec.family, flags, r.get(), nftnl_rule_nlmsg_build_payload);
}

std::vector<uint8_t> encode(int msg, uint16_t flags, const ElementsSpec& spec) {
    SetPtr s(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, spec.table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, spec.set.c_str());
    for (const auto& e : spec.elems) {
        nftnl_set_elem* el = nftnl_set_elem_alloc();
        if (!el) std::abort();
        nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, e.key.data(), e.key.size());
        if (!e.key_end.empty())
            nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY_END, e.key_end.data(), e.key_end.size());
        if (!e.data.empty())
            nftnl_set_elem_set(el, NFTNL_SET_ELEM_DATA, e.data.data(), e.data.size());
        if (e.interval_end)
            nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        nftnl_set_elem_add(s.get(), el);
    }
    return build_msg(msg, spec.family, flags, s.get(), nftnl_set_elems_nlmsg_build_payload);
}

// ---- parse ----------------------------------------------------------------------------------

Result<TableSpec> parse_table(const nlmsghdr* nlh) {
    TablePtr t(nftnl_table_alloc());
    if (!t || nftnl_table_nlmsg_parse(nlh, t.get()) < 0) return unparsable("table");
    return TableSpec{family_of(nlh), str_or_empty(nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME))};
}

Result<ChainSpec> parse_chain(const nlmsghdr* nlh) {
    ChainPtr c(nftnl_chain_alloc());
    if (!c || nftnl_chain_nlmsg_parse(nlh, c.get()) < 0) return unparsable("chain");
    ChainSpec out;
    out.family = family_of(nlh);
    out.table = str_or_empty(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE));
    out.name = str_or_empty(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME));
    if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM)) {
        BaseChain b;
        b.type = str_or_empty(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TYPE));
        b.hooknum = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM);
        b.priority = nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO);
        if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_POLICY))
            b.policy = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_POLICY);
        out.base = std::move(b);
    }
    return out;
}

Result<SetSpec> parse_set(const nlmsghdr* nlh, uint32_t* raw_flags) {
    SetPtr s(nftnl_set_alloc());
    if (!s || nftnl_set_nlmsg_parse(nlh, s.get()) < 0) return unparsable("set");
    SetSpec out;
    out.family = family_of(nlh);
    out.table = str_or_empty(nftnl_set_get_str(s.get(), NFTNL_SET_TABLE));
    out.name = str_or_empty(nftnl_set_get_str(s.get(), NFTNL_SET_NAME));
    const uint32_t flags = nftnl_set_get_u32(s.get(), NFTNL_SET_FLAGS);
    if (raw_flags) *raw_flags = flags;
    out.interval = (flags & NFT_SET_INTERVAL) != 0;
    out.key = unpack_types(nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_TYPE));
    if (flags & NFT_SET_MAP)
        out.data = unpack_types(nftnl_set_get_u32(s.get(), NFTNL_SET_DATA_TYPE));
    if (nftnl_set_is_set(s.get(), NFTNL_SET_ID)) out.id = nftnl_set_get_u32(s.get(), NFTNL_SET_ID);
    return out;
}

Result<RuleSpec> parse_rule(const nlmsghdr* nlh) {
    RulePtr r(nftnl_rule_alloc());
    if (!r || nftnl_rule_nlmsg_parse(nlh, r.get()) < 0) return unparsable("rule");
    RuleSpec out;
    out.family = family_of(nlh);
    out.table = str_or_empty(nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE));
    out.chain = str_or_empty(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN));
    out.exprs = detail::get_exprs(r.get());
    out.comment = get_comment(r.get());
    return out;
}

Result<ElementsSpec> parse_elements(const nlmsghdr* nlh) {
    ElementsSpec out;
    out.family = family_of(nlh);
    each_attr(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)), mnl_nlmsg_get_payload_tail(nlh),
              [&](const nlattr* a) {
                  const auto t = mnl_attr_get_type(a);
                  if (t == NFTA_SET_ELEM_LIST_TABLE) out.table = mnl_attr_get_str(a);
                  if (t == NFTA_SET_ELEM_LIST_SET) out.set = mnl_attr_get_str(a);
                  if (t == NFTA_SET_ELEM_LIST_ELEMENTS)
                      each_nested(a,
                                  [&](const nlattr* e) { out.elems.push_back(parse_element(e)); });
              });
    return out;
}

namespace {

Result<Object> parse_object(const nlmsghdr* nlh, int type) {
    auto as_object = [](auto r) -> Result<Object> {
        if (!r.ok()) return std::move(r).error();
        return Object(std::move(r).value());
    };
    switch (type) {
        case NFT_MSG_NEWTABLE:
        case NFT_MSG_DELTABLE:
            return as_object(parse_table(nlh));
        case NFT_MSG_NEWCHAIN:
        case NFT_MSG_DELCHAIN:
            return as_object(parse_chain(nlh));
        case NFT_MSG_NEWSET:
        case NFT_MSG_DELSET:
            return as_object(parse_set(nlh));
        case NFT_MSG_NEWRULE:
        case NFT_MSG_DELRULE:
            return as_object(parse_rule(nlh));
        case NFT_MSG_NEWSETELEM:
        case NFT_MSG_DELSETELEM:
            return as_object(parse_elements(nlh));
        default:
            return Error::internal(fmt::format("unexpected nftables message type {}", type));
    }
}

}  // namespace

Result<std::vector<Message>> decode(const std::vector<uint8_t>& bytes) {
    std::vector<Message> out;
    int len = static_cast<int>(bytes.size());
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(bytes.data());
    for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
        if (nlh->nlmsg_type == NFNL_MSG_BATCH_BEGIN || nlh->nlmsg_type == NFNL_MSG_BATCH_END)
            continue;
        if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
            return Error::internal(
                fmt::format("not an nftables message: type {:#x}", nlh->nlmsg_type));
        const int type = NFNL_MSG_TYPE(nlh->nlmsg_type);
        CNETD_TRY_ASSIGN(Object obj, parse_object(nlh, type));
        out.push_back(Message{type, nlh->nlmsg_flags, nlh->nlmsg_seq, std::move(obj)});
    }
    if (len != 0)
        return Error::internal(fmt::format("truncated nftables message ({} bytes left)", len));
    return out;
}

}  // namespace cnetd::nft
