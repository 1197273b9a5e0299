// Typed expressions (expr.hpp) <-> libnftnl expressions of one rule. Private to lib/nft (codec.cpp
// is its only user); libnftnl types are forward-declared so the header needs no libnftnl include.
// Errors: libnftnl only fails on allocation here; an allocation failure aborts (like operator new).
#pragma once

#include "nft/expr.hpp"

struct nftnl_rule;

namespace cnetd::nft::detail {

// Appends each expression to `r`, in order.
void put_exprs(nftnl_rule* r, const Exprs& exprs);
// The rule's expressions; one cnetd never writes comes back as expr::Other{name}.
Exprs get_exprs(const nftnl_rule* r);

}  // namespace cnetd::nft::detail
