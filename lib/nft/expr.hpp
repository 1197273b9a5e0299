// Expression helpers: each appends one nftables expression to a rule, the way the nft CLI would
// compile it (compare with `nft --debug=netlink`). Register numbers, keys and operators are the
// kernel's NFT_* constants from <linux/netfilter/nf_tables.h>; this header does not include it (see
// nft.hpp), so the caller's .cpp does.
//
// Errors: libnftnl only fails on allocation here; an allocation failure aborts (like operator new).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

struct nftnl_rule;

namespace cnetd::nft::expr {

void meta(nftnl_rule* r, uint32_t key, uint32_t dreg);  // meta load <key> => dreg
void payload(nftnl_rule* r, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg);
void cmp(nftnl_rule* r, uint32_t sreg, uint32_t op, const void* data, uint32_t len);
void cmp_u32(nftnl_rule* r, uint32_t sreg, uint32_t op, uint32_t host_value);     // host byte order
void cmp_u16_be(nftnl_rule* r, uint32_t sreg, uint32_t op, uint16_t host_value);  // as big endian
void ct(nftnl_rule* r, uint32_t key, uint32_t dreg);
// reg = (reg & mask) ^ 0, 4 bytes (ct state bits).
void bitwise_mask(nftnl_rule* r, uint32_t reg, uint32_t mask);
// lookup reg <sreg> set <name> [inverted] [dreg <dreg> for maps]; dreg < 0: no data.
void lookup(nftnl_rule* r, uint32_t sreg, std::string_view set, bool invert = false, int dreg = -1);
void fib(nftnl_rule* r, uint32_t flags, uint32_t result, uint32_t dreg);
void verdict(nftnl_rule* r, int code);  // NF_ACCEPT / NF_DROP / NFT_RETURN ...
void masquerade(nftnl_rule* r);
void snat(nftnl_rule* r, uint32_t nfproto, uint32_t addr_reg);
// dnat <nfproto> addr_min <addr_reg> proto_min <proto_min_reg> proto_max <proto_max_reg>
// flags <flags> (NF_NAT_RANGE_*; the kernel adds MAP_IPS and PROTO_SPECIFIED itself).
void dnat(nftnl_rule* r, uint32_t nfproto, uint32_t addr_reg, uint32_t proto_min_reg,
          uint32_t proto_max_reg, uint32_t flags);
// A rule comment (nft shows it as `comment "..."`); at most 127 bytes.
void comment(nftnl_rule* r, std::string_view text);

}  // namespace cnetd::nft::expr
