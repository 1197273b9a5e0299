// Watches NFNLGRP_NFTABLES notifications for changes to a list of (family, table) made by anyone
// except ourselves (notifications carry the portid of the socket that made the change).
//
// The socket is non-blocking, bound to the network namespace of the thread that opened it, with
// an 8 MiB receive buffer (best effort) for bursts (each set element of a transaction is one
// notification). Errors are Kernel kind and name the operation.
// Threading: one thread at a time. Movable, not copyable.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/error.hpp"

struct mnl_socket;
struct nlmsghdr;

namespace cnetd::nft {

class Monitor {
public:
    static Result<Monitor> open(std::vector<std::pair<int, std::string>> tables);
    Monitor(Monitor&&) noexcept;
    Monitor& operator=(Monitor&&) noexcept;
    ~Monitor();
    int fd() const noexcept;  // non-blocking; poll for readability
    // Reads every pending notification without blocking. Returns true if any touched a watched
    // table and came from a portid other than `own_portid`, or if notifications were lost
    // (ENOBUFS: we cannot know, so we assume a change). With `lost` given, the two are told
    // apart: the result is true only for a seen foreign change, and *lost is true if
    // notifications were lost. A big transaction of our own (one notification per set
    // element) can overflow even the enlarged receive buffer; the caller may then verify the
    // table instead of assuming the worst.
    Result<bool> drain(uint32_t own_portid, bool* lost = nullptr);

private:
    Monitor() = default;
    bool watched(const nlmsghdr* nlh, uint32_t own_portid) const;
    mnl_socket* nl_ = nullptr;
    std::vector<std::pair<int, std::string>> tables_;
};

}  // namespace cnetd::nft
