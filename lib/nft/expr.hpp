// Typed nftables expressions: a rule is a list of these values (RuleSpec::exprs in spec.hpp), built
// the way the nft CLI would compile it (compare with `nft --debug=netlink`). Register numbers, keys
// and operators are the kernel's NFT_* constants from <linux/netfilter/nf_tables.h>; this header
// does not include it (see nft.hpp), so the caller's .cpp does.
//
// Pure values: building them touches no library and no kernel. codec.cpp turns them into libnftnl
// expressions (and parses them back from a message or a dump); each field maps to one netlink
// attribute, an optional field to an attribute present or absent.
// Threading: plain values, no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace cnetd::nft {
namespace expr {

struct Meta {  // meta load <key> => dreg
    uint32_t key = 0, dreg = 0;
    bool operator==(const Meta&) const = default;
};
struct Payload {  // payload load <len>b @ <base> + <offset> => dreg
    uint32_t base = 0, offset = 0, len = 0, dreg = 0;
    bool operator==(const Payload&) const = default;
};
struct Cmp {  // cmp <op> sreg <data>
    uint32_t sreg = 0, op = 0;
    std::vector<uint8_t> data;
    bool operator==(const Cmp&) const = default;
};
struct Ct {  // ct load <key> => dreg
    uint32_t key = 0, dreg = 0;
    bool operator==(const Ct&) const = default;
};
struct Bitwise {  // dreg = (sreg & mask) ^ xor_, mask.size() bytes
    uint32_t sreg = 0, dreg = 0;
    std::vector<uint8_t> mask, xor_;
    bool operator==(const Bitwise&) const = default;
};
struct Lookup {  // lookup sreg set <set> [dreg <dreg> for maps] [inverted]
    uint32_t sreg = 0;
    std::string set;
    std::optional<uint32_t> dreg;
    bool invert = false;
    bool operator==(const Lookup&) const = default;
};
struct Fib {  // fib <flags> <result> => dreg
    uint32_t flags = 0, result = 0, dreg = 0;
    bool operator==(const Fib&) const = default;
};
struct Verdict {  // immediate to the verdict register: NF_ACCEPT / NF_DROP / NFT_RETURN ...
    int32_t code = 0;
    bool operator==(const Verdict&) const = default;
};
struct Immediate {  // immediate data to a data register (constants for nat: address, port)
    uint32_t dreg = 0;
    std::vector<uint8_t> data;
    bool operator==(const Immediate&) const = default;
};
struct Masquerade {
    bool operator==(const Masquerade&) const = default;
};
struct Nat {            // snat/dnat <family> addr_min reg [proto_min reg] [proto_max reg] [flags]
    uint32_t type = 0;  // NFT_NAT_SNAT / NFT_NAT_DNAT
    uint32_t family = 0;
    uint32_t addr_min = 0;
    std::optional<uint32_t> proto_min, proto_max;
    uint32_t flags = 0;  // NF_NAT_RANGE_*; 0 = attribute absent
    bool operator==(const Nat&) const = default;
};
// An expression cnetd never writes, as found in a dump: only its name is kept.
struct Other {
    std::string name;
    bool operator==(const Other&) const = default;
};

}  // namespace expr

using Expr = std::variant<expr::Meta, expr::Payload, expr::Cmp, expr::Ct, expr::Bitwise,
                          expr::Lookup, expr::Fib, expr::Verdict, expr::Immediate, expr::Masquerade,
                          expr::Nat, expr::Other>;
using Exprs = std::vector<Expr>;

// Constructors in nft's words, so a rule table reads like the nft text beside it.
namespace expr {

Expr meta(uint32_t key, uint32_t dreg);
Expr payload(uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg);
Expr cmp(uint32_t sreg, uint32_t op, const void* data, uint32_t len);
Expr cmp_u32(uint32_t sreg, uint32_t op, uint32_t host_value);     // compared in host byte order
Expr cmp_u16_be(uint32_t sreg, uint32_t op, uint16_t host_value);  // compared as big endian
Expr ct(uint32_t key, uint32_t dreg);
// reg = (reg & mask) ^ 0, 4 bytes (ct state bits); `mask` is copied in host byte order.
Expr bitwise_mask(uint32_t reg, uint32_t mask);
// lookup reg <sreg> set <name> [inverted] [dreg <dreg> for maps].
Expr lookup(uint32_t sreg, std::string_view set, bool invert = false,
            std::optional<uint32_t> dreg = std::nullopt);
Expr fib(uint32_t flags, uint32_t result, uint32_t dreg);
Expr verdict(int code);
// immediate reg <dreg> <data> (len bytes, copied as they are: network order for addresses/ports).
Expr immediate(uint32_t dreg, const void* data, uint32_t len);
Expr masquerade();
Expr snat(uint32_t nfproto, uint32_t addr_reg);
// dnat <nfproto> addr_min <addr_reg> proto_min <proto_min_reg> proto_max <proto_max_reg>
// flags <flags> (NF_NAT_RANGE_*; the kernel adds MAP_IPS and PROTO_SPECIFIED itself).
Expr dnat(uint32_t nfproto, uint32_t addr_reg, uint32_t proto_min_reg, uint32_t proto_max_reg,
          uint32_t flags);

inline void append(Exprs& out, Expr e) {
    out.push_back(std::move(e));
}
inline void append(Exprs& out, const Exprs& es) {
    out.insert(out.end(), es.begin(), es.end());
}
// Concatenates expressions and expression lists in order: seq(ipv4_only(), lookup(...), ...).
template <class... Parts>
Exprs seq(Parts&&... parts) {
    Exprs out;
    (append(out, std::forward<Parts>(parts)), ...);
    return out;
}

}  // namespace expr

// The expression's name as libnftnl and `nft --debug=netlink` call it ("meta", "lookup", ...).
std::string expr_name(const Expr& e);

}  // namespace cnetd::nft
