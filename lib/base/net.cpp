#include "base/net.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <random>

namespace cnetd {

namespace {

// Parses a decimal number with no sign, no leading zeros (except "0"), no junk.
bool parse_uint(std::string_view s, uint32_t max, uint32_t& out) {
    if (s.empty() || s.size() > 10) return false;
    if (s.size() > 1 && s[0] == '0') return false;
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v > max) return false;
    out = v;
    return true;
}

std::mt19937_64& rng() {
    thread_local std::mt19937_64 eng{[] {
        std::random_device rd;
        std::seed_seq seq{rd(), rd(), rd(), rd()};
        return std::mt19937_64(seq);
    }()};
    return eng;
}

// "<addr>/<n>" for either family: `what` names the form in errors ("a CIDR", "an IPv6 CIDR"),
// `form` shows it ("a.b.c.d/n"); n <= max_prefix. Host bits may be set.
template <class Cidr, class Addr>
Result<Cidr> parse_cidr(std::string_view text, std::string_view what, std::string_view form,
                        uint32_t max_prefix) {
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) {
        return Error::invalid(fmt::format("\"{}\" is not {} (expected {})", text, what, form));
    }
    auto addr = Addr::parse(text.substr(0, slash));
    if (!addr) {
        return Error::invalid(
            fmt::format("\"{}\" is not {}: {}", text, what, addr.error().message()));
    }
    uint32_t prefix;
    std::string_view ptext = text.substr(slash + 1);
    if (!parse_uint(ptext, 1000, prefix)) {
        return Error::invalid(
            fmt::format("\"{}\" is not {}: bad prefix length \"{}\"", text, what, ptext));
    }
    if (prefix > max_prefix) {
        return Error::invalid(
            fmt::format("\"{}\": prefix length {} > {}", text, prefix, max_prefix));
    }
    return Cidr(*addr, static_cast<int>(prefix));
}

// `c` (parsed from `text`) unless it has host bits set: the error names the network meant.
template <class Cidr>
Result<Cidr> require_network(std::string_view text, Result<Cidr> c) {
    if (c && c->addr() != c->network()) {
        return Error::invalid(
            fmt::format("\"{}\" has host bits set (did you mean {}?)", text, c->masked().str()));
    }
    return c;
}

}  // namespace

Result<Ipv4> Ipv4::parse(std::string_view text) {
    uint32_t v = 0;
    std::string_view rest = text;
    for (int i = 0; i < 4; ++i) {
        size_t dot = rest.find('.');
        std::string_view part = (i < 3) ? rest.substr(0, dot) : rest;
        if ((i < 3 && dot == std::string_view::npos)) {
            return Error::invalid(fmt::format("\"{}\" is not an IPv4 address", text));
        }
        uint32_t octet;
        if (!parse_uint(part, 255, octet)) {
            return Error::invalid(fmt::format("\"{}\" is not an IPv4 address", text));
        }
        v = (v << 8) | octet;
        if (i < 3) rest = rest.substr(dot + 1);
    }
    return Ipv4(v);
}

uint32_t Ipv4::network_order() const noexcept {
    return htonl(v_);
}

std::string Ipv4::str() const {
    return fmt::format("{}.{}.{}.{}", v_ >> 24, (v_ >> 16) & 0xff, (v_ >> 8) & 0xff, v_ & 0xff);
}

Result<Ipv4Cidr> Ipv4Cidr::parse(std::string_view text) {
    return parse_cidr<Ipv4Cidr, Ipv4>(text, "a CIDR", "a.b.c.d/n", 32);
}

Result<Ipv4Cidr> Ipv4Cidr::parse_network(std::string_view text) {
    return require_network(text, parse(text));
}

bool Ipv4Cidr::overlaps(const Ipv4Cidr& o) const noexcept {
    int p = std::min(prefix_, o.prefix_);
    uint32_t m = p == 0 ? 0 : ~uint32_t{0} << (32 - p);
    return (addr_.value() & m) == (o.addr_.value() & m);
}

std::string Ipv4Cidr::str() const {
    return fmt::format("{}/{}", addr_.str(), prefix_);
}

Result<Ipv6> Ipv6::parse(std::string_view text) {
    std::string t(text);
    std::array<uint8_t, 16> b{};
    // An embedded NUL would end the text for inet_pton and let trailing junk through.
    if (t.empty() || t.size() > 45 || t.find('\0') != std::string::npos ||
        inet_pton(AF_INET6, t.c_str(), b.data()) != 1) {
        return Error::invalid(fmt::format("\"{}\" is not an IPv6 address", text));
    }
    return Ipv6(b);
}

