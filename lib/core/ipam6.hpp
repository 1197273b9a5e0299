// IPv6 address allocation inside one network. Pure (no kernel, no I/O).
//
// The same rules as the IPv4 Ipam (core/ipam.hpp), for subnets that are usually /64 (2^64
// addresses, so no bitmap): the gateway and the subnet-router anycast address (the network address,
// RFC 4291 2.6.1; not reserved on /127 and /128, RFC 6164) are never handed out. Dynamic allocation
// returns the lowest free address from the start of the pool (ip-range6 if set, else the subnet),
// as Docker does; released addresses are reused at once. Static requests may lie anywhere in the
// subnet (Docker allows them outside the ip-range), must not be reserved and must be free.
//
// Memory is O(addresses in use): in-use addresses are kept as merged runs [first, last], so
// sequential allocation keeps a single run. allocate/release/in_use are O(log runs).
// Threading: none; the engine owns one Ipam6 per dual-stack network.
#pragma once

#include <cstddef>
#include <map>
#include <optional>

#include "base/error.hpp"
#include "base/net.hpp"

namespace cnetd::core {

namespace v6 {
// 128-bit arithmetic on addresses (g++ extension; the value is the address read big-endian).
__extension__ typedef unsigned __int128 u128;
u128 to_u128(const Ipv6& a) noexcept;
Ipv6 from_u128(u128 v) noexcept;
// Host-bit mask of a prefix length (all ones for /0, zero for /128).
u128 host_mask(int prefix) noexcept;
// Highest address of the prefix.
inline u128 last(const Ipv6Cidr& c) noexcept {
    return to_u128(c.network()) | host_mask(c.prefix());
}
}  // namespace v6

class Ipam6 {
public:
    // subnet's host bits are ignored (masked); gateway inside it; range (optional) inside the
    // subnet.
    Ipam6(Ipv6Cidr subnet, Ipv6 gateway, std::optional<Ipv6Cidr> range = std::nullopt);

    // Lowest free address of the pool. Conflict error when the pool is exhausted.
    Result<Ipv6> allocate();
    // Reserves a specific address. Errors: outside the subnet (InvalidArgument), the gateway or
    // the subnet-router anycast address (InvalidArgument), already in use (Conflict).
    Result<Ipv6> allocate(const Ipv6& wanted);
    // Releases an address; releasing a free, reserved or foreign address is a no-op.
    void release(const Ipv6& a);
    // True for addresses handed out (never for the gateway or the network address).
    bool in_use(const Ipv6& a) const;
    size_t used() const noexcept { return used_; }

private:
    using u128 = v6::u128;
    bool reserved(u128 a) const;
    bool contains(u128 a) const;  // in runs_
    void insert(u128 a);          // a must be free
    void erase(u128 a);           // a must be in runs_

    Ipv6Cidr subnet_;
    Ipv6 gateway_;
    Ipv6Cidr pool_;
    // Merged runs of taken addresses, first -> last (inclusive), reserved addresses included so
    // the lowest free address is one lookup away.
    std::map<u128, u128> runs_;
    size_t used_ = 0;
};

}  // namespace cnetd::core
