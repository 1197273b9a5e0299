#include "nft/conntrack.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include <libmnl/libmnl.h>

#include "nft/attrs.hpp"
#include "nft/socket.hpp"

namespace cnetd::nft {
namespace {

const char* proto_name(uint8_t p) {
    switch (p) {
        case IPPROTO_TCP:
            return "tcp";
        case IPPROTO_UDP:
            return "udp";
        case IPPROTO_SCTP:
            return "sctp";
        default:
            return "proto";
    }
}

using detail::each_nested;

// One matching entry, kept as the raw attributes the delete request needs.
struct Victim {
    std::vector<uint8_t> tuple;  // the whole CTA_TUPLE_ORIG attribute, header included
    std::optional<uint16_t> zone;
};

// What a match looks at in an entry's ORIGINAL tuple, parsed once per entry.
struct Tuple {
    std::optional<uint8_t> proto;
    std::optional<uint16_t> dport;
    std::optional<uint32_t> dst4;  // host order
    std::optional<std::array<uint8_t, 16>> dst6;
};

Tuple parse_tuple(const nlattr* tuple) {
    Tuple t;
    each_nested(tuple, [&](const nlattr* a) {
        switch (mnl_attr_get_type(a)) {
            case CTA_TUPLE_IP:
                each_nested(a, [&](const nlattr* ip) {
                    if (mnl_attr_get_type(ip) == CTA_IP_V4_DST && mnl_attr_get_payload_len(ip) == 4)
                        t.dst4 = ntohl(mnl_attr_get_u32(ip));
                    if (mnl_attr_get_type(ip) == CTA_IP_V6_DST &&
                        mnl_attr_get_payload_len(ip) == 16) {
                        std::array<uint8_t, 16> b{};
                        std::memcpy(b.data(), mnl_attr_get_payload(ip), 16);
                        t.dst6 = b;
                    }
                });
                break;
            case CTA_TUPLE_PROTO:
                each_nested(a, [&](const nlattr* p) {
                    if (mnl_attr_get_type(p) == CTA_PROTO_NUM && mnl_attr_get_payload_len(p) >= 1)
                        t.proto = mnl_attr_get_u8(p);
                    if (mnl_attr_get_type(p) == CTA_PROTO_DST_PORT &&
                        mnl_attr_get_payload_len(p) >= 2)
                        t.dport = ntohs(mnl_attr_get_u16(p));
                });
                break;
            default:
                break;
        }
    });
    return t;
}

bool tuple_matches(const Tuple& t, const ConntrackMatch& m) {
    if (!t.proto || *t.proto != m.l4proto || !t.dport || *t.dport < m.port_first ||
        *t.dport > m.port_last)
        return false;
    if (m.family == ConntrackMatch::V6) return !m.dst6 || (t.dst6 && *t.dst6 == m.dst6->bytes());
    return !m.dst || (t.dst4 && *t.dst4 == m.dst->value());
}

// The matches of one family, with a bitmap of every destination port any of them covers: most
// entries of a busy table are rejected by one bit test, whatever the number of matches.
struct DumpCtx {
    std::vector<const ConntrackMatch*> ms;
    std::vector<bool> ports = std::vector<bool>(65536);
    std::vector<Victim>* out = nullptr;
    bool failed = false;
};

int dump_cb(const nlmsghdr* nlh, void* data) noexcept {
    auto* ctx = static_cast<DumpCtx*>(data);
    const nlattr* orig = nullptr;
    std::optional<uint16_t> zone;
    for (auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
         mnl_attr_ok(a, static_cast<int>(static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -
                                         reinterpret_cast<const char*>(a)));
         a = mnl_attr_next(a)) {
        if (mnl_attr_get_type(a) == CTA_TUPLE_ORIG) orig = a;
        if (mnl_attr_get_type(a) == CTA_ZONE && mnl_attr_get_payload_len(a) >= 2)
            zone = ntohs(mnl_attr_get_u16(a));
    }
    if (!orig) return MNL_CB_OK;
    const Tuple t = parse_tuple(orig);
    if (!t.dport || !ctx->ports[*t.dport]) return MNL_CB_OK;
    bool hit = false;
    for (const ConntrackMatch* m : ctx->ms) hit = hit || tuple_matches(t, *m);
    if (!hit) return MNL_CB_OK;
    // Allocation may throw; never let it cross libmnl's C frames.
    try {
        const auto* p = reinterpret_cast<const uint8_t*>(orig);
        ctx->out->push_back(Victim{{p, p + orig->nla_len}, zone});
    } catch (...) {
        ctx->failed = true;
        return MNL_CB_ERROR;
    }
    return MNL_CB_OK;
}

nlmsghdr* put_header(char* buf, uint8_t msg, uint16_t flags, uint32_t seq, uint8_t family) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | msg;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    nlh->nlmsg_seq = seq;
    auto* g = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
    g->nfgen_family = family;
    g->version = NFNETLINK_V0;
    g->res_id = 0;
    return nlh;
}

int stats_cb(const nlmsghdr* nlh, void* data) noexcept {
    auto* count = static_cast<std::optional<uint32_t>*>(data);
    for (auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
         mnl_attr_ok(a, static_cast<int>(static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -
                                         reinterpret_cast<const char*>(a)));
         a = mnl_attr_next(a))
        if (mnl_attr_get_type(a) == CTA_STATS_GLOBAL_ENTRIES && mnl_attr_get_payload_len(a) >= 4)
            *count = ntohl(mnl_attr_get_u32(a));
    return MNL_CB_OK;
}

// Whether this namespace's conntrack table may hold an entry. The table is one hash shared by
// every namespace, so a dump walks all of the host's entries (2 ms with a busy host), while the
// entry count is kept per namespace: a container namespace whose conntrack was only just enabled
// (the embedded DNS's DNAT) answers 0 and needs no dump. Any doubt (an old kernel) means "maybe".
bool may_have_entries(Socket& sock, char* buf) {
    nlmsghdr* nlh = put_header(buf, IPCTNL_MSG_CT_GET_STATS, NLM_F_ACK, sock.next_seq(), AF_UNSPEC);
    std::optional<uint32_t> count;
    if (!sock.request(nlh, stats_cb, &count, "conntrack statistics").ok() || !count) return true;
    return *count > 0;
}

}  // namespace

