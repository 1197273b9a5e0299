#include "nft/nft.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

namespace cnetd::nft {
namespace {

// Scratch space for one message; our largest (an element list for one network) is far smaller.
constexpr size_t kMsgBuf = 64 * 1024;
constexpr int kAckTimeoutMs = 5000;

using TablePtr = CHandle<nftnl_table, nftnl_table_free>;
using ChainPtr = CHandle<nftnl_chain, nftnl_chain_free>;
using RulePtr = CHandle<nftnl_rule, nftnl_rule_free>;
using SetPtr = CHandle<nftnl_set, nftnl_set_free>;

template <class Obj, class BuildFn>
std::vector<uint8_t> build_msg(int msg, int family, uint16_t flags, const Obj* o, BuildFn payload) {
    std::vector<char> buf(kMsgBuf);
    nlmsghdr* nlh =
        nftnl_nlmsg_build_hdr(buf.data(), static_cast<uint16_t>(msg), static_cast<uint16_t>(family),
                              static_cast<uint16_t>(flags | NLM_F_ACK), 0);
    payload(nlh, const_cast<Obj*>(o));  // libnftnl's build functions are not const-correct
    return {buf.data(), buf.data() + nlh->nlmsg_len};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Batch

void Batch::push(std::vector<uint8_t> msg, std::string desc) {
    messages_.push_back(std::move(msg));
    descs_.push_back(std::move(desc));
}

void Batch::add_table(int msg, int family, uint16_t flags, const nftnl_table* t, std::string desc) {
    push(build_msg(msg, family, flags, t, nftnl_table_nlmsg_build_payload), std::move(desc));
}
void Batch::add_chain(int msg, int family, uint16_t flags, const nftnl_chain* c, std::string desc) {
    push(build_msg(msg, family, flags, c, nftnl_chain_nlmsg_build_payload), std::move(desc));
}
void Batch::add_rule(int msg, int family, uint16_t flags, const nftnl_rule* r, std::string desc) {
    push(build_msg(msg, family, flags, r, nftnl_rule_nlmsg_build_payload), std::move(desc));
}
void Batch::add_set(int msg, int family, uint16_t flags, const nftnl_set* s, std::string desc) {
    push(build_msg(msg, family, flags, s, nftnl_set_nlmsg_build_payload), std::move(desc));
}
void Batch::add_elements(int msg, int family, uint16_t flags, const nftnl_set* s,
                         std::string desc) {
    push(build_msg(msg, family, flags, s, nftnl_set_elems_nlmsg_build_payload), std::move(desc));
}

std::vector<uint8_t> Batch::bytes(uint32_t base) const {
    std::vector<uint8_t> out;
    char hdr[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(nfgenmsg)) + 64];
    // NFNL_SUBSYS_NFTABLES in res_id tells nfnetlink which subsystem owns the batch.
    nlmsghdr* b = nftnl_batch_begin(hdr, base);
    out.insert(out.end(), reinterpret_cast<uint8_t*>(b),
               reinterpret_cast<uint8_t*>(b) + b->nlmsg_len);
    uint32_t seq = base + 1;
    for (size_t i = 0; i < messages_.size(); ++i) {
        const auto& m = messages_[i];
        size_t off = out.size();
        out.insert(out.end(), m.begin(), m.end());
        auto* nlh = reinterpret_cast<nlmsghdr*>(out.data() + off);
        nlh->nlmsg_seq = seq++;
        // Only the last message asks for an ack: the kernel answers a failing message with an
        // error whether or not it asked, and answers in order, so the last answer ends the batch.
        // One ack per message would overflow the receive buffer for big batches (ENOBUFS).
        if (i + 1 < messages_.size()) nlh->nlmsg_flags &= static_cast<uint16_t>(~NLM_F_ACK);
    }
    nlmsghdr* e = nftnl_batch_end(hdr, seq);
    out.insert(out.end(), reinterpret_cast<uint8_t*>(e),
               reinterpret_cast<uint8_t*>(e) + e->nlmsg_len);
    return out;
}

std::string Batch::describe(uint32_t base, uint32_t seq) const {
    if (seq == base) return "nftables batch";
    if (seq > base && seq - base - 1 < descs_.size()) return descs_[seq - base - 1];
    return fmt::format("nftables message #{}", seq);
}

std::vector<Batch> Batch::split() const {
    std::vector<Batch> out;
    for (size_t i = 0; i < messages_.size(); ++i) {
        Batch b;
        b.push(messages_[i], descs_[i]);
        out.push_back(std::move(b));
    }
    return out;
}

void Batch::append(const Batch& other) {
    for (size_t i = 0; i < other.messages_.size(); ++i) push(other.messages_[i], other.descs_[i]);
}

// ---------------------------------------------------------------------------------------------
// TableInfo

const ChainInfo* TableInfo::chain(std::string_view name) const {
    for (const auto& c : chains)
        if (c.name == name) return &c;
    return nullptr;
}
const SetInfo* TableInfo::set(std::string_view name) const {
    for (const auto& s : sets)
        if (s.name == name) return &s;
    return nullptr;
}
size_t TableInfo::rule_count() const {
    size_t n = 0;
    for (const auto& c : chains) n += c.rule_comments.size();
    return n;
}

// ---------------------------------------------------------------------------------------------
// Socket

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

Result<void> Socket::commit(const Batch& b) {
    if (b.empty()) return ok();
    const uint32_t base = seq_;
    seq_ += static_cast<uint32_t>(b.size()) + 2;
    const std::vector<uint8_t> bytes = b.bytes(base);
    // A batch is one datagram; netlink refuses one bigger than the send buffer (EMSGSIZE). Grow
    // it as needed (SO_SNDBUFFORCE: we have CAP_NET_ADMIN; SO_SNDBUF as a capped fallback).
    if (bytes.size() + 4096 > sndbuf_) {
        int want = static_cast<int>(bytes.size() + 64 * 1024);
        if (setsockopt(fd(), SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0)
            setsockopt(fd(), SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
        sndbuf_ = bytes.size() + 64 * 1024;
    }
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
        auto n = recv_some(nl_, buf, "receive nftables batch acknowledgements", kAckTimeoutMs);
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

namespace {

struct DumpCtx {
    int family;
    std::string table;
    TableInfo* info;
    SetInfo* set = nullptr;
};

std::string rule_comment(const nftnl_rule* r) {
    if (!nftnl_rule_is_set(r, NFTNL_RULE_USERDATA)) return {};
    uint32_t len = 0;
    const void* data = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
    std::string out;
    nftnl_udata_parse(
        data, len,
        [](const nftnl_udata* attr, void* d) -> int {
            if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT) {
                const char* s = static_cast<const char*>(nftnl_udata_get(attr));
                auto* o = static_cast<std::string*>(d);
                o->assign(s, strnlen(s, nftnl_udata_len(attr)));
            }
            return 0;
        },
        &out);
    return out;
}

int chain_cb(const nlmsghdr* nlh, void* data) noexcept {
    auto* ctx = static_cast<DumpCtx*>(data);
    ChainPtr c(nftnl_chain_alloc());
    if (!c || nftnl_chain_nlmsg_parse(nlh, c.get()) < 0) return MNL_CB_OK;
    if (ctx->table != nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE)) return MNL_CB_OK;
    ChainInfo ci;
    ci.name = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME);
    if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM)) {
        ci.base = true;
        ci.hooknum = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM);
        ci.priority = nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO);
        if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_TYPE))
            ci.type = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TYPE);
    }
    ctx->info->chains.push_back(std::move(ci));
    return MNL_CB_OK;
}

