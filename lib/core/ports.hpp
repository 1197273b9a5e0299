// Published ports (Docker's `-p`): parsing the spec forms and allocating host ports. Pure: no
// kernel, no sockets (reserving a port on the host is the Kernel's job).
//
// Forms (docker run -p): "80" (ephemeral host port), "8080:80", "8080:80/udp", "8080:80/sctp",
// "IP:8080:80", "IP::80", "[::1]:8080:80" (IPv6 host address), "[::]:8080:80" (every IPv6 address),
// "8000-8010:80" (one free host port out of the range), "8000-8010:80-90" (1:1 ranges),
// "80-90" (each container port to its own ephemeral host port).
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"

namespace cnetd::core {

enum class Proto { Tcp, Udp, Sctp };
const char* to_string(Proto p) noexcept;
Result<Proto> parse_proto(std::string_view s);

struct PortRange {
    uint16_t first = 0;  // 0: ephemeral (host side only)
    uint16_t last = 0;
    uint32_t size() const { return first == 0 ? 1 : uint32_t(last) - first + 1; }
    bool operator==(const PortRange&) const = default;
};

// One requested mapping, as the user wrote it (host side possibly not chosen yet).
struct PortRequest {
    Proto proto = Proto::Tcp;
    // nullopt: not given (the network's or daemon's default host address applies); 0.0.0.0 given
    // explicitly: every host address.
    std::optional<Ipv4> host_ip;
    PortRange host;               // {0,0}: ephemeral; a range bigger than `container`: pick one
    PortRange container;
    // An IPv6 host address was given ("[::1]:8080:80"): the mapping is IPv6 only, on host_ip6
    // (nullopt: "[::]", every IPv6 address). Without any host address the mapping covers IPv4
    // and, on dual-stack networks, IPv6 with the same host port (two bindings).
    bool ipv6 = false;
    std::optional<Ipv6> host_ip6 = std::nullopt;
    bool operator==(const PortRequest&) const = default;
};

// A mapping with its host ports chosen: host.size() == container.size().
struct PortBinding {
    Proto proto = Proto::Tcp;
    std::optional<Ipv4> host_ip;
    PortRange host;
    PortRange container;
    bool ipv6 = false;                          // an IPv6 binding: host_ip6 (nullopt: [::])
    std::optional<Ipv6> host_ip6 = std::nullopt;
    bool operator==(const PortBinding&) const = default;
    // Docker's text: "0.0.0.0:8080->80/tcp", "[::1]:8080->80/tcp"
    std::string str() const;
    std::string host_ip_text() const;  // "0.0.0.0", "127.0.0.1", "::", "::1"
};

// Parses one -p spec into one or more requests ("80-90" gives eleven). Errors name the spec.
Result<std::vector<PortRequest>> parse_port_spec(std::string_view spec);

// Host port bookkeeping for the whole daemon. 0.0.0.0 conflicts with every specific address and
// vice versa (Docker's rule). Not thread-safe: owned by the engine.
class PortAllocator {
public:
    // The ephemeral range (net.ipv4.ip_local_port_range) and ip_local_reserved_ports.
    PortAllocator(PortRange ephemeral = {32768, 60999}, std::set<uint16_t> reserved = {});

    // Chooses host ports for `req` and marks them used. Errors are Docker's:
    // "Bind for 0.0.0.0:8080 failed: port is already allocated" (Conflict).
    // With `dual` (a request without host address on a dual-stack network) the same host ports
    // are taken for 0.0.0.0 and [::] and two bindings come back (IPv4 first); otherwise one.
    Result<std::vector<PortBinding>> allocate(const PortRequest& req, bool dual = false);
    // Marks an existing binding as used (state load). Conflict error if it collides.
    Result<void> claim(const PortBinding& b);
    void release(const PortBinding& b);
    bool in_use(Proto p, std::optional<Ipv4> ip, uint16_t port) const;

private:
    // A binding's host address, compact. `any`: 0.0.0.0 / [::], which conflicts with every address
    // of its family; IPv4 and IPv6 never conflict (IPV6_V6ONLY).
    struct HostAddr {
        uint8_t family = 4;  // 4 or 6; 0 sorts before both (a lookup's lower bound)
        bool any = true;
        std::array<uint8_t, 16> bytes{};
        auto operator<=>(const HostAddr&) const = default;
    };
    // One (protocol, host port, address) in use.
    struct Use {
        Proto proto = Proto::Tcp;
        uint16_t port = 0;
        HostAddr addr;
        auto operator<=>(const Use&) const = default;
    };
    static HostAddr addr_of(const PortBinding& b);
    bool addr_in_use(Proto p, const HostAddr& a, uint16_t port) const;
    bool range_free(Proto p, const std::vector<HostAddr>& addrs, uint16_t first,
                    uint16_t last) const;
    void mark(const PortBinding& b, bool used);

    PortRange ephemeral_;
    std::set<uint16_t> reserved_;
    // Every port in use, one element per (proto, port, address), sorted so a (proto, port) is one
    // contiguous run: O(log n) per lookup, ~64 bytes per published port (10,000: 0.6 MB).
    std::multiset<Use> used_;
    uint16_t next_ephemeral_ = 0;  // Docker hands out ephemeral ports round-robin
};

}  // namespace cnetd::core