std::string ConntrackMatch::str() const {
    std::string s =
        fmt::format("{}{} dport {}", family == V6 ? "ipv6 " : "", proto_name(l4proto), port_first);
    if (port_last != port_first) s += fmt::format("-{}", port_last);
    if (family == V4 && dst) s += " dst " + dst->str();
    if (family == V6 && dst6) s += " dst " + dst6->str();
    return s;
}

Result<size_t> conntrack_delete(const std::vector<ConntrackMatch>& ms) {
    if (ms.empty()) return size_t{0};
    const std::string frame =
        ms.size() == 1
            ? fmt::format("delete conntrack entries ({})", ms[0].str())
            : fmt::format("delete conntrack entries ({} and {} more)", ms[0].str(), ms.size() - 1);
    // ctnetlink shares the NETLINK_NETFILTER protocol with nf_tables: the same socket type.
    CNETD_TRY_ASSIGN(Socket sock, Socket::open().context(frame));
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
    if (!may_have_entries(sock, buf.data())) return size_t{0};
    ErrorList errors;
    size_t deleted = 0;
    for (const auto family : {ConntrackMatch::V4, ConntrackMatch::V6}) {
        DumpCtx ctx;
        for (const auto& m : ms) {
            if (m.family != family) continue;
            ctx.ms.push_back(&m);
            for (uint32_t p = m.port_first; p <= m.port_last; ++p) ctx.ports[p] = true;
        }
        if (ctx.ms.empty()) continue;
        const uint8_t af = family == ConntrackMatch::V6 ? AF_INET6 : AF_INET;

        // 1. Collect: ONE dump of the family's table for all matches. Deleting while dumping
        // would disturb the dump's hash-table walk.
        std::vector<Victim> victims;
        ctx.out = &victims;
        {
            nlmsghdr* nlh =
                put_header(buf.data(), IPCTNL_MSG_CT_GET, NLM_F_DUMP, sock.next_seq(), af);
            auto r = sock.request(nlh, dump_cb, &ctx, "dump conntrack table");
            if (ctx.failed) return Error::sys(ENOMEM, "dump conntrack table").wrap(frame);
            if (!r.ok()) return std::move(r).context(frame).error();
        }

        // 2. Delete each by its original tuple (the kernel finds the entry by hash).
        for (const auto& v : victims) {
            nlmsghdr* nlh =
                put_header(buf.data(), IPCTNL_MSG_CT_DELETE, NLM_F_ACK, sock.next_seq(), af);
            std::memcpy(mnl_nlmsg_get_payload_tail(nlh), v.tuple.data(), v.tuple.size());
            nlh->nlmsg_len += MNL_ALIGN(static_cast<uint32_t>(v.tuple.size()));
            if (v.zone) mnl_attr_put_u16(nlh, CTA_ZONE, htons(*v.zone));
            auto r = sock.request(nlh, nullptr, nullptr, "delete conntrack entry");
            if (r.ok()) {
                ++deleted;
            } else if (r.error().error_number() != ENOENT) {  // gone meanwhile: fine
                errors.add(std::move(r).error());
            }
        }
    }
    if (!errors.empty()) return errors.combined(frame);
    return deleted;
}

}  // namespace cnetd::nft
