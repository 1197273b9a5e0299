#include "nft/monitor.hpp"

#include <sys/socket.h>

#include <netinet/in.h>  // before any <linux/*.h>: it keeps linux/in.h's duplicates out
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <cerrno>
#include <cstring>

#include <libmnl/libmnl.h>

namespace cnetd::nft {
namespace {

// Attribute 1 is the table name in every nf_tables object message (NFTA_TABLE_NAME,
// NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE, ...); nullptr if absent.
const char* table_of(const nlmsghdr* nlh) {
    const char* table = nullptr;
    // (mnl_attr_for_each is C: its void* does not convert implicitly in C++.)
    for (auto* attr =
             static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
         mnl_attr_ok(attr,
                     static_cast<int>(static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -
                                      reinterpret_cast<const char*>(attr)));
         attr = mnl_attr_next(attr)) {
        if (mnl_attr_get_type(attr) == 1 && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
            table = mnl_attr_get_str(attr);
    }
    return table;
}

}  // namespace

Monitor::Monitor(Monitor&& o) noexcept
    : nl_(std::exchange(o.nl_, nullptr)), tables_(std::move(o.tables_)) {}
Monitor& Monitor::operator=(Monitor&& o) noexcept {
    if (this != &o) {
        if (nl_) mnl_socket_close(nl_);
        nl_ = std::exchange(o.nl_, nullptr);
        tables_ = std::move(o.tables_);
    }
    return *this;
}
Monitor::~Monitor() {
    if (nl_) mnl_socket_close(nl_);
}
int Monitor::fd() const noexcept {
    return nl_ ? mnl_socket_get_fd(nl_) : -1;
}

Result<Monitor> Monitor::open(std::vector<std::pair<int, std::string>> tables) {
    Monitor m;
    m.tables_ = std::move(tables);
    m.nl_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (!m.nl_) return Error::sys(errno, "open nftables monitor socket");
    if (mnl_socket_bind(m.nl_, 0, MNL_SOCKET_AUTOPID) < 0)
        return Error::sys(errno, "bind nftables monitor socket");
    // Room for a burst of notifications (each set element of a transaction is one); best effort.
    int rcv = 8 * 1024 * 1024;
    if (setsockopt(mnl_socket_get_fd(m.nl_), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
        setsockopt(mnl_socket_get_fd(m.nl_), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    int group = NFNLGRP_NFTABLES;
    if (mnl_socket_setsockopt(m.nl_, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0)
        return Error::sys(errno, "subscribe to nftables notifications");
    return m;
}

// An object change of a watched table, made by someone else.
bool Monitor::watched(const nlmsghdr* nlh, uint32_t own_portid) const {
    if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES) return false;
    const int type = NFNL_MSG_TYPE(nlh->nlmsg_type);
    if (type == NFT_MSG_NEWGEN || type == NFT_MSG_TRACE) return false;
    // Our own transactions carry our command socket's portid.
    if (nlh->nlmsg_pid == own_portid && own_portid != 0) return false;
    const auto* g = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
    const char* table = table_of(nlh);
    if (!table) return false;
    for (const auto& [fam, name] : tables_)
        if (fam == g->nfgen_family && name == table) return true;
    return false;
}

Result<bool> Monitor::drain(uint32_t own_portid, bool* lost) {
    bool changed = false;
    if (lost) *lost = false;
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
    for (;;) {
        ssize_t n = recv(mnl_socket_get_fd(nl_), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return changed;
            if (errno == ENOBUFS) {  // notifications were lost: assume the worst
                if (lost)
                    *lost = true;
                else
                    changed = true;
                continue;
            }
            return Error::sys(errno, "read nftables notifications");
        }
        int len = static_cast<int>(n);
        for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len))
            if (watched(nlh, own_portid)) changed = true;
    }
}

}  // namespace cnetd::nft
