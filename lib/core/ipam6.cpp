#include "core/ipam6.hpp"

#include <iterator>

namespace cnetd::core {

namespace v6 {

u128 to_u128(const Ipv6& a) noexcept {
    u128 v = 0;
    for (uint8_t b : a.bytes()) v = (v << 8) | b;
    return v;
}

Ipv6 from_u128(u128 v) noexcept {
    std::array<uint8_t, 16> b{};
    for (size_t i = 16; i-- > 0;) {
        b[i] = static_cast<uint8_t>(v & 0xff);
        v >>= 8;
    }
    return Ipv6(b);
}

u128 host_mask(int prefix) noexcept {
    if (prefix <= 0) return ~u128{0};
    if (prefix >= 128) return 0;
    return (u128{1} << (128 - prefix)) - 1;
}

}  // namespace v6

Ipam6::Ipam6(Ipv6Cidr subnet, Ipv6 gateway, std::optional<Ipv6Cidr> range)
    : subnet_(subnet.masked()),
      gateway_(gateway),
      pool_(range ? range->masked() : subnet.masked()) {
    if (subnet_.contains(gateway_)) insert(v6::to_u128(gateway_));
    const u128 net = v6::to_u128(subnet_.network());
    if (subnet_.prefix() < 127 && !contains(net)) insert(net);
}

bool Ipam6::reserved(u128 a) const {
    if (a == v6::to_u128(gateway_)) return true;
    return subnet_.prefix() < 127 && a == v6::to_u128(subnet_.network());
}

bool Ipam6::contains(u128 a) const {
    auto it = runs_.upper_bound(a);
    if (it == runs_.begin()) return false;
    --it;
    return a <= it->second;
}

void Ipam6::insert(u128 a) {
    auto next = runs_.upper_bound(a);  // first run starting after a
    bool joins_prev = false;
    std::map<u128, u128>::iterator prev;
    if (next != runs_.begin()) {
        prev = std::prev(next);
        joins_prev = prev->second + 1 == a;  // a is free, so prev->second < a
    }
    const bool joins_next = next != runs_.end() && a + 1 == next->first;
    if (joins_prev && joins_next) {
        prev->second = next->second;
        runs_.erase(next);
    } else if (joins_prev) {
        prev->second = a;
    } else if (joins_next) {
        u128 last = next->second;
        runs_.erase(next);
        runs_.emplace(a, last);
    } else {
        runs_.emplace(a, a);
    }
}

void Ipam6::erase(u128 a) {
    auto it = std::prev(runs_.upper_bound(a));
    const u128 first = it->first;
    const u128 last = it->second;
    runs_.erase(it);
    if (first < a) runs_.emplace(first, a - 1);
    if (a < last) runs_.emplace(a + 1, last);
}

bool Ipam6::in_use(const Ipv6& a) const {
    const u128 v = v6::to_u128(a);
    return subnet_.contains(a) && !reserved(v) && contains(v);
}

Result<Ipv6> Ipam6::allocate() {
    const u128 first = v6::to_u128(pool_.network());
    const u128 last = v6::last(pool_);
    u128 cand = first;
    // Runs are merged, so the address after the run holding `cand` is free.
    auto it = runs_.upper_bound(cand);
    if (it != runs_.begin()) {
        --it;
        if (cand <= it->second) {
            if (it->second >= last) {
                return Error::conflict(
                    fmt::format("no free address left in {}{}", pool_.str(),
                                pool_ == subnet_ ? "" : " (the network's ip-range)"));
            }
            cand = it->second + 1;
        }
    }
    insert(cand);
    ++used_;
    return v6::from_u128(cand);
}

Result<Ipv6> Ipam6::allocate(const Ipv6& wanted) {
    if (!subnet_.contains(wanted)) {
        return Error::invalid(fmt::format("address {} is not in the network's subnet {}",
                                          wanted.str(), subnet_.str()));
    }
    const u128 v = v6::to_u128(wanted);
    if (wanted == gateway_) {
        return Error::invalid(fmt::format("address {} is the network's gateway", wanted.str()));
    }
    if (reserved(v)) {
        return Error::invalid(fmt::format("address {} is the subnet-router anycast address of {}",
                                          wanted.str(), subnet_.str()));
    }
    if (contains(v)) {
        return Error::conflict(fmt::format("address {} is already in use", wanted.str()));
    }
    insert(v);
    ++used_;
    return wanted;
}

void Ipam6::release(const Ipv6& a) {
    const u128 v = v6::to_u128(a);
    if (!subnet_.contains(a) || reserved(v) || !contains(v)) return;
    erase(v);
    --used_;
}

}  // namespace cnetd::core