int rule_cb(const nlmsghdr* nlh, void* data) noexcept {
    auto* ctx = static_cast<DumpCtx*>(data);
    RulePtr r(nftnl_rule_alloc());
    if (!r || nftnl_rule_nlmsg_parse(nlh, r.get()) < 0) return MNL_CB_OK;
    if (ctx->table != nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE)) return MNL_CB_OK;
    const char* chain = nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN);
    for (auto& c : ctx->info->chains)
        if (c.name == chain) c.rule_comments.push_back(rule_comment(r.get()));
    return MNL_CB_OK;
}

int set_cb(const nlmsghdr* nlh, void* data) noexcept {
    auto* ctx = static_cast<DumpCtx*>(data);
    SetPtr s(nftnl_set_alloc());
    if (!s || nftnl_set_nlmsg_parse(nlh, s.get()) < 0) return MNL_CB_OK;
    if (ctx->table != nftnl_set_get_str(s.get(), NFTNL_SET_TABLE)) return MNL_CB_OK;
    const uint32_t flags = nftnl_set_get_u32(s.get(), NFTNL_SET_FLAGS);
    if (flags & NFT_SET_ANONYMOUS) return MNL_CB_OK;
    SetInfo si;
    si.name = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
    si.flags = flags;
    si.key_len = nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_LEN);
    ctx->info->sets.push_back(std::move(si));
    return MNL_CB_OK;
}

