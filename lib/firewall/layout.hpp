// The fixed layout of cnetd's table (private to lib/firewall): its sets and maps, base chains and
// rules as declarative tables of typed specs (lib/nft/spec.hpp). The names and the nft text of
// every object are listed in ruleset.hpp and docs/firewall.md.
//
// The tables are built once (function-local statics, thread-safe initialisation) and never
// change: 0 and 10,000 networks or published ports give the same sets, chains and rules.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "nft/spec.hpp"

namespace cnetd::firewall::detail {

constexpr int kFamily = 1;  // NFPROTO_INET (checked against the kernel header in layout.cpp)
constexpr unsigned kIfnameLen = 16;  // IFNAMSIZ: meta iifname loads 16 zero-padded bytes

struct SetDef {
    const char* name;
    std::vector<nft::Type> key;   // one datatype or a concatenation
    std::vector<nft::Type> data;  // maps only
    bool interval = false;
};
struct ChainDef {
    const char* name;
    const char* type;
    uint32_t hook;  // NF_INET_*
    int32_t prio;
};
struct RuleDef {
    const char* chain;
    const char* comment;  // stable identity of the rule (the drift check compares comments)
    const char* nft;      // the same rule in nft syntax (journal and render())
    nft::Exprs exprs;
};

const std::vector<SetDef>& set_defs();      // layout.cpp
const std::vector<ChainDef>& chain_defs();  // layout.cpp
const std::vector<RuleDef>& rule_defs();    // rules.cpp

// The specs of table `table`'s objects; `id` is the set's transaction-local id.
nft::TableSpec table_spec(std::string_view table);
nft::SetSpec set_spec(std::string_view table, const SetDef& d, uint32_t id);
nft::ChainSpec chain_spec(std::string_view table, const ChainDef& d);  // policy accept
nft::RuleSpec rule_spec(std::string_view table, const RuleDef& d);

}  // namespace cnetd::firewall::detail
