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

std::string user_name(uid_t uid) {
    std::string name;
    with_buffer([&](char* b, size_t n) {
        passwd pw{}, *res = nullptr;
        int rc = ::getpwuid_r(uid, &pw, b, n, &res);
        if (rc == 0 && res) name = res->pw_name;
        return rc;
    });
    return name;
}

std::string describe_group(const GroupRef& g) {
    if (!g.gid) return fmt::format("group {} (which does not exist on this host)", g.spec);
    bool numeric = !g.spec.empty() && std::all_of(g.spec.begin(), g.spec.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) return fmt::format("group {}", *g.gid);
    return fmt::format("group {} (gid {})", g.spec, *g.gid);
}

bool peer_in(const PeerCred& peer, const GroupRef& g) {
    if (!g.gid) return false;
    if (peer.gid == *g.gid) return true;
    if (std::find(peer.groups.begin(), peer.groups.end(), *g.gid) != peer.groups.end()) return true;
    return user_in_group(peer.uid, *g.gid);
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

bool user_in_group(uid_t uid, gid_t gid) {
    bool member = false;
    with_buffer([&](char* b, size_t n) {
        passwd pw{}, *res = nullptr;
        int rc = ::getpwuid_r(uid, &pw, b, n, &res);
        if (rc != 0 || !res) return rc == ERANGE ? ERANGE : 0;
        if (res->pw_gid == gid) {
            member = true;
            return 0;
        }
        int ngroups = 64;
        std::vector<gid_t> groups(static_cast<size_t>(ngroups));
        for (int i = 0; i < 8; ++i) {
            int count = ngroups;
            if (::getgrouplist(res->pw_name, res->pw_gid, groups.data(), &count) >= 0) {
                groups.resize(static_cast<size_t>(count));
                member = std::find(groups.begin(), groups.end(), gid) != groups.end();
                break;
            }
            ngroups = count > ngroups ? count : ngroups * 2;  // count holds the size needed
            groups.resize(static_cast<size_t>(ngroups));
        }
        return 0;
    });
    return member;
}

Access access_of(const PeerCred& peer, const AuthPolicy& policy) {
    if (peer.uid == 0 || peer.uid == policy.owner_uid) return Access::Write;
    if (peer_in(peer, policy.write_group)) return Access::Write;
    if (peer_in(peer, policy.read_group)) return Access::Read;
    return Access::None;
}

Access required_for(std::string_view method) noexcept {
    return method == "GET" || method == "HEAD" ? Access::Read : Access::Write;
}

std::string denial_message(const PeerCred& peer, const AuthPolicy& policy, std::string_view method,
                           std::string_view target) {
    std::string who = fmt::format("uid {}", peer.uid);
    if (auto name = user_name(peer.uid); !name.empty()) who += fmt::format(" ({})", name);
    std::string need = "root";
    if (policy.owner_uid != 0) need += fmt::format(", uid {}", policy.owner_uid);
    bool write = required_for(method) == Access::Write;
    std::vector<std::string> groups;
    if (!policy.write_group.spec.empty()) groups.push_back(describe_group(policy.write_group));
    if (!write && !policy.read_group.spec.empty())
        groups.push_back("read-only " + describe_group(policy.read_group));
    if (!groups.empty()) {
        need += " or membership in ";
        for (size_t i = 0; i < groups.size(); ++i) need += (i ? " or " : "") + groups[i];
    }
    std::string hint;
    if (write && peer_in(peer, policy.read_group))
        hint = fmt::format(" ({} only allows reads)", describe_group(policy.read_group));
    return fmt::format("permission denied: {} may not {} {}: {} requires {}{}", who, method, target,
                       write ? "changing state" : "reading state", need, hint);
}

}  // namespace cnetd::daemon
