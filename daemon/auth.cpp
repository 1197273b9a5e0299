#include "daemon/auth.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace cnetd::daemon {
namespace {

// getpwuid_r / getgrnam_r want a caller buffer; grow it on ERANGE.
template <class Fn>
bool with_buffer(Fn&& fn) {
    std::vector<char> buf(1024);
    for (int i = 0; i < 8; ++i) {
        int rc = fn(buf.data(), buf.size());
        if (rc != ERANGE) return rc == 0;
        buf.resize(buf.size() * 4);
    }
    return false;
}

std::string describe_group(const GroupRef& g) {
    if (!g.gid) return fmt::format("group {} (which does not exist on this host)", g.spec);
    bool numeric = !g.spec.empty() && std::all_of(g.spec.begin(), g.spec.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) return fmt::format("group {}", *g.gid);
    return fmt::format("group {} (gid {})", g.spec, *g.gid);
}

// Membership the kernel's credentials prove (primary gid, SO_PEERGROUPS).
bool creds_in(const PeerCred& peer, const GroupRef& g) {
    if (!g.gid) return false;
    if (peer.gid == *g.gid) return true;
    return std::find(peer.groups.begin(), peer.groups.end(), *g.gid) != peer.groups.end();
}

bool peer_in(const PeerCred& peer, const GroupRef& g, const NssUser& user) {
    if (creds_in(peer, g)) return true;
    return g.gid && std::find(user.groups.begin(), user.groups.end(), *g.gid) != user.groups.end();
}

}  // namespace

Result<GroupRef> resolve_group(std::string_view key, std::string_view spec, bool missing_ok) {
    GroupRef ref{std::string(spec), std::nullopt};
    if (spec.empty()) return ref;
    if (std::all_of(spec.begin(), spec.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        unsigned long v = 0;
        auto [end, ec] = std::from_chars(spec.data(), spec.data() + spec.size(), v);
        if (ec != std::errc() || end != spec.data() + spec.size() || v >= 0xffffffffUL)
            return Error::invalid(fmt::format("{}: \"{}\" is not a valid gid", key, spec));
        ref.gid = static_cast<gid_t>(v);
        return ref;
    }
    int err = 0;
    bool found = with_buffer([&](char* b, size_t n) {
        group gr{}, *res = nullptr;
        std::string name(spec);
        int rc = ::getgrnam_r(name.c_str(), &gr, b, n, &res);
        if (rc == 0 && res) ref.gid = res->gr_gid;
        err = rc;
        return rc;
    });
    if (found && ref.gid) return ref;
    if (missing_ok && (err == 0 || err == ENOENT)) return ref;
    if (err != 0 && err != ENOENT)
        return Error::sys(err, fmt::format("{}: look up group \"{}\"", key, spec));
    return Error::invalid(fmt::format("{}: group \"{}\" does not exist", key, spec));
}

Result<PeerCred> peer_of(int fd) {
    ucred uc{};
    socklen_t len = sizeof uc;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0)
        return Error::sys(errno, "getsockopt SO_PEERCRED");
    PeerCred p;
    p.pid = uc.pid;
    p.uid = uc.uid;
    p.gid = uc.gid;
#ifdef SO_PEERGROUPS
    std::vector<gid_t> groups(64);
    for (int i = 0; i < 4; ++i) {
        socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
            groups.resize(glen / sizeof(gid_t));
            p.groups = std::move(groups);
            break;
        }
        if (errno != ERANGE) break;  // old kernel: fall back to getgrouplist
        groups.resize(glen / sizeof(gid_t) + 16);
    }
#endif
    return p;
}

const char* to_string(Access a) noexcept {
    switch (a) {
        case Access::None:
            return "none";
        case Access::Read:
            return "read";
        case Access::Write:
            return "write";
    }
    return "none";
}

NssUser lookup_user(uid_t uid) {
    NssUser u;
    with_buffer([&](char* b, size_t n) {
        passwd pw{}, *res = nullptr;
        int rc = ::getpwuid_r(uid, &pw, b, n, &res);
        if (rc != 0 || !res) return rc == ERANGE ? ERANGE : 0;
        u.found = true;
        u.name = res->pw_name;
        int ngroups = 64;
        std::vector<gid_t> groups(static_cast<size_t>(ngroups));
        for (int i = 0; i < 8; ++i) {
            int count = ngroups;
            if (::getgrouplist(res->pw_name, res->pw_gid, groups.data(), &count) >= 0) {
                groups.resize(static_cast<size_t>(count));
                u.groups = std::move(groups);
                break;
            }
            ngroups = count > ngroups ? count : ngroups * 2;  // count holds the size needed
            groups.resize(static_cast<size_t>(ngroups));
        }
        if (u.groups.empty()) u.groups.push_back(res->pw_gid);
        return 0;
    });
    return u;
}

bool user_in_group(uid_t uid, gid_t gid) {
    NssUser u = lookup_user(uid);
    return std::find(u.groups.begin(), u.groups.end(), gid) != u.groups.end();
}

std::optional<Access> quick_access(const PeerCred& peer, const AuthPolicy& policy) {
    if (peer.uid == 0 || peer.uid == policy.owner_uid) return Access::Write;
    if (creds_in(peer, policy.write_group)) return Access::Write;
    return std::nullopt;
}

Access access_of(const PeerCred& peer, const AuthPolicy& policy, const NssUser& user) {
    if (auto quick = quick_access(peer, policy)) return *quick;
    if (peer_in(peer, policy.write_group, user)) return Access::Write;
    if (peer_in(peer, policy.read_group, user)) return Access::Read;
    return Access::None;
}

