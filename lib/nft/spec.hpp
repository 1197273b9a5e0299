// Typed specs of nftables objects: what a caller wants in the kernel (or what a dump found), as
// plain values. lib/firewall describes its table with these; only lib/nft turns them into netlink
// messages (batch.hpp, through codec.hpp) and parses messages and dumps back into them (codec.hpp,
// dump.hpp), so libnftnl/libmnl stay inside this layer.
//
//   TableSpec    table <family> <name>
//   ChainSpec    chain, optionally a base chain (type, hook, priority, policy)
//   SetSpec      set or map: typed key (a concatenation of nft datatypes), typed data for a map,
//                interval flag; key/data lengths, flags and nft's user data are derived from it
//   ElementsSpec the elements of one set in one message (raw key/key_end/data bytes)
//   RuleSpec     chain + a list of typed expressions (expr.hpp) + a comment
//
// Numeric constants (NFPROTO_*, NF_INET_*, NF_ACCEPT) are the kernel's, passed as integers: this
// header includes no netfilter header (see nft.hpp).
// Threading: plain values, no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nft/expr.hpp"

namespace cnetd::nft {

// "inet", "ip", "ip6", "bridge", "arp", "netdev" for an NFPROTO_* value, else "family <n>".
std::string family_name(int nfproto);

struct TableSpec {
    int family = 0;  // NFPROTO_*
    std::string name;
    bool operator==(const TableSpec&) const = default;
};

struct BaseChain {
    std::string type;      // "filter" / "nat" / "route"
    uint32_t hooknum = 0;  // NF_INET_*
    int32_t priority = 0;
    std::optional<uint32_t> policy;  // NF_ACCEPT / NF_DROP; absent in a dump without one
    bool operator==(const BaseChain&) const = default;
};
struct ChainSpec {
    int family = 0;
    std::string table, name;
    std::optional<BaseChain> base;  // nullopt: a regular chain (no hook)
    // nft's text of the hook: "type filter hook forward priority filter; policy accept;" (named
    // priorities of the inet family where the value has a name), "" for a regular chain.
    std::string hook_text() const;
    bool operator==(const ChainSpec&) const = default;
};

// nft's datatypes (nftables' enum datatypes), so `nft list` prints our sets readably.
enum class Type : uint32_t {
    NfProto = 2,
    Ipv4Addr = 7,
    Ipv6Addr = 8,
    InetProto = 12,
    InetService = 13,
    Ifname = 41,
};
uint32_t type_len(Type t);      // bytes of one value: 1, 4, 16, 1, 2, 16 (0 if unknown)
const char* type_name(Type t);  // "nf_proto", "ipv4_addr", ... ("invalid" if unknown)

struct SetSpec {
    int family = 0;
    std::string table, name;
    std::vector<Type> key;   // one datatype, or the fields of a concatenation
    std::vector<Type> data;  // a map's value (one datatype or a concatenation); empty for a set
    bool interval = false;
    uint32_t id = 0;  // transaction-local set id (NFTA_SET_ID), required by the kernel on NEWSET

    bool is_map() const { return !data.empty(); }
    // Derived wire values. A concatenation pads each field to a 4-byte register; a single field
    // keeps its size (nft's nf_proto is one byte: `nft list` prints the set only with that length).
    uint32_t flags() const;  // NFT_SET_INTERVAL | NFT_SET_MAP | NFT_SET_CONCAT as they apply
    uint32_t key_len() const;
    uint32_t data_len() const;
    uint32_t key_type() const;  // concatenated types are packed 6 bits per field, first field high
    uint32_t data_type() const;
    // "type ipv4_addr . ifname : ipv4_addr; flags interval", as in `nft list`.
    std::string decl() const;
    bool operator==(const SetSpec&) const = default;
};
// The inverse of SetSpec::key_type(): the fields of a packed (concatenated) datatype.
std::vector<Type> unpack_types(uint32_t packed);

struct ElementSpec {
    std::vector<uint8_t> key, key_end, data;  // key_end: concatenated ranges; data: map values
    bool interval_end = false;  // NFT_SET_ELEM_INTERVAL_END (the first value after an interval)
    bool operator==(const ElementSpec&) const = default;
};
struct ElementsSpec {
    int family = 0;
    std::string table, set;
    std::vector<ElementSpec> elems;
    bool operator==(const ElementsSpec&) const = default;
};

struct RuleSpec {
    int family = 0;
    std::string table, chain;
    Exprs exprs;
    std::string comment;  // nft's `comment "..."` (rule user data); at most 127 bytes are kept
    bool operator==(const RuleSpec&) const = default;
};

}  // namespace cnetd::nft
