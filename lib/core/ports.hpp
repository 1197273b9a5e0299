// Published ports (Docker's `-p`): parsing the spec forms and allocating host ports. Pure: no
// kernel, no sockets (reserving a port on the host is the Kernel's job).
//
// Forms (docker run -p): "80" (ephemeral host port), "8080:80", "8080:80/udp", "8080:80/sctp",
// "IP:8080:80", "IP::80", "[::1]:8080:80" (IPv6 host address: refused until IPv6 networks exist),
// "8000-8010:80" (one free host port out of the range), "8000-8010:80-90" (1:1 ranges),
// "80-90" (each container port to its own ephemeral host port).
#pragma once

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
    bool operator==(const PortRequest&) const = default;
};

// A mapping with its host ports chosen: host.size() == container.size().
struct PortBinding {
    Proto proto = Proto::Tcp;
    std::optional<Ipv4> host_ip;
    PortRange host;
    PortRange container;
    bool operator==(const PortBinding&) const = default;
    // Docker's text: "0.0.0.0:8080->80/tcp"
    std::string str() const;
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
    Result<PortBinding> allocate(const PortRequest& req);
    // Marks an existing binding as used (state load). Conflict error if it collides.
    Result<void> claim(const PortBinding& b);
    void release(const PortBinding& b);
    bool in_use(Proto p, std::optional<Ipv4> ip, uint16_t port) const;

private:
    bool range_free(Proto p, std::optional<Ipv4> ip, uint16_t first, uint16_t last) const;
    void mark(const PortBinding& b, bool used);

    PortRange ephemeral_;
    std::set<uint16_t> reserved_;
    // (proto, port) -> addresses using it; nullopt = 0.0.0.0
    std::map<std::pair<Proto, uint16_t>, std::multiset<std::optional<Ipv4>>> used_;
    uint16_t next_ephemeral_ = 0;  // Docker hands out ephemeral ports round-robin
};

}  // namespace cnetd::core
