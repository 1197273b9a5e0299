#include "nft/batch.hpp"

#include <netinet/in.h>  // before any <linux/*.h>: it keeps linux/in.h's duplicates out
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>

#include <fmt/format.h>

#include "nft/codec.hpp"

namespace cnetd::nft {

void Batch::push(std::vector<uint8_t> msg, std::string desc) {
    messages_.push_back(std::move(msg));
    descs_.push_back(std::move(desc));
}

void Batch::add_table(const TableSpec& t) {
    push(encode(NFT_MSG_NEWTABLE, NLM_F_CREATE, t),
         fmt::format("add table {} {}", family_name(t.family), t.name));
}
void Batch::create_table(const TableSpec& t) {
    push(encode(NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, t),
         fmt::format("add table {} {}", family_name(t.family), t.name));
}
void Batch::delete_table(const TableSpec& t) {
    push(encode(NFT_MSG_DELTABLE, 0, t),
         fmt::format("delete table {} {}", family_name(t.family), t.name));
}
void Batch::create_set(const SetSpec& s) {
    push(encode(NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, s),
         fmt::format("add {} {} {} {} {{ {}; }}", s.is_map() ? "map" : "set", family_name(s.family),
                     s.table, s.name, s.decl()));
}
void Batch::create_chain(const ChainSpec& c) {
    std::string desc = fmt::format("add chain {} {} {}", family_name(c.family), c.table, c.name);
    if (c.base) desc += fmt::format(" {{ {} }}", c.hook_text());
    push(encode(NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, c), std::move(desc));
}
void Batch::add_rule(const RuleSpec& r, std::string_view nft_text) {
    push(encode(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, r),
         fmt::format("add rule {} {} {} {}", family_name(r.family), r.table, r.chain, nft_text));
}
void Batch::add_elements(const ElementsSpec& e, std::string_view text) {
    push(encode(NFT_MSG_NEWSETELEM, NLM_F_CREATE, e),
         fmt::format("add element {} {} {} {}", family_name(e.family), e.table, e.set, text));
}
void Batch::delete_elements(const ElementsSpec& e, std::string_view text) {
    push(encode(NFT_MSG_DELSETELEM, 0, e),
         fmt::format("delete element {} {} {} {}", family_name(e.family), e.table, e.set, text));
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

}  // namespace cnetd::nft
