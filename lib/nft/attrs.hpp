// Walking netlink attributes from C++ (lib/nft internal: codec.cpp, conntrack.cpp).
// mnl_attr_for_each* are C macros, and void* does not convert implicitly in C++.
// Threading: pure functions.
#pragma once

#include <libmnl/libmnl.h>

namespace cnetd::nft::detail {

// f(attr) for every attribute in [start, end).
template <class F>
void each_attr(const void* start, const void* end, F f) {
    for (auto* a = static_cast<const nlattr*>(start); mnl_attr_ok(
             a, static_cast<int>(static_cast<const char*>(end) - reinterpret_cast<const char*>(a)));
         a = mnl_attr_next(a))
        f(a);
}

// f(attr) for every attribute nested in `nest`.
template <class F>
void each_nested(const nlattr* nest, F f) {
    const char* p = static_cast<const char*>(mnl_attr_get_payload(nest));
    each_attr(p, p + mnl_attr_get_payload_len(nest), f);
}

}  // namespace cnetd::nft::detail