int elem_cb(const nlmsghdr* nlh, void* data) noexcept {
    auto* ctx = static_cast<DumpCtx*>(data);
    SetPtr s(nftnl_set_alloc());
    if (!s || nftnl_set_elems_nlmsg_parse(nlh, s.get()) < 0) return MNL_CB_OK;
    nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(s.get());
    if (!it) return MNL_CB_OK;
    // iter_next() returns the current element and then advances.
    while (nftnl_set_elems_iter_next(it)) ++ctx->set->elements;
    nftnl_set_elems_iter_destroy(it);
    return MNL_CB_OK;
}

// One dump (or get) request; ENOENT is reported as such so the caller can treat "no table" calmly.
Result<void> run_request(mnl_socket* nl, uint32_t portid, const nlmsghdr* req, mnl_cb_t cb,
                         void* data, const std::string& what) {
    if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0) return Error::sys(errno, what);
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
    for (;;) {
        auto n = recv_some(nl, buf, what, kAckTimeoutMs);
        if (!n.ok()) return std::move(n).error();
        int rc = mnl_cb_run(buf.data(), *n, req->nlmsg_seq, portid, cb, data);
        if (rc < 0) return Error::sys(errno, what);
        if (rc == MNL_CB_STOP) return ok();
    }
}

}  // namespace

Result<TableInfo> Socket::dump_table(int family, const std::string& table) {
    TableInfo info;
    DumpCtx ctx{family, table, &info};
    std::vector<char> buf(kMsgBuf);
    const auto fam = static_cast<uint16_t>(family);
    const std::string tdesc =
        fmt::format("table {} {}", family == NFPROTO_INET ? "inet" : "bridge", table);

    {  // Does the table exist? (a plain GET answers ENOENT when it does not)
        TablePtr t(nftnl_table_alloc());
        nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, table.c_str());
        nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETTABLE, fam, NLM_F_ACK, ++seq_);
        nftnl_table_nlmsg_build_payload(nlh, t.get());
        auto r = run_request(nl_, portid_, nlh, nullptr, nullptr, "get " + tdesc);
        if (!r.ok()) {
            if (r.error().error_number() == ENOENT) return info;
            return std::move(r).error();
        }
        info.exists = true;
    }
    {
        ChainPtr c(nftnl_chain_alloc());
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
        nlmsghdr* nlh =
            nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETCHAIN, fam, NLM_F_DUMP, ++seq_);
        nftnl_chain_nlmsg_build_payload(nlh, c.get());
        CNETD_TRY(run_request(nl_, portid_, nlh, chain_cb, &ctx, "list chains of " + tdesc));
    }
    {
        RulePtr r(nftnl_rule_alloc());
        nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
        nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETRULE, fam, NLM_F_DUMP, ++seq_);
        nftnl_rule_nlmsg_build_payload(nlh, r.get());
        CNETD_TRY(run_request(nl_, portid_, nlh, rule_cb, &ctx, "list rules of " + tdesc));
    }
    {
        SetPtr s(nftnl_set_alloc());
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
        nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETSET, fam, NLM_F_DUMP, ++seq_);
        nftnl_set_nlmsg_build_payload(nlh, s.get());
        CNETD_TRY(run_request(nl_, portid_, nlh, set_cb, &ctx, "list sets of " + tdesc));
    }
    for (auto& si : info.sets) {
        ctx.set = &si;
        SetPtr s(nftnl_set_alloc());
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
        nftnl_set_set_str(s.get(), NFTNL_SET_NAME, si.name.c_str());
        nlmsghdr* nlh =
            nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETSETELEM, fam, NLM_F_DUMP, ++seq_);
        nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
        CNETD_TRY(run_request(nl_, portid_, nlh, elem_cb, &ctx,
                              fmt::format("list elements of set {} {}", tdesc, si.name)));
    }
    return info;
}

