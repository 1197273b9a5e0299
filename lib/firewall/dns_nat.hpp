// The embedded resolver's DNAT inside a container's network namespace (docs/dns.md): table
// `ip cnetd-dns`, as Docker's DOCKER_OUTPUT chain does it, so 127.0.0.11:53 reaches the daemon's
// sockets on kernel-chosen ports and a container program may bind its own 0.0.0.0:53:
//
//   table ip cnetd-dns {
//     chain output {
//       type nat hook output priority -100; policy accept;
//       ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:<udp port>
//       ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:<tcp port>
//     }
//   }
//
// Conntrack un-NATs the replies (they come from 127.0.0.11:53). Pure builders: the caller commits
// the batch on an nft::Socket opened INSIDE the namespace (platform::LinuxKernel's Netns).
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "base/net.hpp"
#include "nft/batch.hpp"

namespace cnetd::firewall {

inline constexpr const char* kDnsTable = "cnetd-dns";
inline constexpr const char* kDnsChain = "output";
inline constexpr Ipv4 kDnsAddress(0x7f00000b);  // 127.0.0.11

// One transaction: the table replaced whole (add + delete + create: no error whether it existed
// or not, and no moment without the rules), the chain and both rules.
nft::Batch build_dns_nat(uint16_t udp_port, uint16_t tcp_port);
// One transaction deleting the table; an absent table is not an error (add + delete).
nft::Batch build_dns_nat_removal();
// The rule text of `proto` ("udp"/"tcp") to `port`, as nft prints it.
std::string dns_nat_rule_text(const char* proto, uint16_t port);

}  // namespace cnetd::firewall
