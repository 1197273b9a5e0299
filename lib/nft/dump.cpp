#include "nft/dump.hpp"

#include <netinet/in.h>  // before any <linux/*.h>: it keeps linux/in.h's duplicates out
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include <cerrno>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>

#include "nft/codec.hpp"

namespace cnetd::nft {
namespace {

constexpr size_t kReqBuf = 4096;  // a dump request names at most a table and a set

// Appends what `parse` makes of each answer to *data (a std::vector of its result). Allocation
// may throw: never let it cross libmnl's C frames.
template <class T, Result<T> (*Parse)(const nlmsghdr*)>
int collect(const nlmsghdr* nlh, void* data) noexcept {
    try {
        auto r = Parse(nlh);
        if (r.ok()) static_cast<std::vector<T>*>(data)->push_back(std::move(r).value());
        return MNL_CB_OK;
    } catch (...) {
        return MNL_CB_ERROR;
    }
}

int collect_set(const nlmsghdr* nlh, void* data) noexcept {
    try {
        uint32_t flags = 0;
        auto r = parse_set(nlh, &flags);
        if (r.ok() && !(flags & NFT_SET_ANONYMOUS))
            static_cast<std::vector<SetInfo>*>(data)->push_back(SetInfo{std::move(r).value(), 0});
        return MNL_CB_OK;
    } catch (...) {
        return MNL_CB_ERROR;
    }
}

int count_elements(const nlmsghdr* nlh, void* data) noexcept {
    try {
        auto r = parse_elements(nlh);
        if (r.ok()) static_cast<SetInfo*>(data)->elements += r.value().elems.size();
        return MNL_CB_OK;
    } catch (...) {
        return MNL_CB_ERROR;
    }
}

// A GET (without `dump`) or DUMP request of `type` for `table` (and `set`, for elements).
nlmsghdr* put_request(std::vector<char>& buf, Socket& sock, int type, int family, bool dump,
                      const std::string& table, const std::string& set = {}) {
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), static_cast<uint16_t>(type),
                                          static_cast<uint16_t>(family),
                                          dump ? NLM_F_DUMP : NLM_F_ACK, sock.next_seq());
    // The table's name is attribute 1 of every object type (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE,
    // NFTA_RULE_TABLE, NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE).
    if (!table.empty()) mnl_attr_put_strz(nlh, 1, table.c_str());
    if (!set.empty()) mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set.c_str());
    return nlh;
}

}  // namespace

const ChainSpec* TableInfo::chain(std::string_view name) const {
    for (const auto& c : chains)
        if (c.name == name) return &c;
    return nullptr;
}
const SetInfo* TableInfo::set(std::string_view name) const {
    for (const auto& s : sets)
        if (s.spec.name == name) return &s;
    return nullptr;
}
std::vector<std::string> TableInfo::rule_comments(std::string_view chain) const {
    std::vector<std::string> out;
    for (const auto& r : rules)
        if (r.chain == chain) out.push_back(r.comment);
    return out;
}

Result<TableInfo> dump_table(Socket& sock, int family, const std::string& table) {
    TableInfo info;
    std::vector<char> buf(kReqBuf);
    const std::string tdesc = fmt::format("table {} {}", family_name(family), table);
    // Does the table exist? (a plain GET answers ENOENT when it does not)
    auto r = sock.request(put_request(buf, sock, NFT_MSG_GETTABLE, family, false, table), nullptr,
                          nullptr, "get " + tdesc);
    if (!r.ok()) {
        if (r.error().error_number() == ENOENT) return info;
        return std::move(r).error();
    }
    info.exists = true;
    CNETD_TRY(sock.request(put_request(buf, sock, NFT_MSG_GETCHAIN, family, true, table),
                           collect<ChainSpec, parse_chain>, &info.chains,
                           "list chains of " + tdesc));
    CNETD_TRY(sock.request(put_request(buf, sock, NFT_MSG_GETRULE, family, true, table),
                           collect<RuleSpec, parse_rule>, &info.rules, "list rules of " + tdesc));
    CNETD_TRY(sock.request(put_request(buf, sock, NFT_MSG_GETSET, family, true, table), collect_set,
                           &info.sets, "list sets of " + tdesc));
    // The kernel filters dumps by the table attribute; older kernels did not, so filter again.
    std::erase_if(info.chains, [&](const ChainSpec& c) { return c.table != table; });
    std::erase_if(info.rules, [&](const RuleSpec& x) { return x.table != table; });
    std::erase_if(info.sets, [&](const SetInfo& s) { return s.spec.table != table; });
    for (auto& si : info.sets)
        CNETD_TRY(sock.request(
            put_request(buf, sock, NFT_MSG_GETSETELEM, family, true, table, si.spec.name),
            count_elements, &si, fmt::format("list elements of set {} {}", tdesc, si.spec.name)));
    return info;
}

Result<std::vector<ChainSpec>> dump_all_chains(Socket& sock) {
    std::vector<ChainSpec> out;
    std::vector<char> buf(kReqBuf);
    // No table attribute and family NFPROTO_UNSPEC: the kernel dumps the chains of all tables.
    CNETD_TRY(sock.request(put_request(buf, sock, NFT_MSG_GETCHAIN, NFPROTO_UNSPEC, true, {}),
                           collect<ChainSpec, parse_chain>, &out,
                           "list nftables chains of all tables"));
    return out;
}

}  // namespace cnetd::nft
