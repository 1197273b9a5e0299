// Address announcements from a freshly attached interface: gratuitous ARP requests (IPv4) and
// unsolicited neighbour advertisements (IPv6), so neighbours that cached the MAC of a previous
// owner of a reused address switch to the new one at once (Docker does the same; addresses are
// reused immediately, lowest free first).
//
// Frames are written whole (Ethernet header included) to an AF_PACKET socket bound to the
// interface: no route, neighbour entry or source-address selection is involved, so it works the
// moment the link is up. The socket is created in the calling thread's network namespace (callers
// hold a ScopedNetns) and receives nothing (protocol 0).
// Errors: Kernel kind, "announce <addr> on <ifname>[ in <netns>]: <strerror>" (ENETDOWN when the
// link is down).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/net.hpp"

namespace cnetd::netlink {

// Pure: the 60-byte Ethernet frame of a gratuitous ARP request: broadcast destination, source and
// sender hardware address `mac`, sender = target protocol address `ip`, target hardware address 0.
std::vector<uint8_t> build_garp(const Mac& mac, Ipv4 ip);

// Pure: the Ethernet frame of an unsolicited neighbour advertisement (RFC 4861 4.4, 7.2.6) for
// `ip`: to ff02::1 (33:33:00:00:00:01), source address `ip`, hop limit 255, flags Override only
// (not Router, not Solicited), option Target Link-Layer Address = `mac`, checksum filled in.
std::vector<uint8_t> build_unsolicited_na(const Mac& mac, const Ipv6& ip);

// How many copies of each frame announce() sends (Docker's default advertise_addr_nmsgs).
inline constexpr int kAnnounceCount = 3;

// Sends kAnnounceCount gratuitous ARPs for `v4` and kAnnounceCount NAs for `v6` (each optional) out
// of `ifname` in the calling thread's namespace. `where` (" in <netns>" or "") labels errors.
//
// Spacing: the copies go back to back, with no sleep. The call runs on the daemon's single kernel
// worker in the middle of an attach, whose whole budget is a few milliseconds; Docker spaces its
// copies 1 s apart from a background goroutine, which we have no equivalent of. On a veth the
// frames are handed to the peer synchronously, so a copy is lost only if the receiving backlog is
// full at that instant; the repeats cover a single drop. Measured cost: see the kernel tests.
Result<void> announce(const std::string& ifname, const Mac& mac, std::optional<Ipv4> v4,
                      std::optional<Ipv6> v6, const std::string& where);

}  // namespace cnetd::netlink