Result<std::vector<ChainSummary>> Socket::dump_all_chains() {
    std::vector<ChainSummary> out;
    std::vector<char> buf(kMsgBuf);
    // No table attribute and family NFPROTO_UNSPEC: the kernel dumps the chains of all tables.
    nlmsghdr* nlh =
        nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETCHAIN, NFPROTO_UNSPEC, NLM_F_DUMP, ++seq_);
    auto cb = [](const nlmsghdr* m, void* data) noexcept -> int {
        auto* v = static_cast<std::vector<ChainSummary>*>(data);
        ChainPtr c(nftnl_chain_alloc());
        if (!c || nftnl_chain_nlmsg_parse(m, c.get()) < 0) return MNL_CB_OK;
        auto str = [&](uint16_t attr) {
            const char* p = nftnl_chain_get_str(c.get(), attr);
            return std::string(p ? p : "");
        };
        // std::string and push_back may throw bad_alloc: never let it cross libmnl's C frames.
        try {
            ChainSummary cs;
            cs.family = static_cast<int>(nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_FAMILY));
            cs.table = str(NFTNL_CHAIN_TABLE);
            cs.name = str(NFTNL_CHAIN_NAME);
            if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM)) {
                cs.base = true;
                cs.hooknum = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM);
                cs.priority = nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO);
                cs.type = str(NFTNL_CHAIN_TYPE);
                if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_POLICY)) {
                    cs.has_policy = true;
                    cs.policy = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_POLICY);
                }
            }
            v->push_back(std::move(cs));
        } catch (...) {
            return MNL_CB_ERROR;
        }
        return MNL_CB_OK;
    };
    CNETD_TRY(run_request(nl_, portid_, nlh, cb, &out, "list nftables chains of all tables"));
    return out;
}

// ---------------------------------------------------------------------------------------------
// Monitor

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
             nlh = mnl_nlmsg_next(nlh, &len)) {
            if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES) continue;
            const int type = NFNL_MSG_TYPE(nlh->nlmsg_type);
            if (type == NFT_MSG_NEWGEN || type == NFT_MSG_TRACE) continue;
            // Our own transactions carry our command socket's portid.
            if (nlh->nlmsg_pid == own_portid && own_portid != 0) continue;
            const auto* g = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
            // Attribute 1 is the table name in every nf_tables object message
            // (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE, ...).
            const char* table = nullptr;
            // (mnl_attr_for_each is C: its void* does not convert implicitly in C++.)
            for (auto* attr = static_cast<const nlattr*>(
                     mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
                 mnl_attr_ok(attr, static_cast<int>(
                                       static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -
                                       reinterpret_cast<const char*>(attr)));
                 attr = mnl_attr_next(attr)) {
                if (mnl_attr_get_type(attr) == 1 &&
                    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
                    table = mnl_attr_get_str(attr);
            }
            if (!table) continue;
            for (const auto& [fam, name] : tables_)
                if (fam == g->nfgen_family && name == table) changed = true;
        }
    }
}

}  // namespace cnetd::nft
