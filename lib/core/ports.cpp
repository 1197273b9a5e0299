#include "core/ports.hpp"

#include <charconv>

namespace cnetd::core {

namespace {

Result<uint16_t> parse_port(std::string_view spec, std::string_view s, bool allow_zero = false) {
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v > 65535 ||
        (v == 0 && !allow_zero) || (s.size() > 1 && s[0] == '0')) {
        return Error::invalid(fmt::format("port spec \"{}\": \"{}\" is not a port (1-65535)", spec, s));
    }
    return static_cast<uint16_t>(v);
}

Result<PortRange> parse_range(std::string_view spec, std::string_view s) {
    size_t dash = s.find('-');
    if (dash == std::string_view::npos) {
        CNETD_TRY_ASSIGN(uint16_t p, parse_port(spec, s));
        return PortRange{p, p};
    }
    CNETD_TRY_ASSIGN(uint16_t a, parse_port(spec, s.substr(0, dash)));
    CNETD_TRY_ASSIGN(uint16_t b, parse_port(spec, s.substr(dash + 1)));
    if (b < a) {
        return Error::invalid(fmt::format("port spec \"{}\": range {} ends before it starts", spec, s));
    }
    return PortRange{a, b};
}

std::string host_text(const std::optional<Ipv4>& ip) { return ip ? ip->str() : "0.0.0.0"; }

// Docker's error text puts IPv6 addresses in brackets: "Bind for [::1]:8080 failed".
std::string bind_text(const PortBinding& b) {
    // fmt, not "[" + std::string&& (GCC 12 -O3 -Wrestrict false positive, as in lib/firewall).
    return b.ipv6 ? fmt::format("[{}]", b.host_ip_text()) : b.host_ip_text();
}

// A -p spec in three steps: the protocol suffix, the address and port parts (split_v6 for
// "[v6]:...", split_v4 for the rest), then the requests those parts give (requests_of).
struct SpecParts {
    PortRequest base;            // proto and host address; ports filled by requests_of
    std::string_view host = {};  // empty: an ephemeral host port per container port
    std::string_view cont = {};
};

Error spec_error(std::string_view spec, std::string_view why) {
    return Error::invalid(fmt::format("port spec \"{}\": {}", spec, why));
}

// "[v6]:host:container" or "[v6]::container"; "[::]" is every IPv6 address.
Result<SpecParts> split_v6(std::string_view spec, std::string_view rest, Proto proto) {
    constexpr std::string_view kForm = "expected [IPv6]:HOSTPORT:CONTAINERPORT";
    size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
        return spec_error(spec, kForm);
    auto a = Ipv6::parse(rest.substr(1, close - 1));
    if (!a) return spec_error(spec, a.error().message());
    SpecParts parts;
    parts.base.proto = proto;
    parts.base.ipv6 = true;
    if (!a->is_unspecified()) parts.base.host_ip6 = *a;
    std::string_view ports = rest.substr(close + 2);
    size_t c = ports.find(':');
    if (c == std::string_view::npos || ports.find(':', c + 1) != std::string_view::npos)
        return spec_error(spec, kForm);
    parts.host = ports.substr(0, c);
    parts.cont = ports.substr(c + 1);
    return parts;
}

// [ip:][host:]container, split on ':' from the right.
Result<SpecParts> split_v4(std::string_view spec, std::string_view rest, Proto proto) {
    SpecParts parts;
    parts.base.proto = proto;
    size_t c2 = rest.rfind(':');
    if (c2 == std::string_view::npos) {
        parts.cont = rest;
        return parts;
    }
    parts.cont = rest.substr(c2 + 1);
    std::string_view left = rest.substr(0, c2);
    size_t c1 = left.rfind(':');
    if (c1 == std::string_view::npos) {
        if (left.empty()) return spec_error(spec, "empty host port");
        parts.host = left;
        return parts;
    }
    parts.host = left.substr(c1 + 1);
    std::string_view ip = left.substr(0, c1);
    if (ip.find(':') != std::string_view::npos)
        return spec_error(spec, "too many ':' (IPv6 addresses go in brackets)");
    auto a = Ipv4::parse(ip);
    if (!a) return spec_error(spec, a.error().message());
    parts.base.host_ip = *a;  // an explicit 0.0.0.0 (every address) overrides a default host IP
    return parts;
}

// The requests of a split spec: one per container port with an ephemeral host port ("80",
// "IP::80", "[v6]::80"), else one mapping of the host port (range) onto the container's.
Result<std::vector<PortRequest>> requests_of(std::string_view spec, const SpecParts& parts) {
    CNETD_TRY_ASSIGN(PortRange cont, parse_range(spec, parts.cont));
    std::vector<PortRequest> out;
    PortRequest r = parts.base;
    if (parts.host.empty()) {
        for (uint32_t p = cont.first; p <= cont.last; ++p) {
            const auto port = static_cast<uint16_t>(p);
            r.host = {0, 0};
            r.container = {port, port};
            out.push_back(r);
        }
        return out;
    }
    CNETD_TRY_ASSIGN(r.host, parse_range(spec, parts.host));
    if (cont.size() > 1 && r.host.size() != cont.size()) {
        return spec_error(spec, fmt::format("host range has {} ports but container range has {}",
                                            r.host.size(), cont.size()));
    }
    r.container = cont;
    out.push_back(r);
    return out;
}

}  // namespace

