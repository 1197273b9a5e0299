// Validated value types for the kernel's words: IPv4 addresses, CIDRs, MAC addresses and interface
// names. Parsers are strict (no leading zeros, no trailing junk, host bits checked where it matters)
// and their errors name the offending text; callers add the field name as a context frame.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.hpp"

namespace cnetd {

// An IPv4 address, held in host byte order so arithmetic and ordering are natural.
class Ipv4 {
public:
    constexpr Ipv4() = default;
    constexpr explicit Ipv4(uint32_t host_order) : v_(host_order) {}
    static Result<Ipv4> parse(std::string_view text);

    constexpr uint32_t value() const noexcept { return v_; }
    uint32_t network_order() const noexcept;  // for sockaddr_in / netlink
    std::string str() const;
    auto operator<=>(const Ipv4&) const = default;

private:
    uint32_t v_ = 0;
};

// An IPv4 address with a prefix length: either a network ("10.0.0.0/24") or an interface address
// ("10.0.0.1/24"), depending on use.
class Ipv4Cidr {
public:
    constexpr Ipv4Cidr() = default;
    constexpr Ipv4Cidr(Ipv4 addr, int prefix) : addr_(addr), prefix_(prefix) {}
    // Accepts "a.b.c.d/n" with 0 <= n <= 32. Host bits may be set (an interface address).
    static Result<Ipv4Cidr> parse(std::string_view text);
    // Like parse() but also requires host bits to be zero: the error names the network meant.
    static Result<Ipv4Cidr> parse_network(std::string_view text);

    Ipv4 addr() const noexcept { return addr_; }
    int prefix() const noexcept { return prefix_; }
    uint32_t mask() const noexcept { return prefix_ == 0 ? 0 : ~uint32_t{0} << (32 - prefix_); }
    Ipv4 network() const noexcept { return Ipv4(addr_.value() & mask()); }
    Ipv4 broadcast() const noexcept { return Ipv4(network().value() | ~mask()); }
    Ipv4Cidr masked() const noexcept { return {network(), prefix_}; }
    // Number of addresses in the prefix (2^(32-prefix)), as 64 bits so /0 fits.
    uint64_t size() const noexcept { return uint64_t{1} << (32 - prefix_); }
    bool contains(Ipv4 a) const noexcept { return (a.value() & mask()) == network().value(); }
    bool overlaps(const Ipv4Cidr& o) const noexcept;
    std::string str() const;
    auto operator<=>(const Ipv4Cidr&) const = default;

private:
    Ipv4 addr_;
    int prefix_ = 0;
};

class Mac {
public:
    constexpr Mac() = default;
    constexpr explicit Mac(std::array<uint8_t, 6> b) : b_(b) {}
    static Result<Mac> parse(std::string_view text);  // "aa:bb:cc:dd:ee:ff", case-insensitive
    // Random, unicast, locally administered (what Docker 28 gives containers and bridges).
    static Mac random_local();

    const std::array<uint8_t, 6>& bytes() const noexcept { return b_; }
    bool is_multicast() const noexcept { return b_[0] & 1; }
    bool is_zero() const noexcept;
    std::string str() const;  // lower-case, colon-separated
    auto operator<=>(const Mac&) const = default;

private:
    std::array<uint8_t, 6> b_{};
};

// Linux interface name rules: 1..15 bytes, not "." or "..", no '/', ':' or whitespace.
// Returns an error naming the name and the rule it breaks.
Result<void> validate_ifname(std::string_view name);

// n random lower-case hex characters (from a CSPRNG-seeded engine).
std::string random_hex(size_t n);

}  // namespace cnetd
