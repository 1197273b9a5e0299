// Default address pools: where a network created without a subnet gets one (docker-bridge.md,
// "Default pools"). Pure: the caller gathers the facts (subnets of existing networks, the host's
// on-link routes, resolv.conf nameservers) and this picks the first candidate that collides with
// none of them, in pool order, like Docker's local-scope default pools.
// Threading: none (free functions over values).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"

namespace cnetd::core {

// A pool `base` split into subnets of prefix length `size` (Docker daemon.json
// `default-address-pools: [{base: 172.30.0.0/16, size: 24}]` = 256 /24s).
struct AddressPool {
    Ipv4Cidr base;  // host bits zero
    int size = 0;   // base.prefix() <= size <= 31 (validate_pool())

    // Number of candidate subnets (2^(size - base prefix)).
    uint64_t count() const noexcept { return uint64_t{1} << (size - base.prefix()); }
    // "172.17.0.0/16" when the pool is one subnet, else "172.20.0.0/14 as /16s".
    std::string str() const;
    bool operator==(const AddressPool&) const = default;
};

// Docker's local-scope defaults, in order: 172.17/16, 172.18/16, 172.19/16, 172.20/14, 172.24/14,
// 172.28/14 as /16s, then 192.168.0.0/16 as /20s: 15 + 16 = 31 subnets.
const std::vector<AddressPool>& default_address_pools();

// base must be a network (host bits zero) and base.prefix() <= size <= 31 (a /32 has no room for
// a gateway and a container). InvalidArgument naming the pool and the rule otherwise; the caller
// adds the config key/index as a context frame.
Result<void> validate_pool(const AddressPool& p);

// What a candidate subnet must not overlap.
struct PoolContext {
    std::vector<Ipv4Cidr> used;           // subnets of existing networks (any family-4 network)
    std::vector<Ipv4Cidr> onlink_routes;  // destinations of the host's on-link routes
    std::vector<Ipv4> nameservers;        // resolv.conf nameservers (read_nameservers())
};

// The first subnet, in pool order and address order within a pool, that overlaps nothing in ctx.
// On-link routes of prefix 0 (a default route) are ignored: they would veto everything.
// Errors: InvalidArgument if a pool is invalid (validate_pool); Conflict when every candidate is
// taken. The Conflict message names the pools tried and counts why candidates were skipped, e.g.
//   no free subnet in the default address pools 172.17.0.0/16, ..., 192.168.0.0/16 as /20s
//   (31 subnets: 29 used by networks, 1 overlaps on-link route 172.20.0.0/16 on the host,
//   1 overlaps nameserver 172.31.0.53)
// Each skipped candidate is counted once, for the first reason in that order (networks, routes,
// nameservers). At most 4 routes/nameservers and 8 pools are named ("and N more"), so the message
// stays short whatever the context. Cost: O(pools x blockers^2), independent of pool sizes: the
// run of candidates covered by one big blocker is skipped arithmetically, never one by one.
Result<Ipv4Cidr> choose_subnet(const std::vector<AddressPool>& pools, const PoolContext& ctx);

// An IPv6 pool (Docker 27+ accepts IPv6 bases in `default-address-pools`): `base` split into
// subnets of prefix length `size`, base.prefix() <= size <= 126.
struct AddressPool6 {
    Ipv6Cidr base;  // host bits zero
    int size = 64;

    std::string str() const;  // as AddressPool::str()
    bool operator==(const AddressPool6&) const = default;
};

// base must be a network, not multicast or link-local, base.prefix() <= size <= 126.
Result<void> validate_pool(const AddressPool6& p);

// The first subnet of the pools, in order, overlapping none of `used` (existing networks' IPv6
// subnets; a caller may add the host's IPv6 routes). Errors: InvalidArgument for an invalid pool,
// Conflict when every candidate overlaps something (the message names the pools and how many
// networks were in the way). O(pools x used^2), independent of pool sizes. ula.hpp's
// choose_subnet6(ula48, used) is this with the single pool {ula48, 64}.
Result<Ipv6Cidr> choose_subnet6(const std::vector<AddressPool6>& pools,
                                const std::vector<Ipv6Cidr>& used);

// IPv4 addresses of the `nameserver` lines of resolv.conf text, in file order, without
// duplicates. IPv6 nameservers, comments (# ;) and malformed lines are skipped.
std::vector<Ipv4> read_nameservers(std::string_view resolv_conf_text);

}  // namespace cnetd::core
