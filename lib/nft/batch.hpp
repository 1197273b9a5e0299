// A batch of nf_tables messages that the kernel applies as ONE transaction (all or nothing).
//
// Building is pure: each add/create/delete call serialises its spec immediately (codec.hpp) and
// bytes() returns the whole NFNL_MSG_BATCH_BEGIN..END datagram. Every message records a human
// description in nft's words ("add element inet cnetd masq_nets { 172.17.0.0/16 }") so a kernel
// NLMSG_ERROR can be mapped back to the exact object by its sequence number (Socket::commit).
// Only the last message carries NLM_F_ACK (set by bytes()): the kernel answers refused messages
// with an error anyway, in order, so the last answer tells the caller the batch is done.
// Threading: a Batch is a value; use it from one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nft/spec.hpp"

namespace cnetd::nft {

class Batch {
public:
    // Tables: `add` (NLM_F_CREATE: no error if it exists), `create` (and NLM_F_EXCL), `delete`.
    void add_table(const TableSpec& t);
    void create_table(const TableSpec& t);
    void delete_table(const TableSpec& t);
    // Sets/maps and chains are created exclusively (they come right after their table).
    void create_set(const SetSpec& s);
    void create_chain(const ChainSpec& c);
    // Appends a rule to its chain; `nft_text` is the rule in nft syntax, for the description.
    void add_rule(const RuleSpec& r, std::string_view nft_text);
    // NEWSETELEM (NLM_F_CREATE) / DELSETELEM of the elements in `e`; `text` describes them as
    // nft prints them, braces included: "{ 172.17.0.0/16 . "docker0" }".
    void add_elements(const ElementsSpec& e, std::string_view text);
    void delete_elements(const ElementsSpec& e, std::string_view text);

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

}  // namespace cnetd::nft
