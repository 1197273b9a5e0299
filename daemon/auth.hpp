// Who may use the control socket: the peer's credentials (SO_PEERCRED, SO_PEERGROUPS) checked
// against two groups from the config.
//
//   write (every method): root, the daemon's own uid, members of `group` (default "cnetd", Docker's
//                         daemon.json key for the socket's group)
//   read  (GET, HEAD):    the above, and members of `read-group` (default: none)
//   anyone else:          403 with a message naming the uid and what is required
//
// Membership of a group G: the peer's primary gid is G (SO_PEERCRED), or G is one of the peer
// process's supplementary groups at connect time (SO_PEERGROUPS), or G is in the group list of the
// peer uid's passwd entry (getgrouplist: /etc/group or NSS). The credentials are the ones the
// kernel recorded at connect(), so a process cannot pass a connection made by a more privileged
// one off as its own after dropping privileges, and cannot forge them.
//
// Threading: pure functions except peer_of() and resolve_group()/user_in_group(), which call NSS
// (thread-safe _r variants; may block on a slow NSS backend such as LDAP).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"

namespace cnetd::daemon {

// A group from the config: a name ("cnetd") or a numeric gid ("4242"), resolved once at start.
struct GroupRef {
    std::string spec;          // as configured; "" = no group
    std::optional<gid_t> gid;  // nullopt: not configured, or (default group only) missing
};

// Resolves a config value: "" → {"", nullopt}; digits → that gid (need not exist in /etc/group);
// a name → getgrnam_r. A missing name is an error naming the key and the name unless
// `missing_ok` (the default group, as Docker does for "docker"): then gid stays nullopt.
Result<GroupRef> resolve_group(std::string_view key, std::string_view spec, bool missing_ok);

struct AuthPolicy {
    GroupRef write_group;  // config `group`
    GroupRef read_group;   // config `read-group`
    // The daemon's own effective uid: always allowed (it owns the socket; tests run unprivileged).
    uid_t owner_uid = 0;
};

struct PeerCred {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // SO_PEERGROUPS (empty when the kernel does not support it)
};

// SO_PEERCRED (+ SO_PEERGROUPS) of a connected unix socket. Errors name the call.
Result<PeerCred> peer_of(int fd);

enum class Access { None, Read, Write };
const char* to_string(Access a) noexcept;

// True when the uid, through its primary gid or getgrouplist() of its passwd entry, is in `gid`.
bool user_in_group(uid_t uid, gid_t gid);
// The peer's access under `policy` (looks the uid up in NSS only when the cheap checks fail).
Access access_of(const PeerCred& peer, const AuthPolicy& policy);
// What `method` needs: GET and HEAD read; everything else writes.
Access required_for(std::string_view method) noexcept;
// "uid 65534 (nobody) may not POST /v1/networks: changing state requires root or membership
// in group cnetd (gid 998)".
std::string denial_message(const PeerCred& peer, const AuthPolicy& policy, std::string_view method,
                           std::string_view target);

}  // namespace cnetd::daemon
