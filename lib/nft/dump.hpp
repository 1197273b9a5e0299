// Reading nftables state back from the kernel as specs (spec.hpp), for verification and drift
// checks: one table of one family, or every chain of every table (coexistence checks).
//
// Read-only. Each function issues its dump requests on the given socket (its network namespace)
// and waits at most kAnswerTimeoutMs per answer. Errors name the dump: "list rules of table inet
// cnetd: Operation not permitted". Threading: as Socket (one thread at a time).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"
#include "nft/socket.hpp"
#include "nft/spec.hpp"

namespace cnetd::nft {

struct SetInfo {
    SetSpec spec;
    size_t elements = 0;  // as the kernel stores them (an rbtree interval is 1 or 2 elements)
};
// What one table looks like in the kernel.
struct TableInfo {
    bool exists = false;
    std::vector<ChainSpec> chains;
    std::vector<RuleSpec> rules;  // every rule of the table, chain by chain, in order
    std::vector<SetInfo> sets;    // named sets and maps (anonymous ones are skipped)
    const ChainSpec* chain(std::string_view name) const;
    const SetInfo* set(std::string_view name) const;
    // The comments of `chain`'s rules, in order ("" for a rule without one).
    std::vector<std::string> rule_comments(std::string_view chain) const;
    size_t rule_count() const { return rules.size(); }
};

// Dumps one table's chains, rules and sets (with element counts). A missing table is not an
// error: exists == false.
Result<TableInfo> dump_table(Socket& sock, int family, const std::string& table);
// Every chain of every table of every family (an NFPROTO_UNSPEC dump); policies included.
Result<std::vector<ChainSpec>> dump_all_chains(Socket& sock);

}  // namespace cnetd::nft
