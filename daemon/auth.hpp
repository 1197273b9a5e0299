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
// Threading: pure functions except peer_of() and resolve_group()/user_in_group()/lookup_user()/
// access_of(peer, policy)/denial_message(), which call NSS (thread-safe _r variants; may block on
// a slow NSS backend such as LDAP or sssd). The server never calls those on its io thread: it
// decides with quick_access() when the kernel's credentials suffice and hands the rest to an
// AccessResolver, whose threads do the NSS part.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
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

// What NSS says about a uid (getpwuid_r, then getgrouplist of its passwd entry). Blocks as long
// as NSS does.
struct NssUser {
    bool found = false;         // the uid has a passwd entry
    std::string name;           // its name ("" if none)
    std::vector<gid_t> groups;  // its primary gid and every group listing it
};
NssUser lookup_user(uid_t uid);

// True when the uid, through its primary gid or getgrouplist() of its passwd entry, is in `gid`.
bool user_in_group(uid_t uid, gid_t gid);
// The access the kernel's credentials alone prove, without NSS: Write for root, the daemon's own
// uid and members of `group` by primary or supplementary gid; nullopt when NSS must decide (the
// peer may still be a writer or reader through its passwd entry). Never blocks.
std::optional<Access> quick_access(const PeerCred& peer, const AuthPolicy& policy);
// The peer's access under `policy`, given what NSS says about its uid. Pure.
Access access_of(const PeerCred& peer, const AuthPolicy& policy, const NssUser& user);
// The same, looking the uid up in NSS only when the cheap checks fail.
Access access_of(const PeerCred& peer, const AuthPolicy& policy);
// What `method` needs: GET and HEAD read; everything else writes.
Access required_for(std::string_view method) noexcept;
// Whether `have` covers `need`.
bool allows(Access have, Access need) noexcept;
// "uid 65534 (nobody) may not POST /v1/networks: changing state requires root or membership
// in group cnetd (gid 998)". With an empty `method`, for a peer refused at connect time:
// "uid 65534 (nobody) may not use the control socket: reading state requires root or ...".
std::string denial_message(const PeerCred& peer, const AuthPolicy& policy, std::string_view method,
                           std::string_view target, const NssUser& user);
// The same, looking the uid up in NSS.
std::string denial_message(const PeerCred& peer, const AuthPolicy& policy, std::string_view method,
                           std::string_view target);

// Decides access off the caller's thread: the NSS lookups run on the resolver's own threads, so a
// slow LDAP/sssd never stalls the control server's io thread. Lookups are cached per uid for
// `ttl` (a flood of connections from one uid costs one lookup per ttl); concurrent requests for
// one uid share one lookup. A `fresh` request (the re-check of a mutation) only takes a lookup
// that started after it was made.
// Threading: resolve() and stop() from any thread; `done` runs on a resolver thread, exactly once
// unless stop() drops the request first (the callback is then destroyed uncalled). stop() (and the
// destructor) waits for lookups in progress and joins the threads; it must not be called from
// `done`.
class AccessResolver {
public:
    struct Answer {
        Access access = Access::None;
        std::string denial;  // the 403 message when `access` does not cover the request
    };
    using Done = std::function<void(Answer)>;
    using Lookup = std::function<NssUser(uid_t)>;

    // `lookup`: lookup_user when empty (tests pass a slow or scripted one).
    AccessResolver(AuthPolicy policy, std::chrono::milliseconds ttl, Lookup lookup = {},
                   unsigned threads = 2);
    ~AccessResolver();
    AccessResolver(const AccessResolver&) = delete;
    AccessResolver& operator=(const AccessResolver&) = delete;

    // `method` "" asks for the connection (denial set when the peer has no access at all);
    // otherwise for that request (denial set when the access does not cover `method`).
    // After stop(), `done` is destroyed uncalled.
    void resolve(PeerCred peer, std::string method, std::string target, bool fresh, Done done);
    void stop();
    uint64_t lookups() const;  // NSS lookups made so far

private:
    using Clock = std::chrono::steady_clock;
    struct Request {
        PeerCred peer;
        std::string method, target;
        Clock::time_point not_before;  // a lookup that started before this does not do
        Done done;
    };
    struct Cached {
        NssUser user;
        Clock::time_point started;
    };
    void loop();
    Answer answer(const Request& r, const NssUser& user) const;

    const AuthPolicy policy_;
    const std::chrono::milliseconds ttl_;
    const Lookup lookup_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Request> queue_;
    std::map<uid_t, Cached> cache_;
    std::set<uid_t> busy_;  // uids being looked up now
    bool stopping_ = false;
    uint64_t lookups_ = 0;
    std::vector<std::thread> threads_;
};

}  // namespace cnetd::daemon
