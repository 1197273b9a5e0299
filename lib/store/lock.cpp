#include "store/lock.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <thread>

#include "base/fd.hpp"

namespace cnetd::store {

struct InstanceLock::State {
    UniqueFd dir_lock;
    UniqueFd netns_lock;  // listening abstract socket
    UniqueFd stop;        // eventfd: tells the answering thread to end
    std::thread answer;   // writes "<pid> <state-dir>\n" to whoever connects
    ~State() {
        if (answer.joinable()) {
            const uint64_t one = 1;
            (void)!::write(stop.get(), &one, sizeof one);
            answer.join();
        }
    }
};

namespace {

// The PID the holder wrote into its lock file. A holder that won the flock a moment ago has not
// written it yet (flock, then ftruncate + pwrite): wait up to ~0.5 s for a complete line (two
// daemons started at once hit this window; the loser's message should still name the winner).
std::string holder_pid(int fd) {
    for (int i = 0; i < 50; ++i) {
        char buf[32] = {};
        const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
        const std::string text = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
        if (!text.empty() && text.back() == '\n') return text.substr(0, text.size() - 1);
        ::usleep(10000);
    }
    return "";
}

Result<UniqueFd> lock_state_dir(const std::string& state_dir) {
    const std::string path = state_dir + "/lock";
    // O_NOFOLLOW: a symlink planted in the state dir must not make us lock (or create) elsewhere.
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) return Error::sys(errno, "open lock file " + path);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err != EWOULDBLOCK) return Error::sys(err, "lock " + path);
        const std::string pid = holder_pid(fd.get());
        return Error::conflict(fmt::format(
            "another cnetd (PID {}) holds the state dir {} (lock {}): refusing to start",
            pid.empty() ? "unknown" : pid, state_dir, path));
    }
    // Ours now: record who holds it, for the next loser's message and for an admin's `cat`.
    const std::string me = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd.get(), 0) != 0 ||
        ::pwrite(fd.get(), me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
        return Error::sys(errno, "write lock file " + path);
    return fd;
}

sockaddr_un abstract_addr(const std::string& name, socklen_t& len) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    const size_t n = std::min(name.size(), sizeof a.sun_path - 1);
    std::memcpy(a.sun_path + 1, name.data(), n);  // sun_path[0] = '\0': abstract
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
    return a;
}

// Asks the holder of the abstract name who it is: PID (SO_PEERCRED) and state dir (its line).
std::string describe_holder(const std::string& name) {
    socklen_t len = 0;
    sockaddr_un a = abstract_addr(name, len);
    UniqueFd c;
    // ECONNREFUSED: the holder has bound but not yet listen()ed (it started just now); retry a
    // little so the message can still name it.
    for (int i = 0; i < 50; ++i) {
        c.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!c.valid()) return "PID unknown";
        // A full backlog makes a unix connect() wait up to SO_SNDTIMEO: bound it too.
        timeval tv{1, 0};
        ::setsockopt(c.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (::connect(c.get(), reinterpret_cast<sockaddr*>(&a), len) == 0) break;
        if (errno != ECONNREFUSED) return "PID unknown";
        c.reset();
        ::usleep(10000);
    }
    if (!c.valid()) return "PID unknown";
    std::string pid = "unknown";
    ucred cred{};
    socklen_t cl = sizeof cred;
    if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.pid > 0) {
        pid = std::to_string(cred.pid);
        // Any local user can bind an abstract name: say so when the holder is not privileged
        // like us (then it is not a cnetd, but someone squatting the name).
        if (cred.uid != ::geteuid()) pid += fmt::format(", uid {}", cred.uid);
    }
    timeval tv{1, 0};  // the holder answers at once; never hang a start on a wedged one
    ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string line;
    char buf[512];
    for (ssize_t n; (n = ::read(c.get(), buf, sizeof buf)) > 0;)
        line.append(buf, static_cast<size_t>(n));
    const auto sp = line.find(' ');
    if (sp == std::string::npos || line.empty() || line.back() != '\n') return "PID " + pid;
    return fmt::format("PID {}, state dir {}", pid, line.substr(sp + 1, line.size() - sp - 2));
}

Result<UniqueFd> lock_netns(const std::string& name, const std::string& state_dir) {
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) return Error::sys(errno, "create lock socket");
    socklen_t len = 0;
    sockaddr_un a = abstract_addr(name, len);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), len) != 0) {
        if (errno != EADDRINUSE) return Error::sys(errno, "bind lock socket @" + name);
        return Error::conflict(fmt::format(
            "another cnetd ({}) already drives the `inet cnetd` table and the bridges of this "
            "network namespace (lock @{}): refusing to start with state dir {}",
            describe_holder(name), name, state_dir));
    }
    if (::listen(s.get(), 16) != 0) return Error::sys(errno, "listen on lock socket @" + name);
    return s;
}

}  // namespace

std::string InstanceLock::netns_lock_name(const std::string& table) {
    return "cnetd/inet-" + table;
}

Result<InstanceLock> InstanceLock::acquire(const std::string& state_dir, const std::string& table) {
    auto st = std::make_unique<State>();
    CNETD_TRY_ASSIGN(st->dir_lock, lock_state_dir(state_dir));
    CNETD_TRY_ASSIGN(st->netns_lock, lock_netns(netns_lock_name(table), state_dir));
    st->stop.reset(::eventfd(0, EFD_CLOEXEC));
    if (!st->stop.valid()) return Error::sys(errno, "create eventfd");
    const int fd = st->netns_lock.get(), stop = st->stop.get();
    const std::string line = fmt::format("{} {}\n", ::getpid(), state_dir);
    try {
        st->answer = std::thread([fd, stop, line] {
            for (;;) {
                pollfd p[2] = {{fd, POLLIN, 0}, {stop, POLLIN, 0}};
                if (::poll(p, 2, -1) < 0 && errno != EINTR) return;
                if (p[1].revents) return;  // the destructor asks us to end
                if (!(p[0].revents & POLLIN)) continue;
                int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (c < 0) continue;
                (void)!::send(c, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                ::close(c);
            }
        });
    } catch (const std::system_error& e) {
        return Error::sys(e.code().value(), "start the lock's answering thread");
    }
    return InstanceLock(std::move(st));
}

InstanceLock::InstanceLock(std::unique_ptr<State> s) : s_(std::move(s)) {}
InstanceLock::InstanceLock(InstanceLock&&) noexcept = default;
InstanceLock& InstanceLock::operator=(InstanceLock&&) noexcept = default;
InstanceLock::~InstanceLock() = default;

}  // namespace cnetd::store
