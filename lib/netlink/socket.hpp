// An rtnetlink (NETLINK_ROUTE) socket bound to one network namespace, and the layer's error helper.
//
// A netlink socket talks to the namespace it was created in, forever: open_in() enters the target
// namespace on the calling thread (ScopedNetns), creates the socket and leaves at once, so all
// later requests on it configure that namespace without any further setns().
//
// Ownership: owns the libnl nl_sock. Move-only. Threading: one socket per thread at a time (libnl
// sockets are not thread-safe); the kernel worker owns all of them.
// Errors: kernel refusals keep the kernel's own errno (captured from the NLMSG_ERROR by a custom
// error callback, which is noexcept and only stores the number); libnl-internal failures are mapped
// from NLE_* codes to the closest errno so every message reads like strerror ("File exists").
#pragma once

#include <memory>
#include <string>

#include "base/error.hpp"

struct nl_sock;
struct nl_msg;

namespace cnetd::netlink {

// Frees an nl_msg (defined in socket.cpp so this header needs no libnl include).
struct NlMsgFree {
    void operator()(nl_msg* m) const noexcept;
};
using NlMsg = std::unique_ptr<nl_msg, NlMsgFree>;

class RouteSocket {
public:
    // A socket in the calling thread's current namespace; `label` is "" (the daemon's own).
    static Result<RouteSocket> open_current();
    // A socket in the namespace `netns_fd`; `label` (the netns path) appears in every error.
    static Result<RouteSocket> open_in(int netns_fd, const std::string& label);

    RouteSocket(RouteSocket&&) noexcept;
    RouteSocket& operator=(RouteSocket&&) noexcept;
    ~RouteSocket();

    nl_sock* get() const noexcept;
    const std::string& label() const noexcept;
    // " in <label>" or "" for the daemon's namespace: appended to error frames.
    std::string where() const;

    // Call before a request: forgets the errno of the previous failure.
    void clear_error() noexcept;
    // Turns a negative libnl return code into an Error "<what>: <strerror>", preferring the errno
    // the kernel sent in its NLMSG_ERROR.
    Error error(int nl_rc, std::string_view what) const;
    // The kernel errno for a failed call (captured or mapped from nl_rc), for decisions like
    // "ENODEV means absent".
    int errno_of(int nl_rc) const noexcept;

    // Sends a prepared request and waits for the kernel's ACK. Consumes msg.
    int send_sync(NlMsg msg);

    struct State;  // opaque; public only so the C error callback can name it

private:
    explicit RouteSocket(std::unique_ptr<State> s);
    std::unique_ptr<State> s_;
};

// NLE_* (positive) → errno; unknown codes map to EIO.
int nle_to_errno(int nle) noexcept;

}  // namespace cnetd::netlink