bool Ipv6::is_unspecified() const noexcept {
    for (auto x : b_) {
        if (x != 0) return false;
    }
    return true;
}

bool Ipv6::is_loopback() const noexcept {
    for (size_t i = 0; i < 15; ++i) {
        if (b_[i] != 0) return false;
    }
    return b_[15] == 1;
}

bool Ipv6::is_link_local() const noexcept {
    return b_[0] == 0xfe && (b_[1] & 0xc0) == 0x80;
}

std::string Ipv6::str() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, b_.data(), buf, sizeof buf);
    return buf;
}

Result<Ipv6Cidr> Ipv6Cidr::parse(std::string_view text) {
    return parse_cidr<Ipv6Cidr, Ipv6>(text, "an IPv6 CIDR", "addr/n", 128);
}

Result<Ipv6Cidr> Ipv6Cidr::parse_network(std::string_view text) {
    return require_network(text, parse(text));
}

Ipv6 Ipv6Cidr::network() const noexcept {
    auto b = addr_.bytes();
    for (int i = 0; i < 16; ++i) {
        int bits = prefix_ - i * 8;
        if (bits >= 8) continue;
        b[static_cast<size_t>(i)] &= bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    }
    return Ipv6(b);
}

bool Ipv6Cidr::contains(const Ipv6& a) const noexcept {
    return Ipv6Cidr(a, prefix_).network() == network();
}

bool Ipv6Cidr::overlaps(const Ipv6Cidr& o) const noexcept {
    int p = std::min(prefix_, o.prefix_);
    return Ipv6Cidr(addr_, p).network() == Ipv6Cidr(o.addr_, p).network();
}

Ipv6 Ipv6Cidr::at(uint64_t offset) const noexcept {
    auto b = network().bytes();
    uint64_t low = 0;
    for (size_t i = 8; i < 16; ++i) low = (low << 8) | b[i];
    low += offset;
    for (size_t i = 16; i-- > 8;) {
        b[i] = static_cast<uint8_t>(low & 0xff);
        low >>= 8;
    }
    return Ipv6(b);
}

std::string Ipv6Cidr::str() const {
    return fmt::format("{}/{}", addr_.str(), prefix_);
}

Result<Mac> Mac::parse(std::string_view text) {
    std::array<uint8_t, 6> b{};
    auto bad = [&] {
        return Error::invalid(
            fmt::format("\"{}\" is not a MAC address (expected xx:xx:xx:xx:xx:xx)", text));
    };
    if (text.size() != 17) return bad();
    for (int i = 0; i < 6; ++i) {
        if (i < 5 && text[i * 3 + 2] != ':') return bad();
        unsigned v = 0;
        auto first = text.data() + i * 3;
        auto [p, ec] = std::from_chars(first, first + 2, v, 16);
        if (ec != std::errc() || p != first + 2) return bad();
        b[i] = static_cast<uint8_t>(v);
    }
    return Mac(b);
}

Mac Mac::random_local() {
    std::array<uint8_t, 6> b{};
    uint64_t r = rng()();
    for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(r >> (8 * i));
    b[0] = static_cast<uint8_t>((b[0] & 0xfe) | 0x02);  // unicast, locally administered
    return Mac(b);
}

bool Mac::is_zero() const noexcept {
    for (auto x : b_)
        if (x) return false;
    return true;
}

std::string Mac::str() const {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b_[0], b_[1], b_[2], b_[3],
                       b_[4], b_[5]);
}

Result<void> validate_ifname(std::string_view name) {
    if (name.empty()) return Error::invalid("interface name is empty");
    if (name.size() > 15) {
        return Error::invalid(fmt::format(
            "interface name \"{}\" is {} characters long (the limit is 15)", name, name.size()));
    }
    if (name == "." || name == "..") {
        return Error::invalid(fmt::format("interface name \"{}\" is not allowed", name));
    }
    for (char ch : name) {
        // Unsigned: a byte >= 0x80 is not "<= ' '". Printable ASCII only: the kernel would take
        // other bytes, but a name must round-trip through JSON (UTF-8) unchanged.
        const auto c = static_cast<unsigned char>(ch);
        if (c == '/' || c == ':' || c <= ' ' || c >= 0x7f) {
            return Error::invalid(fmt::format(
                "interface name \"{}\" contains a '/', ':', whitespace, control or non-ASCII "
                "character",
                name));
        }
    }
    return ok();
}

std::string random_hex(size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(n);
    uint64_t r = 0;
    for (size_t i = 0; i < n; ++i) {
        if (i % 16 == 0) r = rng()();
        s.push_back(digits[r & 0xf]);
        r >>= 4;
    }
    return s;
}

}  // namespace cnetd
