// Coexistence checks: what on this host would silently defeat cnetd's firewall, with the fix.
//
// cnetd's table can only accept what no other table drops: nftables evaluates every base chain on
// a hook, and a drop anywhere wins. The classic blocker is iptables-nft's (or Docker's, or
// firewalld's) FORWARD chain with policy drop; another is net.ipv4.ip_forward=0 while the config
// says `ip-forward: false` (cnetd then leaves forwarding alone).
// Reads the kernel only (an nftables chain dump and /proc/sys of the calling thread's netns); never
// changes anything. Threading: call from the kernel worker (netns of the daemon).
#pragma once

#include <string>
#include <vector>

#include "base/error.hpp"

namespace cnetd::firewall {

struct CoexistenceInput {
    bool ip_forward_configured = true;  // config ip-forward
    std::vector<std::string> bridges;   // our bridges, to name them in the suggested fix
    std::string own_table = "cnetd";    // our `inet` table, skipped
};

// One human-readable warning per problem found, each naming the object and the fix. An empty
// list means nothing in the way. Errors only when the kernel cannot be asked at all.
Result<std::vector<std::string>> check_coexistence(const CoexistenceInput& in);

}  // namespace cnetd::firewall
