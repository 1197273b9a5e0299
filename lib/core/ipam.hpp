// IPv4 address allocation inside one network. Pure (no kernel, no I/O).
//
// The gateway, the network address and the broadcast address are never handed out. Dynamic
// allocation returns the lowest free address of the pool (the ip-range if set, else the subnet),
// as Docker does; released addresses are reused at once. Static requests must lie inside the subnet
// (and the ip-range, when one is set? No: Docker allows static addresses anywhere in the subnet),
// not be reserved, and be free.
// Threading: none; the engine owns one Ipam per network.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"

namespace cnetd::core {

class Ipam {
public:
    // subnet must have host bits zero; gateway inside it; range (optional) inside the subnet.
    Ipam(Ipv4Cidr subnet, Ipv4 gateway, std::optional<Ipv4Cidr> range = std::nullopt);

    // Lowest free address of the pool. Conflict error when the pool is exhausted.
    Result<Ipv4> allocate();
    // Reserves a specific address. Errors: outside the subnet (InvalidArgument), the network,
    // broadcast or gateway address (InvalidArgument), already in use (Conflict).
    Result<Ipv4> allocate(Ipv4 wanted);
    // Releases an address; releasing a free or foreign address is a no-op.
    void release(Ipv4 a);
    bool in_use(Ipv4 a) const;
    size_t used() const noexcept { return used_; }

private:
    bool reserved(Ipv4 a) const;
    size_t index(Ipv4 a) const { return a.value() - subnet_.network().value(); }
    void set(size_t i, bool v);
    bool test(size_t i) const { return (bits_[i / 64] >> (i % 64)) & 1; }

    Ipv4Cidr subnet_;
    Ipv4 gateway_;
    Ipv4Cidr pool_;
    std::vector<uint64_t> bits_;  // one bit per subnet address; set = in use
    size_t used_ = 0;
};

}  // namespace cnetd::core
