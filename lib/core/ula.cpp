#include "core/ula.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "core/pools.hpp"

namespace cnetd::core {

namespace detail {

namespace {

constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

constexpr uint32_t rotr(uint32_t x, int n) {
    return (x >> n) | (x << (32 - n));
}

void block(uint32_t h[8], const uint8_t* p) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
        w[i] = uint32_t{p[4 * i]} << 24 | uint32_t{p[4 * i + 1]} << 16 |
               uint32_t{p[4 * i + 2]} << 8 | uint32_t{p[4 * i + 3]};
    }
    for (int i = 16; i < 64; ++i) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
        uint32_t t1 =
            hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

}  // namespace

std::array<uint8_t, 32> sha256(std::string_view data) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const auto* p = reinterpret_cast<const uint8_t*>(data.data());
    size_t n = data.size();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) block(h, p + i);
    // Padding: 0x80, zeros, then the bit length big-endian, in one or two final blocks.
    uint8_t tail[128] = {};
    size_t rest = n - i;
    std::memcpy(tail, p + i, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = uint64_t{n} * 8;
    for (int k = 0; k < 8; ++k) tail[tail_len - 1 - k] = static_cast<uint8_t>(bits >> (8 * k));
    block(h, tail);
    if (tail_len == 128) block(h, tail + 64);
    std::array<uint8_t, 32> out{};
    for (int k = 0; k < 8; ++k) {
        out[4 * k] = static_cast<uint8_t>(h[k] >> 24);
        out[4 * k + 1] = static_cast<uint8_t>(h[k] >> 16);
        out[4 * k + 2] = static_cast<uint8_t>(h[k] >> 8);
        out[4 * k + 3] = static_cast<uint8_t>(h[k]);
    }
    return out;
}

}  // namespace detail

std::string new_daemon_id() {
    uint8_t buf[32];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t r = getrandom(buf + got, sizeof buf - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            break;  // no getrandom (ancient kernel): fall back below
        }
        got += static_cast<size_t>(r);
    }
    if (got < sizeof buf) return random_hex(64);
    std::string s;
    s.reserve(64);
    for (uint8_t b : buf) s += fmt::format("{:02x}", b);
    return s;
}

Result<void> validate_daemon_id(std::string_view id) {
    bool hex = id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
    if (id.size() == 64 && hex) return ok();
    std::string shown(id.substr(0, 70));
    if (id.size() > 70) shown += "...";
    return Error::invalid(
        fmt::format("daemon ID \"{}\" is not 64 lower-case hex characters", shown));
}

Ipv6Cidr ula48_from_id(std::string_view id) {
    auto sha = detail::sha256(id);
    std::array<uint8_t, 16> b{};
    b[0] = 0xfd;
    // 40 low bits of the big-endian first 8 bytes = sha[3..7], as bytes 1..5 of the address.
    for (size_t i = 0; i < 5; ++i) b[1 + i] = sha[3 + i];
    return Ipv6Cidr(Ipv6(b), 48);
}

Result<Ipv6Cidr> choose_subnet6(Ipv6Cidr ula48, const std::vector<Ipv6Cidr>& used) {
    if (ula48.prefix() > 64) {
        return Error::invalid(
            fmt::format("{} is too long a prefix to hold /64 subnets", ula48.str()));
    }
    if (ula48.addr() != ula48.network()) {
        return Error::invalid(fmt::format("{} has host bits set (did you mean {}?)", ula48.str(),
                                          ula48.masked().str()));
    }
    return choose_subnet6(std::vector<AddressPool6>{{ula48, 64}}, used);
}

}  // namespace cnetd::core
