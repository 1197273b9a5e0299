#include "nft/expr.hpp"

#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>

#include <cstdlib>
#include <string>

#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/udata.h>

namespace cnetd::nft::expr {
namespace {

nftnl_expr* make(const char* name) {
    nftnl_expr* e = nftnl_expr_alloc(name);
    if (!e) std::abort();  // allocation failure: nothing sensible to do
    return e;
}

}  // namespace

void meta(nftnl_rule* r, uint32_t key, uint32_t dreg) {
    nftnl_expr* e = make("meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
    nftnl_rule_add_expr(r, e);
}

void payload(nftnl_rule* r, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg) {
    nftnl_expr* e = make("payload");
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
    nftnl_rule_add_expr(r, e);
}

void cmp(nftnl_rule* r, uint32_t sreg, uint32_t op, const void* data, uint32_t len) {
    nftnl_expr* e = make("cmp");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
    nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
    nftnl_rule_add_expr(r, e);
}

void cmp_u32(nftnl_rule* r, uint32_t sreg, uint32_t op, uint32_t host_value) {
    cmp(r, sreg, op, &host_value, sizeof host_value);
}

void cmp_u16_be(nftnl_rule* r, uint32_t sreg, uint32_t op, uint16_t host_value) {
    uint16_t be = htons(host_value);
    cmp(r, sreg, op, &be, sizeof be);
}

void ct(nftnl_rule* r, uint32_t key, uint32_t dreg) {
    nftnl_expr* e = make("ct");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, dreg);
    nftnl_rule_add_expr(r, e);
}

void bitwise_mask(nftnl_rule* r, uint32_t reg, uint32_t mask) {
    nftnl_expr* e = make("bitwise");
    uint32_t zero = 0;
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof mask);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof mask);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof zero);
    nftnl_rule_add_expr(r, e);
}

void lookup(nftnl_rule* r, uint32_t sreg, std::string_view set, bool invert, int dreg) {
    nftnl_expr* e = make("lookup");
    std::string name(set);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
    nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, name.c_str());
    if (dreg >= 0) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, static_cast<uint32_t>(dreg));
    if (invert) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
    nftnl_rule_add_expr(r, e);
}

void fib(nftnl_rule* r, uint32_t flags, uint32_t result, uint32_t dreg) {
    nftnl_expr* e = make("fib");
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, flags);
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, result);
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, dreg);
    nftnl_rule_add_expr(r, e);
}

void verdict(nftnl_rule* r, int code) {
    nftnl_expr* e = make("immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(code));
    nftnl_rule_add_expr(r, e);
}

void masquerade(nftnl_rule* r) {
    nftnl_rule_add_expr(r, make("masq"));
}

void snat(nftnl_rule* r, uint32_t nfproto, uint32_t addr_reg) {
    nftnl_expr* e = make("nat");
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_SNAT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, nfproto);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, addr_reg);
    nftnl_rule_add_expr(r, e);
}

void dnat(nftnl_rule* r, uint32_t nfproto, uint32_t addr_reg, uint32_t proto_min_reg,
          uint32_t proto_max_reg, uint32_t flags) {
    nftnl_expr* e = make("nat");
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, nfproto);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, addr_reg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, proto_min_reg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX, proto_max_reg);
    if (flags) nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, flags);
    nftnl_rule_add_expr(r, e);
}

void comment(nftnl_rule* r, std::string_view text) {
    nftnl_udata_buf* buf = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    if (!buf) std::abort();
    std::string s(text.substr(0, NFTNL_UDATA_COMMENT_MAXLEN - 1));
    nftnl_udata_put_strz(buf, NFTNL_UDATA_RULE_COMMENT, s.c_str());
    nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(buf),
                        nftnl_udata_buf_len(buf));
    nftnl_udata_buf_free(buf);
}

}  // namespace cnetd::nft::expr
