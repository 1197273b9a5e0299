#include "core/pools.hpp"

#include "core/ipam6.hpp"

#include <algorithm>
#include <optional>

namespace cnetd::core {

namespace {

constexpr size_t kMaxNamed = 4;       // routes / nameservers named per reason
constexpr size_t kMaxPoolsNamed = 8;  // pools named in the exhaustion message

enum Reason { kUsed = 0, kRoute = 1, kNameserver = 2 };

// Blockers of one reason that really caused skips, in order of first appearance.
struct Tally {
    uint64_t skipped = 0;
    std::vector<std::string> names;
    void add(uint64_t n, const std::string& name) {
        skipped += n;
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
};

std::string name_list(const std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < names.size() && i < kMaxNamed; ++i) {
        if (i) out += ", ";
        out += names[i];
    }
    if (names.size() > kMaxNamed) out += fmt::format(" and {} more", names.size() - kMaxNamed);
    return out;
}

}  // namespace

std::string AddressPool::str() const {
    if (size == base.prefix()) return base.str();
    return fmt::format("{} as /{}s", base.str(), size);
}

const std::vector<AddressPool>& default_address_pools() {
    static const std::vector<AddressPool> pools = [] {
        auto p = [](uint32_t a, int prefix, int size) {
            return AddressPool{Ipv4Cidr(Ipv4(a), prefix), size};
        };
        return std::vector<AddressPool>{
            p(0xAC110000, 16, 16),  // 172.17.0.0/16
            p(0xAC120000, 16, 16),  // 172.18.0.0/16
            p(0xAC130000, 16, 16),  // 172.19.0.0/16
            p(0xAC140000, 14, 16),  // 172.20.0.0/14
            p(0xAC180000, 14, 16),  // 172.24.0.0/14
            p(0xAC1C0000, 14, 16),  // 172.28.0.0/14
            p(0xC0A80000, 16, 20),  // 192.168.0.0/16
        };
    }();
    return pools;
}

Result<void> validate_pool(const AddressPool& p) {
    if (p.base.addr() != p.base.network()) {
        return Error::invalid(fmt::format("base {} has host bits set (did you mean {}?)",
                                          p.base.str(), p.base.masked().str()));
    }
    if (p.size < p.base.prefix()) {
        return Error::invalid(
            fmt::format("size {} is shorter than the prefix of base {} (size must be "
                        "between {} and 31)",
                        p.size, p.base.str(), p.base.prefix()));
    }
    if (p.size > 31) {
        return Error::invalid(fmt::format(
            "size {} leaves no room for a gateway and a container (size must be between {} and 31)",
            p.size, p.base.prefix()));
    }
    return ok();
}

// "a, b, c and 2 more": the first kMaxPoolsNamed pools of either family.
template <class Pool>
static std::string pool_list(const std::vector<Pool>& pools) {
    std::string pool_text;
    for (size_t i = 0; i < pools.size() && i < kMaxPoolsNamed; ++i) {
        if (i) pool_text += ", ";
        pool_text += pools[i].str();
    }
    if (pools.size() > kMaxPoolsNamed)
        pool_text += fmt::format(" and {} more", pools.size() - kMaxPoolsNamed);
    return pool_text;
}

// Why no pool had a free subnet: the pools tried and how many candidates each reason skipped.
static Error exhausted(const std::vector<AddressPool>& pools, const Tally (&tally)[3],
                       uint64_t total) {
    const std::string pool_text = pool_list(pools);

    std::vector<std::string> why;
    auto verb = [](uint64_t n, const char* one, const char* many) { return n == 1 ? one : many; };
    if (auto& t = tally[kUsed]; t.skipped) {
        why.push_back(
            fmt::format("{} used by {}", t.skipped, verb(t.skipped, "a network", "networks")));
    }
    if (auto& t = tally[kRoute]; t.skipped) {
        why.push_back(fmt::format("{} {} on-link {} {} on the host", t.skipped,
                                  verb(t.skipped, "overlaps", "overlap"),
                                  verb(t.names.size(), "route", "routes"), name_list(t.names)));
    }
    if (auto& t = tally[kNameserver]; t.skipped) {
        why.push_back(fmt::format("{} {} {} {}", t.skipped, verb(t.skipped, "overlaps", "overlap"),
                                  verb(t.names.size(), "nameserver", "nameservers"),
                                  name_list(t.names)));
    }
    std::string why_text;
    for (size_t i = 0; i < why.size(); ++i) why_text += (i ? ", " : "") + why[i];
    return Error::conflict(fmt::format(
        "no free subnet in {} {} ({} {}: {}); give the network a subnet, remove unused networks or "
        "add pools to default-address-pools",
        pools == default_address_pools() ? "the default address pools"
                                         : "the configured default-address-pools",
        pool_text, total, verb(total, "subnet", "subnets"), why_text));
}

Result<Ipv4Cidr> choose_subnet(const std::vector<AddressPool>& pools, const PoolContext& ctx) {
    if (pools.empty()) return Error::conflict("no default address pools are configured");
    for (const auto& pool : pools) {
        auto v = validate_pool(pool);
        if (!v) return std::move(v).error().wrap(fmt::format("address pool {}", pool.base.str()));
    }
    Tally tally[3];
    uint64_t total = 0;
    for (const auto& pool : pools) {
        const uint64_t step = uint64_t{1} << (32 - pool.size);
        const uint64_t end = uint64_t{pool.base.network().value()} + pool.base.size();  // exclusive
        total += pool.count();
        uint64_t cur = pool.base.network().value();
        while (cur < end) {
            const Ipv4Cidr cand(Ipv4(static_cast<uint32_t>(cur)), pool.size);
            // The blocker of the first reason that applies; among several of that reason, the one
            // reaching furthest, so the whole run it covers is skipped in one step.
            std::optional<Reason> reason;
            uint64_t block_end = 0;  // exclusive
            std::string block_name;
            auto consider = [&](Reason r, uint64_t e, const std::string& name) {
                if (reason && *reason != r) return;
                if (!reason || e > block_end) {
                    reason = r;
                    block_end = e;
                    block_name = name;
                }
            };
            for (const auto& u : ctx.used) {
                if (u.overlaps(cand))
                    consider(kUsed, uint64_t{u.network().value()} + u.size(), u.masked().str());
            }
            if (!reason) {
                for (const auto& r : ctx.onlink_routes) {
                    if (r.prefix() > 0 && r.overlaps(cand)) {
                        consider(kRoute, uint64_t{r.network().value()} + r.size(),
                                 r.masked().str());
                    }
                }
            }
            if (!reason) {
                for (const auto& ns : ctx.nameservers) {
                    if (cand.contains(ns))
                        consider(kNameserver, uint64_t{ns.value()} + 1, ns.str());
                }
            }
            if (!reason) return cand;
            // Next candidate at or after the blocker's end (pools are aligned to `step`).
            uint64_t next = std::max(cur + step, (block_end + step - 1) / step * step);
            next = std::min(next, end);
            tally[*reason].add((next - cur) / step, block_name);
            cur = next;
        }
    }

    return exhausted(pools, tally, total);
}

std::string AddressPool6::str() const {
    if (size == base.prefix()) return base.str();
    return fmt::format("{} as /{}s", base.str(), size);
}

Result<void> validate_pool(const AddressPool6& p) {
    if (p.base.addr() != p.base.network()) {
        return Error::invalid(fmt::format("base {} has host bits set (did you mean {}?)",
                                          p.base.str(), p.base.masked().str()));
    }
    if (p.base.addr().is_multicast() || p.base.addr().is_link_local() || p.base.prefix() < 8) {
        return Error::invalid(
            fmt::format("base {} is not a unicast range for networks (use a ULA "
                        "fdxx:xxxx:xxxx::/48 or a global prefix)",
                        p.base.str()));
    }
    if (p.size < p.base.prefix() || p.size > 126) {
        return Error::invalid(
            fmt::format("size {} is out of range for base {} (size must be between {} and 126)",
                        p.size, p.base.str(), p.base.prefix()));
    }
    return ok();
}

Result<Ipv6Cidr> choose_subnet6(const std::vector<AddressPool6>& pools,
                                const std::vector<Ipv6Cidr>& used) {
    using v6::u128;
    if (pools.empty()) return Error::conflict("no IPv6 address pools are configured");
    for (const auto& pool : pools) {
        auto v = validate_pool(pool);
        if (!v) return std::move(v).error().wrap(fmt::format("address pool {}", pool.base.str()));
    }
    std::vector<std::string> blockers;  // distinct networks that were in the way
    for (const auto& pool : pools) {
        const u128 pool_last = v6::last(pool.base);
        const u128 host = v6::host_mask(pool.size);  // step - 1
        u128 cur = v6::to_u128(pool.base.network());
        while (true) {
            const Ipv6Cidr cand(v6::from_u128(cur), pool.size);
            std::optional<u128> block_last;
            for (const auto& u : used) {
                if (!u.overlaps(cand)) continue;
                const u128 l = v6::last(u);
                if (!block_last || l > *block_last) block_last = l;
                std::string name = u.masked().str();
                if (std::find(blockers.begin(), blockers.end(), name) == blockers.end())
                    blockers.push_back(name);
            }
            if (!block_last) return cand;
            // Skip every candidate up to the one holding the blocker's last address (the pool is
            // aligned to the candidate size); stop at the pool's end without overflowing.
            const u128 skip_last = std::max(cur | host, *block_last | host);
            if (skip_last >= pool_last) break;
            cur = skip_last + 1;
        }
    }
    const std::string pool_text = pool_list(pools);
    return Error::conflict(
        fmt::format("no free IPv6 subnet in {}: every candidate overlaps {} {} ({})", pool_text,
                    blockers.size() == 1 ? "the subnet" : "the subnets",
                    blockers.size() == 1 ? "of a network" : "of networks", name_list(blockers)));
}

std::vector<Ipv4> read_nameservers(std::string_view text) {
    std::vector<Ipv4> out;
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        // Tokens: keyword, value; anything after the value (a trailing comment) is ignored, as the
        // resolver does.
        std::string_view tok[2];
        size_t ntok = 0;
        size_t i = 0;
        while (ntok < 2) {
            while (i < line.size() && is_space(line[i])) ++i;
            if (i == line.size()) break;
            size_t start = i;
            while (i < line.size() && !is_space(line[i])) ++i;
            tok[ntok++] = line.substr(start, i - start);
        }
        if (ntok < 2 || tok[0] != "nameserver") continue;  // also skips '#' and ';' comments
        auto a = Ipv4::parse(tok[1]);
        if (!a) continue;  // IPv6 or junk
        if (std::find(out.begin(), out.end(), *a) == out.end()) out.push_back(*a);
    }
    return out;
}

}  // namespace cnetd::core
