#include "daemon/systemd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "base/fd.hpp"
#include "base/log.hpp"

namespace cnetd::daemon::systemd {
namespace {

constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START

#ifndef HAVE_SYSTEMD
// sd_notify(3) by hand: one datagram to $NOTIFY_SOCKET ("/path" or "@abstract").
int notify_native(std::string_view state) {
    const char* e = std::getenv("NOTIFY_SOCKET");
    if (!e || !*e) return 0;
    std::string_view path(e);
    if (path[0] != '/' && path[0] != '@') return -EAFNOSUPPORT;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() > sizeof addr.sun_path) return -ENAMETOOLONG;
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (path[0] == '@') addr.sun_path[0] = '\0';
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    if (path[0] == '/' && path.size() < sizeof addr.sun_path) ++len;  // include the NUL
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return -errno;
    if (::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                 reinterpret_cast<sockaddr*>(&addr), len) < 0)
        return -errno;
    return 1;
}

// sd_listen_fds(3) by hand, with unset_environment = 1.
int listen_fds_native() {
    const char* pid_s = std::getenv("LISTEN_PID");
    const char* fds_s = std::getenv("LISTEN_FDS");
    int n = 0;
    if (pid_s && fds_s && std::strtol(pid_s, nullptr, 10) == ::getpid()) {
        char* end = nullptr;
        long v = std::strtol(fds_s, &end, 10);
        n = (end && *end == '\0' && v > 0 && v < 1024) ? static_cast<int>(v) : -EINVAL;
    }
    for (int fd = kListenFdsStart; n > 0 && fd < kListenFdsStart + n; ++fd)
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    return n;
}
#endif

int int_opt(int fd, int opt) {
    int v = -1;
    socklen_t len = sizeof v;
    return ::getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

}  // namespace

void notify(std::string_view state) {
#ifdef HAVE_SYSTEMD
    int r = ::sd_notify(0, std::string(state).c_str());
#else
    int r = notify_native(state);
#endif
    if (r < 0) log::debug("sd_notify \"{}\": {}", state, std::strerror(-r));
}

Result<ListenSocket> take_listen_socket() {
#ifdef HAVE_SYSTEMD
    int n = ::sd_listen_fds(1);  // also sets FD_CLOEXEC on the fds and unsets the variables
#else
    int n = listen_fds_native();
#endif
    if (n < 0) return Error::sys(-n, "socket activation: LISTEN_FDS");
    if (n == 0) return ListenSocket{};
    if (n != 1)
        return Error::invalid(fmt::format(
            "socket activation: {} sockets passed (LISTEN_FDS={}), cnetd serves exactly one "
            "(cnetd.socket must have one ListenStream=)",
            n, n));
    int fd = kListenFdsStart;
    int domain = int_opt(fd, SO_DOMAIN), type = int_opt(fd, SO_TYPE),
        listening = int_opt(fd, SO_ACCEPTCONN);
    if (domain != AF_UNIX || type != SOCK_STREAM || listening != 1)
        return Error::invalid(fmt::format(
            "socket activation: fd {} is not a listening unix stream socket (domain {}, type {}, "
            "listening {}); cnetd.socket needs ListenStream=/path",
            fd, domain, type, listening));
    ListenSocket out;
    out.fd = fd;
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
        len > offsetof(sockaddr_un, sun_path) && addr.sun_path[0] != '\0')
        out.path.assign(addr.sun_path, strnlen(addr.sun_path, sizeof addr.sun_path));
    return out;
}

}  // namespace cnetd::daemon::systemd
