#include "netlink/socket.hpp"

#include <linux/netlink.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include <cerrno>
#include <optional>

#include "base/fd.hpp"
#include "netns/netns.hpp"

namespace cnetd::netlink {

void NlMsgFree::operator()(nl_msg* m) const noexcept {
    if (m) nlmsg_free(m);
}

// Heap-allocated so the pointer given to libnl's error callback survives moves of RouteSocket.
struct RouteSocket::State {
    CHandle<nl_sock, nl_socket_free> sock;
    std::string label;
    int last_errno = 0;  // set by on_error() from the kernel's NLMSG_ERROR
};

namespace {

// libnl calls this for every NLMSG_ERROR carrying a failure. It must not throw (C caller): it only
// stores the kernel's errno and tells libnl to stop, which makes the call return -NLE_*.
int on_error(struct sockaddr_nl*, struct nlmsgerr* e, void* arg) noexcept {
    auto* st = static_cast<RouteSocket::State*>(arg);
    st->last_errno = e->error < 0 ? -e->error : e->error;
    return NL_STOP;
}

}  // namespace

int nle_to_errno(int nle) noexcept {
    switch (nle) {
        case NLE_SUCCESS:
            return 0;
        case NLE_EXIST:
            return EEXIST;
        case NLE_NODEV:
            return ENODEV;
        case NLE_OBJ_NOTFOUND:
            return ENOENT;
        case NLE_PERM:
            return EPERM;
        case NLE_BUSY:
            return EBUSY;
        case NLE_INVAL:
            return EINVAL;
        case NLE_RANGE:
            return ERANGE;
        case NLE_NOADDR:
            return EADDRNOTAVAIL;
        case NLE_AF_NOSUPPORT:
            return EAFNOSUPPORT;
        case NLE_OPNOTSUPP:
            return EOPNOTSUPP;
        case NLE_NOMEM:
            return ENOMEM;
        case NLE_AGAIN:
            return EAGAIN;
        case NLE_INTR:
            return EINTR;
        case NLE_BAD_SOCK:
            return EBADF;
        case NLE_MSGSIZE:
            return EMSGSIZE;
        case NLE_NOACCESS:
            return EACCES;
        case NLE_PROTO_MISMATCH:
            return EPROTONOSUPPORT;
        case NLE_NOATTR:
            return ENODATA;
        case NLE_MISSING_ATTR:
            return EINVAL;
        default:
            return EIO;
    }
}

RouteSocket::RouteSocket(std::unique_ptr<State> s) : s_(std::move(s)) {}
RouteSocket::RouteSocket(RouteSocket&&) noexcept = default;
RouteSocket& RouteSocket::operator=(RouteSocket&&) noexcept = default;
RouteSocket::~RouteSocket() = default;

nl_sock* RouteSocket::get() const noexcept {
    return s_->sock.get();
}
const std::string& RouteSocket::label() const noexcept {
    return s_->label;
}
std::string RouteSocket::where() const {
    return s_->label.empty() ? std::string() : fmt::format(" in {}", s_->label);
}
void RouteSocket::clear_error() noexcept {
    s_->last_errno = 0;
}

int RouteSocket::errno_of(int nl_rc) const noexcept {
    if (s_->last_errno != 0) return s_->last_errno;
    return nle_to_errno(nl_rc < 0 ? -nl_rc : nl_rc);
}

Error RouteSocket::error(int nl_rc, std::string_view what) const {
    return Error::sys(errno_of(nl_rc), what);
}

int RouteSocket::send_sync(NlMsg msg) {
    clear_error();
    // nl_send_sync() frees the message in every case.
    return nl_send_sync(s_->sock.get(), msg.release());
}

Result<RouteSocket> RouteSocket::open_current() {
    auto st = std::make_unique<State>();
    st->sock.reset(nl_socket_alloc());
    if (!st->sock) return Error::sys(ENOMEM, "allocate netlink socket");
    if (int rc = nl_connect(st->sock.get(), NETLINK_ROUTE); rc < 0)
        return Error::sys(nle_to_errno(-rc), "open netlink route socket");
    nl_socket_modify_err_cb(st->sock.get(), NL_CB_CUSTOM, on_error, st.get());
    return RouteSocket(std::move(st));
}

Result<RouteSocket> RouteSocket::open_in(int netns_fd, const std::string& label) {
    std::optional<Result<RouteSocket>> r;
    {
        CNETD_TRY_ASSIGN(auto scope, netns::ScopedNetns::enter(netns_fd, label));
        r.emplace(open_current());
    }  // back in our own namespace; the socket stays bound to `label`'s
    if (!r->ok())
        return Error::sys(r->error().error_number(),
                          fmt::format("open netlink route socket in {}", label));
    (*r)->s_->label = label;
    return std::move(*r);
}

}  // namespace cnetd::netlink
