// Linux bridges (the docker0 of a network), in the socket's namespace.
//
// Precondition: the calling thread is in the same namespace as the socket (accept_ra is written
// through /proc/sys, which resolves in the calling thread's namespace).
// Errors: Kernel kind with errno text framed "create bridge <name>" etc.; Conflict when the name
// belongs to a link of another kind ("\"docker0\" exists and is a veth link, not a bridge").
#pragma once

#include <optional>
#include <string>

#include "base/error.hpp"
#include "base/net.hpp"
#include "netlink/socket.hpp"

namespace cnetd::netlink {

struct BridgeParams {
    std::string name;
    Ipv4Cidr address;  // the gateway address with the network's prefix
    unsigned mtu = 1500;
    // Dual stack: the IPv6 gateway address with the network's prefix. nullopt: IPv6 untouched.
    std::optional<Ipv6Cidr> address6 = std::nullopt;
    // Docker's inhibit_ipv4: no IPv4 address at all (`address` is ignored).
    bool no_ipv4_address = false;
    // The MAC of a bridge this call creates (nullopt: random, locally administered).
    std::optional<Mac> mac = std::nullopt;
};

// The RTM_NEWLINK (NLM_F_CREATE|NLM_F_EXCL) that creates a bridge with this name, MAC and MTU.
// Pure: no kernel involved (unit tests decode it).
Result<NlMsg> build_bridge_create(const std::string& name, const Mac& mac, unsigned mtu);

// Creates the bridge (random locally administered MAC, MTU, accept_ra=0) or adopts an existing
// bridge of that name (its MAC is kept; its MTU is set if different); then makes `address` its only
// IPv4 address with broadcast (an already-correct address is left alone, others are removed), or,
// with no_ipv4_address, removes every IPv4 address. With address6 it writes accept_ra=0,
// accept_dad=0, disable_ipv6=0 (in that order: the link-local address the kernel then creates
// skips DAD too) and makes address6 the only global IPv6 address, added with IFA_F_NODAD so it is
// never "tentative" (link-local fe80::/10 addresses are kept). Finally it sets the bridge up.
// Idempotent: re-running on a configured bridge changes nothing visible. Returns true if it created
// the bridge. If a later step fails, a bridge created by this call is deleted again; an adopted one
// is left as it is.
Result<bool> ensure_bridge(RouteSocket& s, const BridgeParams& p);

}  // namespace cnetd::netlink
