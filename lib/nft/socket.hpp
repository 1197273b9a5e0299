// A NETLINK_NETFILTER socket (RAII) with a sequence allocator: commits nftables batches and runs
// request/answer exchanges (dumps in dump.hpp, ctnetlink in conntrack.cpp) on one socket.
//
// Bound to the network namespace of the thread that opened it, for its whole life. Every wait for
// the kernel is bounded (ETIMEDOUT after kAnswerTimeoutMs), so a kernel that never answers cannot
// hang the caller. Errors are Kernel kind with the errno and name the operation.
// Threading: one thread at a time (no internal locking). Movable, not copyable.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.hpp"
#include "nft/batch.hpp"

struct mnl_socket;
struct nlmsghdr;

namespace cnetd::nft {

constexpr int kAnswerTimeoutMs = 5000;

class Socket {
public:
    // Opens and binds a socket in the caller's network namespace.
    static Result<Socket> open();
    Socket(Socket&&) noexcept;
    Socket& operator=(Socket&&) noexcept;
    ~Socket();

    uint32_t portid() const noexcept { return portid_; }
    int fd() const noexcept;
    uint32_t next_seq() noexcept { return ++seq_; }

    // Sends the batch (growing the send buffer to fit it) and waits for the kernel's answer to
    // its last message. On failure the kernel has applied nothing; the error names each refused
    // message: "<description>: <strerror>" (several joined by "; "), kind Kernel, errno of the
    // first.
    Result<void> commit(const Batch& b);

    // The signature of libmnl's mnl_cb_t: called for each answer message; returns MNL_CB_OK (1)
    // to go on, MNL_CB_STOP (0) or MNL_CB_ERROR (-1). Must not throw.
    using Callback = int (*)(const nlmsghdr* nlh, void* data);
    // Sends one request (a dump, a get or an acked change; its nlmsg_seq from next_seq()) and
    // runs `cb` (may be null) over the answers until the kernel says done or acks. An NLMSG_ERROR
    // answer is returned as Error::sys(errno, what): ENOENT stays recognisable for the caller.
    Result<void> request(const nlmsghdr* req, Callback cb, void* data, const std::string& what);

private:
    Socket() = default;
    mnl_socket* nl_ = nullptr;
    uint32_t portid_ = 0;
    uint32_t seq_ = 0;
    size_t sndbuf_ = 128 * 1024;  // what we last set (the default, net.core.wmem_default, is
                                  // 208 KiB unless lowered: trusted up to 128 KiB)
};

}  // namespace cnetd::nft
