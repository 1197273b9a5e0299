#include "nft/expr_codec.hpp"

#include <netinet/in.h>  // before any <linux/*.h>: it keeps linux/in.h's duplicates out
#include <linux/netfilter/nf_tables.h>

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

namespace cnetd::nft::detail {
namespace {

nftnl_expr* make(const char* name) {
    nftnl_expr* e = nftnl_expr_alloc(name);
    if (!e) std::abort();  // allocation failure: nothing sensible to do
    return e;
}

// The 32-bit attributes of an expression (an absent optional is an absent attribute).
using U32Attrs = std::initializer_list<std::pair<uint16_t, std::optional<uint32_t>>>;
nftnl_expr* make(const char* name, U32Attrs attrs) {
    nftnl_expr* e = make(name);
    for (const auto& [attr, v] : attrs)
        if (v) nftnl_expr_set_u32(e, attr, *v);
    return e;
}
void set_bytes(nftnl_expr* e, uint16_t attr, const std::vector<uint8_t>& v) {
    nftnl_expr_set(e, attr, v.data(), static_cast<uint32_t>(v.size()));
}

// One visitor per expression type: the libnftnl attributes it sets (libnftnl serialises them
// in its own fixed order, whatever the order they are set in).
struct Put {
    nftnl_rule* r;
    void add(nftnl_expr* e) const { nftnl_rule_add_expr(r, e); }
    void operator()(const expr::Meta& m) const {
        add(make("meta", {{NFTNL_EXPR_META_KEY, m.key}, {NFTNL_EXPR_META_DREG, m.dreg}}));
    }
    void operator()(const expr::Payload& p) const {
        add(make("payload", {{NFTNL_EXPR_PAYLOAD_BASE, p.base},
                             {NFTNL_EXPR_PAYLOAD_OFFSET, p.offset},
                             {NFTNL_EXPR_PAYLOAD_LEN, p.len},
                             {NFTNL_EXPR_PAYLOAD_DREG, p.dreg}}));
    }
    void operator()(const expr::Cmp& c) const {
        nftnl_expr* e = make("cmp", {{NFTNL_EXPR_CMP_SREG, c.sreg}, {NFTNL_EXPR_CMP_OP, c.op}});
        set_bytes(e, NFTNL_EXPR_CMP_DATA, c.data);
        add(e);
    }
    void operator()(const expr::Ct& c) const {
        add(make("ct", {{NFTNL_EXPR_CT_KEY, c.key}, {NFTNL_EXPR_CT_DREG, c.dreg}}));
    }
    void operator()(const expr::Bitwise& b) const {
        nftnl_expr* e = make("bitwise", {{NFTNL_EXPR_BITWISE_SREG, b.sreg},
                                         {NFTNL_EXPR_BITWISE_DREG, b.dreg},
                                         {NFTNL_EXPR_BITWISE_LEN, uint32_t(b.mask.size())}});
        set_bytes(e, NFTNL_EXPR_BITWISE_MASK, b.mask);
        set_bytes(e, NFTNL_EXPR_BITWISE_XOR, b.xor_);
        add(e);
    }
    void operator()(const expr::Lookup& l) const {
        const std::optional<uint32_t> flags =
            l.invert ? std::optional<uint32_t>(NFT_LOOKUP_F_INV) : std::nullopt;
        nftnl_expr* e = make("lookup", {{NFTNL_EXPR_LOOKUP_SREG, l.sreg},
                                        {NFTNL_EXPR_LOOKUP_DREG, l.dreg},
                                        {NFTNL_EXPR_LOOKUP_FLAGS, flags}});
        nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, l.set.c_str());
        add(e);
    }
    void operator()(const expr::Fib& f) const {
        add(make("fib", {{NFTNL_EXPR_FIB_FLAGS, f.flags},
                         {NFTNL_EXPR_FIB_RESULT, f.result},
                         {NFTNL_EXPR_FIB_DREG, f.dreg}}));
    }
    void operator()(const expr::Verdict& v) const {
        add(make("immediate", {{NFTNL_EXPR_IMM_DREG, uint32_t(NFT_REG_VERDICT)},
                               {NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(v.code)}}));
    }
    void operator()(const expr::Immediate& i) const {
        nftnl_expr* e = make("immediate", {{NFTNL_EXPR_IMM_DREG, i.dreg}});
        set_bytes(e, NFTNL_EXPR_IMM_DATA, i.data);
        add(e);
    }
    void operator()(const expr::Masquerade&) const { add(make("masq")); }
    void operator()(const expr::Nat& n) const {
        const std::optional<uint32_t> flags = n.flags ? std::optional(n.flags) : std::nullopt;
        add(make("nat", {{NFTNL_EXPR_NAT_TYPE, n.type},
                         {NFTNL_EXPR_NAT_FAMILY, n.family},
                         {NFTNL_EXPR_NAT_REG_ADDR_MIN, n.addr_min},
                         {NFTNL_EXPR_NAT_REG_PROTO_MIN, n.proto_min},
                         {NFTNL_EXPR_NAT_REG_PROTO_MAX, n.proto_max},
                         {NFTNL_EXPR_NAT_FLAGS, flags}}));
    }
    // Never written: a dump's foreign expression cannot be sent back without its attributes.
    void operator()(const expr::Other&) const {}
};

std::vector<uint8_t> data_of(const nftnl_expr* e, uint16_t attr) {
    uint32_t len = 0;
    const auto* p = static_cast<const uint8_t*>(nftnl_expr_get(e, attr, &len));
    if (!p) return {};
    return {p, p + len};
}
std::optional<uint32_t> opt_u32(const nftnl_expr* e, uint16_t attr) {
    if (!nftnl_expr_is_set(e, attr)) return std::nullopt;
    return nftnl_expr_get_u32(e, attr);
}
uint32_t u32(const nftnl_expr* e, uint16_t attr) {
    return nftnl_expr_get_u32(e, attr);
}

// A load (meta, payload, ct) that stores instead (sreg) or an immediate that is no verdict is
// something cnetd never writes: Other, so a comparison with our specs fails rather than lies.
Expr get_one(const nftnl_expr* e) {
    const char* n = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
    const std::string name = n ? n : "";
    if (name == "meta" && !nftnl_expr_is_set(e, NFTNL_EXPR_META_SREG))
        return expr::Meta{u32(e, NFTNL_EXPR_META_KEY), u32(e, NFTNL_EXPR_META_DREG)};
    if (name == "payload" && !nftnl_expr_is_set(e, NFTNL_EXPR_PAYLOAD_SREG))
        return expr::Payload{u32(e, NFTNL_EXPR_PAYLOAD_BASE), u32(e, NFTNL_EXPR_PAYLOAD_OFFSET),
                             u32(e, NFTNL_EXPR_PAYLOAD_LEN), u32(e, NFTNL_EXPR_PAYLOAD_DREG)};
    if (name == "cmp")
        return expr::Cmp{u32(e, NFTNL_EXPR_CMP_SREG), u32(e, NFTNL_EXPR_CMP_OP),
                         data_of(e, NFTNL_EXPR_CMP_DATA)};
    if (name == "ct" && nftnl_expr_is_set(e, NFTNL_EXPR_CT_DREG))
        return expr::Ct{u32(e, NFTNL_EXPR_CT_KEY), u32(e, NFTNL_EXPR_CT_DREG)};
    if (name == "bitwise" && nftnl_expr_is_set(e, NFTNL_EXPR_BITWISE_MASK))
        return expr::Bitwise{u32(e, NFTNL_EXPR_BITWISE_SREG), u32(e, NFTNL_EXPR_BITWISE_DREG),
                             data_of(e, NFTNL_EXPR_BITWISE_MASK),
                             data_of(e, NFTNL_EXPR_BITWISE_XOR)};
    if (name == "lookup") {
        const char* set = nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET);
        const auto flags = opt_u32(e, NFTNL_EXPR_LOOKUP_FLAGS).value_or(0);
        return expr::Lookup{u32(e, NFTNL_EXPR_LOOKUP_SREG), set ? set : "",
                            opt_u32(e, NFTNL_EXPR_LOOKUP_DREG), (flags & NFT_LOOKUP_F_INV) != 0};
    }
    if (name == "fib")
        return expr::Fib{u32(e, NFTNL_EXPR_FIB_FLAGS), u32(e, NFTNL_EXPR_FIB_RESULT),
                         u32(e, NFTNL_EXPR_FIB_DREG)};
    if (name == "immediate" && opt_u32(e, NFTNL_EXPR_IMM_DREG) == NFT_REG_VERDICT &&
        !nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN))
        return expr::Verdict{static_cast<int32_t>(u32(e, NFTNL_EXPR_IMM_VERDICT))};
    if (name == "immediate" && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_DATA) &&
        opt_u32(e, NFTNL_EXPR_IMM_DREG).value_or(NFT_REG_VERDICT) != NFT_REG_VERDICT)
        return expr::Immediate{u32(e, NFTNL_EXPR_IMM_DREG), data_of(e, NFTNL_EXPR_IMM_DATA)};
    if (name == "masq") return expr::Masquerade{};
    if (name == "nat")
        return expr::Nat{u32(e, NFTNL_EXPR_NAT_TYPE),
                         u32(e, NFTNL_EXPR_NAT_FAMILY),
                         u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN),
                         opt_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN),
                         opt_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX),
                         opt_u32(e, NFTNL_EXPR_NAT_FLAGS).value_or(0)};
    return expr::Other{name};
}

}  // namespace

void put_exprs(nftnl_rule* r, const Exprs& exprs) {
    for (const auto& e : exprs) std::visit(Put{r}, e);
}

Exprs get_exprs(const nftnl_rule* r) {
    Exprs out;
    nftnl_expr_iter* it = nftnl_expr_iter_create(r);
    if (!it) std::abort();
    for (nftnl_expr* e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it))
        out.push_back(get_one(e));
    nftnl_expr_iter_destroy(it);
    return out;
}

}  // namespace cnetd::nft::detail
