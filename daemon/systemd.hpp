// cnetd under systemd: readiness notification (sd_notify) and socket activation (sd_listen_fds).
//
// Both speak systemd's documented, stable protocols (sd_notify(3), sd_listen_fds(3)). With
// libsystemd (meson option `systemd`, HAVE_SYSTEMD) its functions are used; without it the same
// protocols are spoken by hand, so a build without libsystemd still runs as Type=notify and
// socket-activated. Outside systemd (no $NOTIFY_SOCKET, no $LISTEN_FDS) everything here is a no-op.
//
// Threading: notify() may be called from any thread (one datagram per call); take_listen_socket()
// once, at start-up, before any other thread exists (it unsets environment variables).
// Errors: notify() never fails the caller (a lost notification is logged at debug level: systemd
// then times the start out, which is the visible symptom); take_listen_socket() reports a
// misconfigured activation precisely (wrong count or kind of socket).
#pragma once

#include <string>
#include <string_view>

#include "base/error.hpp"

namespace cnetd::daemon::systemd {

// Sends `state` ("READY=1", "STATUS=...", "STOPPING=1", several separated by '\n') to
// $NOTIFY_SOCKET (a path, or "@name" for an abstract socket). No-op when it is unset.
void notify(std::string_view state);

// A socket handed over by the service manager (socket activation).
struct ListenSocket {
    int fd = -1;       // listening AF_UNIX SOCK_STREAM socket, close-on-exec, owned by the caller
    std::string path;  // its bound path (getsockname), "" if unnamed or abstract
};

// Socket activation: when $LISTEN_PID is our pid and $LISTEN_FDS is 1, returns that fd (3) after
// checking it is a listening unix stream socket; fd -1 when the process was not socket-activated.
// Unsets LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES so children do not inherit them.
// Errors: more than one fd passed, or fd 3 is not a listening AF_UNIX SOCK_STREAM socket: the
// message names what was found (the unit's cnetd.socket must have exactly one ListenStream=).
Result<ListenSocket> take_listen_socket();

}  // namespace cnetd::daemon::systemd
