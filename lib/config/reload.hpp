// Config reload (SIGHUP): which changed keys cnetd applies at once and which wait for a restart.
// Pure: compares two parsed Configs; the daemon applies the live part (atomically, after the new
// file parsed without error) and reports the rest in its log and in `netctl info` as pending.
//
// Per key (docker-bridge.md: Docker needs a restart for all of them; cnetd does better where it
// is safe, i.e. where nothing that already runs has to be torn down or renumbered):
//   live     log-level              the logger's threshold.
//            icc, ip-masq           the default network's firewall intent, re-applied in one
//                                   nftables transaction (set/map elements; no window).
//            mtu                    for networks and endpoints created from now on; existing
//                                   interfaces keep theirs (changing a running veth's MTU breaks
//                                   in-flight connections' path MTU).
//            ip                     default host address for port mappings created from now on;
//                                   existing mappings keep their bound sockets and DNAT elements.
//            ip-forward             true writes net.ipv4.ip_forward=1 at once; false only stops
//                                   cnetd writing it (forwarding is never turned off under
//                                   running containers), as at start.
//            default-address-pools  only consulted when a network is created without a subnet;
//                                   existing networks keep their subnets.
//   restart  bridge, bip            would re-create or re-address the default bridge and renumber
//                                   the containers on it (start() refuses that while it has any).
//            fixed-cidr             the default network's IPAM pool is rebuilt from persisted
//                                   allocations at start; live addresses may fall outside it.
//            ipv6, fixed-cidr-v6    adding/removing IPv6 on the bridge and on every container
//                                   interface (addresses, routes, disable_ipv6) is start()'s
//                                   reconciliation, not a reload.
//            firewall (iptables)    switching owner creates or deletes the whole `inet cnetd`
//                                   table; start() does that in one transaction.
//            socket                 clients and the listener are bound to the path.
//            state-dir, netns-dir   the persisted state and the running containers' netns files
//                                   live in the old directories.
//            group, read-group      the socket file's group and mode are set when it is created.
//            max-connections        the control server's limit is fixed when it starts listening.
//            cluster                the cluster agent (its etcd lease and watch, the node's
//                                   blocks and VXLAN devices) is made from it at start.
// Threading: none (values in, values out).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace cnetd::config {

struct KeyChange {
    std::string key;          // the config key, e.g. "bip"
    std::string old_value;    // as config text: "172.17.0.1/16", "true", "(unset)"; long values cut
    std::string new_value;    //   to ~160 characters with "..."
    std::string note;         // how it applies (live) or why it waits for a restart
    std::string str() const;  // "bip: 172.17.0.1/16 -> 10.9.0.1/24"
};

struct ReloadPlan {
    std::vector<KeyChange> live;     // applied by the reload, in key order of the table above
    std::vector<KeyChange> restart;  // pending until the daemon restarts
    bool empty() const noexcept { return live.empty() && restart.empty(); }
    // One line for the log, e.g. "applied: icc: true -> false; pending restart: bip: ... (why)"
    // or "no changes".
    std::string summary() const;
};

// Changed keys between the running config and the newly loaded one. Unchanged keys are absent.
ReloadPlan diff(const Config& old, const Config& now);

// The config to run with after the reload: `now`'s values for live keys, `running`'s for keys
// that need a restart (so pending changes stay pending and a later diff still shows them), and
// `now`'s warnings. diff(apply_live(r, n), n) has no live changes and the same restart changes.
Config apply_live(const Config& running, const Config& now);

// True for the keys reloadable live (the first group above); false for restart keys and unknown
// names.
bool is_live_key(std::string_view key);

}  // namespace cnetd::config
