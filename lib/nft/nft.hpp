// nftables over netlink, without the nft CLI: an mnl socket, a journaled batch, a dump of one table
// and a change monitor.
//
// Header hygiene: this header names libnftnl types only by forward declaration and never includes
// libmnl/libnftnl/<linux/netfilter*.h>, so any layer may include it (libnl and linux/netfilter.h
// cannot share a translation unit). Numeric constants (NFT_MSG_*, NFPROTO_*, NLM_F_*) are passed as
// plain integers; the .cpp files that build messages include the kernel headers themselves.
//
// Threading: a Socket, Batch or Monitor is used by one thread at a time (no internal locking).
// A Socket is bound to the network namespace of the thread that opened it, for its whole life.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "base/fd.hpp"

struct mnl_socket;
struct nftnl_table;
struct nftnl_chain;
struct nftnl_rule;
struct nftnl_set;

namespace cnetd::nft {

// One recvfrom on a netlink socket after waiting at most `timeout_ms` for it to become readable,
// so a kernel that never answers cannot hang the caller (ETIMEDOUT). Returns the bytes read.
Result<size_t> recv_some(mnl_socket* nl, std::vector<char>& buf, const std::string& what,
                         int timeout_ms);

// A batch of nf_tables messages that the kernel applies as ONE transaction (all or nothing).
// Building is pure: add_*() serialise each object immediately (the nftnl object is not retained,
// the caller keeps ownership) and bytes() returns the whole NFNL_MSG_BATCH_BEGIN..END datagram.
// Every message records a human description ("add element inet cnetd masq_nets { 172.17.0.0/16 }")
// so a kernel NLMSG_ERROR can be mapped back to the exact object by its sequence number.
// Only the last message carries NLM_F_ACK (set by bytes()): the kernel answers refused messages
// with an error anyway, in order, so the last answer tells the caller the batch is done.
class Batch {
public:
    // msg is an NFT_MSG_* value (the subsystem is added here), family an NFPROTO_* value,
    // flags NLM_F_CREATE/NLM_F_EXCL/... (NLM_F_REQUEST|NLM_F_ACK are always added).
    void add_table(int msg, int family, uint16_t flags, const nftnl_table* t, std::string desc);
    void add_chain(int msg, int family, uint16_t flags, const nftnl_chain* c, std::string desc);
    void add_rule(int msg, int family, uint16_t flags, const nftnl_rule* r, std::string desc);
    void add_set(int msg, int family, uint16_t flags, const nftnl_set* s, std::string desc);
    // NEWSETELEM/DELSETELEM: the elements attached to `s` (which only names table and set).
    void add_elements(int msg, int family, uint16_t flags, const nftnl_set* s, std::string desc);

    size_t size() const noexcept { return messages_.size(); }
    bool empty() const noexcept { return messages_.empty(); }
    // Sequence numbering happens here, not while building: BEGIN gets `base`, message i gets
    // base + 1 + i, END gets base + size() + 1.
    std::vector<uint8_t> bytes(uint32_t base = 1) const;
    // The description of the message that was given sequence number `seq` by bytes(base).
    std::string describe(uint32_t base, uint32_t seq) const;
    const std::vector<std::string>& descriptions() const noexcept { return descs_; }
    // One single-message batch per message (best-effort teardown retries them one by one).
    std::vector<Batch> split() const;
    void append(const Batch& other);

private:
    void push(std::vector<uint8_t> msg, std::string desc);
    std::vector<std::vector<uint8_t>> messages_;
    std::vector<std::string> descs_;
};

// What one table looks like in the kernel, for verification and drift checks.
struct ChainInfo {
    std::string name;
    bool base = false;     // has a hook
    std::string type;      // "filter" / "nat" for base chains
    uint32_t hooknum = 0;  // NF_INET_* hook number
    int32_t priority = 0;
    std::vector<std::string> rule_comments;  // one entry per rule, in order ("" without comment)
};
struct SetInfo {
    std::string name;
    uint32_t flags = 0;  // NFT_SET_* flags
    uint32_t key_len = 0;
    size_t elements = 0;  // as the kernel stores them (an interval is 1 or 2 elements)
};
struct TableInfo {
    bool exists = false;
    std::vector<ChainInfo> chains;
    std::vector<SetInfo> sets;
    const ChainInfo* chain(std::string_view name) const;
    const SetInfo* set(std::string_view name) const;
    size_t rule_count() const;
};

// One chain of any table of any family, as a ruleset-wide chain dump reports it (coexistence
// checks look at other software's base chains; our own TableInfo does not carry policies).
struct ChainSummary {
    int family = 0;  // NFPROTO_* of its table
    std::string table;
    std::string name;
    bool base = false;  // has a hook
    std::string type;   // "filter" / "nat" / "route" for base chains
    uint32_t hooknum = 0;
    int32_t priority = 0;
    bool has_policy = false;
    uint32_t policy = 0;  // NF_DROP (0) / NF_ACCEPT (1), base chains only
};

// A NETLINK_NETFILTER socket (RAII) with a sequence allocator.
class Socket {
public:
    // Opens and binds a socket in the caller's network namespace.
    static Result<Socket> open();
    Socket(Socket&&) noexcept;
    Socket& operator=(Socket&&) noexcept;
    ~Socket();

    uint32_t portid() const noexcept { return portid_; }
    int fd() const noexcept;

    // Sends the batch (growing the send buffer to fit it) and waits for the kernel's answer to
    // its last message. On failure the kernel has applied nothing; the error names each refused
    // message: "<description>: <strerror>" (several joined by "; "), kind Kernel, errno of the
    // first.
    Result<void> commit(const Batch& b);
    // Dumps one table's chains (with their rules' comments) and sets (with element counts).
    // A missing table is not an error: exists == false.
    Result<TableInfo> dump_table(int family, const std::string& table);
    // Dumps every chain of every table of every family (NFPROTO_UNSPEC dump); read-only.
    Result<std::vector<ChainSummary>> dump_all_chains();

private:
    Socket() = default;
    mnl_socket* nl_ = nullptr;
    uint32_t portid_ = 0;
    uint32_t seq_ = 0;
    size_t sndbuf_ = 128 * 1024;  // what we last set (the default, net.core.wmem_default, is
                                  // 208 KiB unless lowered: trusted up to 128 KiB)
};

// Watches NFNLGRP_NFTABLES notifications for changes to a list of (family, table) made by anyone
// except ourselves (notifications carry the portid of the socket that made the change).
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
    mnl_socket* nl_ = nullptr;
    std::vector<std::pair<int, std::string>> tables_;
};

}  // namespace cnetd::nft
