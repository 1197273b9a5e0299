#include "nft/expr.hpp"

#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>

#include <cstring>

namespace cnetd::nft {
namespace expr {
namespace {

std::vector<uint8_t> bytes_of(const void* data, size_t len) {
    const auto* p = static_cast<const uint8_t*>(data);
    return {p, p + len};
}

}  // namespace

Expr meta(uint32_t key, uint32_t dreg) {
    return Meta{key, dreg};
}
Expr payload(uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg) {
    return Payload{base, offset, len, dreg};
}
Expr cmp(uint32_t sreg, uint32_t op, const void* data, uint32_t len) {
    return Cmp{sreg, op, bytes_of(data, len)};
}
Expr cmp_u32(uint32_t sreg, uint32_t op, uint32_t host_value) {
    return cmp(sreg, op, &host_value, sizeof host_value);
}
Expr cmp_u16_be(uint32_t sreg, uint32_t op, uint16_t host_value) {
    const uint16_t be = htons(host_value);
    return cmp(sreg, op, &be, sizeof be);
}
Expr ct(uint32_t key, uint32_t dreg) {
    return Ct{key, dreg};
}
Expr bitwise_mask(uint32_t reg, uint32_t mask) {
    const uint32_t zero = 0;
    return Bitwise{reg, reg, bytes_of(&mask, sizeof mask), bytes_of(&zero, sizeof zero)};
}
Expr lookup(uint32_t sreg, std::string_view set, bool invert, std::optional<uint32_t> dreg) {
    return Lookup{sreg, std::string(set), dreg, invert};
}
Expr fib(uint32_t flags, uint32_t result, uint32_t dreg) {
    return Fib{flags, result, dreg};
}
Expr verdict(int code) {
    return Verdict{code};
}
Expr immediate(uint32_t dreg, const void* data, uint32_t len) {
    return Immediate{dreg, bytes_of(data, len)};
}
Expr masquerade() {
    return Masquerade{};
}
Expr snat(uint32_t nfproto, uint32_t addr_reg) {
    return Nat{NFT_NAT_SNAT, nfproto, addr_reg, std::nullopt, std::nullopt, 0};
}
Expr dnat(uint32_t nfproto, uint32_t addr_reg, uint32_t proto_min_reg, uint32_t proto_max_reg,
          uint32_t flags) {
    return Nat{NFT_NAT_DNAT, nfproto, addr_reg, proto_min_reg, proto_max_reg, flags};
}

}  // namespace expr

std::string expr_name(const Expr& e) {
    struct Name {
        std::string operator()(const expr::Meta&) const { return "meta"; }
        std::string operator()(const expr::Payload&) const { return "payload"; }
        std::string operator()(const expr::Cmp&) const { return "cmp"; }
        std::string operator()(const expr::Ct&) const { return "ct"; }
        std::string operator()(const expr::Bitwise&) const { return "bitwise"; }
        std::string operator()(const expr::Lookup&) const { return "lookup"; }
        std::string operator()(const expr::Fib&) const { return "fib"; }
        std::string operator()(const expr::Verdict&) const { return "immediate"; }
        std::string operator()(const expr::Immediate&) const { return "immediate"; }
        std::string operator()(const expr::Masquerade&) const { return "masq"; }
        std::string operator()(const expr::Nat&) const { return "nat"; }
        std::string operator()(const expr::Other& o) const { return o.name; }
    };
    return std::visit(Name{}, e);
}

}  // namespace cnetd::nft