const char* to_string(Proto p) noexcept {
    switch (p) {
        case Proto::Tcp: return "tcp";
        case Proto::Udp: return "udp";
        case Proto::Sctp: return "sctp";
    }
    return "tcp";
}

Result<Proto> parse_proto(std::string_view s) {
    if (s == "tcp") return Proto::Tcp;
    if (s == "udp") return Proto::Udp;
    if (s == "sctp") return Proto::Sctp;
    return Error::invalid(fmt::format("protocol \"{}\" is not one of tcp, udp, sctp", s));
}

std::string PortBinding::host_ip_text() const {
    if (ipv6) return host_ip6 ? host_ip6->str() : "::";
    return host_text(host_ip);
}

std::string PortBinding::str() const {
    auto range = [](const PortRange& r) {
        return r.first == r.last ? std::to_string(r.first) : fmt::format("{}-{}", r.first, r.last);
    };
    return fmt::format("{}:{}->{}/{}", bind_text(*this), range(host), range(container),
                       to_string(proto));
}

Result<std::vector<PortRequest>> parse_port_spec(std::string_view spec) {
    if (spec.empty()) return Error::invalid("port spec is empty");
    std::string_view rest = spec;
    Proto proto = Proto::Tcp;
    if (size_t slash = rest.rfind('/'); slash != std::string_view::npos) {
        auto p = parse_proto(rest.substr(slash + 1));
        if (!p) return spec_error(spec, p.error().message());
        proto = *p;
        rest = rest.substr(0, slash);
    }
    CNETD_TRY_ASSIGN(SpecParts parts, !rest.empty() && rest[0] == '['
                                          ? split_v6(spec, rest, proto)
                                          : split_v4(spec, rest, proto));
    return requests_of(spec, parts);
}

PortAllocator::PortAllocator(PortRange ephemeral, std::set<uint16_t> reserved)
    : ephemeral_(ephemeral), reserved_(std::move(reserved)), next_ephemeral_(ephemeral.first) {}

PortAllocator::HostAddr PortAllocator::addr_of(const PortBinding& b) {
    HostAddr a;
    if (b.ipv6) {
        a.family = 6;
        if (b.host_ip6 && !b.host_ip6->is_unspecified()) {
            a.any = false;
            a.bytes = b.host_ip6->bytes();
        }
    } else if (b.host_ip && b.host_ip->value() != 0) {
        a.any = false;
        const uint32_t v = b.host_ip->value();
        a.bytes = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
    }
    return a;
}

bool PortAllocator::addr_in_use(Proto p, const HostAddr& a, uint16_t port) const {
    for (auto it = used_.lower_bound(Use{p, port, HostAddr{0, false, {}}});
         it != used_.end() && it->proto == p && it->port == port; ++it) {
        const HostAddr& u = it->addr;
        if (u.family == a.family && (a.any || u.any || u == a)) return true;
    }
    return false;
}

bool PortAllocator::in_use(Proto p, std::optional<Ipv4> ip, uint16_t port) const {
    PortBinding b;
    b.host_ip = ip;
    return addr_in_use(p, addr_of(b), port);
}

bool PortAllocator::range_free(Proto p, const std::vector<HostAddr>& addrs, uint16_t first,
                               uint16_t last) const {
    for (uint32_t port = first; port <= last; ++port)
        for (const auto& a : addrs)
            if (addr_in_use(p, a, static_cast<uint16_t>(port))) return false;
    return true;
}

