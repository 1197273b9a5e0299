#include "firewall/coexist.hpp"

#include <netinet/in.h>  // before any <linux/*.h>: it keeps linux/in.h's duplicates out
#include <linux/netfilter.h>

#include <string>

#include <fmt/format.h>

#include "base/sysctl.hpp"
#include "nft/dump.hpp"
#include "nft/socket.hpp"

namespace cnetd::firewall {
namespace {

// Families whose forward hook sees routed IPv4 container traffic. ip6 cannot drop IPv4, and the
// bridge family's forward hook is the bridge's own (switched frames), not routing; arp's hook 2
// is NF_ARP_FORWARD, a different thing altogether.
bool sees_ipv4_forward(int family) {
    return family == NFPROTO_IPV4 || family == NFPROTO_INET;
}

std::string join_bridges(const std::vector<std::string>& bridges) {
    std::string out;
    for (const auto& b : bridges) out += (out.empty() ? "" : ", ") + b;
    return out;
}

// The fix to suggest for one foreign forward chain, per bridge. iptables-nft's `ip filter
// FORWARD` is best fixed with iptables itself (what the user manages it with); anything else is
// native nftables, fixed with `nft insert rule`.
std::string suggested_fix(const std::string& family, const nft::ChainSpec& c,
                          const std::vector<std::string>& bridges) {
    const bool iptables = family == "ip" && c.table == "filter" && c.name == "FORWARD";
    std::string out;
    for (const auto& br : bridges) {
        if (!out.empty()) out += "; ";
        if (iptables) {
            out += fmt::format(
                "iptables -I FORWARD -i {0} -j ACCEPT && iptables -I FORWARD -o {0} -m conntrack "
                "--ctstate RELATED,ESTABLISHED -j ACCEPT",
                br);
        } else {
            out += fmt::format(
                "nft insert rule {0} {1} {2} iifname \"{3}\" accept && nft insert rule {0} {1} {2} "
                "oifname \"{3}\" ct state related,established accept",
                family, c.table, c.name, br);
        }
    }
    return out;
}

}  // namespace

Result<std::vector<std::string>> check_coexistence(const CoexistenceInput& in) {
    std::vector<std::string> warnings;

    CNETD_TRY_ASSIGN(auto sock, nft::Socket::open().context("check firewall coexistence"));
    CNETD_TRY_ASSIGN(auto chains, nft::dump_all_chains(sock).context("check firewall coexistence"));

    // Name the bridges in the fix; with none known yet, the default bridge is the likely one.
    const std::vector<std::string> bridges =
        in.bridges.empty() ? std::vector<std::string>{"docker0"} : in.bridges;
    for (const auto& c : chains) {
        if (!sees_ipv4_forward(c.family) || !c.base || c.base->hooknum != NF_INET_FORWARD) continue;
        if (c.family == NFPROTO_INET && c.table == in.own_table) continue;
        // An explicit drop policy only: a drop *rule* in an accept-policy chain is a deliberate
        // decision of whoever wrote it, and guessing at rule semantics would be noise.
        if (c.base->policy != NF_DROP) continue;
        const std::string fam = nft::family_name(c.family);
        warnings.push_back(fmt::format(
            "table {} {} chain {} (hook forward, policy drop) drops container traffic that cnetd "
            "accepts: allow the bridges there ({}), e.g. {}",
            fam, c.table, c.name, join_bridges(bridges), suggested_fix(fam, c, bridges)));
    }

    // /proc/sys/net is per network namespace: this reads the calling thread's.
    if (!in.ip_forward_configured) {
        CNETD_TRY_ASSIGN(const std::string v, sysctl::read("net/ipv4/ip_forward"));
        if (v == "0")
            warnings.push_back(
                "net.ipv4.ip_forward is 0 and ip-forward is false in the config: containers "
                "cannot reach other networks or the outside (set ip-forward: true)");
    }
    return warnings;
}

}  // namespace cnetd::firewall
