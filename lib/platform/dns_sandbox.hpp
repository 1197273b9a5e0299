// The embedded resolver's kernel side inside one container namespace (core::Netns's
// open_dns_listener / set_dns_nat / remove_dns_nat; docs/dns.md), for LinuxKernel's Netns.
//
// Each call enters the namespace `ns_fd` on the calling thread (setns) for the syscalls that must
// be made there (sockets, the nftables socket, ctnetlink) and leaves it before returning.
// Threading: the kernel worker, like every LinuxKernel call. Errors name the step and `label`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/error.hpp"
#include "core/kernel.hpp"

namespace cnetd::netlink {
class RouteSocket;
}

namespace cnetd::platform {

// "lo" up through `sock` (a route socket inside the namespace), then a UDP socket and a listening
// TCP socket (backlog 128) on 127.0.0.11 with kernel-chosen ports, SOCK_CLOEXEC|SOCK_NONBLOCK and
// IP_FREEBIND, made inside `ns_fd`.
Result<std::unique_ptr<core::DnsListener>> open_dns_listener(netlink::RouteSocket& sock, int ns_fd,
                                                             const std::string& label);
// Table "ip cnetd-dns" replaced in one batch (firewall/dns_nat.hpp), then the conntrack entries
// whose original destination is 127.0.0.11 (udp, tcp) deleted, so the next query follows the new
// ports at once. A conntrack failure is logged, not returned (the DNAT is in place).
Result<void> set_dns_nat(int ns_fd, const std::string& label, uint16_t udp_port, uint16_t tcp_port);
// Deletes the table; absent is success.
Result<void> remove_dns_nat(int ns_fd, const std::string& label);

}  // namespace cnetd::platform
