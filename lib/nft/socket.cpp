#include "nft/socket.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <netinet/in.h>  // before any <linux/*.h>: it keeps linux/in.h's duplicates out
#include <linux/netlink.h>

#include <cerrno>
#include <ctime>
#include <utility>
#include <vector>

#include <libmnl/libmnl.h>

namespace cnetd::nft {
namespace {

// One recvfrom after waiting at most `timeout_ms` for the socket to become readable.
Result<size_t> recv_some(mnl_socket* nl, std::vector<char>& buf, const std::string& what,
                         int timeout_ms) {
    pollfd p{mnl_socket_get_fd(nl), POLLIN, 0};
    int rc;
    do rc = poll(&p, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) return Error::sys(errno, what);
    if (rc == 0) return Error::sys(ETIMEDOUT, what);
    ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
    if (n < 0) return Error::sys(errno, what);
    return static_cast<size_t>(n);
}

// A batch is one datagram; netlink refuses one bigger than the send buffer (EMSGSIZE). Grows it
// as needed (SO_SNDBUFFORCE: we have CAP_NET_ADMIN; SO_SNDBUF as a capped fallback).
void fit_sndbuf(int fd, size_t bytes, size_t& sndbuf) {
    if (bytes + 4096 <= sndbuf) return;
    int want = static_cast<int>(bytes + 64 * 1024);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
    sndbuf = bytes + 64 * 1024;
}

}  // namespace

Socket::Socket(Socket&& o) noexcept
    : nl_(std::exchange(o.nl_, nullptr)), portid_(o.portid_), seq_(o.seq_), sndbuf_(o.sndbuf_) {}
Socket& Socket::operator=(Socket&& o) noexcept {
    if (this != &o) {
        if (nl_) mnl_socket_close(nl_);
        nl_ = std::exchange(o.nl_, nullptr);
        portid_ = o.portid_;
        seq_ = o.seq_;
        sndbuf_ = o.sndbuf_;
    }
    return *this;
}
Socket::~Socket() {
    if (nl_) mnl_socket_close(nl_);
}
int Socket::fd() const noexcept {
    return nl_ ? mnl_socket_get_fd(nl_) : -1;
}

Result<Socket> Socket::open() {
    Socket s;
    s.nl_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (!s.nl_) return Error::sys(errno, "open nftables netlink socket");
    if (mnl_socket_bind(s.nl_, 0, MNL_SOCKET_AUTOPID) < 0)
        return Error::sys(errno, "bind nftables netlink socket");
    s.portid_ = mnl_socket_get_portid(s.nl_);
    s.seq_ = static_cast<uint32_t>(time(nullptr));
    return s;
}

Result<void> Socket::commit(const Batch& b) {
    if (b.empty()) return ok();
    const uint32_t base = seq_;
    seq_ += static_cast<uint32_t>(b.size()) + 2;
    const std::vector<uint8_t> bytes = b.bytes(base);
    fit_sndbuf(fd(), bytes.size(), sndbuf_);
    if (mnl_socket_sendto(nl_, bytes.data(), bytes.size()) < 0)
        return Error::sys(errno, fmt::format("send nftables batch of {} messages", b.size()));

    // The kernel answers after it has processed the whole batch: an error for every refused
    // message, then the answer to the last one (the only one carrying NLM_F_ACK). On any error
    // the transaction was aborted and nothing changed.
    ErrorList errors;
    const uint32_t last = base + static_cast<uint32_t>(b.size());
    bool done = false;
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
    while (!done) {
        auto n = recv_some(nl_, buf, "receive nftables batch acknowledgements", kAnswerTimeoutMs);
        if (!n.ok()) return std::move(n).error();
        int len = static_cast<int>(*n);
        for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            if (nlh->nlmsg_type != NLMSG_ERROR) continue;
            if (nlh->nlmsg_seq < base || nlh->nlmsg_seq > base + b.size() + 1) continue;  // stale
            const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
            if (nlh->nlmsg_seq == base) {
                // An error on the batch header (e.g. ENOMEM while queueing errors): whole batch.
                return Error::sys(-err->error,
                                  fmt::format("nftables batch of {} messages", b.size()));
            }
            if (nlh->nlmsg_seq == last) done = true;
            if (err->error != 0)
                errors.add(Error::sys(-err->error, b.describe(base, nlh->nlmsg_seq)));
        }
    }
    if (!errors.empty()) return errors.combined("");
    return ok();
}

Result<void> Socket::request(const nlmsghdr* req, Callback cb, void* data,
                             const std::string& what) {
    if (mnl_socket_sendto(nl_, req, req->nlmsg_len) < 0) return Error::sys(errno, what);
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
    for (;;) {
        CNETD_TRY_ASSIGN(size_t n, recv_some(nl_, buf, what, kAnswerTimeoutMs));
        int rc = mnl_cb_run(buf.data(), n, req->nlmsg_seq, portid_, cb, data);
        if (rc < 0) return Error::sys(errno, what);
        if (rc == MNL_CB_STOP) return ok();
    }
}

}  // namespace cnetd::nft