Access access_of(const PeerCred& peer, const AuthPolicy& policy) {
    if (auto quick = quick_access(peer, policy)) return *quick;
    return access_of(peer, policy, lookup_user(peer.uid));
}

bool allows(Access have, Access need) noexcept {
    if (need == Access::Write) return have == Access::Write;
    if (need == Access::Read) return have != Access::None;
    return true;
}

Access required_for(std::string_view method) noexcept {
    return method == "GET" || method == "HEAD" ? Access::Read : Access::Write;
}

std::string denial_message(const PeerCred& peer, const AuthPolicy& policy, std::string_view method,
                           std::string_view target) {
    return denial_message(peer, policy, method, target, lookup_user(peer.uid));
}

std::string denial_message(const PeerCred& peer, const AuthPolicy& policy, std::string_view method,
                           std::string_view target, const NssUser& user) {
    std::string who = fmt::format("uid {}", peer.uid);
    if (!user.name.empty()) who += fmt::format(" ({})", user.name);
    std::string need = "root";
    if (policy.owner_uid != 0) need += fmt::format(", uid {}", policy.owner_uid);
    // A peer refused at connect time (no method) lacks even read access.
    bool write = !method.empty() && required_for(method) == Access::Write;
    std::vector<std::string> groups;
    if (!policy.write_group.spec.empty()) groups.push_back(describe_group(policy.write_group));
    if (!write && !policy.read_group.spec.empty())
        groups.push_back("read-only " + describe_group(policy.read_group));
    if (!groups.empty()) {
        need += " or membership in ";
        for (size_t i = 0; i < groups.size(); ++i) need += (i ? " or " : "") + groups[i];
    }
    std::string hint;
    if (write && peer_in(peer, policy.read_group, user))
        hint = fmt::format(" ({} only allows reads)", describe_group(policy.read_group));
    std::string what = method.empty() ? std::string("use the control socket")
                                      : fmt::format("{} {}", method, target);
    return fmt::format("permission denied: {} may not {}: {} requires {}{}", who, what,
                       write ? "changing state" : "reading state", need, hint);
}

// ---------------------------------------------------------------------------------------------

AccessResolver::AccessResolver(AuthPolicy policy, std::chrono::milliseconds ttl, Lookup lookup,
                               unsigned threads)
    : policy_(std::move(policy)), ttl_(ttl), lookup_(lookup ? std::move(lookup) : lookup_user) {
    for (unsigned i = 0; i < std::max(threads, 1u); ++i) threads_.emplace_back([this] { loop(); });
}

AccessResolver::~AccessResolver() {
    stop();
}

void AccessResolver::stop() {
    std::deque<Request> dropped;
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
        dropped.swap(queue_);
    }
    cv_.notify_all();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    // `dropped` goes out of scope here, on the caller's thread: the callbacks are destroyed
    // uncalled.
}

uint64_t AccessResolver::lookups() const {
    std::lock_guard lk(mu_);
    return lookups_;
}

void AccessResolver::resolve(PeerCred peer, std::string method, std::string target, bool fresh,
                             Done done) {
    const auto now = Clock::now();
    Request r{std::move(peer), std::move(method), std::move(target), fresh ? now : now - ttl_,
              std::move(done)};
    {
        std::lock_guard lk(mu_);
        if (stopping_) return;
        queue_.push_back(std::move(r));
    }
    cv_.notify_one();
}

AccessResolver::Answer AccessResolver::answer(const Request& r, const NssUser& user) const {
    Answer a;
    a.access = access_of(r.peer, policy_, user);
    const bool refused =
        r.method.empty() ? a.access == Access::None : !allows(a.access, required_for(r.method));
    if (refused) a.denial = denial_message(r.peer, policy_, r.method, r.target, user);
    return a;
}

void AccessResolver::loop() {
    std::unique_lock lk(mu_);
    for (;;) {
        // The first request whose uid nobody is looking up now (that lookup will serve it).
        auto it = queue_.end();
        cv_.wait(lk, [&] {
            if (stopping_) return true;
            it = std::find_if(queue_.begin(), queue_.end(),
                              [&](const Request& q) { return !busy_.count(q.peer.uid); });
            return it != queue_.end();
        });
        if (stopping_) return;
        const uid_t uid = it->peer.uid;
        auto c = cache_.find(uid);
        if (c == cache_.end() || c->second.started < it->not_before) {
            busy_.insert(uid);
            const auto started = Clock::now();
            ++lookups_;
            lk.unlock();
            NssUser user = lookup_(uid);  // may block: no lock held
            lk.lock();
            busy_.erase(uid);
            if (cache_.size() > 4096) cache_.clear();  // bounded; entries are cheap to redo
            c = cache_.insert_or_assign(uid, Cached{std::move(user), started}).first;
            cv_.notify_all();  // other threads may wait for this uid
        }
        // Every queued request of this uid the entry is recent enough for (the queue may have
        // changed while unlocked).
        std::vector<Request> ready;
        for (auto q = queue_.begin(); q != queue_.end();) {
            if (q->peer.uid == uid && c->second.started >= q->not_before) {
                ready.push_back(std::move(*q));
                q = queue_.erase(q);
            } else {
                ++q;
            }
        }
        const NssUser user = c->second.user;
        lk.unlock();
        for (auto& r : ready) {
            try {
                r.done(answer(r, user));
            } catch (...) {
                // Only allocation failures: the connection then times out; the thread lives on.
            }
        }
        ready.clear();  // the callbacks die here, unlocked
        lk.lock();
    }
}

}  // namespace cnetd::daemon
