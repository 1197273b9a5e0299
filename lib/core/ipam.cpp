#include "core/ipam.hpp"

#include <bit>

namespace cnetd::core {

Ipam::Ipam(Ipv4Cidr subnet, Ipv4 gateway, std::optional<Ipv4Cidr> range)
    : subnet_(subnet.masked()), gateway_(gateway), pool_(range ? range->masked() : subnet.masked()) {
    bits_.assign((subnet_.size() + 63) / 64, 0);
}

bool Ipam::reserved(Ipv4 a) const {
    if (a == gateway_) return true;
    // /31 and /32 have no network or broadcast address (RFC 3021); anything wider does.
    if (subnet_.prefix() >= 31) return false;
    return a == subnet_.network() || a == subnet_.broadcast();
}

void Ipam::set(size_t i, bool v) {
    uint64_t bit = uint64_t{1} << (i % 64);
    if (v) {
        bits_[i / 64] |= bit;
    } else {
        bits_[i / 64] &= ~bit;
    }
}

bool Ipam::in_use(Ipv4 a) const { return subnet_.contains(a) && test(index(a)); }

Result<Ipv4> Ipam::allocate() {
    const size_t first = index(pool_.network());
    const size_t last = index(pool_.broadcast());  // inclusive
    // Scan 64 addresses at a time: a full word is skipped with one comparison.
    size_t i = first;
    while (i <= last) {
        if (i % 64 == 0 && i + 63 <= last && bits_[i / 64] == ~uint64_t{0}) {
            i += 64;
            continue;
        }
        if (!test(i)) {
            Ipv4 a(subnet_.network().value() + static_cast<uint32_t>(i));
            if (!reserved(a)) {
                set(i, true);
                ++used_;
                return a;
            }
        }
        ++i;
    }
    return Error::conflict(fmt::format("no free address left in {}{}", pool_.str(),
                                       pool_ == subnet_ ? "" : " (the network's ip-range)"));
}

Result<Ipv4> Ipam::allocate(Ipv4 wanted) {
    if (!subnet_.contains(wanted)) {
        return Error::invalid(
            fmt::format("address {} is not in the network's subnet {}", wanted.str(), subnet_.str()));
    }
    if (wanted == gateway_) {
        return Error::invalid(fmt::format("address {} is the network's gateway", wanted.str()));
    }
    if (reserved(wanted)) {
        return Error::invalid(fmt::format("address {} is the {} address of {}", wanted.str(),
                                          wanted == subnet_.network() ? "network" : "broadcast",
                                          subnet_.str()));
    }
    size_t i = index(wanted);
    if (test(i)) {
        return Error::conflict(fmt::format("address {} is already in use", wanted.str()));
    }
    set(i, true);
    ++used_;
    return wanted;
}

void Ipam::release(Ipv4 a) {
    if (!subnet_.contains(a)) return;
    size_t i = index(a);
    if (!test(i)) return;
    set(i, false);
    --used_;
}

}  // namespace cnetd::core
