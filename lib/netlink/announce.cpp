#include "netlink/announce.hpp"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/fd.hpp"

namespace cnetd::netlink {

namespace {

constexpr uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
// ff02::1, all nodes, and its multicast MAC 33:33 + the low 32 bits.
constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
constexpr uint8_t kAllNodesMac[6] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};

void put16(std::vector<uint8_t>& f, uint16_t v) {
    f.push_back(static_cast<uint8_t>(v >> 8));
    f.push_back(static_cast<uint8_t>(v & 0xff));
}
// resize + memcpy rather than insert(end, p, p + n): GCC 12 at -O3 warns about the latter after a
// reserve() (-Wstringop-overflow, a false positive).
void put(std::vector<uint8_t>& f, const uint8_t* p, size_t n) {
    const size_t at = f.size();
    f.resize(at + n);
    std::memcpy(f.data() + at, p, n);
}

void ethernet(std::vector<uint8_t>& f, const uint8_t* dst, const Mac& src, uint16_t type) {
    put(f, dst, 6);
    put(f, src.bytes().data(), 6);
    put16(f, type);
}

// RFC 4443 2.3: one's complement sum over the IPv6 pseudo-header and the ICMPv6 message.
uint16_t icmp6_checksum(const uint8_t* src, const uint8_t* dst, const uint8_t* msg, size_t len) {
    uint32_t sum = 0;
    auto add = [&sum](const uint8_t* p, size_t n) {
        for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
        if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
    };
    add(src, 16);
    add(dst, 16);
    sum += static_cast<uint32_t>(len);  // upper-layer packet length (fits in 16 bits here)
    sum += IPPROTO_ICMPV6;
    add(msg, len);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

}  // namespace

std::vector<uint8_t> build_garp(const Mac& mac, Ipv4 ip) {
    std::vector<uint8_t> f;
    f.reserve(60);
    ethernet(f, kBroadcast, mac, ETH_P_ARP);
    put16(f, 1);         // hardware type: Ethernet
    put16(f, ETH_P_IP);  // protocol type
    f.push_back(6);      // hardware address length
    f.push_back(4);      // protocol address length
    put16(f, 1);         // ARP request (what Linux itself and Docker send as gratuitous ARP)
    const uint32_t be = ip.network_order();
    const auto* ipb = reinterpret_cast<const uint8_t*>(&be);
    put(f, mac.bytes().data(), 6);  // sender hardware address
    put(f, ipb, 4);                 // sender protocol address
    f.insert(f.end(), 6, 0);        // target hardware address: unknown
    put(f, ipb, 4);                 // target protocol address = sender: gratuitous
    f.resize(60, 0);                // Ethernet minimum frame (without FCS)
    return f;
}

std::vector<uint8_t> build_unsolicited_na(const Mac& mac, const Ipv6& ip) {
    // ICMPv6 NA: type, code, checksum, flags + reserved, target, option TLLA (type 2, 1 x 8 bytes).
    std::vector<uint8_t> icmp;
    icmp.reserve(32);
    icmp.push_back(136);
    icmp.push_back(0);
    put16(icmp, 0);        // checksum, filled in below
    icmp.push_back(0x20);  // R=0 S=0 O=1: unsolicited, replaces cached link-layer addresses
    icmp.insert(icmp.end(), 3, 0);
    put(icmp, ip.bytes().data(), 16);
    icmp.push_back(2);  // Target Link-Layer Address
    icmp.push_back(1);  // length in units of 8 bytes
    put(icmp, mac.bytes().data(), 6);
    const uint16_t sum = icmp6_checksum(ip.bytes().data(), kAllNodes, icmp.data(), icmp.size());
    icmp[2] = static_cast<uint8_t>(sum >> 8);
    icmp[3] = static_cast<uint8_t>(sum & 0xff);

    std::vector<uint8_t> f;
    f.reserve(14 + 40 + icmp.size());
    ethernet(f, kAllNodesMac, mac, ETH_P_IPV6);
    f.push_back(0x60);  // version 6, traffic class 0, flow label 0
    f.insert(f.end(), 3, 0);
    put16(f, static_cast<uint16_t>(icmp.size()));
    f.push_back(IPPROTO_ICMPV6);
    f.push_back(255);  // hop limit: receivers drop neighbour discovery with anything else
    put(f, ip.bytes().data(), 16);
    put(f, kAllNodes, 16);
    f.insert(f.end(), icmp.begin(), icmp.end());
    return f;
}

Result<void> announce(const std::string& ifname, const Mac& mac, std::optional<Ipv4> v4,
                      std::optional<Ipv6> v6, const std::string& where) {
    const std::string what =
        fmt::format("announce {}{}{} on {}{}", v4 ? v4->str() : "", v4 && v6 ? " and " : "",
                    v6 ? v6->str() : "", ifname, where);
    if (!v4 && !v6) return ok();
    CNETD_TRY(validate_ifname(ifname).context(what));
    const unsigned ifindex = ::if_nametoindex(ifname.c_str());
    if (ifindex == 0) return Error::sys(errno, what);
    // Protocol 0: the socket can send but is never handed a received frame.
    UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return Error::sys(errno, fmt::format("{}: packet socket", what));
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = static_cast<int>(ifindex);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0)
        return Error::sys(errno, fmt::format("{}: bind packet socket", what));

    std::vector<std::vector<uint8_t>> frames;
    if (v4) frames.push_back(build_garp(mac, *v4));
    if (v6) frames.push_back(build_unsolicited_na(mac, *v6));
    // Rounds (ARP, NA), (ARP, NA), ...: a burst that hits a full queue loses one of each kind at
    // worst, not all copies of one.
    for (int round = 0; round < kAnnounceCount; ++round) {
        for (const auto& f : frames) {
            ssize_t n = ::send(fd.get(), f.data(), f.size(), 0);
            if (n < 0) return Error::sys(errno, what);
            if (static_cast<size_t>(n) != f.size()) return Error::sys(EIO, what);
        }
    }
    return ok();
}

}  // namespace cnetd::netlink
