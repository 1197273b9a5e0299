// Specs (spec.hpp) <-> nf_tables netlink messages, with libnftnl/libmnl. The only place where
// cnetd's nftables objects meet libnftnl: batch.cpp encodes with it, dump.cpp parses the kernel's
// answers with it, and unit tests decode whole batches with decode() to check what would be sent.
//
// Encoding is pure (no kernel): each encode() returns one message with NLM_F_REQUEST | NLM_F_ACK |
// `flags`, sequence number 0 (Batch numbers them). Decoding returns an error naming the message
// type when libnftnl cannot parse a message; attributes cnetd never sets are ignored, and an
// expression cnetd never writes comes back as expr::Other.
// Threading: stateless.
#pragma once

#include <cstdint>
#include <variant>
#include <vector>

#include "base/error.hpp"
#include "nft/spec.hpp"

struct nlmsghdr;

namespace cnetd::nft {

// msg: NFT_MSG_NEWTABLE / DELTABLE / NEWCHAIN / NEWSET / NEWRULE / NEWSETELEM / DELSETELEM;
// flags: NLM_F_CREATE / NLM_F_EXCL / NLM_F_APPEND.
std::vector<uint8_t> encode(int msg, uint16_t flags, const TableSpec& t);
std::vector<uint8_t> encode(int msg, uint16_t flags, const ChainSpec& c);
std::vector<uint8_t> encode(int msg, uint16_t flags, const SetSpec& s);
std::vector<uint8_t> encode(int msg, uint16_t flags, const RuleSpec& r);
std::vector<uint8_t> encode(int msg, uint16_t flags, const ElementsSpec& e);

using Object = std::variant<TableSpec, ChainSpec, SetSpec, RuleSpec, ElementsSpec>;
struct Message {
    int type = 0;  // NFT_MSG_*
    uint16_t flags = 0;
    uint32_t seq = 0;
    Object object;
};
// Every nf_tables message of a datagram (a Batch's bytes()), in order; the batch begin and end
// messages are skipped. A truncated message or one libnftnl refuses is an error.
Result<std::vector<Message>> decode(const std::vector<uint8_t>& bytes);

// One message each (a NEW* notification or dump answer of that object type).
Result<TableSpec> parse_table(const nlmsghdr* nlh);
Result<ChainSpec> parse_chain(const nlmsghdr* nlh);
// `raw_flags` (optional) receives NFTA_SET_FLAGS as sent, e.g. to skip anonymous sets.
Result<SetSpec> parse_set(const nlmsghdr* nlh, uint32_t* raw_flags = nullptr);
Result<RuleSpec> parse_rule(const nlmsghdr* nlh);
// Walked with libmnl: libnftnl 1.2.4's element parser refuses an interval end (flags, no data).
Result<ElementsSpec> parse_elements(const nlmsghdr* nlh);

}  // namespace cnetd::nft
