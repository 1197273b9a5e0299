// Validated value types for the kernel's words: IPv4 addresses, CIDRs, MAC addresses, interface
// names and network namespace identities. Parsers are strict (no leading zeros, no trailing junk,
// host bits checked where it matters) and their errors name the offending text; callers add the
// field name as a context frame.
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

// An IPv6 address, 16 bytes in network order (the kernel's in6_addr layout).
class Ipv6 {
public:
    constexpr Ipv6() = default;
    constexpr explicit Ipv6(std::array<uint8_t, 16> b) : b_(b) {}
    // RFC 4291 text forms ("fd00::1", "::ffff:1.2.3.4"); no zone ("%eth0"), no brackets.
    static Result<Ipv6> parse(std::string_view text);

    const std::array<uint8_t, 16>& bytes() const noexcept { return b_; }
    bool is_unspecified() const noexcept;  // ::
    bool is_loopback() const noexcept;     // ::1
    bool is_link_local() const noexcept;   // fe80::/10
    bool is_multicast() const noexcept { return b_[0] == 0xff; }
    std::string str() const;  // RFC 5952 canonical text (inet_ntop)
    auto operator<=>(const Ipv6&) const = default;

private:
    std::array<uint8_t, 16> b_{};
};

// An IPv6 address with a prefix length (network or interface address, as with Ipv4Cidr).
class Ipv6Cidr {
public:
    constexpr Ipv6Cidr() = default;
    constexpr Ipv6Cidr(Ipv6 addr, int prefix) : addr_(addr), prefix_(prefix) {}
    // "fd00:1::/64" with 0 <= n <= 128; host bits may be set.
    static Result<Ipv6Cidr> parse(std::string_view text);
    // Also requires host bits to be zero; the error names the network meant.
    static Result<Ipv6Cidr> parse_network(std::string_view text);

    Ipv6 addr() const noexcept { return addr_; }
    int prefix() const noexcept { return prefix_; }
    Ipv6 network() const noexcept;
    Ipv6Cidr masked() const noexcept { return {network(), prefix_}; }
    bool contains(const Ipv6& a) const noexcept;
    bool overlaps(const Ipv6Cidr& o) const noexcept;
    // The address `offset` after the network address (offset counts from the low 64 bits; the
    // caller keeps it inside the prefix).
    Ipv6 at(uint64_t offset) const noexcept;
    std::string str() const;
    auto operator<=>(const Ipv6Cidr&) const = default;

private:
    Ipv6 addr_;
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

// A network namespace's identity: (st_dev, st_ino) of its nsfs inode (what `ls -i /proc/PID/ns/net`
// prints), so two fds or paths that name one namespace are recognised as the same. The kernel's
// word shared by lib/netns (netns::Id) and the engine's Kernel port (core::NetnsId).
struct NetnsId {
    uint64_t dev = 0;
    uint64_t ino = 0;
    auto operator<=>(const NetnsId&) const = default;
};

// Linux interface name rules: 1..15 bytes, not "." or "..", no '/', ':' or whitespace.
// Returns an error naming the name and the rule it breaks.
Result<void> validate_ifname(std::string_view name);

// n random lower-case hex characters (from a CSPRNG-seeded engine).
std::string random_hex(size_t n);

}  // namespace cnetd