void PortAllocator::mark(const PortBinding& b, bool used) {
    const HostAddr a = addr_of(b);
    for (uint32_t port = b.host.first; port <= b.host.last; ++port) {
        const Use u{b.proto, static_cast<uint16_t>(port), a};
        if (used) {
            used_.insert(u);
        } else if (auto it = used_.find(u); it != used_.end()) {
            used_.erase(it);  // one use: the same address may be marked twice
        }
    }
}

Result<std::vector<PortBinding>> PortAllocator::allocate(const PortRequest& req, bool dual) {
    // 0.0.0.0 given explicitly and no address at all both mean every IPv4 address here.
    std::optional<Ipv4> ip = req.host_ip && req.host_ip->value() == 0 ? std::nullopt : req.host_ip;
    PortBinding b{req.proto, req.ipv6 ? std::nullopt : ip, req.host, req.container, req.ipv6,
                  req.ipv6 ? req.host_ip6 : std::nullopt};
    std::vector<PortBinding> out{b};
    if (dual && !req.ipv6) {
        PortBinding b6 = b;
        b6.host_ip = std::nullopt;
        b6.ipv6 = true;
        b6.host_ip6 = std::nullopt;
        out.push_back(b6);
    }
    std::vector<HostAddr> addrs;
    for (const auto& x : out) addrs.push_back(addr_of(x));
    auto take = [&](uint32_t first, uint32_t last) {
        for (auto& x : out) {
            x.host = {static_cast<uint16_t>(first), static_cast<uint16_t>(last)};
            mark(x, true);
        }
        return out;
    };
    const uint32_t n = req.container.size();
    if (req.host.first == 0) {
        // Ephemeral: round-robin through the range, skipping reserved and used ports.
        const uint32_t span = uint32_t(ephemeral_.last) - ephemeral_.first + 1;
        uint32_t start = next_ephemeral_;
        for (uint32_t i = 0; i < span; ++i) {
            uint32_t p = ephemeral_.first + (start - ephemeral_.first + i) % span;
            if (p + n - 1 > ephemeral_.last) continue;
            bool ok = true;
            for (uint32_t q = p; q < p + n && ok; ++q) ok = !reserved_.count(static_cast<uint16_t>(q));
            if (!ok || !range_free(req.proto, addrs, static_cast<uint16_t>(p),
                                   static_cast<uint16_t>(p + n - 1))) {
                continue;
            }
            next_ephemeral_ = static_cast<uint16_t>(
                p + n > ephemeral_.last ? ephemeral_.first : p + n);
            return take(p, p + n - 1);
        }
        return Error::conflict(fmt::format("no free host port left in {}-{} for {}", ephemeral_.first,
                                           ephemeral_.last, to_string(req.proto)));
    }
    if (req.host.size() > n) {
        // "8000-8010:80": the first free port (or block) out of the host range.
        for (uint32_t p = req.host.first; p + n - 1 <= req.host.last; ++p) {
            if (range_free(req.proto, addrs, static_cast<uint16_t>(p),
                           static_cast<uint16_t>(p + n - 1))) {
                return take(p, p + n - 1);
            }
        }
        return Error::conflict(fmt::format("Bind for {}:{}-{} failed: all ports are already allocated",
                                           bind_text(b), req.host.first, req.host.last));
    }
    for (const auto& x : out) {
        for (uint32_t port = x.host.first; port <= x.host.last; ++port) {
            if (addr_in_use(x.proto, addr_of(x), static_cast<uint16_t>(port))) {
                return Error::conflict(fmt::format("Bind for {}:{} failed: port is already allocated",
                                                   bind_text(x), port));
            }
        }
    }
    return take(req.host.first, req.host.last);
}

Result<void> PortAllocator::claim(const PortBinding& b) {
    for (uint32_t port = b.host.first; port <= b.host.last; ++port) {
        if (addr_in_use(b.proto, addr_of(b), static_cast<uint16_t>(port))) {
            return Error::conflict(fmt::format("Bind for {}:{} failed: port is already allocated",
                                               bind_text(b), port));
        }
    }
    mark(b, true);
    return ok();
}

void PortAllocator::release(const PortBinding& b) { mark(b, false); }

}  // namespace cnetd::core
