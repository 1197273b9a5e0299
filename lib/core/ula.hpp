// The daemon's persistent ID and the IPv6 ULA prefix derived from it (docker-bridge.md, "IPv6": a
// /64 per network from a ULA /48 of fd00::/8 plus 40 bits hashed from the daemon's ID). Pure apart
// from new_daemon_id()'s randomness; persisting the ID is the caller's business (the same ID must
// come back after a restart, or new networks would get addresses from another /48).
// Threading: none (free functions).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"

namespace cnetd::core {

// 64 lower-case hex characters (256 bits from getrandom(2)).
std::string new_daemon_id();

// A persisted ID read back: 64 lower-case hex characters, else InvalidArgument naming the text
// (truncated) and the rule.
Result<void> validate_daemon_id(std::string_view id);

// fdXX:XXXX:XXXX::/48 from the ID, deterministically, exactly as Docker 27+ does it
// (deriveULABaseNetwork): the global ID is the 40 low bits of the first 8 bytes (big-endian) of
// SHA-256(id), placed after the fd prefix byte (RFC 4193 3.2.2, with SHA-256 instead of SHA-1 and
// the ID instead of time + EUI-64). Any text is accepted; the same text gives the same prefix.
Ipv6Cidr ula48_from_id(std::string_view id);

// The first /64 of `ula48` (subnet id 0, 1, 2, ...) that overlaps none of `used`. ula48 must be
// a network with prefix <= 64 (else InvalidArgument); Conflict when all are taken.
Result<Ipv6Cidr> choose_subnet6(Ipv6Cidr ula48, const std::vector<Ipv6Cidr>& used);

namespace detail {
// FIPS 180-4 SHA-256 (exposed for its test vectors).
std::array<uint8_t, 32> sha256(std::string_view data);
}  // namespace detail

}  // namespace cnetd::core
